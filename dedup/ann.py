"""Embeddings → a FAISS index chosen by size; save and load it."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from dedup.atomic import atomic_write
from dedup.errors import IndexFormatError
from dedup.manifest import Manifest

FAISS_FILE = "index.faiss"
PROBES = 8  # nearest cells stored per row; benchmarks/scale.py: pair recall 0.994 at 1M rows
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
                      probes: int = PROBES, block: int = 65_536) -> tuple[faiss.Index, np.ndarray | None]:
    """`build_index`, and for an IVF index each row's `probes` nearest cells, its own first
    ((n, probes) int16 or int32; None for a flat index): what `dedup.selfjoin` searches. The
    rows are added to the cells found, so finding them costs nothing beyond the build."""
    x = np.ascontiguousarray(embeddings, dtype=np.float32)
    index = faiss.index_factory(x.shape[1], factory, faiss.METRIC_L2)
    if not index.is_trained:
        rng = np.random.default_rng(seed)
        cap = 64 * index.nlist  # k-means on a sample: enough points per centroid, bounded time
        sample = x if len(x) <= cap else x[np.sort(rng.choice(len(x), cap, replace=False))]
        index.cp.seed = seed
        index.cp.niter = 10
        index.train(sample)
    if not isinstance(index, faiss.IndexIVF):
        index.add(x)
        apply_params(index, params)
        return index, None
    cells = np.empty((len(x), min(probes, index.nlist)), dtype=np.int16 if index.nlist <= np.iinfo(np.int16).max else np.int32)
    for s in range(0, len(x), block):
        part = x[s : s + block]
        _, near = index.quantizer.search(part, cells.shape[1])
        own = np.ascontiguousarray(near[:, 0], dtype=np.int64)
        ids = np.arange(s, s + len(part), dtype=np.int64)  # held: FAISS reads it through a raw pointer
        index.add_core(len(part), faiss.swig_ptr(part), faiss.swig_ptr(ids), faiss.swig_ptr(own))
        cells[s : s + len(part)] = near
    apply_params(index, params)
    return index, cells


def apply_params(index: faiss.Index, params: dict[str, Any]) -> None:
    """Set search-time parameters (e.g. nprobe) recorded in the manifest."""
    if "nprobe" in params:
        faiss.extract_index_ivf(index).nprobe = int(params["nprobe"])


def save_index(index: faiss.Index, folder: Path, name: str = FAISS_FILE) -> None:
    """Write the FAISS index atomically."""
    atomic_write(folder / name, lambda tmp: faiss.write_index(index, str(tmp)))


def save_cells(cells: np.ndarray, folder: Path, name: str) -> None:
    """Write each row's nearest cells (`build_index_cells`) atomically, as a .npy file."""
    atomic_write(folder / name, lambda tmp: _save_npy(tmp, cells))


def load_cells(folder: Path, manifest: Manifest) -> np.ndarray | None:
    """The rows' nearest cells named by the manifest, memory-mapped; None when it names none."""
    if not manifest.faiss.cells:
        return None
    path = folder / manifest.faiss.cells
    try:
        cells = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise IndexFormatError(f"cell file {str(path)!r} is unreadable ({exc}); rebuild with `dedup index`") from None
    if cells.ndim != 2 or len(cells) != manifest.count or cells.dtype.kind != "i":
        raise IndexFormatError(f"cell file {str(path)!r} does not match its manifest; rebuild with `dedup index`")
    return cells


def load_centroids(folder: Path, manifest: Manifest) -> np.ndarray | None:
    """The IVF centroids of the index's FAISS file (its lists are mapped, not read); None for a flat one."""
    index = faiss.read_index(str(folder / manifest.faiss.file), faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY)
    if not isinstance(index, faiss.IndexIVF):
        return None
    return index.quantizer.reconstruct_n(0, index.nlist).astype(np.float32)


def _save_npy(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as f:
        np.save(f, array, allow_pickle=False)


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
