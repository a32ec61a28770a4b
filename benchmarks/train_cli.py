"""Training your own encoder through the CLI with default options, on scikit-learn's digits.

    python -m benchmarks.train_cli [--losses contrastive triplet bce] [--polarity dark light]
                                   [--out benchmarks/out/train_cli]

The seed's protocol as a new user would run it: digits 0–6 (70% of each class's pictures, as
32×32 PNGs, dark ink on white or light on black) train `dedup train DIR --labels folders --loss L
--out M` with nothing else given; `dedup evaluate` then scores 2,000 balanced pairs of the other
30% of digits 0–6 at the threshold stored in the model, and `dedup evaluate --one-shot 3` runs
1,000 3-way one-shot trials on digits 7–9, which training never saw. Prints one markdown row per
run, with the wall time of `dedup train` (start-up included).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.seed_digits import export


def dedup(*args: str) -> str:
    return subprocess.run([sys.executable, "-m", "dedup", *args], check=True, capture_output=True, text=True).stdout


def run(root: Path, loss: str) -> dict:
    model = root / f"{loss}.pt"
    start = time.perf_counter()
    dedup("train", str(root / "train"), "--labels", "folders", "--loss", loss, "--out", str(model), "-q")
    seconds = time.perf_counter() - start
    seen = json.loads(dedup("evaluate", str(root / "test"), "--model", str(model), "--format", "json"))
    unseen = json.loads(dedup("evaluate", str(root / "unseen"), "--model", str(model), "--one-shot", "3", "--trials",
                              "1000", "--format", "json"))
    return {"loss": loss, "seconds": seconds, "seen": seen, "unseen": unseen}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--losses", nargs="+", default=["contrastive", "triplet", "bce"])
    ap.add_argument("--polarity", nargs="+", default=["dark", "light"], choices=["dark", "light"])
    ap.add_argument("--out", type=Path, default=Path("benchmarks/out/train_cli"))
    args = ap.parse_args()
    print("| digits | loss | held-out accuracy | held-out AUC | threshold | 3-way one-shot (unseen 7–9) | unseen AUC | train s |")
    print("|---|---|---|---|---|---|---|---|")
    for polarity in args.polarity:
        root = args.out / polarity
        export(root, polarity=polarity, unseen=range(7, 10))
        for loss in args.losses:
            r = run(root, loss)
            s, u = r["seen"], r["unseen"]
            print(f"| {polarity} | {loss} | {s['accuracy']:.4f} | {s['auc']:.4f} | {s['threshold']:.4f} | "
                  f"{u['one_shot']['accuracy']:.3f} | {u['auc']:.4f} | {r['seconds']:.0f} |", flush=True)
    print("| target (issue 18) | each | ≥ 0.95 | ≥ 0.98 | | ≥ 0.80 | | ≤ 180 |")


if __name__ == "__main__":
    main()
