"""How much the validation figures that pick an encoder move with the sample of validation pictures.

    python benchmarks/val_bootstrap.py --model A [--model B ...] [--rounds 500] [--copy-seeds 6]

Scores each model on `train_default.py`'s calibration catalog (distinct validation-pool pictures
plus edited copies) the way the default threshold is chosen: F1 at the largest threshold with
precision ≥ 0.90, and the best F1. Then resamples the validation pictures (a Poisson(1) weight per
picture, the same weights for every model in a round; a pair of copies weighs the product of its
pictures' weights, a pair within one picture that picture's weight) and prints 90% intervals,
and for each model after the first its paired difference from the first. A difference whose
interval spans 0 is within the noise of a 330-picture validation pool. `--copy-seeds K` also
calibrates each model on K catalogs whose edited copies are drawn with seeds 1..K (the same
pictures), and on all K pooled: how much the drawn copies alone move the default threshold.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from pool import pool_files  # noqa: E402
from train_default import (  # noqa: E402
    CALIBRATION_SEED,
    TARGET_PRECISION,
    calibration_pairs,
    distinct_set,
    load_set,
)

from dedup.metrics import at_threshold, precision_threshold  # noqa: E402
from dedup.model import load_model  # noqa: E402


def pair_distances(ref: str | None, val) -> tuple[str, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(identity, distances, same?, picture of each pair's first and second image) of every pair."""
    model = load_model(ref)
    d, same, a, b, _ = calibration_pairs(model, val)
    return model.identity, d, same, a, b


def scores(d: np.ndarray, same: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    """Weighted (F1 at the precision-first threshold, best F1)."""
    order = np.argsort(d, kind="stable")
    tp = np.cumsum(np.where(same[order], w[order], 0.0))
    fp = np.cumsum(np.where(same[order], 0.0, w[order]))
    f1 = 2 * tp / np.maximum(tp + fp + tp[-1], 1e-12)
    ok = np.flatnonzero(tp / np.maximum(tp + fp, 1e-12) >= TARGET_PRECISION)
    return (float(f1[ok[-1]]) if len(ok) else 0.0), float(f1.max())


def interval(x: np.ndarray) -> str:
    lo, hi = np.percentile(x, [5, 95])
    return f"[{lo:.3f}, {hi:.3f}]"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", required=True, help="Model (shipped name or file); repeatable.")
    ap.add_argument("--rounds", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--copy-seeds", type=int, default=0, help="Also calibrate on this many catalogs of other copies.")
    args = ap.parse_args()
    val = distinct_set(load_set(pool_files()["val"]))
    runs = [pair_distances(ref, val) for ref in args.model]
    _, _, same, a, b = runs[0]
    rng = np.random.default_rng(args.seed)
    point = [scores(d, s, np.ones(len(d))) for _, d, s, _, _ in runs]
    boot = np.zeros((args.rounds, len(runs), 2))
    for r in range(args.rounds):
        pw = rng.poisson(1.0, len(val.images)).astype(np.float64)
        w = np.where(same, pw[a], pw[a] * pw[b])
        for k, (_, d, s, _, _) in enumerate(runs):
            boot[r, k] = scores(d, s, w)
    print(f"{len(val.images)} validation pictures, {args.rounds} resamples; 90% intervals\n")
    print("| model | F1 at precision-first threshold | interval | best F1 | interval |")
    print("|---|---|---|---|---|")
    for k, (name, *_) in enumerate(runs):
        print(f"| {args.model[k]} (`{name}`) | {point[k][0]:.3f} | {interval(boot[:, k, 0])} | "
              f"{point[k][1]:.3f} | {interval(boot[:, k, 1])} |")
    for k in range(1, len(runs)):
        diff = boot[:, k] - boot[:, 0]
        print(f"\n{args.model[k]} − {args.model[0]}: F1 at the default {point[k][0] - point[0][0]:+.3f} "
              f"{interval(diff[:, 0])} (higher in {np.mean(diff[:, 0] > 0):.0%} of resamples); best F1 "
              f"{point[k][1] - point[0][1]:+.3f} {interval(diff[:, 1])} (higher in {np.mean(diff[:, 1] > 0):.0%})")

    for ref, (_, d, same, _, _) in zip(args.model, runs) if args.copy_seeds else []:
        copy_seed_spread(ref, val, args.copy_seeds, d, same)


def copy_seed_spread(ref: str, val, k: int, d_calib: np.ndarray, same_calib: np.ndarray) -> None:
    """The precision-first threshold and F1 there on catalogs of copies drawn with seeds 1..k, and pooled
    (`d_calib`, `same_calib`: the pairs of the calibration seed's catalog, already computed)."""
    model = load_model(ref)
    ds, ys, cells = [], [], []
    for seed in range(1, k + 1):
        d, same = (d_calib, same_calib) if seed == CALIBRATION_SEED else calibration_pairs(model, val, seed)[:2]
        t = precision_threshold(d, same, TARGET_PRECISION)
        cells.append(f"{seed}: {t:.4f} (F1 {at_threshold(d, same, t).f1:.3f})")
        ds.append(d)
        ys.append(same)
    d, same = np.concatenate(ds), np.concatenate(ys)
    t = precision_threshold(d, same, TARGET_PRECISION)
    print(f"\n{ref}: precision-first threshold by copy seed: " + "; ".join(cells)
          + f"; pooled: {t:.4f} (F1 {at_threshold(d, same, t).f1:.3f})")


if __name__ == "__main__":
    main()
