"""Icon renditions: find-duplicates on an icon library whose sizes are redrawn, not scaled.

    python -m benchmarks.icons [--model default] [--icons 250] [--out benchmarks/out/icons]
    python -m benchmarks.icons --themes gnome adwaita --icons 400 --out benchmarks/out/icons-val   # validation libraries

For each benchmark theme of `recipes/icons.py` (designers the default encoder never trained on;
installed with apt when missing), a catalog holds up to `--icons` of its icons, each as the theme
ships it (PNG with transparency) at every size of 32 to 256 px it has. The renditions of one icon
are duplicates of one another; two icons are different items. `dedup index` and `find-duplicates`
run as a user runs them, at the defaults and with `--no-verify`; perceptual hashes are scored at
their best Hamming threshold on the same catalog (tuned on it, so an upper bound for them).
Headline figures go to `--json` for the model card. `--themes` builds the libraries of other
themes, such as the validation libraries (gnome, adwaita: never trained on by the shipped encoder,
so decisions may be taken on them); their figures go to `--json` only when it is given.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np

from benchmarks.neardup import hash_scores, score_model
from recipes import icons

SIZES = (32, 48, 64, 96, 128, 256)
TARGET = {"f1": 0.85, "precision": 0.90}


def build(out: Path, theme: str, count: int, seed: int) -> dict[str, tuple[int, str]]:
    """Write the catalog of `theme` into `out/catalog`; return {path: (icon id, "original" for the
    largest rendition, else "<size> px")}, the truth `benchmarks.neardup.score_model` reads."""
    found = {name: {s: p for s, p in sizes.items() if s in SIZES}
             for name, sizes in icons.renditions(theme, min_size=min(SIZES)).items()}
    names = sorted(n for n, sizes in found.items() if len(sizes) >= 2)
    rng = np.random.default_rng(seed)
    picks = sorted(rng.choice(len(names), size=min(count, len(names)), replace=False).tolist())
    truth = {}
    for icon_id in picks:
        sizes = found[names[icon_id]]
        for size, path in sizes.items():
            rel = f"{names[icon_id]}/{size}.png"
            (out / "catalog" / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, out / "catalog" / rel)
            truth[rel] = (icon_id, "original" if size == max(sizes) else f"{size} px")
    return truth


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="default", help="Encoder to benchmark (a shipped name or a file).")
    ap.add_argument("--icons", type=int, default=250, help="Icons per theme (seeded sample).")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/out/icons"))
    ap.add_argument("--themes", nargs="+", choices=sorted(icons.THEMES), default=list(icons.BENCHMARK),
                    help="Themes to build libraries of (default: the benchmark's; gnome and adwaita are validation "
                         "libraries, which decisions may be taken on).")
    ap.add_argument("--json", type=Path, default=None,
                    help="Where the figures go (default: benchmarks/results/icons.json for the benchmark's themes).")
    args = ap.parse_args()
    held_out = tuple(args.themes) == icons.BENCHMARK
    args.json = args.json or (Path("benchmarks/results/icons.json") if held_out else None)
    icons.ensure(args.themes)
    figures = {}
    print("| theme | images | true pairs | mode | precision | recall | F1 | target met |")
    print("|---|---|---|---|---|---|---|---|")
    for theme in args.themes:
        out = (args.out / theme).resolve()
        if out.exists():
            shutil.rmtree(out)
        truth = build(out, theme, args.icons, args.seed)
        run = score_model(args.model, out, truth, out / "index")
        hashes = hash_scores(out / "catalog", run["paths"], run["true"], kinds=("phash",))
        rows = {"default": run["prf"], "--no-verify": run["plain"]["prf"], "phash (best threshold)": (
            hashes["phash"]["precision"], hashes["phash"]["recall"], hashes["phash"]["f1"])}
        for mode, (p, r, f) in rows.items():
            met = "yes" if f >= TARGET["f1"] and p >= TARGET["precision"] else "no"
            print(f"| {theme} | {len(run['paths'])} | {len(run['true'])} | {mode} | {p:.4f} | {r:.4f} | {f:.4f} | {met} |",
                  flush=True)
        print(f"{theme}: recall by size (paired with the icon's largest rendition): "
              + ", ".join(f"{k} {v:.2f}" for k, v in sorted(run["families"].items(), key=lambda kv: int(kv[0].split()[0]))))
        best = run["best"]
        print(f"{theme}: pair ROC-AUC {run['auc']:.4f}; encoder alone at its best threshold for this catalog "
              f"({best['t']}, center linkage: an upper bound, not a setting): P {best['center'][0]:.4f} "
              f"R {best['center'][1]:.4f} F1 {best['center'][2]:.4f}; "
              f"find-duplicates {run['find_s']:.1f} s, index {run['index_s']:.1f} s")
        figures[theme] = {
            "package": icons.THEMES[theme].package, "images": len(run["paths"]), "icons": len({v[0] for v in truth.values()}),
            "true_pairs": len(run["true"]), "pair_auc": round(run["auc"], 4),
            **{key: dict(zip(("precision", "recall", "f1"), (round(v, 4) for v in rows[mode])))
               for key, mode in (("with_check", "default"), ("encoder_alone", "--no-verify"), ("phash", "phash (best threshold)"))},
            "recall_by_size": {k: round(v, 3) for k, v in run["families"].items()},
            "encoder_best_threshold": {"threshold": best["t"], **dict(zip(("precision", "recall", "f1"),
                                                                      (round(v, 4) for v in best["center"])))},
        }
    command = "python -m benchmarks.icons" + (f" --icons {args.icons}" if args.icons != 250 else "") + (
        f" --seed {args.seed}" if args.seed else "") + ("" if held_out else " --themes " + " ".join(args.themes))
    doc = {"benchmark": "icons", "command": command, "date": time.strftime("%Y-%m-%d"),
           "machine": f"{os.cpu_count()}-core CPU", "model": args.model, "sizes": SIZES, "target": TARGET, "themes": figures}
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(doc, indent=2) + "\n")


if __name__ == "__main__":
    main()
