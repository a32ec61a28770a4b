"""Frozen configuration of the training stage and option names that the CLI needs without
importing heavy modules."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

LossName = Literal["contrastive", "triplet", "bce", "infonce"]
LOSSES: tuple[str, ...] = ("contrastive", "triplet", "bce", "infonce")
OptimizerName = Literal["adam", "sgd"]
FALLBACK_THRESHOLD = 0.5  # for models without a calibrated threshold
ActionName = Literal["move", "symlink", "hardlink", "delete"]
ACTIONS: tuple[str, ...] = ("move", "symlink", "hardlink", "delete")


@dataclass(frozen=True)
class TrainConfig:
    """The training recipe; stored in the model file."""

    loss: LossName = "contrastive"
    margin: float | None = None
    optimizer: OptimizerName = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 0.0
    epochs: int = 10
    batch_size: int = 64  # items per batch; each contributes two views
    steps_per_epoch: int | None = None  # default: one pass over the training images
    seed: int = 0
    augment_strength: float = 1.0
    val_batches: int = 4
    workers: int = 0  # background processes preparing batches
    schedule: Literal["constant", "cosine"] = "constant"
    hard_negatives: float = 0.0  # share of each batch drawn as groups of look-alike classes
    mine_every: int = 5  # epochs between re-mining look-alikes (the first mining after this many)
    mine_k: int = 10  # look-alikes kept per class
