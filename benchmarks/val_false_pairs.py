"""Which different pictures an encoder confuses on the validation calibration catalog.

    python benchmarks/val_false_pairs.py [--model M ...] [--threshold T] [--top 15]

Builds `train_default.py`'s calibration catalog (distinct validation-pool pictures plus edited
copies; never the test pool) for each model's input spec and prints, at the model's calibrated
threshold (or `--threshold`): true and false pairs, the precision, which pool folders the false
pairs come from, and the closest different-picture pairs by file name. Use it to see what holds
the precision-first default threshold down.
"""
from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from pool import SOURCES, pool_files  # noqa: E402
from train_default import calibration_pairs, distinct_set, load_set  # noqa: E402

from dedup.model import load_model  # noqa: E402


def short(path: str) -> str:
    """The path inside its pool source."""
    for src in SOURCES:
        if path.startswith(str(src) + "/"):
            return path[len(str(src)) + 1:]
    return path


def report(ref: str | None, val, threshold: float | None, top: int) -> None:
    model = load_model(ref)
    t = model.threshold if threshold is None else threshold
    d, same, a, b, n_images = calibration_pairs(model, val)  # the catalog train_default calibrates on
    tp, fp = int((same & (d < t)).sum()), int((~same & (d < t)).sum())
    print(f"\n## {model.identity} at {t:.4f}: {tp} true pairs, {fp} false pairs, precision "
          f"{tp / max(tp + fp, 1):.3f} ({n_images} images, {int(same.sum())} true pairs in all)")
    folders = Counter()
    for k in np.flatnonzero(~same & (d < t)):
        fa, fb = (str(Path(short(val.paths[x])).parent) for x in (a[k], b[k]))
        folders[fa if fa == fb else f"{fa} / {fb}"] += 1
    print("| false pairs | folder(s) |\n|---|---|")
    for name, n in folders.most_common():
        print(f"| {n} | {name} |")
    print(f"\nclosest different pictures (each pair of pictures once, up to {top}):")
    shown: set[tuple[int, int]] = set()
    for k in np.flatnonzero(~same)[np.argsort(d[~same])]:
        pair = tuple(sorted((int(a[k]), int(b[k]))))
        if pair in shown:
            continue
        shown.add(pair)
        print(f"  {d[k]:.3f}  {short(val.paths[pair[0]])}  |  {short(val.paths[pair[1]])}")
        if len(shown) == top:
            break


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", default=None, help="Model (shipped name or file); repeatable.")
    ap.add_argument("--threshold", type=float, default=None, help="Default: each model's calibrated threshold.")
    ap.add_argument("--top", type=int, default=15)
    args = ap.parse_args()
    val = distinct_set(load_set(pool_files()["val"]))
    for ref in args.model or [None]:
        report(ref, val, args.threshold, args.top)


if __name__ == "__main__":
    main()
