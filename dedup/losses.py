"""The seed's losses on in-batch pairs, all on one distance: Euclidean between unit vectors.

Each loss takes embeddings (n, dim) and integer labels (n,); rows with equal labels are
positive pairs, all other pairs negative.
"""
from __future__ import annotations

from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

from dedup.config import LOSSES, LossName
from dedup.errors import UsageError


def pairwise_distance(emb: torch.Tensor) -> torch.Tensor:
    """(n, dim) → (n, n) Euclidean distances, `d(x, y) = sqrt(sum((x_i - y_i)^2))`."""
    sq = (emb * emb).sum(dim=1)
    d2 = sq[:, None] + sq[None, :] - 2.0 * emb @ emb.T
    return torch.sqrt(d2.clamp_min(1e-12))


def pair_masks(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Boolean (n, n) masks of positive pairs and negative pairs (diagonal excluded)."""
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    return same & ~eye, ~same


class ContrastiveLoss(nn.Module):
    """Hadsell et al.: positives pay d², negatives pay max(0, margin − d)²; classes balanced."""

    def __init__(self, margin: float = 1.0):
        super().__init__()
        self.margin = margin

    def forward(self, emb: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        d = pairwise_distance(emb)
        pos, neg = pair_masks(labels)
        pos_loss = (d[pos] ** 2).mean() if pos.any() else d.new_zeros(())
        neg_loss = (F.relu(self.margin - d[neg]) ** 2).mean() if neg.any() else d.new_zeros(())
        return 0.5 * (pos_loss + neg_loss)


class TripletLoss(nn.Module):
    """max(0, d(a, p) − d(a, n) + margin) over every in-batch (a, p), with mined negatives.

    `mining="semihard"` takes the closest negative farther than the positive (else the hardest);
    `mining="hard"` takes the closest negative.
    """

    def __init__(self, margin: float = 0.5, mining: Literal["hard", "semihard"] = "semihard"):
        super().__init__()
        self.margin = margin
        self.mining = mining

    def forward(self, emb: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        d = pairwise_distance(emb)
        pos, neg = pair_masks(labels)
        a_idx, p_idx = pos.nonzero(as_tuple=True)
        if len(a_idx) == 0:
            return d.new_zeros(())
        d_ap = d[a_idx, p_idx]  # (m,)
        d_an = d[a_idx].masked_fill(~neg[a_idx], float("inf"))  # (m, n)
        hardest = d_an.min(dim=1).values
        if self.mining == "semihard":
            semi = d_an.masked_fill(d_an <= d_ap[:, None], float("inf")).min(dim=1).values
            chosen = torch.where(torch.isfinite(semi), semi, hardest)
        else:
            chosen = hardest
        valid = torch.isfinite(chosen)
        if not valid.any():
            return d.new_zeros(())
        return F.relu(d_ap[valid] - chosen[valid] + self.margin).mean()


class BCELoss(nn.Module):
    """A sigmoid "same?" head on the pair distance, p = σ(scale · (bias − d)), trained with
    binary cross-entropy; positives and negatives weighted equally."""

    def __init__(self, scale: float = 10.0, bias: float = 0.7):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(float(scale)))
        self.bias = nn.Parameter(torch.tensor(float(bias)))

    def logits(self, d: torch.Tensor) -> torch.Tensor:
        return self.scale * (self.bias - d)

    def forward(self, emb: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        d = pairwise_distance(emb)
        pos, neg = pair_masks(labels)
        logit = self.logits(d)
        pos_loss = F.binary_cross_entropy_with_logits(logit[pos], torch.ones_like(logit[pos])) if pos.any() else d.new_zeros(())
        neg_loss = F.binary_cross_entropy_with_logits(logit[neg], torch.zeros_like(logit[neg])) if neg.any() else d.new_zeros(())
        return 0.5 * (pos_loss + neg_loss)


class InfoNCELoss(nn.Module):
    """In-batch contrastive (supervised NT-Xent): each row's positives against all other rows,
    with similarity −d²/(2τ) (= (cos − 1)/τ, so the same distance drives it)."""

    def __init__(self, temperature: float = 0.1):
        super().__init__()
        self.temperature = temperature

    def forward(self, emb: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        d = pairwise_distance(emb)
        pos, _ = pair_masks(labels)
        eye = torch.eye(len(labels), dtype=torch.bool, device=emb.device)
        logits = (-(d**2) / (2 * self.temperature)).masked_fill(eye, float("-inf"))
        log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
        has_pos = pos.any(dim=1)
        if not has_pos.any():
            return d.new_zeros(())
        per_row = -(log_prob.masked_fill(~pos, 0.0).sum(dim=1) / pos.sum(dim=1).clamp_min(1))
        return per_row[has_pos].mean()


def make_loss(name: LossName, margin: float | None = None) -> nn.Module:
    """Build a loss by name; `margin` applies to contrastive and triplet."""
    if name == "contrastive":
        return ContrastiveLoss(1.0 if margin is None else margin)
    if name == "triplet":
        return TripletLoss(0.5 if margin is None else margin)
    if name == "bce":
        return BCELoss()
    if name == "infonce":
        return InfoNCELoss()
    raise UsageError(f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}")
