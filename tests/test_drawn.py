"""`--keep largest` by how large each member draws the picture (`dedup.drawn`)."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from test_windows import textured

from dedup.drawn import drawn_scales, outdrawn
from dedup.duplicates import find_duplicates
from dedup.indexer import index_catalog
from dedup.seams import PairMaps


def check_map(native: np.ndarray, long_i: int, long_j: int) -> np.ndarray:
    """The keypoints' map (units of each picture's longer side) of a map between the pictures' own pixels."""
    out = np.asarray(native, np.float64).copy()
    out[:, :2] *= long_i / long_j
    out[:, 2] /= long_j
    return out


def turned(degrees: float, scale: float = 1.0, shift: tuple[float, float] = (5.0, -3.0)) -> np.ndarray:
    a = np.radians(degrees)
    return np.array([[np.cos(a) * scale, -np.sin(a) * scale, shift[0]], [np.sin(a) * scale, np.cos(a) * scale, shift[1]]])


def onto_canvas(degrees: float, w: int, h: int) -> tuple[np.ndarray, int, int]:
    """The pixel map of a w × h picture rotated onto the canvas that just holds it, and that canvas's size."""
    a = np.radians(degrees)
    cw, ch = w * np.cos(a) + h * np.sin(a), w * np.sin(a) + h * np.cos(a)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return np.hstack([rot, (np.array([cw, ch]) / 2 - rot @ np.array([w, h]) / 2)[:, None]]), round(cw), round(ch)


def scales_of(maps: dict, sizes: list[tuple[int, int]]):
    """`drawn_scales` of pixel `maps` between pictures of (width, height) `sizes`."""
    long_side = [max(s) for s in sizes]
    units = {(i, j): check_map(m, long_side[i], long_side[j]) for (i, j), m in maps.items()}
    return drawn_scales(table(units), np.arange(len(sizes)), np.array([s[1] for s in sizes]), np.array([s[0] for s in sizes]))


def table(maps: dict) -> PairMaps:
    """The `PairMaps` of {(i, j): map}."""
    return PairMaps.of([i for i, _ in maps], [j for _, j in maps], np.array(list(maps.values())).reshape(-1, 2, 3))


def test_scales_are_in_the_pictures_own_pixels_whichever_way_the_map_goes():
    maps = table({(7, 3): check_map(turned(12), 260, 200), (3, 9): check_map(np.diag([1.4, 1.0, 0])[:2], 200, 280)})
    scales = drawn_scales(maps, np.array([3, 7, 9]), np.array([150, 230, 200]), np.array([200, 260, 280]))
    got = {(int(i), int(j)): (round(lo, 3), round(hi, 3), round(np.degrees(t), 1))
           for i, j, lo, hi, t in zip(scales.i, scales.j, scales.lo, scales.hi, scales.turn)}
    assert got == {(0, 1): (1.0, 1.0, 12.0), (0, 2): (1.0, 1.4, 0.0)}
    assert not scales.canvas.any()  # the turned frame does not reach the canvas's sides
    assert len(drawn_scales(maps, np.array([3, 4]), np.array([150, 10]), np.array([200, 10]))) == 0  # rows 7 and 9 are not among them


def test_a_copy_turned_onto_the_canvas_that_holds_it_is_outdrawn_by_its_original_either_way_round():
    to_canvas, cw, ch = onto_canvas(12, 200, 150)
    for maps, sizes, original in [({(0, 1): to_canvas}, [(200, 150), (cw, ch)], 0),
                                  ({(1, 0): to_canvas}, [(cw, ch), (200, 150)], 1)]:
        scales = scales_of(maps, sizes)
        assert scales.canvas.tolist() == [1 if original == 0 else -1]
        pixels = np.array([w * h for w, h in sizes])
        assert outdrawn(np.zeros(2, np.int64), pixels, scales).tolist() == [original != 0, original != 1]


