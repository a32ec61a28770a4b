"""Calibrating a model's pair check on labelled pictures (numpy only): the candidate pairs
find-duplicates would check, their keypoint matches and background distances, a logistic model
over `NORMALISED_FEATURES` fitted to tell same from different, and an acceptance cut chosen
precision first on held-out folds. The check is attached to the model only when it does better
than the encoder alone."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from dedup.ann import build_index
from dedup.background import catalog_backgrounds, normalised, typical_background
from dedup.config import NORMALISED_FEATURES, VERIFY_FEATURES, VerifyConfig
from dedup.embed import embed_loaded, load_files
from dedup.errors import UsageError
from dedup.keypoints import Matches, match_pairs
from dedup.metrics import best_f1_threshold, precision_threshold
from dedup.model import Model
from dedup.policy import CheckedPolicy, closer_look, features, required_inliers

TARGET_PRECISION = 0.95  # the acceptance cut: the lowest probability whose held-out pair precision reaches this
CANDIDATE_RECALL = 0.95  # the candidate distance: this share of same pairs closer (at least the threshold)
MIN_PAIRS = 20  # same pairs, and different ones, among the candidates needed to fit anything


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-3, steps: int = 50) -> tuple[np.ndarray, float]:
    """Logistic regression by Newton's method (IRLS) with a small L2 penalty on the weights:
    returns (weights, bias) for P(y) = σ(x·w + b)."""
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-9
    z = np.column_stack([(x - mean) / scale, np.ones(len(x))])  # standardised, with an intercept column
    beta = np.zeros(z.shape[1])
    penalty = np.full(z.shape[1], l2 * len(x))
    penalty[-1] = 0.0
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-np.clip(z @ beta, -30, 30)))
        grad = z.T @ (p - y) + penalty * beta
        hess = (z * (p * (1 - p))[:, None]).T @ z + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hess, grad)
        beta -= step
        if np.abs(step).max() < 1e-8:
            break
    w = beta[:-1] / scale
    return w, float(beta[-1] - (mean / scale) @ beta[:-1])


def fit_check(x: np.ndarray, y: np.ndarray, eligible: np.ndarray, fold: np.ndarray, target: float = TARGET_PRECISION
              ) -> tuple[np.ndarray, float, float, np.ndarray]:
    """The logistic model on the `eligible` pairs, its acceptance cut (the lowest probability whose
    out-of-fold pair precision is ≥ `target`, 2 folds, else the best-F1 cut) and the out-of-fold
    probabilities (0 where not eligible): (weights, bias, accept, held_out)."""
    held_out = np.zeros(len(y))
    for f in (0, 1):
        train, test = eligible & (fold != f), fold == f
        if train.sum() and len(np.unique(y[train])) == 2:
            w, b = fit_logistic(x[train], y[train])
            held_out[test] = 1.0 / (1.0 + np.exp(-np.clip(x[test] @ w + b, -30, 30)))
    held_out[~eligible] = 0.0
    d_prob = 1.0 - held_out  # as distances (small = same), so the threshold helpers apply
    cut = precision_threshold(d_prob, y, target) or best_f1_threshold(d_prob, y)
    w, b = fit_logistic(x[eligible], y[eligible])
    return w, b, round(float(1.0 - cut), 4), held_out


def fit_candidates(gate: VerifyConfig, d: np.ndarray, m: Matches, look: Matches, same: np.ndarray, fold: np.ndarray,
                   encoder_threshold: float, normalised_distance: np.ndarray | None = None, typical_background: float = 0.0,
                   target: float = TARGET_PRECISION) -> tuple[VerifyConfig | None, np.ndarray]:
    """The check fitted (`fit_check`) on candidate pairs (distances `d`, keypoint matches `m`,
    and `look`: after `closer_look`; `same`: the truth; `fold`: 0/1 by item) with `gate`'s
    candidates, keypoint settings and rules. With `normalised_distance` (`dedup.background`)
    it is also a feature (`NORMALISED_FEATURES`). Returns the check (None when too few pairs
    could be accepted to fit it) and which pairs it accepts out of fold."""
    if normalised_distance is not None:
        gate = replace(gate, features=NORMALISED_FEATURES, weights=(0.0,) * len(NORMALISED_FEATURES),
                       typical_background=round(float(typical_background), 4))
    eligible = m.readable & (look.inliers >= required_inliers(gate, d, look.sparser, encoder_threshold))
    if eligible.sum() < MIN_PAIRS or len(np.unique(same[eligible])) < 2:
        return None, np.zeros(len(same), bool)
    w, b, accept, held_out = fit_check(features(d, m, normalised_distance), same, eligible, fold, target)
    check = replace(gate, weights=tuple(round(float(v), 5) for v in w), bias=round(b, 5), accept=accept)
    return check, eligible & (held_out >= accept)


@dataclass
class Calibration:
    """What calibrating found: the check (None when it was not better than the encoder alone, or
    could not be fitted) and the held-out scores behind the decision."""

    check: VerifyConfig | None
    reason: str
    scores: dict[str, dict[str, float]] = field(default_factory=dict)
    pairs: int = 0
    true_pairs: int = 0
    images: int = 0

    def as_meta(self) -> dict[str, Any]:
        return {"attached": self.check is not None, "reason": self.reason, "candidates": self.pairs,
                "true_pairs": self.true_pairs, "images": self.images, **self.scores}


def calibrate_pairs(model: Model, files: Sequence[Path], labels: np.ndarray, gate: VerifyConfig | None = None,
                    workers: int = 2) -> Calibration:
    """Calibrate `model`'s pair check on pictures `files` whose `labels` say which are the same
    item. Candidates are the pairs find-duplicates would check (`CheckedPolicy.candidates`) with a
    candidate distance taken from the data (`CANDIDATE_RECALL`), unless `gate` fixes it."""
    decoded, errors = load_files(model, list(files))
    ok = np.array([e is None for e in errors])
    emb, labels = embed_loaded(model, decoded)[ok], np.asarray(labels)[ok]
    pictures = [d.picture for d in decoded if d is not None]
    n = len(emb)
    same = labels[:, None] == labels[None, :]
    iu = np.triu_indices(n, 1)
    d_all = np.linalg.norm(emb[iu[0]] - emb[iu[1]], axis=1)
    y_all = same[iu]
    if y_all.sum() < MIN_PAIRS or (~y_all).sum() < MIN_PAIRS:
        return Calibration(None, f"too few pairs to calibrate on ({int(y_all.sum())} same, {int((~y_all).sum())} different)",
                           images=n)
    threshold = model.threshold
    if gate is None:
        reach = float(np.quantile(d_all[y_all], CANDIDATE_RECALL))
        gate = VerifyConfig(candidates=round(min(2.0, max(threshold, reach)), 4), weights=(0.0,) * len(VERIFY_FEATURES),
                            bias=0.0)
    policy = CheckedPolicy(gate, gate.candidates, min(threshold, gate.candidates))
    pairs = policy.candidates(build_index(emb, "Flat", {}), emb, within=True)
    y = same[pairs.i, pairs.j]
    true_total = int(y_all.sum())
    if (~y).sum() < MIN_PAIRS:
        return Calibration(None, f"the encoder alone leaves {int((~y).sum())} different pairs among the {len(pairs)} it "
                           "would have checked: too few to fit a check, and little for one to correct",
                           pairs=len(pairs), true_pairs=true_total, images=n)
    if y.sum() < MIN_PAIRS:
        return Calibration(None, f"too few same pairs among the candidates ({int(y.sum())})", pairs=len(pairs),
                           true_pairs=true_total, images=n)
    m = match_pairs(pairs, pictures.__getitem__, gate.side, gate.keypoints, workers)
    look = closer_look(pairs, m, gate, pictures.__getitem__, policy.encoder_threshold, workers)
    back = catalog_backgrounds(emb, policy.encoder_threshold)
    fold = (labels[pairs.i].astype(np.int64) * 2654435761) % 2  # by item: one item's pairs in one fold
    check, accepted = fit_candidates(gate, pairs.d, m, look, y, fold, policy.encoder_threshold,
                                     normalised(pairs.d, back[pairs.i], back[pairs.j]), typical_background(back))
    if check is None:
        return Calibration(None, "too few pairs with agreeing keypoints to fit the check", pairs=len(pairs),
                           true_pairs=true_total, images=n)

    def scores(pred: np.ndarray) -> dict[str, float]:
        tp = int((pred & y).sum())
        p, r = tp / max(int(pred.sum()), 1), tp / true_total
        return {"precision": round(p, 4), "recall": round(r, 4), "f1": round(2 * p * r / max(p + r, 1e-9), 4)}

    report = {"encoder alone at its threshold": scores(pairs.d < threshold),
              "with the pair check (out of fold)": scores(accepted)}
    better = report["with the pair check (out of fold)"]["f1"] > report["encoder alone at its threshold"]["f1"]
    reason = ("held-out F1 {f1c:.3f} with the check against {f1e:.3f} for the encoder alone"
              .format(f1c=report["with the pair check (out of fold)"]["f1"], f1e=report["encoder alone at its threshold"]["f1"]))
    return Calibration(check if better else None, reason + ("" if better else ": the check is not attached"), report,
                       len(pairs), true_total, n)


def calibrate(model: Model, data: str | Path, workers: int = 2) -> Calibration:
    """`calibrate_pairs` on a folder of class sub-folders (pictures in one sub-folder are the same
    item); the model keeps its weights and identity, its pair check is replaced."""
    from dedup.evaluate import labelled_files

    files, labels = labelled_files(data)
    if len(np.unique(labels)) < 2:
        raise UsageError(f"{str(data)!r} needs class sub-folders (two or more) to calibrate on", option="data")
    return apply(model, calibrate_pairs(model, files, labels, workers=workers))


def apply(model: Model, found: Calibration) -> Calibration:
    """Store `found` in the model's metadata (its check, or none, and why)."""
    if found.check is not None:
        model.meta["verify"] = found.check.to_dict()
    else:
        model.meta.pop("verify", None)
    model.meta["verify_calibration"] = found.as_meta()
    return found

