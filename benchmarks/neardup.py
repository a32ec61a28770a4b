"""Near-duplicate benchmark: the default encoder against perceptual hashes on a held-out catalog.

    python -m benchmarks.neardup [--originals 700] [--seed 0] [--series 35] [--heavy 100] [--out benchmarks/out/neardup]

Builds a catalog from the held-out test pool (`recipes/pool.py`; never used in training or
calibration), without blank drawings and pictures that are pixel-identical to another pool image
(`pool.distinct`; they would be duplicates labelled as different): every original is written once, about half get 1–3 near-duplicates made with
`dedup.augment.duplicate` (each labelled with its edit family), the rest are distractors. Then
runs `dedup index` and `dedup find-duplicates --format json` at the default threshold exactly as
a user would (also with `--no-verify`, and with `--nothing-differs` when the model has the pair
check), and scores pairs (two files are a true pair when they come from the same original).
In the same run: imagehash's pHash, dHash and wHash with the Hamming threshold swept, sets closed
the same way; and find-duplicates' pair scores for center vs single linkage across thresholds.
The catalog also holds look-alike series (`dedup.augment.series`: one clip-art drawing as three
different items, with another letter on a badge or in another colourway), scored on their own:
a pair joining two items of a series is a false pair. And one original in seven gets a copy with a
heavy edit (`dedup.augment.HEAVY_FAMILIES`: a crop of a fifth to under half of it, or the picture
pasted onto a busier one), each scored as its own family.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np

from dedup.cluster import group_pairs
from dedup.index import Index
from dedup.metrics import roc_auc
from dedup.modelfile import shipped_model_path
from dedup.pairs import Pairs
from recipes.pool import SERIES_PREFIX, build_catalog, true_pairs

SHIPPED = ("default", "seed")  # the shipped encoders, compared in one run by default


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


def keeper_scores(groups: list[dict], truth: dict) -> dict:
    """Of the reported sets that hold an original together with a copy of it, those whose
    suggested keeper is a copy rather than the original, by the copy's edit family."""
    sets, kept = 0, defaultdict(int)
    for g in groups:
        members = [m["path"] for m in g["members"]]
        sources = {truth[p][0] for p in members if truth[p][1] == "original"}
        if not any(truth[p][0] in sources and truth[p][1] != "original" for p in members):
            continue
        sets += 1
        src, family = truth[g["keep"]]
        if family != "original" and src in sources:
            kept[family] += 1
    return {"sets": sets, "copy_kept": sum(kept.values()), "families": dict(sorted(kept.items(), key=lambda kv: -kv[1]))}