def test_a_turned_copy_at_its_originals_scale_does_not_outdraw_it_by_its_pixels():
    # 0 original, 1 turned at its scale on a larger canvas that does not just hold it, 2 a noisy copy of 0's frame (no map)
    sizes = [(200, 150), (260, 230), (200, 150)]
    pixels = np.array([w * h for w, h in sizes])
    scales = scales_of({(0, 1): turned(12), (1, 2): turned(-12)}, sizes)
    assert not outdrawn(np.zeros(3, np.int64), pixels, scales).any()
    assert outdrawn(np.zeros(3, np.int64), pixels, scales_of({}, sizes)).tolist() == [True, False, True]


def test_a_member_stretched_against_most_of_its_set_is_outdrawn_and_a_stretched_pair_ties():
    stretch = np.diag([1.4, 1.0, 0])[:2]
    sizes = [(200, 200), (280, 200), (200, 200)]
    pixels = np.array([w * h for w, h in sizes])
    scales = scales_of({(0, 1): stretch, (2, 1): stretch}, sizes)
    assert outdrawn(np.zeros(3, np.int64), pixels, scales).tolist() == [False, True, False]
    assert outdrawn(np.array([0, 0, -1]), pixels, scales).tolist() == [False, False, False]


def test_a_member_drawing_the_picture_larger_outdraws_whatever_the_pixels_and_a_crop_is_outdrawn():
    # 1 draws 0's picture 1.5 times larger on a smaller canvas than 0's padded one; 2 is a crop of 1 at its scale
    sizes = [(400, 400), (300, 300), (150, 150)]
    pixels = np.array([w * h for w, h in sizes])
    scales = scales_of({(0, 1): turned(0, 1.5), (1, 2): turned(0)}, sizes)
    assert outdrawn(np.zeros(3, np.int64), pixels, scales).tolist() == [True, False, True]
    assert not outdrawn(np.array([0, 0, -1]), pixels, scales)[2]  # in no set


@pytest.fixture(scope="module")
def turned_catalog(tmp_path_factory):
    """A drawing on white and its copy turned by 12° onto the larger white canvas that holds it (no
    seam where its frame lies: not a composite), indexed with the shipped encoder."""
    from dedup.model import load_model

    root = tmp_path_factory.mktemp("drawn")
    (root / "cat").mkdir()
    original = Image.new("RGB", (360, 280), "white")
    original.paste(textured(300, (240, 180)), (60, 50))
    original.save(root / "cat" / "original.png")
    original.rotate(12, Image.Resampling.BILINEAR, expand=True, fillcolor=(255, 255, 255)).save(root / "cat" / "turned.png")
    index_catalog(root / "cat", root / "idx", load_model())
    return root / "idx"


def test_find_duplicates_keeps_the_original_over_its_copy_turned_onto_a_larger_canvas(turned_catalog):
    import json

    from dedup.report import render_duplicates

    report = find_duplicates(turned_catalog)
    (group,) = report.groups
    assert {m.path for m in group.members} == {"original.png", "turned.png"}
    assert group.keep == "original.png"
    assert [(m.path, m.more_pixels_only) for m in group.members] == [("original.png", False), ("turned.png", True)]
    members = json.loads(render_duplicates(report, "json"))["groups"][0]["members"]
    assert [m.get("more_pixels_only", False) for m in members] == [False, True]
    assert "turned.png  (more pixels, no more of the picture)" in render_duplicates(report, "table")
    assert find_duplicates(turned_catalog, keep="smallest").groups[0].keep == "original.png"
    assert find_duplicates(turned_catalog, variants_together=True).groups[0].keep == "original.png"  # maps kept there too


def test_a_member_ranked_last_outdraws_no_one():
    # 0 a composite showing 1 (ranked last whatever it draws, so left out: -1), 1 the original, 2 a smaller copy of 1
    sizes = [(480, 360), (320, 240), (256, 192)]
    pixels = np.array([w * h for w, h in sizes])
    assert outdrawn(np.array([0, 0, 0]), pixels, scales_of({}, sizes)).tolist() == [False, True, True]
    assert outdrawn(np.array([-1, 0, 0]), pixels, scales_of({}, sizes)).tolist() == [False, False, True]
