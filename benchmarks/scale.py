"""Duplicate search at scale on synthetic stored embeddings, through the CLI's store/index code.

    python -m benchmarks.scale [--sizes 100000 1000000] [--distribution uniform|crowded] [--out benchmarks/out/scale]

For each size: writes unit vectors with planted near-duplicate clusters (5% of rows are centres
with 1–3 copies at distance ~0.05–0.35) as Parquet shards + manifest + the FAISS index chosen by
size; times `find_duplicates` in-process and `dedup find-duplicates` as a subprocess (with its
peak RSS); measures pair recall against exact search on 500 sampled rows; and times a
single-image `query` (embedding + search) once model and index are loaded.

`uniform` rows are spread evenly over the sphere. `crowded` rows are drawn around real encoder
outputs (the shipped encoder's embeddings of Debian's clip art and wallpapers, installed with apt
if missing), with noise shaped like theirs: they fill the IVF cells as unevenly as a real catalog.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import faiss
import numpy as np

from benchmarks.measure import run_dedup
from dedup.ann import build_index_cells, cell_probes, choose_factory, load_cells, load_centroids, load_index, save_cells, save_index
from dedup.duplicates import find_duplicates
from dedup.errors import DedupError
from dedup.manifest import FaissFile, Manifest, ModelRef
from dedup.search import range_pairs
from dedup.store import Row, ShardWriter, read_embeddings

DIM = 64
THRESHOLD = 0.4


def real_outputs(cache: Path) -> np.ndarray:
    """The shipped encoder's embeddings of the apt image pool (indexed once, kept in `cache`)."""
    if cache.exists():
        return np.load(cache)
    from dedup.index import Index
    from dedup.indexer import index_catalog
    from recipes.pool import SOURCES, ensure_pool

    ensure_pool()
    parts = []
    for k, source in enumerate(SOURCES):
        folder = cache.parent / f"pool-index-{k}"
        index_catalog(source, folder)
        parts.append(Index.open(folder).vectors)
    out = np.concatenate(parts)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.save(cache, out)
    return out


# noise around a real output, times its covariance's square root: at 10M rows, 5% of rows have a
# chance neighbour within 0.4, some up to 232 (0.5: 82%, a mean of 197; 1.1: 1%)
CROWD_SPREAD = 0.8


def crowded(n: int, anchors: np.ndarray, spread: float = CROWD_SPREAD, seed: int = 0, block: int = 1_000_000) -> np.ndarray:
    """`n` unit vectors, each a real output plus noise with the real outputs' covariance, with the
    same planted copies as `planted`."""
    rng = np.random.default_rng(seed)
    cov = np.cov(anchors.T.astype(np.float64)) + 1e-6 * np.eye(anchors.shape[1])
    shape = np.linalg.cholesky(cov).T.astype(np.float32)
    x = np.empty((n, anchors.shape[1]), np.float32)
    for s in range(0, n, block):
        b = min(block, n - s)
        v = anchors[rng.integers(len(anchors), size=b)] + spread * (rng.standard_normal((b, anchors.shape[1]), np.float32) @ shape)
        x[s : s + b] = v / np.linalg.norm(v, axis=1, keepdims=True)
    return plant_copies(x, rng)


def planted(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, DIM)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return plant_copies(x, rng)


