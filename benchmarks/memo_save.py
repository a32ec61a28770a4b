"""Saving the pair-check memo: time and numpy heap of `dedup.checkmemo`'s chunked save against
merging the whole table in memory, on one large synthetic table; and a run that makes many
entries (the windows' vectors of a large catalog), held in memory or spilled to run files.

    python -m benchmarks.memo_save [--entries 10000000] [--new 100000] [--made 2000000]

Each way runs in a fresh process on its own copy of the table (sorted random keys, pictures drawn
from 2^20 rows of which 1,000 have left the index), with `--new` entries made by the run; the heap
peak is numpy's, as `tracemalloc` sees it. For `--made`, a run adds that many entries of the
windows' table (64 numbers each) in blocks of 327,680 (the windows of `dedup.windows.BLOCK_ROWS`
pictures) to an empty memo and saves it, once with the entries spilled beyond
`memotable.SPILL_BYTES` and once held in memory until saved.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

from dedup import checkmemo, memotable
from dedup.atomic import atomic_write

ROWS = 1 << 20


def make(path: Path, entries: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    keys = np.unique(rng.integers(0, 1 << 62, entries, dtype=np.uint64))
    table = np.zeros(len(keys), checkmemo.TABLES["matches.npy"])
    table["key"], table["a"], table["b"] = keys, rng.integers(0, ROWS, len(keys)), rng.integers(0, ROWS, len(keys))
    memotable.write_table(path, table)


def whole(table: memotable.Table, present: np.ndarray) -> None:
    """The merge as it was: everything in memory, then one write."""
    made = np.concatenate(table.made)
    old = table.old
    alive = np.isin(old["a"], present) & np.isin(old["b"], present)
    merged = np.concatenate([made, np.asarray(old[alive])])
    merged = merged[np.unique(merged["key"], return_index=True)[1]]
    atomic_write(table.path, lambda tmp: memotable.write_table(tmp, merged), durable=False)


def save(path: Path, way: str, new: int) -> tuple[float, float]:
    """Seconds and numpy heap peak (MiB) of one save of the table at `path`."""
    dtype = checkmemo.TABLES["matches.npy"]
    table = memotable.Table(path, dtype, usable=True)
    made = np.zeros(new, dtype)
    made["key"] = np.random.default_rng(1).integers(0, 1 << 62, new, dtype=np.uint64)
    table.made.append(made)
    present = np.arange(ROWS - 1000, dtype=np.uint32)
    tracemalloc.start()
    start = time.perf_counter()
    if way == "chunked":
        table.save(present, present)
    else:
        whole(table, present)
    seconds = time.perf_counter() - start
    return seconds, tracemalloc.get_traced_memory()[1] / 2**20


def made(folder: Path, way: str, entries: int) -> tuple[float, float]:
    """Seconds and numpy heap peak (MiB) of a run that adds `entries` entries of the windows'
    table in blocks and saves them."""
    if way == "held":
        memotable.SPILL_BYTES = 1 << 62
    name, dtype = checkmemo.parts_table(64)
    table = memotable.Table(folder / name, dtype, usable=True)
    rng = np.random.default_rng(2)
    tracemalloc.start()
    start = time.perf_counter()
    for s in range(0, entries, BLOCK):
        n = min(BLOCK, entries - s)
        table.add(rng.integers(0, 1 << 63, n, dtype=np.uint64), np.zeros(n, np.uint32), np.zeros(n, np.uint32),
                  vector=rng.standard_normal((n, 64), dtype=np.float32))
    table.save(np.zeros(1, np.uint32), np.zeros(1, np.uint32))
    seconds = time.perf_counter() - start
    return seconds, tracemalloc.get_traced_memory()[1] / 2**20


BLOCK = 327_680


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--entries", type=int, default=10_000_000)
    ap.add_argument("--new", type=int, default=100_000)
    ap.add_argument("--made", type=int, default=2_000_000)
    ap.add_argument("--way", choices=("whole", "chunked", "spilled", "held"), help=argparse.SUPPRESS)
    ap.add_argument("--path", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.way:  # one measurement, in this process
        seconds, heap = made(args.path, args.way, args.made) if args.way in ("spilled", "held") else save(args.path, args.way, args.new)
        print(f"{seconds:.2f} {heap:.0f}")
        return
    with tempfile.TemporaryDirectory() as tmp:
        rows = {}
        for way in ("whole", "chunked"):
            path = Path(tmp) / f"{way}.npy"
            make(path, args.entries)
            out = subprocess.run([sys.executable, "-m", "benchmarks.memo_save", "--way", way, "--path", str(path),
                                  "--new", str(args.new)], check=True, capture_output=True, text=True).stdout.split()
            rows[way] = (float(out[0]), float(out[1]))
            size = path.stat().st_size
    print(f"one table of {args.entries:,} entries ({size / 1e6:.0f} MB), {args.new:,} new")
    print("| save | time s | numpy heap peak MiB |")
    print("|---|---|---|")
    for way, (s, h) in rows.items():
        print(f"| {way} | {s:.2f} | {h:.0f} |")
    print(f"chunked ÷ whole: time {rows['chunked'][0] / rows['whole'][0]:.2f}, heap {rows['chunked'][1] / rows['whole'][1]:.2f}")
    runs = {}
    for way in ("held", "spilled"):
        with tempfile.TemporaryDirectory() as tmp:
            out = subprocess.run([sys.executable, "-m", "benchmarks.memo_save", "--way", way, "--path", tmp,
                                  "--made", str(args.made)], check=True, capture_output=True, text=True).stdout.split()
            runs[way] = (float(out[0]), float(out[1]))
    print(f"\na run making {args.made:,} entries of the windows' table ({args.made * checkmemo.parts_table(64)[1].itemsize / 1e6:.0f} MB)")
    print("| entries made | time s | numpy heap peak MiB |")
    print("|---|---|---|")
    for way, (s, h) in runs.items():
        print(f"| {way} | {s:.2f} | {h:.0f} |")
    print(f"spilled ÷ held: time {runs['spilled'][0] / runs['held'][0]:.2f}, heap {runs['spilled'][1] / runs['held'][1]:.2f}")


if __name__ == "__main__":
    main()
