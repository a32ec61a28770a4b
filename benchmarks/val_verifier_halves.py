"""How well the keypoint check's calibration carries over to drawings it was not fitted on.

    python benchmarks/val_verifier_halves.py [--fit-seeds 1 2] [--eval-seeds 3 4 5 6]
                                             [--work benchmarks/out/verify]

Every validation catalog (`calibrate_verifier.candidate_table`, one per seed) holds nearly all of
the 402-picture validation pool, so the catalogs that fit the check and the catalogs that judge
it share their originals: the same look-alike pairs (two cards of one deck) are in both, and
scores on the judging catalogs flatter the check. Here the validation pool is split in two
halves by runs of 25 consecutive pool files (so that a series of drawings from one folder mostly
stays in one half). The check is fitted and cut as `calibrate_verifier.py` does, on the fitting
catalogs' pairs within one half, and judged on the judging catalogs cut down to the other half:
duplicate sets with complete linkage, pair scores. Then the other way round; counts add up over
both. In the same run, the shipped check (fitted on all the validation pictures) on the same
half catalogs, for contrast.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from calibrate_verifier import ROOT, candidate_table, fit_check  # noqa: E402

from dedup.cluster import group_pairs  # noqa: E402
from dedup.config import VerifyConfig  # noqa: E402
from dedup.model import load_model, model_file  # noqa: E402
from dedup.search import Pairs  # noqa: E402
from dedup.verify import accepted, evidence, features  # noqa: E402

RUN = 25  # consecutive pool files per block of the split


def half_of(source: np.ndarray) -> np.ndarray:
    return (np.asarray(source) // RUN) % 2


def set_scores(table: dict, keep: np.ndarray, half: int) -> np.ndarray:
    """(true pairs found, pairs found, true pairs) of the catalog cut down to `half`'s pictures,
    grouped from the kept pairs with complete linkage."""
    rows = half_of(table["source"]) == half
    inside = rows[table["i"]] & rows[table["j"]] & keep
    n = len(table["source"])
    pairs = Pairs(table["i"][inside].astype(np.int64), table["j"][inside].astype(np.int64),
                  table["d"][inside].astype(np.float32))
    groups = group_pairs(n, pairs, np.arange(n), "complete")
    src = table["source"]
    found = [(a, b) for g in groups for k, a in enumerate(g.tolist()) for b in g.tolist()[k + 1:]]
    _, sizes = np.unique(src[rows], return_counts=True)
    return np.array([sum(src[a] == src[b] for a, b in found), len(found), int((sizes * (sizes - 1) // 2).sum())])


def prf(counts: np.ndarray) -> str:
    p, r = counts[0] / max(counts[1], 1), counts[0] / max(counts[2], 1)
    return f"| {p:.3f} | {r:.3f} | {2 * p * r / max(p + r, 1e-9):.3f} |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=ROOT / "dedup" / "weights" / "default.pt")
    ap.add_argument("--fit-seeds", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--eval-seeds", type=int, nargs="+", default=[3, 4, 5, 6])
    ap.add_argument("--originals", type=int, default=400)
    ap.add_argument("--work", type=Path, default=Path("benchmarks/out/verify"))
    args = ap.parse_args()

    model = load_model(model_file(args.model))
    shipped = VerifyConfig.from_dict(model.meta["verify"])
    tables = {s: candidate_table(args.model, model.threshold, s, args.originals, args.work / f"seed{s}", shipped)
              for s in dict.fromkeys(args.fit_seeds + args.eval_seeds)}
    for t in tables.values():  # the check's inputs, whether it may accept the pair at all, the shipped verdict
        t["x"], t["eligible"] = features(t["d"], t["matches"]), evidence(shipped, t["d"], t["look"], model.threshold)
        t["shipped"] = accepted(shipped, t["d"], t["matches"], model.threshold, t["look"])

    fitted, reference, rows = np.zeros(3, np.int64), np.zeros(3, np.int64), []
    for half in (0, 1):
        fit = [tables[s] for s in args.fit_seeds]
        within = [(half_of(t["source"])[t["i"]] == half) & (half_of(t["source"])[t["j"]] == half) for t in fit]
        x, eligible, y, fold = (np.concatenate([col[w] for col, w in zip(cols, within)]) for cols in (
            [t["x"] for t in fit], [t["eligible"] for t in fit], [t["same"] for t in fit],
            [(t["source"][t["i"]] // (2 * RUN)) % 2 for t in fit]))
        check, accept, _ = fit_check(x, y, eligible, fold)
        mine, theirs = np.zeros(3, np.int64), np.zeros(3, np.int64)
        for s in args.eval_seeds:
            t = tables[s]
            mine += set_scores(t, t["eligible"] & (check.predict_proba(t["x"])[:, 1] >= accept), 1 - half)
            theirs += set_scores(t, t["shipped"], 1 - half)
        rows.append(f"| fitted on half {half} ({len(y)} candidates, {int(y.sum())} true; cut {accept}), "
                    f"judged on half {1 - half} {prf(mine)}")
        rows.append(f"| shipped, judged on half {1 - half} {prf(theirs)}")
        fitted, reference = fitted + mine, reference + theirs
    print("\n| check (judging catalogs " + ", ".join(map(str, args.eval_seeds)) +
          ") | precision | recall | F1 |\n|---|---|---|---|")
    print("\n".join(rows))
    print(f"| **fitted on one half, judged on the other, both ways** {prf(fitted)}")
    print(f"| **shipped (fitted on both halves), same catalogs** {prf(reference)}")


if __name__ == "__main__":
    main()
