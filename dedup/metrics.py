"""Verification metrics on pair distances, as the seed reports them; pure numpy."""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Verification:
    """Metrics at one threshold: a pair is predicted "same" when its distance < threshold."""

    threshold: float
    tn: int
    fp: int
    fn: int
    tp: int
    accuracy: float
    precision: float
    recall: float
    f1: float
    far: float  # false accept rate: FP / negatives
    frr: float  # false reject rate: FN / positives
    auc: float

    def as_dict(self) -> dict:
        d = asdict(self)
        d["confusion"] = {k: d.pop(k) for k in ("tn", "fp", "fn", "tp")}
        return d


def roc_auc(distances: np.ndarray, same: np.ndarray) -> float:
    """Probability that a random positive pair is closer than a random negative (ties half)."""
    d, y = np.asarray(distances, dtype=np.float64), np.asarray(same, dtype=bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(-d, kind="mergesort")  # larger distance = more "different"
    ranks = np.empty(len(d), dtype=np.float64)
    sorted_d = -d[order]
    # average ranks for ties
    _, first, counts = np.unique(sorted_d, return_index=True, return_counts=True)
    avg = first + (counts - 1) / 2.0 + 1
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def at_threshold(distances: np.ndarray, same: np.ndarray, threshold: float, auc: float | None = None) -> Verification:
    d, y = np.asarray(distances), np.asarray(same, dtype=bool)
    pred = d < threshold
    tp, fp = int((pred & y).sum()), int((pred & ~y).sum())
    fn, tn = int((~pred & y).sum()), int((~pred & ~y).sum())
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return Verification(
        threshold=float(threshold), tn=tn, fp=fp, fn=fn, tp=tp,
        accuracy=(tp + tn) / max(1, len(d)), precision=precision, recall=recall, f1=f1,
        far=fp / (fp + tn) if fp + tn else 0.0, frr=fn / (fn + tp) if fn + tp else 0.0,
        auc=roc_auc(d, y) if auc is None else auc,
    )


def _sweep(d: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Candidate thresholds (midpoints between sorted distances) with TP and FP counts below each."""
    order = np.argsort(d, kind="mergesort")
    ds, ys = d[order], y[order]
    tp = np.cumsum(ys)
    fp = np.cumsum(~ys)
    last = np.r_[ds[1:] != ds[:-1], True]  # only cut between distinct distances
    nxt = np.r_[ds[1:], ds[-1] + 1e-6]
    thr = ((ds + nxt) / 2)[last]
    return thr, tp[last], fp[last], ys


def best_f1_threshold(distances: np.ndarray, same: np.ndarray) -> float:
    d, y = np.asarray(distances, dtype=np.float64), np.asarray(same, dtype=bool)
    thr, tp, fp, _ = _sweep(d, y)
    f1 = 2 * tp / (tp + fp + y.sum())
    return float(thr[int(np.argmax(f1))])


def balanced_threshold(distances: np.ndarray, same: np.ndarray) -> float:
    """Threshold with the best balanced accuracy (true accept rate minus false accept rate, Youden's
    J): the accuracy-optimal one on pairs drawn half same, half different."""
    d, y = np.asarray(distances, dtype=np.float64), np.asarray(same, dtype=bool)
    thr, tp, fp, _ = _sweep(d, y)
    j = tp / max(1, y.sum()) - fp / max(1, (~y).sum())
    return float(thr[int(np.argmax(j))])


def eer_threshold(distances: np.ndarray, same: np.ndarray) -> float:
    """Threshold where the false accept and false reject rates are closest."""
    d, y = np.asarray(distances, dtype=np.float64), np.asarray(same, dtype=bool)
    thr, tp, fp, _ = _sweep(d, y)
    far = fp / max(1, (~y).sum())
    frr = 1 - tp / max(1, y.sum())
    return float(thr[int(np.argmin(np.abs(far - frr)))])


def precision_threshold(distances: np.ndarray, same: np.ndarray, target: float) -> float | None:
    """Largest threshold whose precision is still ≥ `target` (None if none reaches it)."""
    d, y = np.asarray(distances, dtype=np.float64), np.asarray(same, dtype=bool)
    thr, tp, fp, _ = _sweep(d, y)
    prec = tp / np.maximum(1, tp + fp)
    ok = np.flatnonzero((prec >= target) & (tp > 0))
    return float(thr[ok[-1]]) if len(ok) else None


def summary(distances: np.ndarray, same: np.ndarray, threshold: float, target_precision: float | None = None) -> dict:
    """Everything `dedup evaluate` reports, as one JSON-ready dict."""
    auc = roc_auc(distances, same)
    out = at_threshold(distances, same, threshold, auc).as_dict()
    out["eer_threshold"] = eer_threshold(distances, same)
    out["best_f1_threshold"] = best_f1_threshold(distances, same)
    out["best_f1"] = at_threshold(distances, same, out["best_f1_threshold"], auc).f1
    if target_precision is not None:
        out["target_precision"] = target_precision
        out["target_precision_threshold"] = precision_threshold(distances, same, target_precision)
    out["pairs"] = {"positive": int(np.sum(same)), "negative": int(np.sum(~np.asarray(same, dtype=bool)))}
    return out
