"""Range and k-nearest-neighbour queries against a FAISS index → pair arrays; pure."""
from __future__ import annotations

from typing import Callable

import faiss
import numpy as np

from dedup.config import check_threshold
from dedup.errors import UsageError
from dedup.pairs import Pairs, sorted_pairs
from dedup.selfjoin import Probes, Runner, self_pairs


def range_pairs(
    index: faiss.Index | Callable[[], faiss.Index],
    embeddings: np.ndarray,
    threshold: float,
    block: int = 8192,
    on_progress: Callable[[int, int], None] | None = None,
    cells: Probes | np.ndarray | None = None,
    runner: Runner | None = None,
) -> Pairs:
    """All pairs of indexed rows closer than `threshold`.

    `embeddings` are the indexed rows themselves, row i having id i. With `cells` (each row's
    nearest IVF cells) the search runs cell by cell without the FAISS index (`dedup.selfjoin`;
    its tasks run by `runner`, by default on one thread per usable CPU, `dedup.cpus`); otherwise
    in query blocks against `index` (or the index that function returns). Memory grows with the
    number of pairs found, not with n².
    """
    threshold = check_threshold(threshold)
    if cells is not None:
        return self_pairs(embeddings, cells, threshold, runner=runner, on_progress=on_progress)
    index = loaded(index)
    n = len(embeddings)
    radius = threshold * threshold  # FAISS L2 works in squared distances
    parts_i, parts_j, parts_d = [], [], []
    for start in range(0, n, block):
        q = np.ascontiguousarray(embeddings[start : start + block], dtype=np.float32)
        lims, dist, ids = index.range_search(q, radius)
        rows = np.repeat(np.arange(start, start + len(q), dtype=np.int64), np.diff(lims).astype(np.int64))
        ids = ids.astype(np.int64)
        keep = ids != rows  # no self-pairs; an approximate index may find a pair from one side only
        parts_i.append(np.minimum(rows, ids)[keep])
        parts_j.append(np.maximum(rows, ids)[keep])
        parts_d.append(np.sqrt(np.maximum(dist[keep], 0.0)).astype(np.float32))
        if on_progress:
            on_progress(min(start + block, n), n)
    return sorted_pairs(parts_i, parts_j, parts_d, unique=True)


def knn_pairs(
    index: faiss.Index,
    embeddings: np.ndarray,
    k: int,
    threshold: float,
    block: int = 8192,
) -> Pairs:
    """Pairs of each indexed row with its `k` nearest other rows, where closer than `threshold`.

    At most n·k pairs however dense the catalog, unlike `range_pairs` (row i has id i)."""
    near = cross_knn_pairs(index, embeddings, k + 1, threshold, block)  # a row is usually its own nearest
    keep = near.i != near.j
    return sorted_pairs([np.minimum(near.i, near.j)[keep]], [np.maximum(near.i, near.j)[keep]], [near.d[keep]],
                         unique=True)


def cross_knn_pairs(index: faiss.Index, queries: np.ndarray, k: int, threshold: float, block: int = 8192) -> Pairs:
    """Pairs (query row i, indexed row j) of each query's `k` nearest indexed rows closer than
    `threshold`; i and j index different sets."""
    threshold = check_threshold(threshold)
    parts_i, parts_j, parts_d = [], [], []
    for start in range(0, len(queries), block):
        dist, ids = knn(index, queries[start : start + block], k)
        rows = np.repeat(np.arange(start, start + len(dist), dtype=np.int64), dist.shape[1])
        dist, ids = dist.ravel(), ids.ravel()
        keep = (ids >= 0) & (dist < threshold)
        parts_i.append(rows[keep])
        parts_j.append(ids[keep].astype(np.int64))
        parts_d.append(dist[keep])
    return sorted_pairs(parts_i, parts_j, parts_d)


def cross_range_pairs(index: faiss.Index, queries: np.ndarray, threshold: float, block: int = 8192) -> Pairs:
    """Pairs (query row i, indexed row j) closer than `threshold`; i and j index different sets."""
    threshold = check_threshold(threshold)
    parts_i, parts_j, parts_d = [], [], []
    for start in range(0, len(queries), block):
        q = np.ascontiguousarray(queries[start : start + block], dtype=np.float32)
        lims, dist, ids = index.range_search(q, threshold * threshold)
        parts_i.append(np.repeat(np.arange(start, start + len(q), dtype=np.int64), np.diff(lims).astype(np.int64)))
        parts_j.append(ids.astype(np.int64))
        parts_d.append(np.sqrt(np.maximum(dist, 0.0)).astype(np.float32))
    return sorted_pairs(parts_i, parts_j, parts_d)


def loaded(index):
    """A FAISS index, from itself or from the function that loads it."""
    return index() if callable(index) else index


def knn(index: faiss.Index, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """k nearest indexed rows per query: (distances (q, k) float32, ids (q, k) int64; -1 = none)."""
    if k < 1:
        raise UsageError(f"the number of neighbours must be at least 1, got {k}", option="k")
    k = min(k, index.ntotal) or 1
    d2, ids = index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
    dist = np.sqrt(np.maximum(d2, 0.0)).astype(np.float32)
    dist[ids < 0] = np.inf
    return dist, ids
