"""Score normalisation against background neighbours, on validation catalogs only.

    python -m benchmarks.val_normalise [--model default] [--out benchmarks/out/val_normalise]

Does one threshold suit catalogs of different density better when a pair's distance is judged
against how far each side's usual neighbours are (ISC21-style normalisation)? Catalogs: the
validation pool with look-alike series (`recipes.pool.indexed_catalog`, seeds 1–2) and an icon
library of `gnome-icon-theme` (sizes 32–256 px, as `benchmarks.icons` builds them; the shipped
encoder never trained on icons, and gnome is not a benchmark theme). For every pair: the raw
distance d; d divided by the geometric mean of both sides' background distance r (the mean of
their 5th–10th nearest neighbours); and d − (r_i + r_j) / 2. Reports each score's ROC-AUC per
catalog and, for one threshold shared by all catalogs (the one with the best mean F1), each
catalog's pair precision and F1. Encoder alone: no pair check, no set linkage.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from benchmarks.icons import build
from dedup.index import Index
from dedup.metrics import roc_auc
from recipes.pool import indexed_catalog

BACKGROUND = (5, 10)  # neighbour ranks whose mean distance is a row's background distance


def scores(vectors: np.ndarray) -> dict[str, tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]]:
    """Every pair (i < j) scored three ways; smaller = more alike."""
    v = vectors.astype(np.float64)
    dist = np.sqrt(np.maximum(2 - 2 * v @ v.T, 0))
    ranked = np.sort(dist + np.eye(len(v)) * 9, axis=1)
    r = ranked[:, BACKGROUND[0]:BACKGROUND[1]].mean(1)
    i, j = np.triu_indices(len(v), 1)
    d = dist[i, j]
    return {"distance": d, "distance / background": d / np.sqrt(r[i] * r[j]),
            "distance - background": d - (r[i] + r[j]) / 2, "pairs": (i, j)}


def prf(score: np.ndarray, same: np.ndarray, t: float) -> tuple[float, float, float]:
    pred = score < t
    tp = int((pred & same).sum())
    p, r = tp / max(int(pred.sum()), 1), tp / max(int(same.sum()), 1)
    return p, r, 2 * p * r / max(p + r, 1e-9)


def labelled(index: Path, label) -> tuple[np.ndarray, np.ndarray]:
    opened = Index.open(index)
    return opened.vectors, np.array([label(str(p)) for p in opened.rows.path])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/out/val_normalise"))
    args = ap.parse_args()
    model = None if args.model == "default" else Path(args.model)
    catalogs = {}
    for seed in (1, 2):
        truth = indexed_catalog(args.out / f"clipart{seed}", 300, seed, "val", series=60, model=model)
        catalogs[f"clip art, seed {seed}"] = labelled(args.out / f"clipart{seed}" / "index", lambda p, t=truth: t[p][0])
    icons = args.out / "gnome"
    shutil.rmtree(icons, ignore_errors=True)
    build(icons, "gnome", 400, 0)
    subprocess.run([sys.executable, "-m", "dedup", "index", str(icons / "catalog"), "--index", str(icons / "index"), "-q",
                    *(["--model", str(model)] if model else [])], check=True)
    catalogs["gnome icons"] = labelled(icons / "index", lambda p: p.split("/")[0])
    scored = {}
    for name, (vectors, labels) in catalogs.items():
        s = scores(vectors)
        i, j = s.pop("pairs")
        scored[name] = (s, labels[i] == labels[j])
    print("| score | " + " | ".join(f"{n}: AUC" for n in catalogs) + " | shared threshold | "
          + " | ".join(f"{n}: P / F1" for n in catalogs) + " |")
    print("|---|" + "---|" * (2 * len(catalogs) + 1))
    for kind in ("distance", "distance / background", "distance - background"):
        pooled = np.concatenate([scored[n][0][kind] for n in catalogs])
        grid = np.quantile(pooled, np.linspace(0, 0.02, 400))
        best = max(grid, key=lambda t: np.mean([prf(scored[n][0][kind], scored[n][1], t)[2] for n in catalogs]))
        aucs = [f"{roc_auc(scored[n][0][kind], scored[n][1]):.4f}" for n in catalogs]
        cells = [f"{prf(scored[n][0][kind], scored[n][1], best)[0]:.3f} / {prf(scored[n][0][kind], scored[n][1], best)[2]:.3f}"
                 for n in catalogs]
        print(f"| {kind} | " + " | ".join(aucs) + f" | {best:.3f} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
