"""Embeddings → a FAISS index chosen by size; save and load it."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable

import faiss
import numpy as np

from dedup.atomic import atomic_write
from dedup.errors import IndexFormatError
from dedup.manifest import Manifest
from dedup.selfjoin import Probes

FAISS_FILE = "index.faiss"
PROBES = 8  # nearest cells every row probes; benchmarks/scale.py: pair recall 0.994 at 1M uniform rows
# A row nearer than CROWDED to its own centroid sits where centroids crowd (k-means puts them where
# rows do), and its neighbourhood spans many small cells. Such a row probes its own cell and every
# cell (of its MOST_PROBES nearest) whose border with its own lies within REACH of it: the cell's
# rows are all beyond that border, so it bounds how near they can be. Farther out, as in evenly
# spread vectors, all cells are about as far and the nearest PROBES suffice. On embeddings crowded
# like real ones at 10M rows, 8 probes found 0.61 of the pairs within 0.4 and this rule 0.99 with
# 11 probes per row (benchmarks/RESULTS.md, "Probing by the border").
REACH = 0.115
CROWDED = 0.75
MOST_PROBES = 128
CANDIDATE_BLOCK = 262_144  # centroid distances computed at once
FLAT_LIMIT = 20_000  # exact search up to this many rows (all-pairs range search ~1 s); IVF beyond


def choose_factory(n: int) -> tuple[str, dict[str, Any]]:
    """FAISS factory string and search parameters for an index of `n` rows."""
    if n <= FLAT_LIMIT:
        return "Flat", {}
    # measured on planted near-duplicates (benchmarks/scale.py): at 1M rows, IVF4096 with
    # nprobe 8 found 0.976 of the exact pairs, nprobe 16 all of them (cost ~ n · nprobe / nlist)
    nlist = min(16384, max(256, int(2 ** round(math.log2(4 * math.sqrt(n))))))
    return f"IVF{nlist},Flat", {"nprobe": 16}


def build_index(embeddings: np.ndarray, factory: str, params: dict[str, Any], seed: int = 0) -> faiss.Index:
    """Build a FAISS L2 index over (n, dim) float32 rows (row i has id i)."""
    return build_index_cells(embeddings, factory, params, seed)[0]


def build_index_cells(embeddings: np.ndarray, factory: str, params: dict[str, Any], seed: int = 0,
                      probes: int = PROBES, reach: float = REACH, crowded: float = CROWDED, most: int = MOST_PROBES,
                      block: int = 65_536) -> tuple[faiss.Index, Probes | None]:
    """`build_index`, and for an IVF index the cells each row probes (`dedup.selfjoin.Probes`;
    None for a flat index; rule: `cell_probes`). The rows are added to the cells found, so
    finding them costs little beyond the build."""
    x = np.ascontiguousarray(embeddings, dtype=np.float32)
    index = faiss.index_factory(x.shape[1], factory, faiss.METRIC_L2)
    if not index.is_trained:
        rng = np.random.default_rng(seed)
        cap = 64 * index.nlist  # k-means on a sample: enough points per centroid, bounded time
        sample = x if len(x) <= cap else x[np.sort(rng.choice(len(x), cap, replace=False))]
        index.cp.seed = seed
        index.cp.niter = 10
        index.cp.min_points_per_centroid = 1  # fewer than FAISS's 39 a centroid only makes it print a warning
        index.train(sample)
    if not isinstance(index, faiss.IndexIVF):
        index.add(x)
        apply_params(index, params)
        return index, None

    def add(s: int, part: np.ndarray, own: np.ndarray) -> None:
        ids = np.arange(s, s + len(part), dtype=np.int64)  # held: FAISS reads it through a raw pointer
        index.add_core(len(part), faiss.swig_ptr(part), faiss.swig_ptr(ids), faiss.swig_ptr(own))

    found = cell_probes(index.quantizer, x, probes, reach, crowded, most, block, on_block=add)
    apply_params(index, params)
    return index, found


def cell_probes(quantizer: faiss.Index, x: np.ndarray, probes: int = PROBES, reach: float = REACH,
                crowded: float = CROWDED, most: int = MOST_PROBES, block: int = 65_536,
                on_block: Callable[[int, np.ndarray, np.ndarray], None] | None = None) -> Probes:
    """The cells each of `x`'s rows probes under the IVF `quantizer`, `block` rows at a time;
    `on_block(start, rows, own cells)` sees each block. A row probes its `probes` nearest cells;
    a row nearer than `crowded` to its own centroid instead probes its own cell and every one of
    its `most` nearest cells whose border with its own (the hyperplane halfway between their
    centroids) is nearer than `reach` to it: the first `probes` in `near` (padded with -1), the
    rest in `more`."""
    nlist = quantizer.ntotal
    dtype = np.int16 if nlist <= np.iinfo(np.int16).max else np.int32
    p, k = min(probes, nlist), min(max(most, probes), nlist)
    separation = CentroidSeparation(quantizer.reconstruct_n(0, nlist), k)
    near = np.empty((len(x), p), dtype=dtype)
    counts, more = np.zeros(len(x), np.int64), []
    all_k = False  # most rows of the last block needed k cells: this one searches k for all
    for s in range(0, len(x), block):
        part = np.ascontiguousarray(x[s : s + block], dtype=np.float32)
        d2, nearest = quantizer.search(part, k if all_k else p)
        found = nearest[:, :p].copy()
        crowd = np.flatnonzero(d2[:, 0] < crowded * crowded)
        d = np.sqrt(np.maximum(d2[crowd][:, :p], 0.0))
        wide = d[:, -1] - d[:, 0] < 2 * reach  # a cell beyond the p nearest may be within reach
        all_k = k > p and int(wide.sum()) > len(part) // 2
        if len(crowd):
            d2c, cells = d2[crowd], nearest[crowd]
            if d2c.shape[1] < k:
                d2c, cells = _widened(quantizer, part[crowd], d2c, cells, k, np.flatnonzero(wide))
            kept = _within_reach(separation, d2c, cells, reach)
            rank = np.cumsum(kept, axis=1) - 1
            first = np.full((len(crowd), p), -1, dtype=np.int64)
            r, c = np.nonzero(kept & (rank < p))
            first[r, rank[r, c]] = cells[r, c]
            found[crowd] = first
            later = kept & (rank >= p)
            counts[s + crowd] = later.sum(axis=1)
            more.append(cells[later].astype(dtype))
        if on_block is not None:
            on_block(s, part, np.ascontiguousarray(found[:, 0], dtype=np.int64))
        near[s : s + len(part)] = found
    start = np.zeros(len(x) + 1, np.int64)
    np.cumsum(counts, out=start[1:])
    return Probes(near, start, np.concatenate(more) if more else np.empty(0, dtype))


def _widened(quantizer: faiss.Index, x: np.ndarray, d2: np.ndarray, cells: np.ndarray, k: int,
             rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows' nearest cells `cells` at squared distances `d2`, widened to their `k` nearest for
    `rows`; the other rows' further columns stay empty (-1, infinitely far), as none of those
    cells can be within reach. A search for few cells is much faster where all centroids are
    about as near, so only these rows pay for `k`."""
    p = d2.shape[1]
    wide_d2 = np.full((len(x), k), np.inf, dtype=np.float32)
    wide = np.full((len(x), k), -1, dtype=np.int64)
    wide_d2[:, :p], wide[:, :p] = d2, cells
    if len(rows):
        wide_d2[rows], wide[rows] = quantizer.search(np.ascontiguousarray(x[rows]), k)
    return wide_d2, wide


