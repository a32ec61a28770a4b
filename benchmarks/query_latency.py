"""`dedup query` from start to exit: the encoder in numpy (`dedup.torchless`) against torch.

    python -m benchmarks.query_latency [--photos 300] [--counts 1 16 256 1024] [--rounds 3]

Indexes `--photos` generated photos (`benchmarks.throughput.make_photos`, 1–2 MP JPEGs) with
`dedup index`, then, in interleaved rounds, each in a fresh process as a user runs it:
`dedup query` of one photo (the encoder as the command picks it), and for each of `--counts`
query images (the catalog's photos, repeated as needed) `dedup.query.query_images` with the
numpy encoder and with the torch model, imports and model loading included. Prints the median
seconds, their ratio, and where torch starts to pay off, the figure `dedup.loading.FEW_TO_QUERY`
is set by.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.measure import run_dedup
from benchmarks.throughput import make_photos

SNIPPET = """
import sys
from pathlib import Path
from dedup.query import query_images
if sys.argv[3] == "torch":
    from dedup.loading import load_model
    model = load_model()
else:
    from dedup.torchless import NumpyEncoder
    model = NumpyEncoder()
results = query_images(sys.argv[1], [Path(sys.argv[2])], k=5, model=model)
assert len(results) == int(sys.argv[4]) and all(r.error is None for r in results)
"""


def timed(*args: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", SNIPPET, *args], check=True)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=int, default=300)
    ap.add_argument("--counts", type=int, nargs="+", default=[1, 16, 256, 1024])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/out/query_latency"))
    args = ap.parse_args()
    photos = make_photos(args.out / "catalog", args.photos)
    index = args.out / "index"
    if index.exists():
        shutil.rmtree(index)
    run_dedup("index", str(args.out / "catalog"), "--index", str(index), "-q")
    folders = {}
    for n in args.counts:
        folder = args.out / f"queries_{n}"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for k in range(n):
            os.link(photos[k % len(photos)], folder / f"q{k:05d}.jpg")  # a folder query skips symlinks
        folders[n] = folder
    cli, runs = [], {(n, mode): [] for n in args.counts for mode in ("numpy", "torch")}
    for _ in range(args.rounds):
        cli.append(run_dedup("query", str(photos[0]), "--index", str(index))[0])
        for n in args.counts:
            for mode in ("numpy", "torch"):
                runs[n, mode].append(timed(str(index), str(folders[n]), mode, str(n)))
    print(f"`dedup query` of one photo, start to exit: {np.median(cli):.2f} s (median of {args.rounds})\n")
    print("| query images | numpy encoder, s | torch, s | numpy ÷ torch |")
    print("|---|---|---|---|")
    for n in args.counts:
        a, b = np.median(runs[n, "numpy"]), np.median(runs[n, "torch"])
        print(f"| {n} | {a:.2f} | {b:.2f} | {a / b:.2f} |")
    if len(args.counts) > 1:
        n0, n1 = args.counts[0], args.counts[-1]
        slope = {m: (np.median(runs[n1, m]) - np.median(runs[n0, m])) / (n1 - n0) for m in ("numpy", "torch")}
        start = {m: np.median(runs[n0, m]) - slope[m] * n0 for m in slope}
        extra = slope["numpy"] - slope["torch"]
        print(f"\nper image: numpy {slope['numpy'] * 1000:.2f} ms, torch {slope['torch'] * 1000:.2f} ms; fixed: numpy "
              f"{start['numpy']:.2f} s, torch {start['torch']:.2f} s"
              + (f"; torch pays off from ~{(start['torch'] - start['numpy']) / extra:.0f} images" if extra > 0 else ""))


if __name__ == "__main__":
    main()
