"""Each loss against values computed by hand (with `math`, not torch)."""
from __future__ import annotations

import math

import pytest
import torch

from dedup.losses import (
    BCELoss,
    ContrastiveLoss,
    InfoNCELoss,
    TripletLoss,
    make_loss,
    pairwise_distance,
)

EMB = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])
LABELS = torch.tensor([0, 0, 1])
D01, D02, D12 = math.sqrt(0.8), math.sqrt(2.0), math.sqrt(0.4)


def test_distance_convention():
    d = pairwise_distance(EMB)
    assert d[0, 1].item() == pytest.approx(D01, abs=1e-5)
    assert d[0, 2].item() == pytest.approx(D02, abs=1e-5)
    assert d[1, 2].item() == pytest.approx(D12, abs=1e-5)


def test_contrastive():
    neg = [max(0.0, 1 - D02) ** 2, max(0.0, 1 - D12) ** 2] * 2
    expected = 0.5 * (D01**2 + sum(neg) / 4)  # = 0.43377
    assert ContrastiveLoss(1.0)(EMB, LABELS).item() == pytest.approx(expected, abs=1e-5)
    assert expected == pytest.approx(0.43377, abs=1e-5)


@pytest.mark.parametrize("mining", ["semihard", "hard"])
def test_triplet(mining):
    # anchor 0 (positive 1): only negative is 2 at D02 > D01 → loss max(0, D01 - D02 + .5) = 0
    # anchor 1 (positive 0): negative 2 at D12 < D01 (not semi-hard) → hardest: D01 - D12 + .5
    expected = (0.0 + (D01 - D12 + 0.5)) / 2
    assert TripletLoss(0.5, mining)(EMB, LABELS).item() == pytest.approx(expected, abs=1e-5)


def test_bce():
    def softplus(z):
        return math.log1p(math.exp(z))

    logit = lambda d: 10 * (0.7 - d)  # noqa: E731
    pos = softplus(-logit(D01))
    neg = (softplus(logit(D02)) + softplus(logit(D12))) / 2
    assert BCELoss(10.0, 0.7)(EMB, LABELS).item() == pytest.approx(0.5 * (pos + neg), abs=1e-5)


def test_infonce():
    t = 0.1
    s = lambda d: -(d**2) / (2 * t)  # noqa: E731
    row0 = -(s(D01) - math.log(math.exp(s(D01)) + math.exp(s(D02))))
    row1 = -(s(D01) - math.log(math.exp(s(D01)) + math.exp(s(D12))))
    assert InfoNCELoss(t)(EMB, LABELS).item() == pytest.approx((row0 + row1) / 2, abs=1e-4)


def test_make_loss_unknown():
    from dedup.errors import UsageError

    with pytest.raises(UsageError):
        make_loss("hinge")
