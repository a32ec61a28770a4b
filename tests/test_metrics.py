from __future__ import annotations

import numpy as np
import pytest

from dedup.metrics import (
    at_threshold,
    best_f1_threshold,
    eer_threshold,
    precision_threshold,
    roc_auc,
    summary,
)

D = np.array([0.1, 0.2, 0.4, 0.3, 0.8, 0.9])
Y = np.array([True, True, True, False, False, False])


def test_confusion_and_rates_by_hand():
    v = at_threshold(D, Y, 0.35)
    # predicted same: 0.1, 0.2, 0.3 → TP 2, FP 1; 0.4 missed → FN 1; TN 2
    assert (v.tp, v.fp, v.fn, v.tn) == (2, 1, 1, 2)
    assert v.accuracy == pytest.approx(4 / 6)
    assert v.precision == pytest.approx(2 / 3) and v.recall == pytest.approx(2 / 3)
    assert v.far == pytest.approx(1 / 3) and v.frr == pytest.approx(1 / 3)


def test_auc_by_hand():
    # positives {.1,.2,.4} vs negatives {.3,.8,.9}: 8 of 9 orderings correct
    assert roc_auc(D, Y) == pytest.approx(8 / 9)
    assert roc_auc(np.array([0.5, 0.5]), np.array([True, False])) == pytest.approx(0.5)


def test_thresholds():
    assert 0.4 < best_f1_threshold(D, Y) < 0.8  # all three positives, one FP: F1 6/7
    assert 0.2 < eer_threshold(D, Y) < 0.8
    t = precision_threshold(D, Y, 1.0)
    assert 0.2 < t < 0.3
    s = summary(D, Y, 0.35, 0.99)
    assert s["confusion"] == {"tn": 2, "fp": 1, "fn": 1, "tp": 2}
    assert {"accuracy", "precision", "recall", "f1", "auc", "far", "frr", "threshold", "eer_threshold", "best_f1_threshold"} <= set(s)
