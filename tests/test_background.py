"""Background distances (`dedup.background`, checked against brute force) and the pair check that
judges a pair's distance against them (`dedup.policy`)."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from dedup.background import OWN_COPIES, RANKS, backgrounds, normalised, sample_rows
from dedup.config import NORMALISED_FEATURES, VerifyConfig
from dedup.keypoints import Matches
from dedup.pairs import Pairs
from dedup.policy import CheckedPolicy, probability

# P(same) ≥ 0.5 exactly when the normalised distance is at most −0.1, whatever the keypoints say.
NORMALISING = VerifyConfig(candidates=2.0, weights=(0.0, 0.0, 0.0, 0.0, -10.0), bias=-1.0, features=NORMALISED_FEATURES,
                           min_inliers=20, veto_keypoints=0, typical_background=0.6)


def unit(n: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, 8)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def brute(queries: np.ndarray, base: np.ndarray, within: bool) -> np.ndarray:
    d = np.linalg.norm(queries[:, None].astype(np.float64) - base[None], axis=2)
    if within:
        np.fill_diagonal(d, np.inf)
    return np.sort(d, axis=1)[:, RANKS[0] - 1 : RANKS[1]].mean(axis=1)


@pytest.mark.parametrize("within", [True, False])
def test_a_rows_background_is_the_mean_distance_to_its_sixth_to_tenth_nearest_others(within):
    base = unit(200, 0)
    queries = base if within else unit(30, 1)
    rows = np.array([0, 3, 7, 29])
    got = backgrounds(base, queries, rows, within=within, typical=9.0)
    np.testing.assert_allclose(got[rows], brute(queries, base, within)[rows], atol=1e-5)
    assert np.isnan(np.delete(got, rows)).all()  # only the rows asked for are searched


def test_a_row_with_too_few_neighbours_gets_the_typical_background_and_a_few_more_the_ones_it_has():
    base = unit(8, 2)
    got = backgrounds(base[:5], base[:5], np.arange(5), within=True, typical=0.7)
    assert np.allclose(got, 0.7)  # four others each: none at rank 6
    got = backgrounds(base, base, np.arange(8), within=True, typical=0.7)
    d = np.sort(np.linalg.norm(base[:, None] - base[None], axis=2) + np.eye(8) * 9, axis=1)
    np.testing.assert_allclose(got, d[:, 5:7].mean(axis=1), atol=1e-5)  # ranks 6 and 7 of seven others


def _copies_of(row: np.ndarray, count: int, spread: float, seed: int) -> np.ndarray:
    x = row + np.random.default_rng(seed).normal(scale=spread, size=(count, row.shape[0])).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_a_picture_stored_many_times_over_takes_its_background_beyond_its_own_copies():
    others = unit(200, 4)
    picture = others[:1]
    copies = _copies_of(picture[0], 12, 0.01, 5)  # the picture at a dozen sizes: all within 0.1 of it
    base = np.vstack([picture, copies, others[1:]])
    threshold = 0.4  # the encoder's: copies closer than OWN_COPIES × 0.4 = 0.2 may be its own
    assert np.linalg.norm(copies - picture, axis=1).max() < OWN_COPIES * threshold
    plain = backgrounds(base, base, np.array([0]), within=True, typical=9.0)[0]
    own = backgrounds(base, base, np.array([0]), within=True, typical=9.0, threshold=threshold)[0]
    beyond = brute(picture, others[1:], within=False)[0]
    assert plain < 0.1 and own == pytest.approx(beyond, abs=1e-5)  # its copies were its background; now the others are
    few = np.vstack([picture, copies[:RANKS[0] - 1], others[1:]])  # fewer copies than rank 6: nothing changes
    assert backgrounds(few, few, np.array([0]), within=True, typical=9.0, threshold=threshold)[0] == pytest.approx(
        backgrounds(few, few, np.array([0]), within=True, typical=9.0)[0])


def test_a_normalising_check_reads_the_distance_against_the_background_and_refuses_to_guess_it():
    d = np.array([0.2, 0.2, 0.6])
    norm = normalised(d, np.array([0.25, 0.6, 0.9]), np.array([0.35, 0.6, 0.9]))
    np.testing.assert_allclose(norm, [-0.1, -0.4, -0.3])
    m = Matches(np.zeros(3, np.int32), np.full(3, 100))
    p = probability(NORMALISING, d, m, norm)
    assert p[1] > p[2] > p[0]  # the same distance counts for more among far neighbours
    with pytest.raises(ValueError):
        probability(NORMALISING, d, m)


def few_agreeing(pairs, pictures, side, count, workers, on_progress=None, regions=None, corner=None, worth=None):
    """A stand-in matcher: every pair has 5 agreeing keypoints of 100."""
    return Matches(np.full(len(pairs), 5, np.int32), np.full(len(pairs), 100, np.int32))


def test_the_same_distance_is_a_duplicate_among_far_neighbours_and_not_among_close_ones():
    """A pair at distance 0.3 with a few agreeing keypoints: accepted where each side's usual
    neighbours are far (a copy stands out), refused where they are as close (a look-alike series)."""
    pair = Pairs(np.array([0]), np.array([1]), np.array([0.3], np.float32))
    policy = CheckedPolicy(NORMALISING, 2.0, 0.5)
    judged = {name: policy.decide(pair, lambda row: b"", background=(np.array(bg), np.array(bg)), match=few_agreeing)
              for name, bg in (("sparse", [0.9, 0.9]), ("crowded", [0.35, 0.35]))}
    assert judged["sparse"].keep.tolist() == [True] and judged["crowded"].keep.tolist() == [False]
    alone = policy.decide(pair, lambda row: b"", match=few_agreeing)  # compared without a catalog: typical background
    assert alone.keep.tolist() == [True]


@pytest.mark.parametrize("across", [False, True])
def test_the_policy_searches_the_background_of_the_rows_it_will_judge_each_against_its_own_index(across):
    base = unit(120, 3)
    queries = unit(10, 4) if across else base
    pairs = Pairs(np.array([1, 2]), np.array([5, 6]), np.array([0.4, 2.5], np.float32))  # the second beyond the candidates
    policy = CheckedPolicy(NORMALISING, 2.0, 0.5)
    first, second = policy.backgrounds(queries, pairs, reference=(lambda: base) if across else None)
    np.testing.assert_allclose(first[1], brute(queries, base, not across)[1], atol=1e-5)
    np.testing.assert_allclose(second[5], brute(base, base, True)[5], atol=1e-5)
    assert np.isnan(first[2]) and np.isnan(second[6])
    raw = replace(NORMALISING, features=NORMALISED_FEATURES[:4], weights=(0.0,) * 4)
    assert CheckedPolicy(raw, 2.0, 0.5).backgrounds(queries, pairs) is None  # an older check needs none


def test_in_a_large_catalog_the_background_is_measured_among_an_even_sample_so_it_does_not_shrink_with_size():
    """Ten times the rows from one distribution: without the sample every row's 6th–10th nearest
    would be far closer; with it the typical background stays where it was."""
    small, large = unit(1000, 5), unit(10_000, 6)
    ids = sample_rows(len(large))
    assert len(ids) == 1024 and ids[0] == 0 and ids[-1] == len(large) - 1 and (np.diff(ids) > 0).all()
    rows = np.arange(0, 10_000, 97)
    got = backgrounds(large, large, rows, within=True, typical=9.0)
    np.testing.assert_allclose(got[rows], _sampled(large, ids, rows), atol=1e-5)
    in_small = np.median(backgrounds(small, small, np.arange(1000), within=True, typical=9.0))
    full = np.median(_sampled(large, np.arange(len(large)), rows))  # among every other row
    assert abs(np.median(got[rows]) - in_small) < 0.02 < in_small - full


def _sampled(catalog: np.ndarray, ids: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Brute force: each row's `RANKS` band among the sample rows other than itself."""
    d = np.linalg.norm(catalog[rows][:, None].astype(np.float64) - catalog[ids][None], axis=2)
    d[rows[:, None] == ids[None]] = np.inf
    return np.sort(d, axis=1)[:, RANKS[0] - 1 : RANKS[1]].mean(axis=1)


def test_a_picture_stored_at_a_dozen_sizes_is_one_set_however_crowded_it_makes_its_neighbourhood(tmp_path):
    """Its own sizes were its background, so each of them looked no closer to it than its usual
    neighbours, and the check broke the set into pieces ([4, 4, 2] of 11)."""
    from fakes import drawing

    from dedup import augment
    from dedup.duplicates import find_duplicates
    from dedup.indexer import index_catalog

    catalog = tmp_path / "catalog"
    catalog.mkdir()
    picture = augment.flatten(drawing(7)).convert("RGB")
    for side in range(96, 257, 16):
        picture.resize((side, side)).save(catalog / f"shop_{side}.jpg", quality=90)
    for seed in range(20):
        augment.flatten(drawing(100 + seed)).convert("RGB").save(catalog / f"other_{seed}.png")
    index_catalog(catalog, tmp_path / "index")
    report = find_duplicates(tmp_path / "index")
    assert [sorted(m.path for m in g.members) for g in report.groups] == [sorted(f"shop_{s}.jpg" for s in range(96, 257, 16))]