def _within_reach(separation: CentroidSeparation, d2: np.ndarray, cells: np.ndarray, reach: float) -> np.ndarray:
    """(m, k) bool: for rows whose nearest cells are `cells` at squared distances `d2`, which
    cells' borders with the row's own (column 0, always kept) are nearer than `reach`. The
    border of cell b lies (d_b² − d_own²) / (2 |c_b − c_own|) from the row; as that is at least
    (d_b − d_own) / 2, only cells within 2·reach of the own distance are measured."""
    d = np.sqrt(np.maximum(d2, 0.0))
    kept = np.zeros(d.shape, dtype=bool)
    kept[:, 0] = True
    r, c = np.nonzero(d[:, 1:] - d[:, :1] < 2 * reach)  # never an empty column
    c += 1
    sep = separation(cells[r, 0], cells[r, c])
    border = (d2[r, c] - d2[r, 0]) / (2 * np.maximum(sep, 1e-12))
    kept[r[border < reach], c[border < reach]] = True
    return kept


class CentroidSeparation:
    """Distances between IVF centroids: each one's `near` nearest looked up in a table, any
    other pair computed."""

    def __init__(self, centroids: np.ndarray, near: int):
        self.centroids = np.ascontiguousarray(centroids, dtype=np.float32)
        n = len(self.centroids)
        flat = faiss.IndexFlatL2(self.centroids.shape[1])
        flat.add(self.centroids)
        d2, found = flat.search(self.centroids, min(near, n))
        keys = np.arange(n, dtype=np.int64)[:, None] * n + found
        order = np.argsort(keys, axis=None)
        self.keys = keys.ravel()[order]
        self.dist = np.sqrt(np.maximum(d2.ravel()[order], 0.0))

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """|c_a − c_b| for each pair of cells `a[k]`, `b[k]`."""
        keys = a.astype(np.int64) * len(self.centroids) + b
        order = np.argsort(keys)  # sorted needles: the table is walked in order, 4x faster
        at = np.empty(len(keys), dtype=np.int64)
        at[order] = np.minimum(np.searchsorted(self.keys, keys[order]), len(self.keys) - 1)
        del order
        out = self.dist[at]
        missing = np.flatnonzero(self.keys[at] != keys)
        for s in range(0, len(missing), CANDIDATE_BLOCK):
            m = missing[s : s + CANDIDATE_BLOCK]
            out[m] = np.linalg.norm(self.centroids[a[m]] - self.centroids[b[m]], axis=1)
        return out


