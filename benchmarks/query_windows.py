"""What `query --verify` pays to look through the catalog's windows, at catalog sizes beyond the
test catalogs: reading the windows find-duplicates kept, and searching them, against searching
the catalog's own vectors in the same run.

    python -m benchmarks.query_windows [--pictures 200000 1000000] [--queries 1 16 300]

For each size, writes a pair-check memo holding five random unit vectors a picture, as
find-duplicates keeps them (`dedup.checkmemo.PairChecks.parts`, blocks of
`dedup.windows.BLOCK_ROWS` pictures), then times `dedup.query.catalog_windows` (the windows read
a slot and a block at a time into the half-precision index) with its numpy heap peak, and the
nearest windows' rows (`dedup.windows.owners_near`) for each count of queries, against the k
nearest pictures in a flat index of the pictures' own vectors (the search every query makes).
"""
from __future__ import annotations

import argparse
import tempfile
import time
import tracemalloc
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from dedup import checkmemo
from dedup.ann import build_index
from dedup.config import Framing
from dedup.query import catalog_windows
from dedup.search import knn
from dedup.windows import BLOCK_ROWS, KIND, REACH, WINDOWS, owners_near

DIM, MODEL, SIZE = 64, "benchmark", 64


class _Claim:
    def own(self, _name: str) -> None:
        """The memo folder here is not an index's: nothing to claim."""


def unit(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.standard_normal((n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def kept_memo(folder: Path, hashes: list[str], rng: np.random.Generator) -> None:
    """A memo of `hashes`' pictures with their five windows' vectors."""
    def windows(pictures, rows, embed, size, framing, workers):
        rows = np.repeat(np.asarray(rows, np.int64), len(WINDOWS))
        return rows, unit(rng, len(rows))

    memo = checkmemo.PairChecks(folder, hashes)
    find = memo.parts(windows, MODEL, DIM, KIND, len(WINDOWS))
    for start in range(0, len(hashes), BLOCK_ROWS):
        find(None, range(start, min(len(hashes), start + BLOCK_ROWS)), None, SIZE, Framing())
    memo.save()


def read(folder: Path, hashes: list[str]):
    """`catalog_windows` on the memo in `folder`, for an index of `hashes`' pictures."""
    index = SimpleNamespace(folder=folder, rows=SimpleNamespace(content_hash=hashes))
    model = SimpleNamespace(identity=MODEL, config=SimpleNamespace(embedding_dim=DIM, image_size=SIZE, framing=Framing()))
    found = catalog_windows(index, model)
    return found.index, found.owners


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pictures", type=int, nargs="+", default=[200_000, 1_000_000])
    ap.add_argument("--queries", type=int, nargs="+", default=[1, 16, 300])
    args = ap.parse_args()
    checkmemo.ensure_claim = lambda folder: _Claim()  # a bare folder, not an index
    rng = np.random.default_rng(0)
    print("| pictures | read the windows | heap peak | queries | the pictures' own k nearest | through the windows | ratio |")
    print("|---|---|---|---|---|---|---|")
    for n in args.pictures:
        with tempfile.TemporaryDirectory() as tmp:
            hashes = [f"{x:032x}" for x in rng.integers(0, 2**62, n)]
            kept_memo(Path(tmp), hashes, rng)
            tracemalloc.start()
            start = time.perf_counter()
            windows, owners = read(Path(tmp), hashes)
            read_s = time.perf_counter() - start
            heap = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()
            pictures = build_index(unit(rng, n), "Flat", {})
            for q in args.queries:
                queries = unit(rng, q)
                start = time.perf_counter()
                knn(pictures, queries, 10)
                own_s = time.perf_counter() - start
                start = time.perf_counter()
                owners_near(windows, owners, queries, REACH)
                window_s = time.perf_counter() - start
                print(f"| {n:,} | {read_s:.2f} s | {heap:.0f} MiB | {q} | {own_s:.3f} s | {window_s:.3f} s | {window_s / own_s:.1f}× |",
                      flush=True)


if __name__ == "__main__":
    main()
