"""Undirected pairs of rows with their distances (`Pairs`), and how pair lists combine; numpy only."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Pairs:
    """Pairs (i, j) with Euclidean distances, sorted by (i, j). Within one set of rows i < j;
    across two sets (queries against an index) i is a query row and j an indexed row."""

    i: np.ndarray  # (m,) int64
    j: np.ndarray  # (m,) int64
    d: np.ndarray  # (m,) float32

    def __len__(self) -> int:
        return len(self.i)

    def __getitem__(self, sel) -> Pairs:
        """The pairs selected by a boolean mask or an index array (order kept)."""
        return Pairs(self.i[sel], self.j[sel], self.d[sel])

    @classmethod
    def empty(cls) -> Pairs:
        return cls(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float32))


def id_dtype(n: int) -> type:
    """The smallest integer type that holds row ids below `n`: int32 halves the memory of
    millions of pairs held while they are searched or grouped."""
    return np.int32 if n < np.iinfo(np.int32).max else np.int64


def sorted_pairs(parts_i: list, parts_j: list, parts_d: list, unique: bool = False) -> Pairs:
    """Concatenate pair parts and sort them by (i, j); with `unique`, each pair once."""
    if not parts_i:
        return Pairs.empty()
    i, j, d = (p[0] if len(p) == 1 else np.concatenate(p) for p in (parts_i, parts_j, parts_d))
    order = np.lexsort((j, i))
    i, j, d = i[order].astype(np.int64), j[order].astype(np.int64), d[order].astype(np.float32)
    if unique and len(i):
        first = np.ones(len(i), dtype=bool)
        first[1:] = (i[1:] != i[:-1]) | (j[1:] != j[:-1])
        i, j, d = i[first], j[first], d[first]
    return Pairs(i, j, d)


def rows_of(pairs: Pairs, n: int) -> np.ndarray:
    """The rows (below `n`) of any pair, sorted, each once."""
    seen = np.zeros(n, dtype=bool)
    seen[pairs.i] = True
    seen[pairs.j] = True
    return np.flatnonzero(seen)


def among(pairs: Pairs, known: Pairs) -> np.ndarray:
    """Per pair of `pairs` (in any order), whether `known` (sorted by (i, j)) holds it."""
    return locate(pairs.i, pairs.j, known.i, known.j)[0]


def locate(i: np.ndarray, j: np.ndarray, known_i: np.ndarray, known_j: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per pair (i[k], j[k]): whether the pairs (`known_i`, `known_j`), sorted by (i, j), hold it,
    and where (meaningful where held)."""
    i, j = np.asarray(i, np.int64), np.asarray(j, np.int64)
    if not len(known_i) or not len(i):
        return np.zeros(len(i), bool), np.zeros(len(i), np.int64)
    width = np.int64(max(int(j.max()), int(known_j.max())) + 1)
    keys, have = i * width + j, np.asarray(known_i, np.int64) * width + known_j
    at = np.minimum(np.searchsorted(have, keys), len(have) - 1)
    return have[at] == keys, at


def union_pairs(a: Pairs, b: Pairs) -> Pairs:
    """Pairs in `a` or `b`, each once, sorted by (i, j)."""
    return sorted_pairs([a.i, b.i], [a.j, b.j], [a.d, b.d], unique=True)


def nearest_ranks(pairs: Pairs, within: bool = True) -> np.ndarray:
    """Per pair, how near each of its two pictures comes among the other's pairs, the nearer of the
    two ranks (0: one is the other's nearest). `within`: both sides are rows of one set; otherwise
    i and j number two sets, ranked apart."""
    m = len(pairs)
    side_j = pairs.j.astype(np.int64) if within else pairs.j.astype(np.int64) + int(pairs.i.max(initial=-1)) + 1
    rows = np.concatenate([pairs.i.astype(np.int64), side_j])
    order = np.lexsort((np.concatenate([pairs.d, pairs.d]), rows))
    held = rows[order]
    rank = np.empty(2 * m, np.int64)
    rank[order] = np.arange(2 * m) - np.searchsorted(held, held)
    return np.minimum(rank[:m], rank[m:])
