"""Telling a picture pasted onto a busier one from a crop (`dedup.seams`): the keeper is the
picture shown, not the composite, and still the original of a crop."""
from __future__ import annotations

import numpy as np
from fakes import member_sets
from PIL import Image
from test_windows import cropped_catalog, textured  # noqa: F401  (a fixture)

from dedup import seams
from dedup.augment import busy_backdrop
from dedup.duplicates import find_duplicates
from dedup.pairs import Pairs


def unit_map(pixels: np.ndarray, a: tuple[int, int], b: tuple[int, int]) -> np.ndarray:
    """A pixel map from a picture of (h, w) `a` to one of `b` in the keypoints' units (each
    picture's longer side)."""
    full = np.diag([1 / max(b), 1 / max(b), 1.0]) @ np.vstack([pixels, (0, 0, 1)]) @ np.diag([max(a), max(a), 1.0])
    return full[:2].astype(np.float32)


def shift(x: float, y: float) -> np.ndarray:
    return np.array([[1.0, 0.0, x], [0.0, 1.0, y]])


def pasted_onto_backdrop(seed: int = 5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A picture, the picture pasted onto a busy backdrop, and the map between them."""
    picture = textured(seed, (160, 120))
    backdrop = busy_backdrop((300, 240), np.random.default_rng(seed))
    backdrop.alpha_composite(picture.convert("RGBA"), (90, 70))
    a, b = np.asarray(picture.convert("RGB")), np.asarray(backdrop.convert("RGB"))
    return a, b, unit_map(shift(90, 70), a.shape[:2], b.shape[:2])


def test_a_picture_pasted_onto_a_busy_one_makes_that_one_the_composite_either_way_round():
    a, b, to_b = pasted_onto_backdrop()
    assert seams.composite(a, b, to_b) == 1
    assert seams.composite(b, a, np.linalg.inv(np.vstack([to_b, (0, 0, 1)]))[:2]) == 0


def test_a_padded_copy_is_a_composite_too():
    picture = textured(6, (160, 120))
    canvas = Image.new("RGB", (220, 160), "white")
    canvas.paste(picture, (30, 20))
    a, b = np.asarray(picture), np.asarray(canvas)
    assert seams.composite(a, b, unit_map(shift(30, 20), a.shape[:2], b.shape[:2])) == 1


def test_a_crop_is_not_a_composite_and_neither_are_two_pictures_of_one_frame():
    whole = np.asarray(textured(7, (240, 180)))
    crop = whole[40:130, 60:180]
    assert seams.composite(crop, whole, unit_map(shift(60, 40), crop.shape[:2], whole.shape[:2])) is None
    assert seams.composite(whole, whole.copy(), unit_map(shift(0, 0), whole.shape[:2], whole.shape[:2])) is None
    one_side = whole[:, 30:]  # trims one side only: a single edge inside, which may run along a stroke
    assert seams.composite(one_side, whole, unit_map(shift(30, 0), one_side.shape[:2], whole.shape[:2])) is None


def test_composites_lists_each_composite_with_the_picture_it_shows_and_skips_pairs_without_a_map():
    a, b, to_b = pasted_onto_backdrop()
    pictures = {0: a, 1: b, 2: a}
    from dedup.pictures import picture_bytes

    stored = {row: picture_bytes(Image.fromarray(rgb)) for row, rgb in pictures.items()}
    pages, shown = seams.composites(Pairs(np.array([0, 1]), np.array([1, 2]), np.zeros(2, np.float32)),
                                    seams.PairMaps.of([0], [1], to_b[None]), stored.__getitem__)
    assert pages.tolist() == [1] and shown.tolist() == [0]


def test_only_the_maps_of_frames_that_may_nest_are_kept():
    nested = seams.NestedMaps()
    maps = np.stack([np.eye(2, 3), shift(0.2, 0.1) * [[0.5], [0.5]] + [[0, 0, 0], [0, 0, 0]]]).astype(np.float32)
    nested(np.array([3, 4]), np.array([5, 6]), maps)
    assert (nested.maps.i.tolist(), nested.maps.j.tolist()) == ([4], [6])
    nested(np.array([2, 4]), np.array([9, 6]), maps[::-1] * 2)  # a pair seen again keeps its first map
    assert (nested.maps.i.tolist(), nested.maps.j.tolist()) == ([2, 4], [9, 6]) and np.allclose(nested.maps.maps[1], maps[1])


def test_find_duplicates_keeps_the_picture_shown_over_the_busier_one_and_the_original_over_its_crop(cropped_catalog):  # noqa: F811
    _, folder = cropped_catalog
    report = find_duplicates(folder)
    assert {"scene1.png", "pasted.png"} in member_sets(report) and {"scene0.png", "crop.png"} in member_sets(report)
    keepers = {g.keep: [m for m in g.members] for g in report.groups}
    assert "scene1.png" in keepers and "scene0.png" in keepers
    assert [m.path for m in keepers["scene1.png"] if m.page] == ["pasted.png"]
    assert not any(m.page for m in keepers["scene0.png"])
    together = {g.keep: [m.path for m in g.members if m.page] for g in find_duplicates(folder, variants_together=True).groups}
    assert together["scene1.png"] == ["pasted.png"]  # composites are looked for with variants together too


def test_a_second_run_judges_no_composite_again(cropped_catalog, tmp_path, monkeypatch):  # noqa: F811
    import shutil

    import dedup.duplicates as duplicates
    import dedup.passes as passes

    _, folder = cropped_catalog
    copy = shutil.copytree(folder, tmp_path / "idx")
    shutil.rmtree(copy / "pair-checks", ignore_errors=True)
    asked, real = [], duplicates.which_composite
    for module in (duplicates, passes):  # the first pass's composites, and the windows'
        monkeypatch.setattr(module, "which_composite", lambda i, *rest: asked.append(len(i)) or real(i, *rest))
    first = duplicates.find_duplicates(copy)
    looked, asked[:] = sum(asked), []
    assert looked and duplicates.find_duplicates(copy) == first and sum(asked) == 0
