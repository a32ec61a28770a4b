"""The local and Ray engines on the same data, in one run: time, overhead ratio, same results.

    python -m benchmarks.engines [--images 2000] [--rows 1000000] [--rounds 2] [--out benchmarks/out/engines]

(a) `dedup index` of generated photo-sized JPEGs (`benchmarks.throughput.make_photos`) with
`--engine local` and `--engine ray` (a fresh process and a fresh index each time, start-up
included; Ray starts a local instance on this machine's cores): seconds, images/s, the Ray/local
ratio (median of `--rounds` interleaved rounds), and whether the two indexes hold the same rows
and embeddings. (b) `dedup find-duplicates --no-verify` with each engine on `--rows` stored
planted embeddings (`benchmarks.scale`): seconds, peak RSS, ratio, and whether the outputs are
byte-identical. Per-core rates for docs/cluster.md's estimate follow from (a) and (b).
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
from pathlib import Path

import numpy as np

from benchmarks.measure import run_dedup
from benchmarks.scale import THRESHOLD, planted, write_index
from benchmarks.throughput import make_photos
from dedup.index import Index


def index_round(catalog: Path, out: Path, engine: str) -> tuple[float, float]:
    folder = out / f"index-{engine}"
    shutil.rmtree(folder, ignore_errors=True)
    seconds, rss, _ = run_dedup("index", str(catalog), "--index", str(folder), "--engine", engine, "-q")
    return seconds, rss


def find_round(folder: Path, engine: str) -> tuple[float, float, bytes]:
    target = folder / f"dups-{engine}.json"
    seconds, rss, _ = run_dedup("find-duplicates", "--index", str(folder), "--no-verify", "-t", str(THRESHOLD),
                                "--format", "json", "-q", "--output", str(target), "--engine", engine)
    return seconds, rss, target.read_bytes()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/out/engines"))
    args = ap.parse_args()
    cores = os.cpu_count() or 1
    catalog = args.out / "photos"
    if len(list(catalog.glob("*.jpg"))) != args.images:
        shutil.rmtree(catalog, ignore_errors=True)
        make_photos(catalog, args.images)

    times: dict[str, list[float]] = {"local": [], "ray": []}
    for _ in range(args.rounds):
        for engine in times:
            seconds, _ = index_round(catalog, args.out, engine)
            times[engine].append(seconds)
    a, b = Index.open(args.out / "index-local"), Index.open(args.out / "index-ray")
    same_rows = list(a.rows.path) == list(b.rows.path) and list(a.rows.content_hash) == list(b.rows.content_hash)
    gap = float(np.abs(a.vectors - b.vectors).max())
    local, ray = (statistics.median(times[e]) for e in ("local", "ray"))
    print(f"## dedup index, {args.images} photo-sized JPEGs, {cores} cores, median of {args.rounds} rounds")
    print("| engine | seconds (each round) | images/s | images/s per core | ray / local |")
    print("|---|---|---|---|---|")
    for engine, s in (("local", local), ("ray", ray)):
        rounds = ", ".join(f"{t:.1f}" for t in times[engine])
        print(f"| {engine} | {s:.1f} ({rounds}) | {args.images / s:.0f} | {args.images / s / cores:.0f} | "
              f"{s / local:.2f} |")
    print(f"Same rows: {same_rows}; largest embedding difference: {gap:.2e}\n")

    folder = args.out / f"stored-{args.rows}"
    if not (folder / "manifest.json").exists():
        write_index(folder, planted(args.rows))
    found = {e: [] for e in ("local", "ray")}
    for _ in range(args.rounds):
        for engine in found:
            found[engine].append(find_round(folder, engine))
    same = all(r[2] == found["local"][0][2] for e in found for r in found[e])
    med = {e: statistics.median(r[0] for r in found[e]) for e in found}
    print(f"## dedup find-duplicates --no-verify, {args.rows:,} stored embeddings, median of {args.rounds} rounds")
    print("| engine | seconds (each round) | peak RSS MiB (driver) | rows/s per core | ray / local |")
    print("|---|---|---|---|---|")
    for engine in found:
        rounds = ", ".join(f"{r[0]:.1f}" for r in found[engine])
        rss = max(r[1] for r in found[engine])
        print(f"| {engine} | {med[engine]:.1f} ({rounds}) | {rss:.0f} | {args.rows / med[engine] / cores:,.0f} | "
              f"{med[engine] / med['local']:.2f} |")
    print(f"Byte-identical outputs: {same}")


if __name__ == "__main__":
    main()
