"""Sparse under-threshold pairs → duplicate groups; pure and deterministic.

Linkages:
- ``center`` (default): greedy star clustering. The image with the most close neighbours
  (ties: lower rank) becomes a centre and takes every still-unassigned neighbour; repeat.
  Every member is closer than the threshold to its group's centre, so chains cannot grow.
- ``complete``: pairs are taken closest first, and the sets of a pair's two images merge only
  when every image of one is close to every image of the other: every two members of a group
  are a close pair (group diameter below the threshold). Closest first, an edited copy joins its
  original before a look-alike that is close to both can take either away.
- ``single``: connected components of the pair graph (chains allowed).
"""
from __future__ import annotations

from typing import Literal

import numpy as np

from dedup.errors import UsageError
from dedup.pairs import Pairs, id_dtype

Linkage = Literal["center", "complete", "single"]
LINKAGES: tuple[str, ...] = ("center", "complete", "single")


def group_pairs(n: int, pairs: Pairs, rank: np.ndarray, linkage: Linkage = "center") -> list[np.ndarray]:
    """Partition the images that have at least one close pair into groups of ≥ 2 ids.

    Args:
        n: number of images (ids are 0..n-1).
        pairs: undirected close pairs (i < j) with distances.
        rank: (n,) tie-break order, lower first (e.g. the keep policy's order); must be a
            permutation so that the result does not depend on the order of ids.
        linkage: ``center``, ``complete`` or ``single``.

    Returns:
        Groups as sorted id arrays, in no particular order.
    """
    if linkage == "single":
        return _components(n, pairs)
    if linkage not in LINKAGES:
        raise UsageError(f"unknown linkage {linkage!r}; choose one of {', '.join(LINKAGES)}")
    if linkage == "complete":
        return _closest_first(n, pairs, np.asarray(rank))
    return _centres(n, pairs, np.asarray(rank))


def _csr(n: int, pairs: Pairs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ids = id_dtype(n)
    src = np.concatenate([pairs.i, pairs.j]).astype(ids, copy=False)
    dst = np.concatenate([pairs.j, pairs.i]).astype(ids, copy=False)
    dist = np.concatenate([pairs.d, pairs.d])
    order = np.lexsort((dst, src))
    src, dst, dist = src[order], dst[order], dist[order]
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.add.at(indptr, src + 1, 1)
    return np.cumsum(indptr), dst, dist


def _centres(n: int, pairs: Pairs, rank: np.ndarray) -> list[np.ndarray]:
    indptr, nbr, dist = _csr(n, pairs)
    degree = np.diff(indptr)
    dist_sum = np.bincount(pairs.i, weights=pairs.d, minlength=n) + np.bincount(pairs.j, weights=pairs.d, minlength=n)
    nodes = np.flatnonzero(degree)
    # most neighbours first, then the tightest neighbourhood, then the tie-break rank
    order = nodes[np.lexsort((rank[nodes], dist_sum[nodes], -degree[nodes]))]
    assigned = np.zeros(n, dtype=bool)
    groups: list[np.ndarray] = []
    for c in order.tolist():
        if assigned[c]:
            continue
        lo, hi = indptr[c], indptr[c + 1]
        cand, cd = nbr[lo:hi], dist[lo:hi]
        free = ~assigned[cand]
        cand, cd = cand[free], cd[free]
        if len(cand) == 0:
            continue
        group = np.concatenate([[c], cand]).astype(np.int64)
        assigned[group] = True
        groups.append(np.sort(group))
    return groups


def _closest_first(n: int, pairs: Pairs, rank: np.ndarray) -> list[np.ndarray]:
    """Complete linkage: pairs closest first (ties: by the two images' ranks); the sets of a
    pair's two images merge when every image of one pairs with every image of the other."""
    indptr, nbr, _ = _csr(n, pairs)
    low, high = np.minimum(rank[pairs.i], rank[pairs.j]), np.maximum(rank[pairs.i], rank[pairs.j])
    label = np.arange(n, dtype=np.int64)  # each image's set, named by one of its members
    members: dict[int, list[int]] = {}
    apart: set[tuple[int, int]] = set()  # sets that cannot merge; nor can any set grown from them
    for k in np.lexsort((high, low, pairs.d)).tolist():
        a, b = int(label[pairs.i[k]]), int(label[pairs.j[k]])
        if a == b or (min(a, b), max(a, b)) in apart:
            continue
        ma, mb = members.get(a, [a]), members.get(b, [b])
        if len(ma) < len(mb):
            a, b, ma, mb = b, a, mb, ma
        across = sum(int(np.count_nonzero(label[nbr[indptr[x] : indptr[x + 1]]] == a)) for x in mb)
        if across < len(ma) * len(mb):
            apart.add((min(a, b), max(a, b)))
            continue
        label[mb] = a
        members[a] = ma + mb
        members.pop(b, None)
    return [np.sort(np.array(m, dtype=np.int64)) for m in members.values()]


def _components(n: int, pairs: Pairs) -> list[np.ndarray]:
    """Connected components of at least two ids (`component_labels`)."""
    if len(pairs) == 0:
        return []
    label = component_labels(n, pairs)
    touched = np.unique(np.concatenate([pairs.i, pairs.j]))
    lab = label[touched]
    order = np.argsort(lab, kind="stable")
    lab, ids = lab[order], touched[order]
    cuts = np.flatnonzero(np.diff(lab)) + 1
    return [np.sort(g) for g in np.split(ids, cuts) if len(g) > 1]


def component_labels(n: int, pairs: Pairs) -> np.ndarray:
    """Per id, the smallest id of its connected component in the pair graph (vectorised
    min-label propagation with pointer jumping)."""
    label = np.arange(n, dtype=np.int64)
    i, j = pairs.i, pairs.j
    while True:
        li, lj = label[i], label[j]
        low = np.minimum(li, lj)
        new = label.copy()
        np.minimum.at(new, li, low)
        np.minimum.at(new, lj, low)
        while True:  # pointer jumping: follow labels to their roots
            jumped = new[new]
            if np.array_equal(jumped, new):
                break
            new = jumped
        if np.array_equal(new, label):
            return label
        label = new
