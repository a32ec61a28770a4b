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

Then the pair check (`recipes.calibrate_verifier`'s candidate pairs, validation seeds 1–2, fitted
out of fold with the precision-first cut by `dedup.calibrate.fit_candidates`): without background
distances, and with them (`dedup.background`: a fifth feature). The checks fitted on clip
art are then applied to the gnome icon library's candidate pairs (pair precision and recall over
all its true pairs; no set linkage).
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from benchmarks.icons import build
from dedup.background import RANKS, catalog_backgrounds, normalised, typical_background
from dedup.calibrate import fit_candidates
from dedup.config import VERIFY_FEATURES, VerifyConfig
from dedup.index import Index
from dedup.keypoints import Matches
from dedup.metrics import roc_auc
from dedup.model import load_model
from dedup.modelfile import model_file
from dedup.policy import accepted
from recipes.calibrate_verifier import candidate_table, checked_candidates
from recipes.pool import indexed_catalog


def distances(vectors: np.ndarray) -> np.ndarray:
    """Every pairwise distance of unit vectors, (n, n) float64."""
    v = vectors.astype(np.float64)
    return np.sqrt(np.maximum(2 - 2 * v @ v.T, 0))


def background(dist: np.ndarray) -> np.ndarray:
    """Per row of a distance matrix, the mean distance to its `dedup.background.RANKS` nearest
    other rows."""
    ranked = np.sort(dist + np.eye(len(dist)) * 9, axis=1)
    return ranked[:, RANKS[0] - 1 : RANKS[1]].mean(1)


def pair_scores(pred: np.ndarray, same: np.ndarray, n_true: int) -> tuple[float, float, float]:
    """Precision, recall and F1 of predicted pairs `pred` (of `n_true` true pairs in all)."""
    tp = int((pred & same).sum())
    p, r = tp / max(int(pred.sum()), 1), tp / max(n_true, 1)
    return p, r, 2 * p * r / max(p + r, 1e-9)


def _shown(scores: tuple[float, float, float]) -> str:
    return " / ".join(f"{v:.3f}" for v in scores)


def check_probe(model_path: Path, out: Path, icon_index: Path) -> None:
    """The pair check with and without the normalised distance as a feature (see the docstring)."""
    model = load_model(model_path)
    thr = model.threshold
    gate = VerifyConfig(candidates=0.8, weights=(0.0,) * len(VERIFY_FEATURES), bias=0.0)
    tables = [candidate_table(model_path, thr, s, 400, out / f"verify{s}", gate) for s in (1, 2)]
    clip = {k: np.concatenate([t[k] for t in tables]) for k in ("d", "same", "fold", "rows", "normalised")}
    clip.update({k: Matches.concatenate([t[k] for t in tables]) for k in ("matches", "look")})
    n_true = sum(t["true_pairs"] for t in tables)
    index = Index.open(icon_index)
    pairs, matches, look = checked_candidates(index, thr, gate)
    labels = np.array([str(p).split("/")[0] for p in index.rows.path])
    rows = catalog_backgrounds(index.vectors, thr)
    sizes = np.unique(labels, return_counts=True)[1]
    icon_same, icon_true = labels[pairs.i] == labels[pairs.j], int((sizes * (sizes - 1) // 2).sum())
    icon_normalised = normalised(pairs.d, rows[pairs.i], rows[pairs.j])
    print("\n| pair check | clip art, out of fold: P / R / F1 | gnome icons: P / R / F1 |\n|---|---|---|")
    for normalise in (False, True):
        check, held = fit_candidates(gate, clip["d"], clip["matches"], clip["look"], clip["same"], clip["fold"], thr,
                                     clip["normalised"] if normalise else None, typical_background(clip["rows"]))
        on_icons = accepted(check, pairs.d, matches, thr, look, icon_normalised if normalise else None)
        print(f"| {'with background distances' if normalise else 'without'} | "
              f"{_shown(pair_scores(held, clip['same'], n_true))} | "
              f"{_shown(pair_scores(on_icons, icon_same, icon_true))} |", flush=True)


def scores(vectors: np.ndarray) -> dict[str, tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]]:
    """Every pair (i < j) scored three ways; smaller = more alike."""
    dist = distances(vectors)
    r = background(dist)
    i, j = np.triu_indices(len(dist), 1)
    d = dist[i, j]
    return {"distance": d, "distance / background": d / np.sqrt(r[i] * r[j]),
            "distance - background": d - (r[i] + r[j]) / 2, "pairs": (i, j)}


def prf(score: np.ndarray, same: np.ndarray, t: float) -> tuple[float, float, float]:
    """`pair_scores` of the pairs scored under `t`, every true pair being among `score`'s."""
    return pair_scores(score < t, same, int(same.sum()))


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
    check_probe(model_file(model), args.out, icons / "index")


if __name__ == "__main__":
    main()
