"""How far a row's usual neighbours are: its background distance (FAISS search, numpy).

A pair's distance judged against the background of its two rows (score normalisation against
background neighbours, as in the ISC21 copy-detection challenge) means the same in a catalog of
look-alikes, where every picture has close neighbours, and in a sparse one: a copy stands out from
its row's usual neighbours however crowded the neighbourhood."""
from __future__ import annotations

import numpy as np

from dedup.search import knn, loaded

RANKS = (6, 10)  # neighbour ranks (1 = nearest other row) whose mean distance is a row's background


def backgrounds(index, queries: np.ndarray, rows: np.ndarray, *, within: bool, typical: float) -> np.ndarray:
    """(len(queries),) float32: for the queries `rows`, the mean distance to their `RANKS`
    nearest rows of `index` (a FAISS index, or a function returning it); NaN for other rows.
    `within`: the queries are the indexed rows themselves (row k has id k), so a row is not its
    own neighbour. A row with fewer neighbours than `RANKS[0]` gets `typical`."""
    out = np.full(len(queries), np.nan, np.float32)
    rows = np.asarray(rows, np.int64)
    if len(rows) == 0:
        return out
    dist, ids = knn(loaded(index), queries[rows], RANKS[1] + int(within))
    if within:
        mine = ids == rows[:, None]
        drop = np.where(mine.any(axis=1), mine.argmax(axis=1), dist.shape[1] - 1)  # itself, else the farthest
        keep = np.ones(dist.shape, bool)
        keep[np.arange(len(rows)), drop] = False
        dist = dist[keep].reshape(len(rows), -1)
    band = dist[:, RANKS[0] - 1 : RANKS[1]]
    found = np.isfinite(band)
    count = found.sum(axis=1)
    total = np.where(found, band, 0.0).sum(axis=1)
    out[rows] = np.where(count > 0, total / np.maximum(count, 1), typical)
    return out


def normalised(d: np.ndarray, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Pair distances `d` less the mean background distance of their two rows (`first`, `second`)."""
    return np.asarray(d, np.float64) - (np.asarray(first, np.float64) + np.asarray(second, np.float64)) / 2
