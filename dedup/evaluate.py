"""Verification and one-shot evaluation of an encoder on labelled images; pure except plots."""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dedup.config import check_threshold
from dedup.embed import embed_files
from dedup.errors import CatalogError, UsageError
from dedup.files import FileRecord, check_catalog, walk_catalog
from dedup.metrics import summary
from dedup.model import Model


@dataclass(frozen=True)
class PairSet:
    """Pairs of image files with same/different labels."""

    files: list[Path]  # unique files
    a: np.ndarray  # (m,) indexes into files
    b: np.ndarray
    same: np.ndarray  # (m,) bool


def labelled_files(root: str | Path) -> tuple[list[Path], np.ndarray]:
    """Files under `root` with their class (first folder level) as integer labels."""
    base = check_catalog(root)
    recs = [r for r in walk_catalog(base) if isinstance(r, FileRecord) and "/" in r.rel]
    if not recs:
        raise CatalogError(f"{str(root)!r} has no class sub-folders; expected DATA/<class>/<image>")
    names = np.array([r.rel.split("/")[0] for r in recs])
    _, labels = np.unique(names, return_inverse=True)
    if labels.max() < 1:
        raise CatalogError(f"{str(root)!r} has only one class folder; evaluation needs at least two")
    return [base / r.rel for r in recs], labels.astype(np.int64)