def all_pair_distances(emb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    iu = np.triu_indices(len(emb), 1)
    d = np.sqrt(np.maximum(2 - 2 * (emb @ emb.T)[iu], 0))
    return iu[0], iu[1], d


def groups_at(i, j, d, n, threshold, rank, linkage="center") -> list[list[int]]:
    keep = d < threshold
    order = np.lexsort((j[keep], i[keep]))
    pairs = Pairs(i[keep][order].astype(np.int64), j[keep][order].astype(np.int64), d[keep][order].astype(np.float32))
    return [g.tolist() for g in group_pairs(n, pairs, rank, linkage)]


def series_scores(pred: set, true: set, paths: list[str]) -> dict:
    """Scores on the look-alike series alone: pairs between two series files (their items and
    the items' near-duplicates); a predicted pair there that is not true joins different items."""
    inside = {k for k, p in enumerate(paths) if p.startswith(SERIES_PREFIX)}
    pred_s = {(a, b) for a, b in pred if a in inside and b in inside}
    true_s = {(a, b) for a, b in true if a in inside and b in inside}
    p, r, f = prf(pred_s, true_s)
    return {"precision": p, "recall": r, "f1": f, "predicted": len(pred_s), "false": len(pred_s - true_s)}


def modes_of(run: dict, hashes: dict) -> list[tuple[str, set]]:
    """The reported pairs of each way of running a catalog (`score_model`'s `run`): at the defaults,
    `--no-verify`, `--nothing-differs` when the check ran, and pHash at its best threshold."""
    modes = [("default", run["pred"]), ("--no-verify", run["plain"]["pred"])]
    modes += [("--nothing-differs", run["sure"]["pred"])] if run["sure"] else []
    return modes + [("phash (best threshold)", hashes["phash"]["pred"])]


def wrong_by_kind(pred: set, true: set, kind: str, of_kind: Callable[[int, int], bool]) -> dict[str, int]:
    """The reported pairs that join different items: those of `kind` (`of_kind(a, b)`), and the other."""
    out = {kind: 0, "other": 0}
    for a, b in pred - true:
        out[kind if of_kind(a, b) else "other"] += 1
    return out


def wrong_pair_rows(run: dict, hashes: dict, wrong_of: Callable[[set], dict[str, int]]) -> dict[str, dict]:
    """Each of `modes_of`'s ways scored, with its wrong pairs by kind (`wrong_of(pairs)`, the same
    kinds in the same order for every way), printed as a table; the rows by way (`write_modes`)."""
    rows = {}
    for mode, pred in modes_of(run, hashes):
        p, r, f = prf(pred, run["true"])
        wrong = wrong_of(pred)
        if not rows:
            first, *rest = wrong
            print("| mode | reported pairs | precision | recall | F1 | " + " | ".join([f"wrong: {first}", *rest]) + " |")
            print("|---|---|---|---|---|" + "---|" * len(wrong))
        rows[mode] = {"pairs": len(pred), "precision": round(p, 4), "recall": round(r, 4), "f1": round(f, 4), "wrong": wrong}
        print(f"| {mode} | {len(pred)} | {p:.4f} | {r:.4f} | {f:.4f} | " + " | ".join(str(v) for v in wrong.values()) + " |")
    return rows


def scored_catalog(model: str, out: Path, build: Callable[[Path], dict]) -> tuple[dict, dict, dict]:
    """A catalog built afresh into `out` by `build(out)` (which returns its truth), indexed and
    run as a user would (`score_model`), and pHash on it: (truth, run, hashes)."""
    if out.exists():
        shutil.rmtree(out)
    truth = build(out)
    run = score_model(model, out, truth, out / "index")
    return truth, run, hash_scores(out / "catalog", run["paths"], run["true"], kinds=("phash",))


def write_modes(path: Path, benchmark: str, command: str, model: str, rows: dict, run: dict, recall_key: str,
                **fields) -> None:
    """A catalog benchmark's figures as JSON at `path`: what ran, `fields`, each mode's row of
    `rows` (keyed as `modes_of` names them) and the recall by edit under `recall_key`."""
    doc = {"benchmark": benchmark, "command": command, "date": time.strftime("%Y-%m-%d"), "machine": f"{os.cpu_count()}-core CPU",
           "model": model, **fields,
           "with_check": rows["default"], "encoder_alone": rows["--no-verify"], "phash": rows["phash (best threshold)"],
           **({"nothing_differs": rows["--nothing-differs"]} if "--nothing-differs" in rows else {}),
           recall_key: {k: round(v, 3) for k, v in run["families"].items()}}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2) + "\n")


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
    opened = Index.open(index)
    paths = [str(p) for p in opened.rows.path]
    pos = {p: k for k, p in enumerate(paths)}
    true = true_pairs(truth, paths)

    def find(*extra: str) -> tuple[dict, set, float]:
        start = time.perf_counter()
        found = json.loads(subprocess.run([*dedup, "find-duplicates", "--index", str(index), "--format", "json", "-q", *extra],
                                          check=True, capture_output=True, text=True).stdout)
        return found, group_pair_set([[pos[m["path"]] for m in g["members"]] for g in found["groups"]]), time.perf_counter() - start

    found, pred, find_s = find()
    plain, plain_pred, plain_s = find("--no-verify")
    sure = None
    if found.get("verified"):  # only the sets where nothing differs from the keeper
        sure_found, sure_pred, _ = find("--nothing-differs")
        sure = {"pred": sure_pred, "prf": prf(sure_pred, true), "sets": len(sure_found["groups"]),
                "series": series_scores(sure_pred, true, paths), "families": family_recall(sure_pred, truth, paths)}
    i, j, d = all_pair_distances(opened.vectors)
    y = np.array([(a, b) in true for a, b in zip(i.tolist(), j.tolist())])
    rank = np.arange(len(paths))
    sweep = []
    for t in np.round(np.arange(0.1, 1.01, 0.05), 2):
        row = {"t": float(t)}
        for link in ("center", "single"):
            row[link] = prf(group_pair_set(groups_at(i, j, d, len(paths), t, rank, link)), true)
        sweep.append(row)
    return {"model": model, "paths": paths, "true": true, "pred": pred, "prf": prf(pred, true), "auc": roc_auc(d, y),
            "threshold": found["threshold"], "linkage": found["linkage"], "speed": len(paths) / index_s,
            "verified": found.get("verified"), "find_s": find_s, "plain_s": plain_s, "index_s": index_s,
            "plain": {"pred": plain_pred, "prf": prf(plain_pred, true), "threshold": plain["threshold"], "linkage": plain["linkage"],
                      "families": family_recall(plain_pred, truth, paths), "series": series_scores(plain_pred, true, paths)},
            "sure": sure, "sweep": sweep, "best": max(sweep, key=lambda r: r["center"][2]), "keepers": keeper_scores(found["groups"], truth),
            "families": family_recall(pred, truth, paths), "series": series_scores(pred, true, paths)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--originals", type=int, default=700)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--series", type=int, default=None,
                    help="Clip-art templates made into look-alike series of 3 different items (default: originals / 20).")
    ap.add_argument("--heavy", type=int, default=None,
                    help="Originals that also get a copy with a heavy edit (default: originals / 7).")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/out/neardup"))
    ap.add_argument("--json", type=Path, default=Path("benchmarks/results/neardup.json"),
                    help="Where the headline figures go (the model card and README are generated from them).")
    ap.add_argument("--model", action="append", default=None,
                    help="Encoder to benchmark (a shipped name or a file); repeat to compare several. "
                         "Default: every shipped encoder (default, seed).")
    args = ap.parse_args()
    models = args.model or [m for m in SHIPPED if shipped_model_path(m).is_file()]
    out = args.out.resolve()
    if out.exists():
        subprocess.run(["rm", "-rf", str(out)], check=True)
    args.series = args.originals // 20 if args.series is None else args.series
    args.heavy = args.originals // 7 if args.heavy is None else args.heavy
    truth = build_catalog(out, args.originals, args.seed, series=args.series, heavy=args.heavy)
    (out / "truth.json").write_text(json.dumps(truth))  # {catalog path: (source id, edit family)}, for analyses
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
    runs = [row for run in runs for row in (run, {**run, **run["plain"], "model": f"{run['model']} --no-verify"},
                                            *([{**run, **run["sure"], "model": f"{run['model']} --nothing-differs"}]
                                              if run["sure"] else []))]
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
    n_series = sum(1 for p in paths if p.startswith(SERIES_PREFIX))
    print(f"\n## look-alike series ({args.series} templates, 3 different items each; {n_series} files with their "
          "near-duplicates): pairs between two series files")
    print("| method | predicted pairs | joining different items | precision | recall |")
    print("|---|---|---|---|---|")
    for name, sc in [(f"dedup {run['model']}", run["series"]) for run in runs] + \
                    [(f"{k} (best)", series_scores(v["pred"], true, paths)) for k, v in hashes.items()]:
        print(f"| {name} | {sc['predicted']} | {sc['false']} | {sc['precision']:.4f} | {sc['recall']:.4f} |")
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
    write_figures(args, main_run, runs[1], hashes, paths, n_dups, len(true))


