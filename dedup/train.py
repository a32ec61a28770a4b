"""The training loop: in-batch pairs/triplets from view batches, checkpoints, validation.

Reports through callbacks and prints nothing.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from dedup.atomic import atomic_write
from dedup.augment import VIEWS
from dedup.config import TrainConfig
from dedup.data import TrainSet, view_batch
from dedup.embed import to_tensor
from dedup.errors import UsageError
from dedup.framing import to_input
from dedup.losses import make_loss, pairwise_distance
from dedup.metrics import at_threshold, balanced_threshold, best_f1_threshold, roc_auc
from dedup.mining import class_neighbours
from dedup.model import Model, ModelConfig, save_model


@dataclass(frozen=True)
class EpochReport:
    epoch: int
    train_loss: float
    val_loss: float | None
    val_auc: float | None
    seconds: float


def make_optimizer(params, cfg: TrainConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    raise UsageError(f"unknown optimizer {cfg.optimizer!r}; choose adam or sgd")


class _EpochBatches(torch.utils.data.IterableDataset):
    """The batches of one epoch, seeded by (seed, epoch) so a resumed run sees the same data."""

    def __init__(self, ts: TrainSet, cfg: TrainConfig, spec: ModelConfig, epoch: int, steps: int,
                 neighbours: np.ndarray | None = None):
        self.ts, self.cfg, self.spec, self.epoch, self.steps = ts, cfg, spec, epoch, steps
        self.neighbours = neighbours

    def __iter__(self):
        rng = np.random.default_rng([self.cfg.seed, self.epoch])
        for _ in range(self.steps):
            yield view_batch(self.ts, rng, self.cfg.batch_size, self.spec.image_size, self.cfg.augment_strength,
                             self.neighbours, self.cfg.hard_negatives, framing=self.spec.framing, edits=self.cfg.edits)


VAL_IMAGES = 1024  # labelled validation: at most this many pictures, every pair among them scored


def validation_batches(ts: TrainSet, cfg: TrainConfig, spec: ModelConfig) -> list[tuple[np.ndarray, np.ndarray]]:
    """Fixed (seeded) validation batches, scored on every in-batch pair. Labelled data: the
    validation pictures themselves, unedited, framed as at indexing time (pairs of real pictures
    of one class are the positives). Unlabelled: view batches (two edits of one picture)."""
    rng = np.random.default_rng([cfg.seed, 10_007])
    if cfg.edits == "labelled":
        pick = np.sort(rng.permutation(len(ts.labels))[:VAL_IMAGES])
        pixels = np.stack([to_input(VIEWS["labelled"](ts.images[int(i)], rng, 0.0), spec.image_size, spec.framing)
                           for i in pick])
        return [(pixels, ts.labels[pick])]
    return [view_batch(ts, rng, cfg.batch_size, spec.image_size, cfg.augment_strength, framing=spec.framing)
            for _ in range(cfg.val_batches)]


def batch_pair_distances(model: Model, batches: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Distances and same-labels of every in-batch pair (i < j) over `batches`."""
    ds, ys = [], []
    model.net.eval()
    with torch.inference_mode():
        for pixels, labels in batches:
            d = pairwise_distance(model.net(to_tensor(pixels))).numpy()
            iu = np.triu_indices(len(labels), 1)
            ds.append(d[iu])
            ys.append(labels[iu[0]] == labels[iu[1]])
    return np.concatenate(ds), np.concatenate(ys)


