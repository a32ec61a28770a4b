"""Look-alike series on validation catalogs: what the pair check's detail and colourway test
(`dedup.details`) tells apart, and what it costs.

    python -m benchmarks.details [--seeds 1 2 3 4] [--originals 300] [--series 60] [--model M] [--out benchmarks/out/details]
    python -m benchmarks.details --part train --seeds 11 --originals 1500 --series 0 --out benchmarks/out/lookalikes

Writes catalogs from the validation pool (`recipes.pool.build_catalog(part="val")`, never the
test pool) with look-alike series, indexes each with the encoder (`--model`, default: the shipped
one) as a user would, and judges the candidate pairs find-duplicates would check. Of the pairs the
keypoints confirm, counts those told apart, by kind: true pairs (one item and its copy), two items
of one series, other different pictures. The test's bounds were chosen on seeds 1–2; seeds 3
onwards judge them. Then the pairs find-duplicates keeps, by kind, with precision on all pairs and
on the series pairs: the validation figures by which encoders are compared.

`--part train` draws the catalog from the training pool instead: it holds many more real
look-alike drawings (icon sets, flags, cards) than the validation pool's ~330 pictures, so it shows
what the pair check does with different drawings that share most of their keypoints. The
encoder was trained on these drawings (its distances between them are larger than between unseen
ones); the pair check and the detail test were not. Never the test pool.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from dedup.duplicates import index_policy
from dedup.index import Index
from recipes.pool import indexed_catalog, series_template, true_pairs

KINDS = ("true", "series", "other")


def kinds(true: set, template: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Per pair (i, j): "true" (in `true`), "series" (two items of one series template), or "other"."""
    series = (template[i] >= 0) & (template[i] == template[j])
    same = np.array([(a, b) in true for a, b in zip(i.tolist(), j.tolist())], bool)
    return np.where(same, "true", np.where(series, "series", "other"))


def judge(out: Path, seed: int, originals: int, series: int, model: Path | None = None, part: str = "val",
          heavy: int = 0) -> dict:
    truth = indexed_catalog(out, originals, seed, part, series=series, model=model, heavy=heavy)
    index = Index.open(out / "index")
    paths = [str(p) for p in index.rows.path]
    policy = index_policy(index)
    pairs = policy.candidates(lambda: index.faiss, index.vectors, within=True)
    start = time.perf_counter()
    decision = policy.decide(pairs, index.picture, vectors=index.vectors, background=policy.backgrounds(index.vectors, pairs))
    seconds = time.perf_counter() - start
    true = true_pairs(truth, paths)
    template = series_template([truth[p][0] for p in paths])
    kind = kinds(true, template, pairs.i, pairs.j)
    in_series = (template[pairs.i] >= 0) & (template[pairs.j] >= 0)
    confirmed = decision.keep | decision.told_apart
    row = {"seed": seed, "images": len(paths), "candidates": len(pairs), "check_s": round(seconds, 2),
           "true pairs": len(true)}
    for k in KINDS:
        row[f"{k}: confirmed by keypoints"] = int((confirmed & (kind == k)).sum())
        row[f"{k}: told apart"] = int((decision.told_apart & (kind == k)).sum())
        row[f"{k}: kept"] = int((decision.keep & (kind == k)).sum())
    original = np.array([truth[p][1] == "original" for p in paths])
    row["other: kept, two originals"] = int((decision.keep & (kind == "other") & original[pairs.i] & original[pairs.j]).sum())
    row["series files: true kept"] = int((decision.keep & in_series & (kind == "true")).sum())
    row["series files: different kept"] = int((decision.keep & in_series & (kind != "true")).sum())
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4])
    ap.add_argument("--originals", type=int, default=300)
    ap.add_argument("--series", type=int, default=60)
    ap.add_argument("--heavy", type=int, default=0, help="Originals that also get a copy with a heavy edit.")
    ap.add_argument("--model", type=Path, default=None, help="Encoder file (default: the shipped one).")
    ap.add_argument("--part", choices=("val", "train"), default="val", help="Pool the catalogs are drawn from.")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/out/details"))
    args = ap.parse_args()
    rows = [judge(args.out / f"seed{s}", s, args.originals, args.series, args.model, args.part, args.heavy) for s in args.seeds]
    for row in rows:
        print(json.dumps(row))
    print("| seeds | true pairs told apart | series pairs told apart | other different pairs told apart |")
    print("|---|---|---|---|")
    groups = ((("1–2 (chose the bounds)", [r for r in rows if r["seed"] <= 2]),
               ("3+ (judge them)", [r for r in rows if r["seed"] > 2])) if args.part == "val"
              else (("all (training pool)", rows),))
    for name, part in groups:
        if part:
            cells = [f"{sum(r[f'{k}: told apart'] for r in part)} of {sum(r[f'{k}: confirmed by keypoints'] for r in part)}"
                     for k in KINDS]
            print(f"| {name} | " + " | ".join(cells) + " |")
    print("\n| seed | pairs kept: true / series / other (two originals) | recall | precision | series files: true / different kept "
          "| series precision |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        kept = [row[f"{k}: kept"] for k in KINDS]
        st, sf = row["series files: true kept"], row["series files: different kept"]
        print(f"| {row['seed']} | {' / '.join(map(str, kept))} ({row['other: kept, two originals']}) | "
              f"{kept[0] / row['true pairs']:.4f} | "
              f"{kept[0] / max(sum(kept), 1):.4f} | {st} / {sf} | {st / max(st + sf, 1):.4f} |")


if __name__ == "__main__":
    main()