def write_figures(args, checked: dict, plain: dict, hashes: dict, paths: list, n_dups: int, n_true: int) -> None:
    """The headline figures of the first encoder, for `python -m recipes.model_card`."""
    def scores(prf3) -> dict:
        return dict(zip(("precision", "recall", "f1"), (round(v, 4) for v in prf3)))

    best = max(hashes, key=lambda k: hashes[k]["f1"])
    doc = {
        "benchmark": "neardup", "command": "python -m benchmarks.neardup" + (f" --originals {args.originals}" if args.originals != 700 else "")
        + (f" --seed {args.seed}" if args.seed else ""),
        "date": time.strftime("%Y-%m-%d"), "machine": f"{os.cpu_count()}-core CPU", "model": checked["model"],
        "catalog": {"images": len(paths), "originals": len(paths) - n_dups, "near_duplicates": n_dups, "true_pairs": n_true,
                    "heavy_copies": args.heavy},
        "threshold": round(checked["threshold"], 4), "pair_auc": round(checked["auc"], 4),
        "with_check": {**scores(checked["prf"]), "linkage": checked["linkage"]},
        "encoder_alone": {**scores(plain["prf"]), "threshold": round(plain["threshold"], 4)},
        **({"nothing_differs": {**scores(checked["sure"]["prf"]), "sets": checked["sure"]["sets"],
                                "series_false": checked["sure"]["series"]["false"],
                                "series_predicted": checked["sure"]["series"]["predicted"]}} if checked.get("sure") else {}),
        "families": {k: round(v, 3) for k, v in checked["families"].items()},
        "series": {"templates": args.series, **{k: round(v, 4) for k, v in checked["series"].items()}},
        "keepers": checked["keepers"],
        "best_hash": {"method": best, "hamming": hashes[best]["hamming"], **scores((hashes[best][k] for k in ("precision", "recall", "f1")))},
        "index_images_per_s": round(checked["speed"]),
        "find_over_index_time": round(checked["find_s"] / checked["index_s"], 2),
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {args.json}", file=sys.stderr)


if __name__ == "__main__":
    main()
