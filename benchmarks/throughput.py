"""Indexing throughput against the JPEG decode floor and a perceptual-hash peer, plus peak RSS.

    python -m benchmarks.throughput [--images 400] [--rounds 3] [--catalog DIR] [--model M ...] [--out benchmarks/out/throughput]

Generates (deterministically) photo-sized JPEGs (1–2 megapixels, quality 85–90) and measures in
one run, on the same files: (a) the decode-only floor (`Image.draft` + resize to the encoder's
input) in one process and in two; (b) imagehash's pHash (what imagededup does); (c) `dedup index`
end to end as a user runs it (fresh index, start-up included), and without its fixed start-up
(interpreter, torch in the encoder process, the model), which is what a large catalog sees: the
marginal rate between the catalog and its first `FEW_TO_INDEX + 1` images (the fewest that
`dedup index` embeds in its encoder process rather than without torch). A one-image catalog
(embedded without torch) is timed too. The two-core floor and `dedup index` are measured in
`--rounds` interleaved rounds and their medians compared: on a shared machine one round can be
several per cent off. Then peak RSS of `dedup index` on this catalog and on one 10× smaller, to
show memory does not grow with the catalog.
`--catalog DIR` measures on the image files of an existing folder instead (for example the
near-duplicate benchmark's clip art, whose JPEGs are trimmed and may be decoded twice).
`--model` (repeatable) measures other encoders in the same interleaved rounds.
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.measure import run_dedup
from dedup.loading import FEW_TO_INDEX
from dedup.synth import scene

SIZE = 64


def make_photos(folder: Path, n: int, seed: int = 0) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for k in range(n):
        path = folder / f"photo_{k:05d}.jpg"
        paths.append(path)
        if path.exists():
            continue
        mp = rng.uniform(1.0, 2.0) * 1e6
        w = int(np.sqrt(mp * 4 / 3))
        h = int(w * 3 / 4)
        small = np.asarray(scene(seed * 1_000_003 + k, (w // 4, h // 4)), dtype=np.float32)
        im = Image.fromarray(small.astype(np.uint8)).resize((w, h), Image.Resampling.BICUBIC)
        arr = np.asarray(im, dtype=np.float32) + rng.normal(0, 6, (h, w, 3))  # sensor-like texture
        Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(path, quality=int(rng.integers(85, 91)))
    return paths


def decode_one(path: Path) -> int:
    im = Image.open(path)
    im.draft("RGB", (SIZE, SIZE))
    return im.convert("RGB").resize((SIZE, SIZE), Image.Resampling.BILINEAR).size[0]


def phash_one(path: Path) -> str:
    import imagehash

    return str(imagehash.phash(Image.open(path)))


def rate(fn, paths, processes: int = 1) -> float:
    start = time.perf_counter()
    if processes == 1:
        for p in paths:
            fn(p)
    else:
        with Pool(processes) as pool:
            pool.map(fn, paths, chunksize=8)
    return len(paths) / (time.perf_counter() - start)


def index_run(catalog: Path, index: Path, model: str = "default") -> tuple[float, float, float]:
    """(images/s, peak RSS MiB, seconds) of `dedup index` in a fresh process, start-up included."""
    subprocess.run(["rm", "-rf", str(index)], check=True)
    seconds, rss, _ = run_dedup("index", str(catalog), "--index", str(index), "-q", "--model", model)
    return len([p for p in catalog.iterdir() if p.is_file()]) / seconds, rss, seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=400)
    ap.add_argument("--rounds", type=int, default=3, help="Rounds of floor and dedup index, interleaved; medians reported.")
    ap.add_argument("--catalog", type=Path, default=None, help="Measure on this folder's image files instead of generated photos.")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/out/throughput"))
    ap.add_argument("--model", action="append", default=None,
                    help="Encoder for `dedup index` (a shipped name or a file); repeat to compare several in the same "
                         "rounds. Default: the default encoder.")
    args = ap.parse_args()
    models = args.model or ["default"]
    if args.catalog is not None:
        catalog = args.catalog
        big = sorted(p for p in catalog.iterdir() if p.is_file())
        args.images = len(big)
        what = f"{len(big)} files of {catalog}"
    else:
        catalog = args.out / "catalog"
        big = make_photos(catalog, args.images)
        what = f"{args.images} JPEGs of 1–2 MP"
    subprocess.run(["rm", "-rf", str(args.out / "catalog_small")], check=True)
    small_dir = args.out / "catalog_small"
    small_dir.mkdir(parents=True, exist_ok=True)
    for p in big[: max(1, args.images // 10)]:
        try:
            os.link(p, small_dir / p.name)
        except OSError:  # another file system
            shutil.copy(p, small_dir / p.name)
    for p in big:  # warm the page cache so every method reads from memory
        p.read_bytes()
    floor1 = rate(decode_one, big)
    phash = rate(phash_one, big)
    one_dir, start_dir = args.out / "catalog_one", args.out / "catalog_start"
    first = min(FEW_TO_INDEX + 1, args.images - 1)  # the start-up run: the fewest images embedded in the encoder process
    for folder, count in ((one_dir, 1), (start_dir, first)):
        subprocess.run(["rm", "-rf", str(folder)], check=True)
        folder.mkdir(parents=True)
        for p in big[:count]:
            shutil.copy(p, folder / p.name)
    rounds = []  # (two-core floor, per model (images/s, peak RSS, seconds), start-up run s, one-image s): interleaved
    for _ in range(args.rounds):
        f2 = rate(decode_one, big, processes=2)
        runs = [index_run(catalog, args.out / "index", m) for m in models]
        rounds.append((f2, runs, index_run(start_dir, args.out / "index_start", models[0])[2],
                       index_run(one_dir, args.out / "index_one", models[0])[2]))
    floor2 = float(np.median([r[0] for r in rounds]))
    ours = [float(np.median([r[1][k][0] for r in rounds])) for k in range(len(models))]
    one = float(np.median([r[3] for r in rounds]))
    steady = float(np.median([(args.images - first) / (r[1][0][2] - r[2]) for r in rounds]))
    rss_big = max(r[1][0][1] for r in rounds)
    _, rss_small, _ = index_run(small_dir, args.out / "index_small", models[0])
    print(f"{what}; {os.cpu_count()} CPUs\n")
    print("| method | images/s | ratio to dedup index |")
    print("|---|---|---|")
    for name, r in (("decode floor, 1 process", floor1), ("decode floor, 2 processes", floor2),
                    ("imagehash pHash, 1 process", phash)):
        print(f"| {name} | {r:.1f} | {ours[0] / r:.2f} |")
    for m, r in zip(models, ours):
        print(f"| dedup index --model {m} (end to end) | {r:.1f} | {ours[0] / r:.2f} |")
    print(f"| dedup index --model {models[0]}, start-up left out (the images beyond the first {first}) | {steady:.1f} | "
          f"{ours[0] / steady:.2f} |")
    print(f"\n`dedup index` of a one-image catalog: {one:.2f} s")
    for k, m in enumerate(models):
        print(f"\n{m}: rounds (two-core floor, dedup index, ratio): "
              + "; ".join(f"{f:.0f}, {o[k][0]:.0f}, {o[k][0] / f:.3f}" for f, o, _, _ in rounds))
        print(f"{m}: targets (medians): dedup/pHash = {ours[k] / phash:.2f} (≥ 3), "
              f"dedup/two-core floor = {ours[k] / floor2:.3f} (≥ 0.5)")
    print(f"{models[0]}: start-up left out (per round, then the median): "
          + "; ".join(f"{(args.images - first) / (o[0][2] - s) / f:.3f}" for f, o, s, _ in rounds)
          + f"; {steady / floor2:.3f} of the two-core floor")
    print(f"\npeak RSS ({models[0]}): {rss_small:.0f} MiB for {len(os.listdir(small_dir))} images, "
          f"{rss_big:.0f} MiB for {args.images} images")
    print(f"(self: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB)")


if __name__ == "__main__":
    main()
