"""Duplicate search at scale on synthetic stored embeddings, through the CLI's store/index code.

    python -m benchmarks.scale [--sizes 100000 1000000] [--out benchmarks/out/scale]

For each size: writes unit vectors with planted near-duplicate clusters (5% of rows are centres
with 1–3 copies at distance ~0.05–0.35) as Parquet shards + manifest + the FAISS index chosen by
size; times `find_duplicates` in-process and `dedup find-duplicates` as a subprocess (with its
peak RSS); measures pair recall against exact numpy search on 500 sampled rows; and times a
single-image `query` (embedding + search) once model and index are loaded.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.measure import run_dedup
from dedup.ann import build_index_cells, choose_factory, load_cells, load_index, save_cells, save_index
from dedup.duplicates import find_duplicates
from dedup.errors import DedupError
from dedup.manifest import FaissFile, Manifest, ModelRef
from dedup.search import range_pairs
from dedup.store import Row, ShardWriter, read_embeddings

DIM = 64
THRESHOLD = 0.4


def planted(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, DIM)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    n_centres = n // 20
    pos = n_centres
    for c in range(n_centres):
        for _ in range(int(rng.integers(1, 4))):
            if pos >= n:
                break
            noise = rng.normal(size=DIM).astype(np.float32)
            noise *= rng.uniform(0.05, 0.35) / np.linalg.norm(noise)
            v = x[c] + noise
            x[pos] = v / np.linalg.norm(v)
            pos += 1
    return x[rng.permutation(n)]


def write_index(folder: Path, emb: np.ndarray) -> float:
    """Store `emb` exactly as `dedup index` does; returns the build seconds."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    start = time.perf_counter()
    writer = ShardWriter(folder / "shards-0001", DIM)
    for s in range(0, len(emb), 50_000):
        rows = [Row(f"img/{k:08d}.jpg", 100_000 + k % 977, 0, f"{k:032x}", 640, 480) for k in range(s, min(s + 50_000, len(emb)))]
        writer.add(rows, emb[s : s + 50_000])
    shards = writer.close()
    factory, params = choose_factory(len(emb))
    index, cells = build_index_cells(emb, factory, params)
    save_index(index, folder, "index-0001.faiss")
    if cells is not None:
        save_cells(cells, folder, "index-0001.cells.npy")
    Manifest("/synthetic", ModelRef("synthetic", "default"), 64, DIM, "blake3-128", tuple(shards),
             FaissFile("index-0001.faiss", factory, params, "index-0001.cells.npy" if cells is not None else ""),
             threshold=THRESHOLD, generation=1).save(folder)
    return time.perf_counter() - start


def recall(emb: np.ndarray, pairs, sample: int = 500) -> float:
    """Share of the exact pairs of 500 sampled rows that the search found (`pairs`: all it found)."""
    rng = np.random.default_rng(1)
    rows = np.sort(rng.choice(len(emb), sample, replace=False))
    found = total = 0
    for r in rows:
        d = np.linalg.norm(emb - emb[r], axis=1)
        exact = set(np.flatnonzero(d < THRESHOLD).tolist()) - {int(r)}
        got = set(pairs.j[pairs.i == r].tolist()) | set(pairs.i[pairs.j == r].tolist())
        found += len(exact & got)
        total += len(exact)
    return found / total if total else 1.0


def cli_run(folder: Path) -> tuple[float, float]:
    seconds, rss, _ = run_dedup("find-duplicates", "--index", str(folder), "--format", "json", "-q",
                                "--output", str(folder / "dups.json"))
    return seconds, rss


def query_latency(folder: Path, repeats: int = 50) -> tuple[float, float]:
    """(cold start s: model + index load, warm ms per single-image query)."""
    from dedup.embed import embed_pixels
    from dedup.images import decode
    from dedup.model import load_model
    from dedup.search import knn
    from dedup.synth import jpeg_bytes, scene

    start = time.perf_counter()
    model = load_model()
    index = load_index(folder, Manifest.load(folder))
    cold = time.perf_counter() - start
    data = jpeg_bytes(scene(5))
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        q = embed_pixels(model, decode(data, model.config.image_size).pixels[None])
        knn(index, q, 10)
        times.append(time.perf_counter() - t)
    return cold, 1000 * float(np.median(times))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--out", type=Path, default=Path("benchmarks/out/scale"))
    ap.add_argument("--reuse", action="store_true", help="Reuse an index of the same size under --out (build column: 'reused').")
    ap.add_argument("--cli-only", action="store_true", help="Skip the library pass (sets are counted from the CLI's JSON).")
    args = ap.parse_args()
    print("| rows | FAISS | build s | find_duplicates s (library) | pairs | sets | CLI s | CLI peak RSS MiB | recall vs exact | query cold s | query ms |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for n in args.sizes:
        folder = args.out / f"n{n}"
        if args.reuse and _count(folder) == n:
            build = "reused"
        else:
            build = f"{write_index(folder, planted(n)):.1f}"
        emb = read_embeddings(folder, Manifest.load(folder))
        print(f"{n}: index {build}", file=sys.stderr, flush=True)
        lib_s = pairs = "–"
        if not args.cli_only:
            start = time.perf_counter()
            report = find_duplicates(folder, THRESHOLD)
            lib_s, pairs = f"{time.perf_counter() - start:.1f}", f"{report.pairs:,}"
            print(f"{n}: library find_duplicates {lib_s}s, {pairs} pairs", file=sys.stderr, flush=True)
        found = range_pairs(lambda: load_index(folder, Manifest.load(folder)), emb, THRESHOLD,
                            cells=load_cells(folder, Manifest.load(folder)))
        cli_s, rss = cli_run(folder)
        sets = len(json.loads((folder / "dups.json").read_text())["groups"])
        print(f"{n}: CLI {cli_s:.1f}s, {rss:.0f} MiB", file=sys.stderr, flush=True)
        rec = recall(emb, found)
        cold, warm = query_latency(folder)
        factory = Manifest.load(folder).faiss
        print(f"| {n:,} | {factory.factory} {factory.params} | {build} | {lib_s} | {pairs} | {sets:,} | "
              f"{cli_s:.1f} | {rss:.0f} | {rec:.4f} | {cold:.2f} | {warm:.1f} |", flush=True)


def _count(folder: Path) -> int | None:
    try:
        return Manifest.load(folder).count
    except (DedupError, KeyError, ValueError):
        return None


if __name__ == "__main__":
    main()