def train(
    model: Model,
    train_set: TrainSet,
    val_set: TrainSet | None,
    cfg: TrainConfig,
    *,
    checkpoint: Path | None = None,
    resume: bool = False,
    on_step: Callable[[int, int, float], None] | None = None,
    on_epoch: Callable[[EpochReport], None] | None = None,
) -> Model:
    """Train `model` in place and return it with its recipe, history and validation metrics."""
    if len(train_set.classes) < 2:
        raise UsageError("training needs at least 2 distinct items or classes")
    torch.manual_seed(cfg.seed)
    loss_fn = make_loss(cfg.loss, cfg.margin)
    params = list(model.net.parameters()) + list(loss_fn.parameters())
    opt = make_optimizer(params, cfg)
    history: list[dict[str, Any]] = []
    first_epoch = 0
    neighbours: np.ndarray | None = None  # look-alike classes for hard-negative batches
    run = _run_key(model, cfg)
    if resume and checkpoint is not None and checkpoint.is_file():
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
        if state.get("run", run) != run:
            raise UsageError(f"checkpoint {str(checkpoint)!r} was written by a run with another model or recipe; "
                             "remove it to start afresh, or resume with the same options")
        try:
            model.net.load_state_dict(state["net"])
        except RuntimeError:
            raise UsageError(f"checkpoint {str(checkpoint)!r} holds weights of another architecture; remove it "
                             "to start afresh") from None
        loss_fn.load_state_dict(state["loss"])
        opt.load_state_dict(state["opt"])
        history = list(state["history"])
        first_epoch = int(state["epoch"])
        neighbours = state["neighbours"].numpy() if state.get("neighbours") is not None else None
    steps = cfg.steps_per_epoch or max(1, math.ceil(len(train_set.labels) / cfg.batch_size))
    size = model.config.image_size
    val = validation_batches(val_set, cfg, model.config) if val_set is not None and len(val_set.classes) >= 2 else None
    sched = (
        torch.optim.lr_scheduler.LambdaLR(opt, lambda e: 0.5 * (1 + math.cos(math.pi * min(e, cfg.epochs) / cfg.epochs)))
        if cfg.schedule == "cosine" else None
    )
    if sched is not None:
        for _ in range(first_epoch):
            sched.step()
    for epoch in range(first_epoch, cfg.epochs):
        started = time.perf_counter()
        if cfg.hard_negatives > 0 and epoch > 0 and epoch % cfg.mine_every == 0:
            neighbours = class_neighbours(model, train_set, cfg.mine_k)
        torch.manual_seed(cfg.seed * 1000 + epoch)
        model.net.train()
        loader = torch.utils.data.DataLoader(
            _EpochBatches(train_set, cfg, model.config, epoch, steps, neighbours), batch_size=None, num_workers=cfg.workers,
            persistent_workers=False,
        )
        total = 0.0
        diverged = False
        for step, (pixels, labels) in enumerate(loader):
            pixels = pixels.numpy() if isinstance(pixels, torch.Tensor) else pixels
            labels = torch.as_tensor(labels)
            loss = loss_fn(model.net(to_tensor(pixels)), labels)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            value = float(loss.detach())
            if not math.isfinite(value):  # diverged: the epoch ends, and the run with it
                total, diverged = math.nan, True
                break
            total += value
            if on_step:
                on_step(step + 1, steps, value)
        if sched is not None:
            sched.step()
        report = EpochReport(epoch + 1, total / steps, *_validate(model, loss_fn, val), time.perf_counter() - started)
        history.append(asdict(report))
        if checkpoint is not None:
            _save_checkpoint(checkpoint, run, model, loss_fn, opt, epoch + 1, history, neighbours)
        if on_epoch:
            on_epoch(report)
        if diverged:
            break
    model.meta = {
        "recipe": {**asdict(cfg), "image_size": size},
        "history": history,
        "train_items": int(len(train_set.classes)),
        "val_items": int(len(val_set.classes)) if val_set is not None else 0,
    }
    if val is not None:
        d, y = batch_pair_distances(model, val)
        if y.any() and not y.all() and np.isfinite(d).all():
            auc = roc_auc(d, y)
            model.meta["val_metrics"] = at_threshold(d, y, best_f1_threshold(d, y), auc).as_dict()
            model.meta["val_balanced"] = at_threshold(d, y, balanced_threshold(d, y), auc).as_dict()
    return model


def _validate(model: Model, loss_fn: torch.nn.Module, val) -> tuple[float | None, float | None]:
    if val is None:
        return None, None
    model.net.eval()
    losses = []
    with torch.inference_mode():
        for pixels, labels in val:
            losses.append(float(loss_fn(model.net(to_tensor(pixels)), torch.as_tensor(labels))))
    d, y = batch_pair_distances(model, val)
    return float(np.mean(losses)), (roc_auc(d, y) if np.isfinite(d).all() else math.nan)


def _run_key(model: Model, cfg: TrainConfig) -> str:
    """What a checkpoint must have been written by to be resumed: the same architecture, input spec and recipe
    (the number of epochs aside: a run may be resumed to train longer)."""
    return repr((model.config.fingerprint(), {k: v for k, v in asdict(cfg).items() if k != "epochs"}))


def _save_checkpoint(path: Path, run: str, model: Model, loss_fn, opt, epoch: int, history: list,
                     neighbours: np.ndarray | None) -> None:
    state = {"run": run, "net": model.net.state_dict(), "loss": loss_fn.state_dict(), "opt": opt.state_dict(), "epoch": epoch,
             "history": history, "neighbours": None if neighbours is None else torch.from_numpy(neighbours)}
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def plot_history(history: list[dict[str, Any]], path: Path) -> bool:
    """Write train/validation loss curves per epoch as a PNG; False if matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    epochs = [h["epoch"] for h in history]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(epochs, [h["train_loss"] for h in history], marker="o", label="train")
    if any(h["val_loss"] is not None for h in history):
        ax.plot(epochs, [h["val_loss"] for h in history], marker="o", label="validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def save_trained(model: Model, out: Path) -> Path | None:
    """Save the model and its loss-curve PNG next to it; return the PNG path (if written)."""
    save_model(model, out)
    png = out.with_suffix(".loss.png")
    return png if plot_history(model.meta.get("history", []), png) else None
