"""Duplicate sets described all at once: keeper, member order, distances, diameter, exactness."""
from __future__ import annotations

import numpy as np

from dedup.describe import describe_groups, diameter
from dedup.store import Rows


def one_by_one(ids, vectors, rows, rank):
    """The plain per-set description the batched one must equal."""
    keeper = ids[int(np.argmin(rank[ids]))]
    emb = vectors[ids].astype(np.float64)
    to_keeper = np.sqrt(((emb - vectors[keeper].astype(np.float64)) ** 2).sum(axis=1))
    order = sorted(range(len(ids)), key=lambda k: (ids[k] != keeper, to_keeper[k], rows.path[ids[k]]))
    hashes = rows.content_hash[ids]
    return (rows.path[keeper], diameter(emb), bool(np.all(hashes == hashes[0])),
            [(rows.path[ids[k]], round(float(to_keeper[k]), 6)) for k in order])


def test_sets_of_every_size_are_described_as_one_by_one(monkeypatch):
    rng = np.random.default_rng(0)
    n = 3000
    vectors = rng.normal(size=(n, 16)).astype(np.float32)
    vectors[10:13] = vectors[10]  # equal distances: the path decides
    paths = np.array([f"p/{k:05d}.jpg" for k in rng.permutation(n)], dtype=object)
    hashes = np.array([f"{k % 7:032x}" if k < 40 else f"{k:032x}" for k in range(n)], dtype=object)
    rows = Rows(paths, np.full(n, 1), np.zeros(n, np.int64), hashes, np.full(n, 10, np.int32), np.full(n, 10, np.int32))
    rank = rng.permutation(n)
    sizes = [2] * 300 + [3] * 100 + [5] * 20 + [16, 17, 40]
    perm = rng.permutation(n)
    groups, at = [np.array([7, 14, 21, 28]), np.array([10, 11, 12])], 0
    perm = perm[~np.isin(perm, [7, 14, 21, 28, 10, 11, 12])]
    for size in sizes:
        groups.append(np.sort(perm[at : at + size]))
        at += size
    monkeypatch.setattr("dedup.describe.GROUP_BLOCK", 100)  # several blocks of sets
    described = describe_groups(groups, vectors, rows, rank)
    assert len(described) == len(groups)
    assert described[0].exact and not described[2].exact  # rows 7, 14, 21, 28 share their bytes
    for ids, got in zip(groups, described):
        keep, width, exact, members = one_by_one(ids, vectors, rows, rank)
        assert got.keep == keep and got.exact == exact
        assert [(m.path, m.distance) for m in got.members] == members
        assert abs(got.max_distance - round(width, 6)) <= 2e-6
    assert describe_groups([], vectors, rows, rank) == []
