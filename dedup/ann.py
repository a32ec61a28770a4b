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
    x = np.ascontiguousarray(embeddings, dtype=np.float32)
    index = faiss.index_factory(x.shape[1], factory, faiss.METRIC_L2)
    if not index.is_trained:
        rng = np.random.default_rng(seed)
        cap = 64 * index.nlist  # k-means on a sample: enough points per centroid, bounded time
        sample = x if len(x) <= cap else x[np.sort(rng.choice(len(x), cap, replace=False))]
        index.cp.seed = seed
        index.cp.niter = 10
        index.train(sample)
    index.add(x)
    apply_params(index, params)
    return index


def apply_params(index: faiss.Index, params: dict[str, Any]) -> None:
    """Set search-time parameters (e.g. nprobe) recorded in the manifest."""
    if "nprobe" in params:
        faiss.extract_index_ivf(index).nprobe = int(params["nprobe"])


def save_index(index: faiss.Index, folder: Path, name: str = FAISS_FILE) -> None:
    """Write the FAISS index atomically."""
    atomic_write(folder / name, lambda tmp: faiss.write_index(index, str(tmp)))


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
