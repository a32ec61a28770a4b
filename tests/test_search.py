"""Fast paths (FAISS range search, blocks, IVF) checked against brute-force numpy."""
from __future__ import annotations

import numpy as np
import pytest

from dedup.ann import build_index, choose_factory
from dedup.config import check_threshold
from dedup.errors import UsageError
from dedup.pairs import union_pairs
from dedup.search import cross_range_pairs, knn, knn_pairs, range_pairs


def unit_vectors(n: int, dim: int = 16, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def brute_pairs(x: np.ndarray, t: float) -> set[tuple[int, int]]:
    d = np.sqrt(np.maximum(((x[:, None] - x[None]) ** 2).sum(-1), 0))
    i, j = np.nonzero(np.triu(d < t, 1))
    return set(zip(i.tolist(), j.tolist()))


@pytest.mark.parametrize("block", [7, 100, 8192])
def test_range_pairs_equal_brute_force(block):
    x = unit_vectors(300, dim=8)
    index = build_index(x, "Flat", {})
    for t in (0.3, 0.6, 1.0):
        pairs = range_pairs(index, x, t, block=block)
        assert set(zip(pairs.i.tolist(), pairs.j.tolist())) == brute_pairs(x, t)
        assert np.all(pairs.i < pairs.j)
        expected = np.linalg.norm(x[pairs.i] - x[pairs.j], axis=1)
        np.testing.assert_allclose(pairs.d, expected, atol=1e-4)


def test_ivf_range_search_recall_against_exact():
    rng = np.random.default_rng(1)
    centers = unit_vectors(2000, dim=16, seed=2)
    near = centers + rng.normal(scale=0.03, size=centers.shape).astype(np.float32)
    x = np.concatenate([centers, near / np.linalg.norm(near, axis=1, keepdims=True)])
    exact = brute_pairs(x, 0.4)
    index = build_index(x, "IVF64,Flat", {"nprobe": 8})
    found = range_pairs(index, x, 0.4)
    got = set(zip(found.i.tolist(), found.j.tolist()))
    assert got <= exact
    assert len(got & exact) / len(exact) >= 0.99


def test_an_ivf_index_trained_on_few_rows_a_centroid_prints_nothing(capfd):
    x = unit_vectors(1000, dim=16, seed=3)  # 15 a centroid: FAISS would warn that it wants 39
    index = build_index(x, "IVF64,Flat", {"nprobe": 8})
    assert index.ntotal == 1000 and "WARNING" not in capfd.readouterr().err


def test_knn_equals_brute_force():
    x, q = unit_vectors(200, seed=3), unit_vectors(5, seed=4)
    dist, ids = knn(build_index(x, "Flat", {}), q, 4)
    d = np.linalg.norm(q[:, None] - x[None], axis=-1)
    np.testing.assert_array_equal(ids, np.argsort(d, axis=1)[:, :4])
    np.testing.assert_allclose(dist, np.sort(d, axis=1)[:, :4], atol=1e-4)


def test_cross_pairs_equal_brute_force():
    x, q = unit_vectors(150, dim=6, seed=5), unit_vectors(40, dim=6, seed=6)
    pairs = cross_range_pairs(build_index(x, "Flat", {}), q, 0.7)
    d = np.linalg.norm(q[:, None] - x[None], axis=-1)
    assert set(zip(pairs.i.tolist(), pairs.j.tolist())) == set(zip(*[a.tolist() for a in np.nonzero(d < 0.7)]))


def test_factory_by_size():
    assert choose_factory(1000)[0] == "Flat"
    factory, params = choose_factory(1_000_000)
    assert factory.startswith("IVF") and params["nprobe"] >= 8


@pytest.mark.parametrize("t", [0, -1, 2.5, float("nan")])
def test_bad_threshold(t):
    with pytest.raises(UsageError):
        check_threshold(t)


@pytest.mark.parametrize("block", [7, 8192])
def test_knn_pairs_equal_brute_force_nearest_under_the_threshold(block):
    x = unit_vectors(200, dim=4, seed=5)  # dense: many neighbours under 1.0
    d = np.sqrt(np.maximum(((x[:, None] - x[None]) ** 2).sum(-1), 0))
    np.fill_diagonal(d, np.inf)
    k, t = 5, 1.0
    expected = set()
    for r in range(len(x)):
        for c in np.argsort(d[r], kind="stable")[:k]:
            if d[r, c] < t:
                expected.add((min(r, int(c)), max(r, int(c))))
    pairs = knn_pairs(build_index(x, "Flat", {}), x, k, t, block=block)
    got = set(zip(pairs.i.tolist(), pairs.j.tolist()))
    assert len(got) == len(pairs) <= len(x) * k
    assert len(got ^ expected) <= 2  # ties at the k-th neighbour may go either way
    np.testing.assert_allclose(pairs.d, d[pairs.i, pairs.j], atol=1e-4)
    assert len(brute_pairs(x, t)) > 3 * len(got)  # the cap matters here


def test_union_pairs_keeps_each_pair_once_in_order():
    x = unit_vectors(100, dim=4, seed=6)
    index = build_index(x, "Flat", {})
    a, b = range_pairs(index, x, 0.5), knn_pairs(index, x, 3, 0.9)
    u = union_pairs(a, b)
    assert set(zip(u.i.tolist(), u.j.tolist())) == set(zip(a.i.tolist(), a.j.tolist())) | set(zip(b.i.tolist(), b.j.tolist()))
    assert len(set(zip(u.i.tolist(), u.j.tolist()))) == len(u)
    assert np.all(np.diff(u.i * len(x) + u.j) > 0)
