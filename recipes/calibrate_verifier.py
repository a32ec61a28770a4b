"""Calibrate an encoder's second look at candidate pairs (`dedup.policy.CheckedPolicy`) on validation catalogs.

    python -m recipes.calibrate_verifier [--model dedup/weights/default.pt] [--seeds 1 2]
                                            [--candidates 0.8] [--raw] [--out MODEL] [--dry-run]

Writes `neardup.py`-style catalogs from the validation pool (never the test pool; one per seed),
indexes each with the model as a user would, and takes the pairs find-duplicates would check:
every pair under the encoder's threshold and each image's 20 nearest under `--candidates`
(`VerifyConfig.neighbours`). For each candidate, `dedup.keypoints` matches keypoints in the two files. A logistic
model over (distance, matches, share of keypoints matched, keypoints, and the distance less the
pair's background distance, `dedup.background`) is fitted (`dedup.calibrate.fit_candidates`,
numpy) to say which candidates are the same picture. Its acceptance cut is chosen precision
first, like the encoder's threshold: the lowest probability whose out-of-fold pair precision is
≥ 0.95 (`dedup.calibrate.TARGET_PRECISION`, or `--precision`; 2 folds split by picture). Only
pairs with enough agreeing keypoints can be accepted (`policy.required_inliers`: `--min-inliers`
beyond the encoder's own threshold, one for a close pair whose sparser picture has
`--veto-keypoints`), so the model is fitted and cut on the pairs that can. `--raw` stores the
check fitted without background distances (four features); both are reported. The fitted model
is stored in the model file (`meta["verify"]`); the weights and the model's identity do not
change.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from dedup.background import catalog_backgrounds, normalised, typical_background
from dedup.calibrate import TARGET_PRECISION, fit_candidates
from dedup.config import VERIFY_FEATURES, VerifyConfig
from dedup.index import Index
from dedup.keypoints import Matches, match_pairs
from dedup.metrics import best_f1_threshold
from dedup.model import load_model, save_model
from dedup.modelfile import model_file
from dedup.pairs import Pairs
from dedup.policy import CheckedPolicy, closer_look
from recipes.pool import indexed_catalog, true_pairs

ROOT = Path(__file__).resolve().parent.parent


def checked_candidates(index: Index, threshold: float, check: VerifyConfig) -> tuple[Pairs, Matches, Matches]:
    """The candidates find-duplicates checks in `index` (`CheckedPolicy.candidates`; `threshold`:
    the encoder's), their keypoint matches on the pictures the index stores, and those after
    `closer_look`."""
    pairs = CheckedPolicy(check, check.candidates, min(threshold, check.candidates)).candidates(
        index.faiss, index.vectors, within=True)
    matches = match_pairs(pairs, index.picture, check.side, check.keypoints)
    return pairs, matches, closer_look(pairs, matches, check, index.picture, threshold)


def candidate_table(model: Path, threshold: float, seed: int, originals: int, out: Path, check: VerifyConfig) -> dict:
    """Candidate pairs of one validation catalog with their keypoint matches, background
    distances (of every row, "rows", and each pair's normalised distance) and labels (`check`:
    the candidates, keypoint settings and gates; its weights are not used)."""
    truth = indexed_catalog(out, originals, seed, "val", model=model)
    index = Index.open(out / "index")
    paths = [str(p) for p in index.rows.path]
    true = true_pairs(truth, paths)
    pairs, matches, look = checked_candidates(index, threshold, check)
    i, j, d = pairs.i, pairs.j, pairs.d
    source = np.array([truth[p][0] for p in paths])
    same = np.array([(a, b) in true for a, b in zip(i.tolist(), j.tolist())])
    rows = catalog_backgrounds(index.vectors, threshold)
    return {"d": d, "matches": matches, "look": look, "same": same, "rows": rows, "normalised": normalised(d, rows[i], rows[j]),
            "fold": (source[i] * 2654435761 + seed) % 2, "true_pairs": len(true), "images": len(paths),
            "i": i, "j": j, "source": source}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=ROOT / "dedup" / "weights" / "default.pt")
    ap.add_argument("--out", type=Path, default=None, help="Model file to write (default: --model itself).")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2], help="One validation catalog per seed.")
    ap.add_argument("--originals", type=int, default=400)
    ap.add_argument("--candidates", type=float, default=0.8, help="Embedding distance under which pairs are checked.")
    ap.add_argument("--min-inliers", type=int, default=VerifyConfig.__dataclass_fields__["min_inliers"].default,
                    help="Agreeing keypoints needed beyond the encoder's threshold.")
    ap.add_argument("--veto-keypoints", type=int, default=VerifyConfig.__dataclass_fields__["veto_keypoints"].default,
                    help="Keypoints of the sparser picture from which a close pair needs one agreeing (0: never).")
    ap.add_argument("--keypoints", type=int, default=VerifyConfig.__dataclass_fields__["keypoints"].default,
                    help="ORB keypoints found per picture, at most (matching cost grows with the square).")
    ap.add_argument("--work", type=Path, default=Path("benchmarks/out/verify"))
    ap.add_argument("--precision", type=float, default=TARGET_PRECISION,
                    help="Out-of-fold pair precision the acceptance cut must reach.")
    ap.add_argument("--raw", action="store_true", help="Store the check fitted without background distances.")
    ap.add_argument("--dry-run", action="store_true", help="Report only; do not write the model file.")
    args = ap.parse_args()

    model = load_model(model_file(args.model))
    # Only pairs with enough agreeing keypoints can be accepted (`policy.required_inliers`, after
    # `closer_look`); the model is fitted and cut on those.
    gate = VerifyConfig(candidates=args.candidates, weights=(0.0,) * len(VERIFY_FEATURES), bias=0.0, keypoints=args.keypoints,
                        min_inliers=args.min_inliers, veto_keypoints=args.veto_keypoints)
    tables = [candidate_table(args.model, model.threshold, s, args.originals, args.work / f"seed{s}", gate)
              for s in args.seeds]
    cat = {k: np.concatenate([t[k] for t in tables]) for k in ("d", "same", "fold", "rows", "normalised")}
    matches, look = (Matches.concatenate([t[k] for t in tables]) for k in ("matches", "look"))
    y = cat["same"]
    n_true = sum(t["true_pairs"] for t in tables)
    print(f"{sum(t['images'] for t in tables)} images in {len(tables)} validation catalogs, {n_true} true pairs; "
          f"{len(y)} candidate pairs ({int(y.sum())} true)")

    fitted = {normalise: fit_candidates(gate, cat["d"], matches, look, y, cat["fold"], model.threshold,
                                        cat["normalised"] if normalise else None, typical_background(cat["rows"]),
                                        args.precision)
              for normalise in (False, True)}

    def scores(pred: np.ndarray) -> dict:
        tp = int((pred & y).sum())
        p, r = tp / max(int(pred.sum()), 1), tp / n_true
        return {"precision": round(p, 4), "recall": round(r, 4), "f1": round(2 * p * r / max(p + r, 1e-9), 4)}

    report = {
        "encoder alone at its threshold": scores(cat["d"] < model.threshold),
        "encoder alone, best threshold": scores(cat["d"] < best_f1_threshold(cat["d"], y)),
        "with the keypoint check, raw distances (out of fold)": scores(fitted[False][1]),
        "with the keypoint check (out of fold)": scores(fitted[True][1]),
    }
    print(json.dumps(report, indent=2))
    config = fitted[not args.raw][0]
    if config is None:
        raise SystemExit("too few pairs with agreeing keypoints to fit the check")
    print(f"acceptance cut (out-of-fold precision ≥ {args.precision}): {config.accept}")
    print("verify config:", json.dumps(config.to_dict()))
    if args.dry_run:
        return
    identity = model.identity
    model.meta["verify"] = config.to_dict()
    model.meta["verify_calibration"] = {"catalog_seeds": args.seeds, "images": sum(t["images"] for t in tables),
                                        "true_pairs": n_true, "candidates": len(y), **report}
    out = args.out or model_file(args.model)
    save_model(model, out)
    assert load_model(out).identity == identity
    print(f"wrote {out} ({identity})")


if __name__ == "__main__":
    main()