def sample_pairs(labels: np.ndarray, n_pairs: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`n_pairs` balanced pairs (half same class, half different), deterministic for `seed`."""
    rng = np.random.default_rng(seed)
    by_class = {int(c): np.flatnonzero(labels == c) for c in np.unique(labels)}
    multi = [c for c, m in by_class.items() if len(m) >= 2]
    if not multi:
        raise CatalogError("no class has two images; positive pairs cannot be formed")
    classes = np.array(sorted(by_class))
    a, b, same = [], [], []
    for k in range(n_pairs):
        if k % 2 == 0:
            i, j = rng.choice(by_class[int(rng.choice(multi))], 2, replace=False)
        else:
            c1, c2 = rng.choice(classes, 2, replace=False)
            i, j = rng.choice(by_class[int(c1)]), rng.choice(by_class[int(c2)])
        a.append(int(i))
        b.append(int(j))
        same.append(k % 2 == 0)
    return np.array(a), np.array(b), np.array(same)


def folder_pairs(root: str | Path, n_pairs: int = 2000, seed: int = 0) -> PairSet:
    files, labels = labelled_files(root)
    a, b, same = sample_pairs(labels, n_pairs, seed)
    return PairSet(files, a, b, same)


def csv_pairs(path: str | Path) -> PairSet:
    """Pairs from a CSV with columns path_a,path_b,same (paths relative to the CSV's folder)."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"pairs file {str(path)!r} not found; expected a CSV path_a,path_b,same")
    files: dict[Path, int] = {}
    a, b, same = [], [], []
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or not {"path_a", "path_b", "same"} <= set(reader.fieldnames):
            raise UsageError(f"{str(path)!r} must have the header path_a,path_b,same")
        for line, row in enumerate(reader, 2):
            value = row["same"].strip().lower()
            if value not in ("1", "0", "true", "false", "yes", "no"):
                raise UsageError(f"{path}:{line}: 'same' must be 1/0/true/false, got {row['same']!r}")
            pa_, pb_ = (path.parent / row["path_a"]).resolve(), (path.parent / row["path_b"]).resolve()
            a.append(files.setdefault(pa_, len(files)))
            b.append(files.setdefault(pb_, len(files)))
            same.append(value in ("1", "true", "yes"))
    if not a:
        raise UsageError(f"{str(path)!r} lists no pairs")
    return PairSet(list(files), np.array(a), np.array(b), np.array(same))


def pair_distances(model: Model, pairs: PairSet) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Distances of the pairs whose both images decode; plus the files that could not."""
    emb, errors = embed_files(model, pairs.files)
    bad = [f"{p}: {e}" for p, e in zip(pairs.files, errors) if e]
    ok = ~(np.isnan(emb[pairs.a]).any(1) | np.isnan(emb[pairs.b]).any(1))
    d = np.linalg.norm(emb[pairs.a[ok]] - emb[pairs.b[ok]], axis=1)
    return d, pairs.same[ok], bad


def verify(
    model: Model, pairs: PairSet, threshold: float, target_precision: float | None = None
) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    """The seed's verification table for `pairs` at `threshold`, with the pair distances and
    same-labels it was computed from."""
    d, same, bad = pair_distances(model, pairs)
    if not same.any() or same.all():
        raise UsageError("evaluation needs both same and different pairs")
    out = summary(d, same, threshold, target_precision)
    out["skipped_files"] = bad
    return out, d, same


def one_shot(model: Model, root: str | Path, ways: int, trials: int = 400, seed: int = 0) -> dict[str, Any]:
    """N-way one-shot accuracy (Koch et al.): one support image from each of N classes and a
    query from one of them; correct when the nearest support is of the query's class."""
    files, labels = labelled_files(root)
    classes = np.unique(labels)
    if ways < 2 or ways > len(classes):
        raise UsageError(f"one-shot trials need 2..{len(classes)} ways for this data, got {ways}", option="ways")
    emb, errors = embed_files(model, files)
    usable = np.array([e is None for e in errors])
    by_class = {int(c): np.flatnonzero((labels == c) & usable) for c in classes}
    eligible = [c for c, m in by_class.items() if len(m) >= 2]
    if len(eligible) < ways:
        raise UsageError(f"only {len(eligible)} classes have two readable images; cannot run {ways}-way trials")
    rng = np.random.default_rng(seed)
    correct = 0
    for _ in range(trials):
        chosen = rng.choice(eligible, ways, replace=False)
        target = int(rng.integers(ways))
        supports = []
        query = None
        for k, c in enumerate(chosen):
            if k == target:
                s, query = rng.choice(by_class[int(c)], 2, replace=False)
            else:
                s = rng.choice(by_class[int(c)])
            supports.append(int(s))
        d = np.linalg.norm(emb[supports] - emb[int(query)], axis=1)
        correct += int(np.argmin(d) == target)
    return {"ways": ways, "trials": trials, "accuracy": correct / trials, "chance": 1 / ways}


def evaluate(
    model: Model | str | Path | None,
    data: str | Path | None = None,
    *,
    pairs_csv: str | Path | None = None,
    num_pairs: int = 2000,
    threshold: float | None = None,
    target_precision: float | None = None,
    ways: int | None = None,
    trials: int = 400,
    seed: int = 0,
    plots: Path | None = None,
) -> dict[str, Any]:
    """The seed's table for `model` on balanced pairs sampled from `data`'s class folders (or the
    pairs of `pairs_csv`) at `threshold` (default: the model's calibrated one; the result says
    which it used), with N-way one-shot trials and ROC/histogram plots when asked."""
    from dedup.loading import as_model

    model = as_model(model)
    source = "given" if threshold is not None else ("model" if "threshold" in model.meta else "fallback")
    threshold = check_threshold(model.threshold if threshold is None else threshold)
    if pairs_csv is None and data is None:
        raise UsageError("evaluation needs labelled data or a pairs file", option="pairs_csv")
    pairs = csv_pairs(pairs_csv) if pairs_csv else folder_pairs(data, num_pairs, seed)
    result, d, same = verify(model, pairs, threshold, target_precision)
    result["threshold_source"] = source
    if ways:
        result["one_shot"] = one_shot(model, data, ways, trials, seed)
    if plots:
        result["plots"] = [str(p) for p in plot_roc_and_histogram(d, same, threshold, plots)]
    return result


def plot_roc_and_histogram(d: np.ndarray, same: np.ndarray, threshold: float, prefix: Path) -> list[Path]:
    """Write `<prefix>.roc.png` and `<prefix>.hist.png`; returns the paths (empty without matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    order = np.argsort(d)
    tpr = np.r_[0, np.cumsum(same[order]) / max(1, same.sum())]
    fpr = np.r_[0, np.cumsum(~same[order]) / max(1, (~same).sum())]
    roc, hist = prefix.with_suffix(".roc.png"), prefix.with_suffix(".hist.png")
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot(fpr, tpr)
    ax.plot([0, 1], [0, 1], "--", color="grey")
    ax.set_xlabel("false accept rate")
    ax.set_ylabel("true accept rate")
    ax.set_title("ROC")
    fig.tight_layout()
    fig.savefig(roc, dpi=100)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 4))
    bins = np.linspace(0, max(2.0, float(d.max(initial=0))), 60)
    ax.hist(d[same], bins=bins, alpha=0.6, label="same")
    ax.hist(d[~same], bins=bins, alpha=0.6, label="different")
    ax.axvline(threshold, color="k", linestyle="--", label=f"threshold {threshold:.3g}")
    ax.set_xlabel("distance")
    ax.legend()
    fig.tight_layout()
    fig.savefig(hist, dpi=100)
    plt.close(fig)
    return [roc, hist]
