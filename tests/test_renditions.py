"""Renditions (`dedup.renditions`): one picture stored at two of a catalog's standard sizes."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image, ImageDraw

from dedup.duplicates import find_duplicates
from dedup.pairs import Pairs, sorted_pairs
from dedup.renditions import STANDARD, are_renditions, marked, reach, rendition_pairs
from dedup.report import duplicates_summary, render_duplicates
from dedup.results import Group, Member

N = STANDARD  # pictures at each of two standard sizes: rows 0..N-1 at 32 px, N..2N-1 at 64 px


def _sizes(small=(32, 32), large=(64, 64), n: int = N) -> tuple[np.ndarray, np.ndarray]:
    width = np.array([small[0]] * n + [large[0]] * n)
    height = np.array([small[1]] * n + [large[1]] * n)
    return width, height


def _pairs(*triples) -> Pairs:
    i, j, d = zip(*((min(a, b), max(a, b), dist) for a, b, dist in triples))
    return sorted_pairs([np.array(i)], [np.array(j)], [np.array(d, np.float32)])


def _verdict(pairs: Pairs, width, height, within: float = 0.65, apart=None) -> dict[tuple[int, int], bool]:
    found = are_renditions(pairs, width, height, within, apart)
    return {(int(a), int(b)): bool(f) for a, b, f in zip(pairs.i, pairs.j, found)}


def test_two_pictures_of_two_standard_sizes_each_the_others_nearest_there_are_renditions():
    width, height = _sizes()
    pairs = _pairs((0, N, 0.5), (0, 1, 0.2), (1, N + 1, 0.6), (0, N + 1, 0.55))
    verdict = _verdict(pairs, width, height)
    assert verdict[(0, N)]  # 0's nearest 64-px picture is N, and N's nearest 32-px one is 0; 1 is nearer, but of 0's own size
    assert not verdict[(0, 1)]  # one size: never renditions
    assert not verdict[(0, N + 1)]  # not 0's nearest of that size
    assert not verdict[(1, N + 1)]  # N + 1's nearest 32-px picture is 0


def test_two_sizes_of_one_picture_joined_through_a_third_are_renditions_at_any_candidate_distance():
    width = height = np.array([32] * N + [48] * N + [256] * N)
    pairs = _pairs((0, N, 0.5), (N, 2 * N, 0.5), (0, 2 * N, 0.78), (0, 2 * N + 1, 0.79), (N, N + 1, 0.1))
    verdict = _verdict(pairs, width, height)
    assert verdict[(0, N)] and verdict[(N, 2 * N)]  # each the other's nearest at its size, closer than 0.65
    assert verdict[(0, 2 * N)]  # beyond 0.65, but both are renditions of N
    assert not verdict[(0, 2 * N + 1)] and not verdict[(N, N + 1)]  # not of that family; one size
    apart = (pairs.i == 0) & (pairs.j == 2 * N)  # told apart by the check
    assert not _verdict(pairs, width, height, apart=apart)[(0, 2 * N)]


def test_a_thumbnail_as_near_two_pictures_the_check_told_apart_is_no_rendition():
    width = height = np.array([48] * N + [512] * N)
    pairs = _pairs((0, N, 0.31), (0, N + 1, 0.3), (N, N + 1, 0.2), (1, N + 2, 0.3))
    apart = (pairs.i == N) & (pairs.j == N + 1)  # two items of a series, told apart by a differing letter
    assert _verdict(pairs, width, height)[(0, N + 1)]  # each the other's nearest, when nothing was told apart
    verdict = _verdict(pairs, width, height, apart=apart)
    assert not verdict[(0, N + 1)] and not verdict[(0, N)]  # the thumbnail could be either
    assert verdict[(1, N + 2)]  # another thumbnail, near one picture only


def test_every_two_sizes_of_a_family_are_paired_even_beyond_the_candidates():
    width = height = np.array([32] * N + [48] * N + [256] * N)
    vectors = np.zeros((3 * N, 64), np.float32)
    vectors[:, 0] = 1.0
    vectors[2 * N] = np.eye(64, dtype=np.float32)[1]  # the 256-px rendition: far from the 32-px one (distance √2)
    pairs = _pairs((0, N, 0.5), (N, 2 * N, 0.5))  # (0, 2N) is no candidate
    found = rendition_pairs(pairs, width, height, 0.65, vectors)
    assert list(zip(found.i.tolist(), found.j.tolist())) == [(0, N), (0, 2 * N), (N, 2 * N)]
    assert found.d[1] == pytest.approx(np.sqrt(2), abs=1e-6)  # at the vectors' distance
    with_told = _pairs((0, N, 0.5), (N, 2 * N, 0.5), (0, 2 * N, 0.7))
    told = (with_told.i == 0) & (with_told.j == 2 * N)
    found = rendition_pairs(with_told, width, height, 0.65, vectors, told)
    assert (0, 2 * N) not in set(zip(found.i.tolist(), found.j.tolist()))  # the check told them apart
    assert len(rendition_pairs(Pairs.empty(), width, height, 0.65, vectors)) == 0


def test_renditions_need_standard_sizes_a_scale_apart_one_proportion_the_distance_and_no_verdict_apart():
    pairs = _pairs((0, N, 0.5))
    assert _verdict(pairs, *_sizes())[(0, N)]
    few = _pairs((0, N - 1, 0.5))
    assert not _verdict(few, *_sizes(n=N - 1))[(0, N - 1)]  # each size shared by too few pictures
    assert not _verdict(pairs, *_sizes(large=(36, 36)))[(0, N)]  # 36 px is no other scale of 32 px
    assert not _verdict(pairs, *_sizes(large=(64, 48)))[(0, N)]  # another proportion
    assert _verdict(pairs, *_sizes(small=(40, 30), large=(80, 60)))[(0, N)]  # one proportion, not square
    assert not _verdict(pairs, *_sizes(), within=0.4)[(0, N)]  # too far, and joined through no other rendition
    assert not _verdict(pairs, *_sizes(), apart=np.array([True]))[(0, N)]  # the check told them apart
    assert are_renditions(Pairs.empty(), *_sizes(), 0.65).shape == (0,)


def test_the_rendition_distance_lies_between_the_encoder_threshold_and_the_candidate_distance():
    assert 0.35 < reach(0.35, 0.8) < 0.8
    assert reach(0.35, 0.8) == pytest.approx(0.35 + (0.8 - 0.35) * 2 / 3)
    assert reach(0.5, 0.4) == 0.5  # a candidate distance below the threshold reaches no further


def test_a_member_is_marked_when_its_pair_with_the_keeper_is_a_rendition_pair():
    group = Group("a.png", 0.5, False, (Member("a.png", 0.0), Member("b.png", 0.4), Member("c.png", 0.5)))
    other = Group("d.png", 0.1, False, (Member("d.png", 0.0), Member("e.png", 0.1)))
    out = marked([group, other], ["b.png", "c.png"], ["a.png", "b.png"])  # (b, c) is no pair with the keeper
    assert [m.rendition for m in out[0].members] == [False, True, False] and out[1] is other
    assert marked([group], [], []) == [group]


def _drawing(rng: np.random.Generator) -> Image.Image:
    im = Image.new("RGB", (256, 256), "white")
    draw = ImageDraw.Draw(im)
    for _ in range(4):
        colour = tuple(int(c) for c in rng.integers(0, 230, 3))
        x0, y0 = (int(v) for v in rng.integers(10, 150, 2))
        x1, y1 = x0 + int(rng.integers(40, 100)), y0 + int(rng.integers(40, 100))
        shape = rng.integers(0, 3)
        if shape == 0:
            draw.ellipse((x0, y0, x1, y1), fill=colour, outline="black", width=3)
        elif shape == 1:
            draw.rectangle((x0, y0, x1, y1), fill=colour, outline="black", width=3)
        else:
            draw.polygon([(x0, y1), ((x0 + x1) // 2, y0), (x1, y1)], fill=colour, outline="black")
    return im


def test_find_duplicates_joins_drawings_with_their_32_px_renditions_that_the_keypoints_cannot_confirm(tmp_path):
    rng = np.random.default_rng(0)
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    for k in range(24):
        im = _drawing(rng)
        im.save(catalog / f"i{k:02d}_256.png")
        im.resize((32, 32), Image.Resampling.LANCZOS).save(catalog / f"i{k:02d}_32.png")
    subprocess.run([sys.executable, "-m", "dedup", "index", str(catalog), "--index", str(tmp_path / "idx"), "-q"], check=True)

    def sets(report) -> set[frozenset[str]]:
        return {frozenset(m.path for m in g.members) for g in report.groups}

    plain, report = find_duplicates(tmp_path / "idx", renditions=False), find_duplicates(tmp_path / "idx")
    without, found = sets(plain), sets(report)
    assert without < found
    assert all(len(s) == 2 and len({p.split("_")[0] for p in s}) == 1 for s in found)  # a drawing and its rendition
    marked = {frozenset(m.path for m in g.members) for g in report.groups if any(m.rendition for m in g.members)}
    assert marked == found - without and report.verified.renditions == len(marked) and plain.verified.renditions == 0
    for g in report.groups:
        assert not any(m.rendition for m in g.members if m.path == g.keep)
    assert f"{len(marked)} more taken as two sizes of one picture" in duplicates_summary(report)
    assert '"rendition": true' in render_duplicates(report, "json")