def apply_params(index: faiss.Index, params: dict[str, Any]) -> None:
    """Set search-time parameters (e.g. nprobe) recorded in the manifest."""
    if "nprobe" in params:
        faiss.extract_index_ivf(index).nprobe = int(params["nprobe"])


def save_index(index: faiss.Index, folder: Path, name: str = FAISS_FILE) -> None:
    """Write the FAISS index atomically."""
    atomic_write(folder / name, lambda tmp: faiss.write_index(index, str(tmp)))


def save_cells(probes: Probes, folder: Path, name: str) -> None:
    """Write the cells each row probes (`build_index_cells`) atomically, as a .npz file."""
    start = probes.start if probes.start is not None else np.zeros(len(probes) + 1, np.int64)
    more = probes.more if probes.more is not None else np.empty(0, probes.near.dtype)
    atomic_write(folder / name, lambda tmp: _save_npz(tmp, near=probes.near, start=start, more=more))


def load_cells(folder: Path, manifest: Manifest) -> Probes | None:
    """The cells each row probes, named by the manifest (a .npz file; or a .npy file of the
    nearest cells alone, memory-mapped, as older indexes stored them); None when it names none."""
    if not manifest.faiss.cells:
        return None
    path = folder / manifest.faiss.cells
    try:
        if path.suffix == ".npy":
            probes = Probes(np.load(path, mmap_mode="r", allow_pickle=False))
        else:
            with np.load(path, allow_pickle=False) as f:
                probes = Probes(f["near"], f["start"], f["more"])
    except (OSError, ValueError, KeyError) as exc:
        raise IndexFormatError(f"cell file {str(path)!r} is unreadable ({exc}); rebuild with `dedup index`") from None
    near, start = probes.near, probes.start
    if (near.ndim != 2 or len(near) != manifest.count or near.dtype.kind != "i"
            or (start is not None and (len(start) != len(near) + 1 or int(start[-1]) != probes.extra))):
        raise IndexFormatError(f"cell file {str(path)!r} does not match its manifest; rebuild with `dedup index`")
    return probes


def load_centroids(folder: Path, manifest: Manifest) -> np.ndarray | None:
    """The IVF centroids of the index's FAISS file (its lists are mapped, not read); None for a flat one."""
    index = faiss.read_index(str(folder / manifest.faiss.file), faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY)
    if not isinstance(index, faiss.IndexIVF):
        return None
    return index.quantizer.reconstruct_n(0, index.nlist).astype(np.float32)


def _save_npz(path: Path, **arrays: np.ndarray) -> None:
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def load_index(folder: Path, manifest: Manifest) -> faiss.Index:
    """Load the FAISS index named by the manifest and check it against it."""
    path = folder / manifest.faiss.file
    try:
        index = faiss.read_index(str(path))
    except RuntimeError as exc:
        raise IndexFormatError(f"FAISS index {str(path)!r} is unreadable ({exc}); rebuild with `dedup index`") from None
    if index.ntotal != manifest.count or index.d != manifest.dim:
        raise IndexFormatError(f"FAISS index {str(path)!r} does not match its manifest; rebuild with `dedup index`")
    apply_params(index, manifest.faiss.params)
    return index
