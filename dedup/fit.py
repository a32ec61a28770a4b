"""A folder of pictures → a trained, calibrated model file (`train_folder`): defaults that suit the
data (labelled classes or an unlabelled catalog), a validation split that always holds same and
different pairs, the threshold calibrated on it, and a check that the model learned at all."""
from __future__ import annotations

import math
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from dedup.augment import duplicate
from dedup.calibrate import Calibration, apply, calibrate_pairs
from dedup.config import ModelConfig, TrainConfig
from dedup.data import LabelMode, SplitMode, TrainSet, fitting_size, load_folder, open_rgba, split
from dedup.files import Skipped, check_catalog
from dedup.images import ImageSkip, read_file
from dedup.model import Model, new_model
from dedup.train import EpochReport, save_trained, train

NO_LEARNING_AUC = 0.6  # validation AUC under this: the model tells same from different barely better than chance
FLAT_LOSS = 0.97  # last epoch's training loss above this share of the first's: the loss did not fall

# Recipes by kind of data; an explicit option overrides them.
LABELLED = {"edits": "labelled", "epochs": 30, "batch_size": 64, "lr": 1e-3, "augment_strength": 1.0}
UNLABELLED = {"edits": "copies"}
LABELLED_MARGINS = {"contrastive": 0.5}  # a tighter margin keeps classes it never saw apart (benchmarks/RESULTS.md)


def recipe(labels: LabelMode, **given: Any) -> TrainConfig:
    """The training recipe for `labels`, with every option in `given` that is not None."""
    base = dict(LABELLED if labels == "folders" else UNLABELLED)
    base.update({k: v for k, v in given.items() if v is not None})
    if labels == "folders" and base.get("margin") is None:
        base["margin"] = LABELLED_MARGINS.get(base.get("loss", "contrastive"))
    return TrainConfig(**base)


@dataclass(frozen=True)
class TrainSummary:
    """What `train_folder` made, and what is wrong with it (`problems`: the model did not learn)."""

    model: Model
    out: Path
    images: int  # training images
    val_images: int
    split: SplitMode
    skipped: list[Skipped]
    curves: Path | None  # the loss-curve PNG, when matplotlib is installed
    problems: list[str] = field(default_factory=list)
    calibration: Calibration | None = None  # the pair check's, when it ran

    @property
    def validation(self) -> dict[str, Any] | None:
        """Validation metrics at the stored threshold."""
        return self.model.meta.get("validation", {}).get("at_threshold")


