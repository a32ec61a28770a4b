"""Near-duplicate benchmark: the default encoder against perceptual hashes on a held-out catalog.

    python benchmarks/neardup.py [--originals 700] [--seed 0] [--out benchmarks/out/neardup]

Builds a catalog from the held-out test pool (`benchmarks/pool.py`; never used in training or
calibration), without blank drawings and pictures that are pixel-identical to another pool image
(`pool.distinct`; they would be duplicates labelled as different): every original is written once, about half get 1–3 near-duplicates made with
`dedup.augment.duplicate` (each labelled with its edit family), the rest are distractors. Then
runs `dedup index` and `dedup find-duplicates --format json` at the default threshold exactly as
a user would, and scores pairs (two files are a true pair when they come from the same original).
In the same run: imagehash's pHash, dHash and wHash with the Hamming threshold swept, sets closed
the same way; and find-duplicates' pair scores for center vs single linkage across thresholds.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from pool import distinct, pool_files  # noqa: E402

from dedup.augment import duplicate, flatten  # noqa: E402
from dedup.cluster import group_pairs  # noqa: E402
from dedup.data import open_rgba  # noqa: E402
from dedup.metrics import roc_auc  # noqa: E402
from dedup.modelfile import shipped_model_path  # noqa: E402
from dedup.search import Pairs  # noqa: E402
from dedup.store import read_embeddings, read_manifest, read_rows  # noqa: E402

SHIPPED = ("default", "seed")  # the shipped encoders, compared in one run by default


def build_catalog(out: Path, originals: int, seed: int, part: str = "test") -> dict[str, tuple[int, str]]:
    """Write the catalog from pool `part`; return {relative path: (source id, family or "original")}."""
    rng = np.random.default_rng(seed)
    loaded = []
    for k, path in enumerate(pool_files()[part]):
        try:
            loaded.append((k, open_rgba(path.read_bytes(), 512)))
        except Exception:  # noqa: BLE001 - a pool file PIL refuses is simply not used
            continue
    usable = [loaded[i] for i in distinct([im for _, im in loaded])]
    picks = sorted(rng.choice(len(usable), size=min(originals, len(usable)), replace=False).tolist())
    truth: dict[str, tuple[int, str]] = {}
    (out / "catalog").mkdir(parents=True, exist_ok=True)
    for pick in picks:
        src, im = usable[pick]
        name = f"o{src:05d}"
        flatten(im).save(out / "catalog" / f"{name}.jpg", quality=92)
        truth[f"{name}.jpg"] = (src, "original")
        if rng.random() < 0.5:
            for k in range(int(rng.integers(1, 4))):
                dup, family = duplicate(im, rng)
                ext = ["jpg", "png", "webp"][int(rng.integers(0, 3))]
                rel = f"{name}_d{k}.{ext}"
                dup.save(out / "catalog" / rel, **({"quality": 85} if ext != "png" else {}))
                truth[rel] = (src, family)
    return truth


def true_pairs(truth: dict[str, tuple[int, str]], paths: list[str]) -> set[tuple[int, int]]:
    by_src = defaultdict(list)
    for k, p in enumerate(paths):
        by_src[truth[p][0]].append(k)
    return {(a, b) for ids in by_src.values() for i, a in enumerate(ids) for b in ids[i + 1 :]}


def group_pair_set(groups: list[list[int]]) -> set[tuple[int, int]]:
    return {(min(a, b), max(a, b)) for g in groups for i, a in enumerate(g) for b in g[i + 1 :]}


def prf(pred: set, true: set) -> tuple[float, float, float]:
    tp = len(pred & true)
    p = tp / len(pred) if pred else 1.0
    r = tp / len(true) if true else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def family_recall(pred: set, truth: dict, paths: list[str]) -> dict[str, float]:
    """Per edit family: share of (original, duplicate) pairs predicted (combinations pooled)."""
    index = {p: k for k, p in enumerate(paths)}
    orig = {src: index[p] for p, (src, fam) in truth.items() if fam == "original"}
    hits, totals = defaultdict(int), defaultdict(int)
    for p, (src, fam) in truth.items():
        if fam == "original":
            continue
        key = fam if "+" not in fam else "combination"
        a, b = sorted((orig[src], index[p]))
        totals[key] += 1
        hits[key] += (a, b) in pred
    return {k: hits[k] / totals[k] for k in sorted(totals)}


def all_pair_distances(emb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    iu = np.triu_indices(len(emb), 1)
    d = np.sqrt(np.maximum(2 - 2 * (emb @ emb.T)[iu], 0))
    return iu[0], iu[1], d


def groups_at(i, j, d, n, threshold, rank, linkage="center") -> list[list[int]]:
    keep = d < threshold
    order = np.lexsort((j[keep], i[keep]))
    pairs = Pairs(i[keep][order].astype(np.int64), j[keep][order].astype(np.int64), d[keep][order].astype(np.float32))
    return [g.tolist() for g in group_pairs(n, pairs, rank, linkage)]


def hash_scores(catalog: Path, paths: list[str], true: set, kinds=("phash", "dhash", "whash")) -> dict:
    import imagehash
    from PIL import Image

    out = {}
    rank = np.arange(len(paths))
    for kind in kinds:
        fn = getattr(imagehash, kind)
        start = time.perf_counter()
        bits = np.array([fn(Image.open(catalog / p)).hash.ravel() for p in paths], dtype=np.uint8)
        seconds = time.perf_counter() - start
        i, j = np.triu_indices(len(paths), 1)
        ham = np.zeros(len(i), dtype=np.int32)
        for s in range(0, len(i), 2_000_000):
            ham[s : s + 2_000_000] = (bits[i[s : s + 2_000_000]] != bits[j[s : s + 2_000_000]]).sum(1)
        best = None
        for t in range(1, 33):
            pred = group_pair_set(groups_at(i, j, ham.astype(np.float32), len(paths), t + 0.5, rank))
            p, r, f = prf(pred, true)
            if best is None or f > best["f1"]:
                best = {"hamming": t, "precision": p, "recall": r, "f1": f, "pred": pred}
        y = np.array([(a, b) in true for a, b in zip(i.tolist(), j.tolist())])
        best["auc"] = roc_auc(ham.astype(np.float64), y)
        best["images_per_s"] = len(paths) / seconds
        out[kind] = best
    return out


def score_model(model: str, out: Path, truth: dict, index: Path) -> dict:
    """Index the catalog with `model` into `index` and score `find-duplicates` at its default threshold, as a user
    runs them."""
    catalog = out / "catalog"
    dedup = [sys.executable, "-m", "dedup"]
    start = time.perf_counter()
    subprocess.run([*dedup, "index", str(catalog), "--index", str(index), "-q", "--model", model], check=True)
    index_s = time.perf_counter() - start
    manifest = read_manifest(index)
    paths = [str(p) for p in read_rows(index, manifest)["path"]]
    pos = {p: k for k, p in enumerate(paths)}
    true = true_pairs(truth, paths)

    def find(*extra: str) -> tuple[dict, set, float]:
        start = time.perf_counter()
        found = json.loads(subprocess.run([*dedup, "find-duplicates", "--index", str(index), "--format", "json", "-q", *extra],
                                          check=True, capture_output=True, text=True).stdout)
        return found, group_pair_set([[pos[m["path"]] for m in g["members"]] for g in found["groups"]]), time.perf_counter() - start

    found, pred, find_s = find()
    plain, plain_pred, plain_s = find("--no-verify")
    i, j, d = all_pair_distances(read_embeddings(index, manifest))
    y = np.array([(a, b) in true for a, b in zip(i.tolist(), j.tolist())])
    rank = np.arange(len(paths))
    sweep = []
    for t in np.round(np.arange(0.1, 1.01, 0.05), 2):
        row = {"t": float(t)}
        for link in ("center", "single"):
            row[link] = prf(group_pair_set(groups_at(i, j, d, len(paths), t, rank, link)), true)
        sweep.append(row)
    return {"model": model, "paths": paths, "true": true, "prf": prf(pred, true), "auc": roc_auc(d, y),
            "threshold": found["threshold"], "linkage": found["linkage"], "speed": len(paths) / index_s,
            "verified": found.get("verified"), "find_s": find_s, "plain_s": plain_s, "index_s": index_s,
            "plain": {"prf": prf(plain_pred, true), "threshold": plain["threshold"], "linkage": plain["linkage"],
                      "families": family_recall(plain_pred, truth, paths)},
            "sweep": sweep, "best": max(sweep, key=lambda r: r["center"][2]),
            "families": family_recall(pred, truth, paths)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--originals", type=int, default=700)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/out/neardup"))
    ap.add_argument("--model", action="append", default=None,
                    help="Encoder to benchmark (a shipped name or a file); repeat to compare several. "
                         "Default: every shipped encoder (default, seed).")
    args = ap.parse_args()
    models = args.model or [m for m in SHIPPED if shipped_model_path(m).is_file()]
    out = args.out.resolve()
    if out.exists():
        subprocess.run(["rm", "-rf", str(out)], check=True)
    truth = build_catalog(out, args.originals, args.seed)
    runs = [score_model(m, out, truth, out / ("index" if k == 0 else f"index_{k}")) for k, m in enumerate(models)]
    main_run, paths, true = runs[0], runs[0]["paths"], runs[0]["true"]
    for run in runs:
        v = run["verified"]
        print(f"{run['model']}: find-duplicates {run['find_s']:.1f} s with the keypoint check "
              + (f"({v['confirmed']} of {v['candidates']} close pairs confirmed, {v['unreadable']} unreadable)"
                 if v else "(not calibrated for this encoder: not run)")
              + f", {run['plain_s']:.1f} s with --no-verify; dedup index {run['index_s']:.1f} s "
              f"(ratios {run['find_s'] / run['index_s']:.2f} and {run['plain_s'] / run['index_s']:.2f})")
    # one row per encoder and mode: the default (with the keypoint check) and --no-verify
    runs = [row for run in runs for row in (run, {**run, **run["plain"], "model": f"{run['model']} --no-verify"})]
    n_dups = sum(1 for v in truth.values() if v[1] != "original")
    print(f"catalog: {len(paths)} images ({len(paths) - n_dups} originals, {n_dups} near-duplicates), {len(true)} true pairs")
    print("\n## dedup at each encoder's default threshold (`dedup index` + `find-duplicates`, as a user runs them)")
    print("| encoder | threshold | linkage | precision | recall | F1 | best F1 (sweep, center) | pair ROC-AUC | index images/s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for run in runs:
        p, r, f = run["prf"]
        print(f"| {run['model']} | {run['threshold']:.4f} | {run['linkage']} | {p:.4f} | {r:.4f} | {f:.4f} | "
              f"{run['best']['center'][2]:.4f} at {run['best']['t']} | {run['auc']:.4f} | {run['speed']:.0f} |")
    hashes = hash_scores(out / "catalog", paths, true)
    print("\n## per edit family recall (original–duplicate pairs)")
    hash_fams = {k: family_recall(v["pred"], truth, paths) for k, v in hashes.items()}
    print("| family | pairs | " + " | ".join(run["model"] for run in runs) + " | "
          + " | ".join(f"{k} (best)" for k in hashes) + " |")
    print("|---|---|" + "---|" * (len(runs) + len(hashes)))
    counts = defaultdict(int)
    for _, fam in truth.values():
        if fam != "original":
            counts[fam if "+" not in fam else "combination"] += 1
    for fam in main_run["families"]:
        print(f"| {fam} | {counts[fam]} | " + " | ".join(f"{run['families'][fam]:.3f}" for run in runs) + " | "
              + " | ".join(f"{hash_fams[k][fam]:.3f}" for k in hashes) + " |")
    print("\n## perceptual hashes (best Hamming threshold of 1..32, same set closing)")
    print("| method | threshold | precision | recall | F1 | pair ROC-AUC | images/s |")
    print("|---|---|---|---|---|---|---|")
    for run in runs:
        p, r, f = run["prf"]
        print(f"| dedup {run['model']} (default threshold) | {run['threshold']:.3f} | {p:.4f} | {r:.4f} | {f:.4f} | "
              f"{run['auc']:.4f} | {run['speed']:.0f} (index) |")
    for k, v in hashes.items():
        print(f"| {k} | {v['hamming']} | {v['precision']:.4f} | {v['recall']:.4f} | {v['f1']:.4f} | {v['auc']:.4f} | {v['images_per_s']:.0f} |")
    best_hash = max(v["f1"] for v in hashes.values())
    print()
    for run in runs:
        print(f"F1 margin over the best perceptual hash ({run['model']}): {run['prf'][2] - best_hash:+.4f}")
    print(f"\n## linkage ({main_run['model']}, embedding distance alone): pair precision / recall / F1 by threshold")
    print("| threshold | center P | center R | center F1 | single P | single R | single F1 |")
    print("|---|---|---|---|---|---|---|")
    for row in main_run["sweep"]:
        c, s = row["center"], row["single"]
        print(f"| {row['t']:.2f} | {c[0]:.4f} | {c[1]:.4f} | {c[2]:.4f} | {s[0]:.4f} | {s[1]:.4f} | {s[2]:.4f} |")


if __name__ == "__main__":
    main()