def plant_copies(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """5% of rows become centres followed by 1–3 copies at distance 0.05–0.35; rows shuffled."""
    n = len(x)
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
        save_cells(cells, folder, "index-0001.cells.npz")
    Manifest("/synthetic", ModelRef("synthetic", "default"), 64, DIM, "blake3-128", tuple(shards),
             FaissFile("index-0001.faiss", factory, params, "index-0001.cells.npz" if cells is not None else ""),
             threshold=THRESHOLD, generation=1).save(folder)
    return time.perf_counter() - start


def refresh_cells(folder: Path) -> float:
    """Recompute a stored index's probe cells by the current rule on its own quantizer (what a
    rebuild would store, as its cells do not change); returns the seconds."""
    manifest = Manifest.load(folder)
    start = time.perf_counter()
    centroids = load_centroids(folder, manifest)
    quantizer = faiss.IndexFlatL2(centroids.shape[1])  # what the IVF index's own quantizer holds
    quantizer.add(centroids)
    save_cells(cell_probes(quantizer, read_embeddings(folder, manifest)), folder, manifest.faiss.cells)
    return time.perf_counter() - start


def exact_neighbours(emb: np.ndarray, rows: np.ndarray, block: int = 1_000_000) -> list[set[int]]:
    """For each of `rows`, every other row closer than THRESHOLD (exact, in blocks of rows)."""
    q = emb[rows].astype(np.float32)
    out: list[set[int]] = [set() for _ in rows]
    for s in range(0, len(emb), block):
        d2 = 2.0 - 2.0 * (q @ emb[s : s + block].T)  # unit vectors
        for k, j in zip(*np.nonzero(d2 < THRESHOLD * THRESHOLD)):
            out[k].add(int(j) + s)
    for k, r in enumerate(rows):
        out[k].discard(int(r))
    return out


def recall(emb: np.ndarray, pairs, sample: int = 500) -> float:
    """Share of the exact pairs of 500 sampled rows that the search found (`pairs`: all it found)."""
    rng = np.random.default_rng(1)
    rows = np.sort(rng.choice(len(emb), sample, replace=False))
    found = total = 0
    for r, exact in zip(rows, exact_neighbours(emb, rows)):
        exact = {j for j in exact if abs(np.linalg.norm(emb[j] - emb[r]) - THRESHOLD) > 1e-5}  # float ties at the radius aside
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
    ap.add_argument("--distribution", choices=["uniform", "crowded"], default="uniform")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/out/scale"))
    ap.add_argument("--reuse", action="store_true", help="Reuse an index of the same size under --out, its probe cells recomputed by the current rule "
                    "(build column: 'reused' and those seconds).")
    ap.add_argument("--cli-only", action="store_true", help="Skip the library pass (sets are counted from the CLI's JSON).")
    args = ap.parse_args()
    print(f"distribution: {args.distribution}")
    print("| rows | FAISS | largest cell / mean | build s | find_duplicates s (library) | pairs | sets | CLI s | "
          "CLI peak RSS MiB | recall vs exact | query cold s | query ms |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for n in args.sizes:
        folder = args.out / (f"n{n}" if args.distribution == "uniform" else f"crowded-n{n}")
        if args.reuse and _count(folder) == n:
            build = f"reused, cells {refresh_cells(folder):.1f}"
        else:
            emb = planted(n) if args.distribution == "uniform" else crowded(n, real_outputs(args.out / "real-outputs.npy"))
            build = f"{write_index(folder, emb):.1f}"
            del emb
        print(f"{n}: index {build}", file=sys.stderr, flush=True)
        lib_s = "–"
        if not args.cli_only:
            start = time.perf_counter()
            find_duplicates(folder, THRESHOLD)
            lib_s = f"{time.perf_counter() - start:.1f}"
            print(f"{n}: library find_duplicates {lib_s}s", file=sys.stderr, flush=True)
        cli_s, rss = cli_run(folder)
        sets = len(json.loads((folder / "dups.json").read_text())["groups"])
        print(f"{n}: CLI {cli_s:.1f}s, {rss:.0f} MiB", file=sys.stderr, flush=True)
        manifest = Manifest.load(folder)
        emb, cells = read_embeddings(folder, manifest), load_cells(folder, manifest)
        found = range_pairs(lambda: load_index(folder, manifest), emb, THRESHOLD, cells=cells)
        crowding = "–" if cells is None else f"{_crowding(cells):.1f}"
        rec = recall(emb, found)
        del emb
        cold, warm = query_latency(folder)
        print(f"| {n:,} | {manifest.faiss.factory} {manifest.faiss.params} | {crowding} | {build} | {lib_s} | {len(found):,} | "
              f"{sets:,} | {cli_s:.1f} | {rss:.0f} | {rec:.4f} | {cold:.2f} | {warm:.1f} |", flush=True)


def _crowding(cells: np.ndarray) -> float:
    """The largest IVF cell's rows over the mean cell's."""
    sizes = np.bincount(np.asarray(cells.near[:, 0], dtype=np.int64))
    return float(sizes.max() / sizes[sizes > 0].mean())


def _count(folder: Path) -> int | None:
    try:
        return Manifest.load(folder).count
    except (DedupError, KeyError, ValueError):
        return None


if __name__ == "__main__":
    main()