def train_folder(
    data: str | Path,
    out: str | Path,
    *,
    labels: LabelMode = "none",
    image_size: int | None = None,
    channels: tuple[int, ...] = (32, 64, 128),
    pooling: str | None = None,
    batchnorm: bool = False,
    trim: bool | None = None,
    backdrop: bool | None = None,
    cfg: TrainConfig | None = None,
    val_fraction: float = 0.1,
    resume: bool = False,
    on_step: Callable[[int, int, float], None] | None = None,
    on_epoch: Callable[[EpochReport], None] | None = None,
    check: bool = True,
    workers: int = 2,
) -> TrainSummary:
    """Train an encoder on the images under `data` and save it to `out` (with its card and loss
    curves); a checkpoint beside `out` lets an interrupted run `resume`.

    `labels="folders"`: one sub-folder per class; positives are two pictures of a class, edited
    in ways that keep the label true. "none": positives are two edits of one picture. Defaults
    follow the data: for labelled pictures an input no larger than they need
    (`data.fitting_size`) and no trimming or backdrop repaint (a light digit on black is not a
    product on a backdrop); for a catalog a 64-px input, trimmed, backdrop repainted. `cfg`
    defaults to `recipe(labels)`. The split (`data.split`) and the threshold's rule are recorded
    in the model: balanced accuracy on labelled validation pairs, best F1 on unlabelled ones.
    With `check`, the model's pair check is then calibrated on the validation pictures
    (`dedup.calibrate`, files read on `workers` threads) and kept when it does better than the
    encoder alone."""
    labelled, out = labels == "folders", Path(out)
    cfg = cfg or recipe(labels)
    ModelConfig(channels=tuple(channels), image_size=image_size or 64)  # a bad shape is refused before any work
    full, skipped = load_folder(data, labels, max_side=2 * (image_size or 64))
    size = image_size or (fitting_size(full) if labelled else 64)
    pooling = pooling or ("avg+grid2" if labelled else "avg")
    spec = ModelConfig(channels=tuple(channels), image_size=size, pooling=pooling, batchnorm=batchnorm, trim=(not labelled) if trim is None else trim,
                       backdrop=(not labelled) if backdrop is None else backdrop)
    train_set, val_set, mode = split(full, val_fraction, cfg.seed, labels)
    model = new_model(spec, seed=cfg.seed, name=out.stem)
    checkpoint = out.with_suffix(".ckpt")
    train(model, train_set, val_set if len(val_set.labels) else None, cfg, checkpoint=checkpoint, resume=resume,
          on_step=on_step, on_epoch=on_epoch)
    rule = "balanced accuracy" if labelled else "best F1"
    chosen = model.meta.get("val_balanced" if labelled else "val_metrics")
    if chosen is not None:
        model.meta["threshold"] = round(chosen["threshold"], 4)
    model.meta["labels"] = labels
    model.meta["validation"] = {"split": mode, "images": len(val_set.labels), "classes": int(len(val_set.classes)),
                                "threshold_rule": rule, "at_threshold": chosen}
    problems = learning_problems(model)
    model.meta["validation"]["problems"] = problems
    calibration = None
    if check and not problems and len(val_set.labels):
        with calibration_pictures(Path(data), val_set, labelled, cfg.seed) as (files, ids):
            calibration = apply(model, calibrate_pairs(model, files, ids, workers=workers))
    curves = save_trained(model, out)
    checkpoint.unlink(missing_ok=True)
    return TrainSummary(model, out, len(train_set.labels), len(val_set.labels), mode, skipped, curves, problems,
                        calibration)


@contextmanager
def calibration_pictures(root: Path, val_set: TrainSet, labelled: bool, seed: int) -> Iterator[tuple[list[Path], np.ndarray]]:
    """Files and item ids to calibrate the pair check on: labelled validation pictures as they
    are; for an unlabelled catalog each validation picture and, for half of them, an edited copy
    (`augment.duplicate`) written to a temporary folder."""
    root = check_catalog(root)
    files = [root / p for p in val_set.paths]
    if labelled:
        yield files, np.asarray(val_set.labels)
        return
    rng = np.random.default_rng([seed, 7])
    with tempfile.TemporaryDirectory(prefix="dedup-calibrate-") as tmp:
        ids = list(range(len(files)))
        copies = []
        for k, f in enumerate(files):
            if rng.random() < 0.5:
                try:
                    im = open_rgba(read_file(f), 512)
                except (ImageSkip, OSError, ValueError):
                    continue
                target = Path(tmp) / f"copy-{k:06d}.png"
                duplicate(im, rng)[0].save(target)
                copies.append(target)
                ids.append(k)
        yield files + copies, np.asarray(ids)


def learning_problems(model: Model) -> list[str]:
    """Why a trained model is not worth using, with what to try; empty when it learned."""
    history = model.meta.get("history", [])
    problems = []
    broken = [h["epoch"] for h in history if not math.isfinite(h["train_loss"])]
    if broken:
        problems.append(f"the training loss became NaN at epoch {broken[0]}: try a lower learning rate")
    auc = model.meta.get("val_metrics", {}).get("auc") if model.meta.get("val_metrics") else None
    if auc is None and history and history[-1].get("val_auc") is not None:
        auc = history[-1]["val_auc"]
    if auc is not None and (not math.isfinite(auc) or auc < NO_LEARNING_AUC):
        problems.append(f"validation AUC is {auc:.2f} (0.5 is chance): the model does not tell same from different "
                        "pairs; try more epochs, a lower learning rate, weaker edits, or check that the class "
                        "folders hold what they should")
    if not broken and len(history) >= 3 and history[-1]["train_loss"] > FLAT_LOSS * history[0]["train_loss"]:
        problems.append(f"the training loss did not fall ({history[0]['train_loss']:.4f} → {history[-1]['train_loss']:.4f}): "
                        "try a higher learning rate or more epochs")
    return problems



