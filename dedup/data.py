"""Training data: a folder loaded into small in-memory images with labels, and view batches."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from dedup.augment import VIEWS, View
from dedup.config import Framing
from dedup.errors import CatalogError, UsageError
from dedup.files import FileRecord, Skipped, check_catalog, walk_catalog
from dedup.framing import to_input
from dedup.images import ImageSkip, read_file, to_rgb, upright
from dedup.progress import ProgressFn, silent

LabelMode = Literal["none", "folders"]


@dataclass
class TrainSet:
    """Images (RGBA, longest side ≤ load size) with integer labels; equal label = same item."""

    images: list[Image.Image]
    labels: np.ndarray  # (n,) int64
    paths: list[str]

    def subset(self, idx: np.ndarray) -> TrainSet:
        return TrainSet([self.images[i] for i in idx], self.labels[idx], [self.paths[i] for i in idx])

    @property
    def classes(self) -> np.ndarray:
        return np.unique(self.labels)

    def by_class(self) -> dict[int, np.ndarray]:
        """Image indexes of each label."""
        order = np.argsort(self.labels, kind="stable")
        labels = self.labels[order]
        cuts = np.flatnonzero(np.diff(labels)) + 1
        return {int(labels[s]): order[s:e] for s, e in zip(np.r_[0, cuts], np.r_[cuts, len(labels)])}


def open_rgba(data: bytes, max_side: int) -> Image.Image:
    """Decode to RGBA (alpha kept when present), upright as `dedup.images` decodes for indexing
    (EXIF orientation applied), longest side ≤ `max_side`."""
    import io

    im = Image.open(io.BytesIO(data))
    im = upright(im, (max_side, max_side))
    has_alpha = im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info)
    im = im.convert("RGBA") if has_alpha else to_rgb(im).convert("RGBA")
    im.thumbnail((max_side, max_side), Image.Resampling.BILINEAR)
    return im


def load_folder(
    root: str | Path, labels: LabelMode = "none", max_side: int = 128, on_progress: ProgressFn = silent,
    limit: int | None = None,
) -> tuple[TrainSet, list[Skipped]]:
    """Load every image under `root`; with `labels="folders"` the first path part is the class."""
    if labels not in ("none", "folders"):
        raise UsageError(f"labels must be 'none' or 'folders', got {labels!r}", option="labels")
    base = check_catalog(root)
    records = [r for r in walk_catalog(base) if isinstance(r, FileRecord)][:limit]
    images, names, paths, skipped = [], [], [], []
    for k, rec in enumerate(records):
        try:
            images.append(open_rgba(read_file(base / rec.rel), max_side))
        except (ImageSkip, OSError, ValueError, SyntaxError) as exc:
            skipped.append(Skipped(rec.rel, str(exc)))
            continue
        paths.append(rec.rel)
        names.append(rec.rel.split("/")[0] if labels == "folders" and "/" in rec.rel else rec.rel)
        on_progress("loading", k + 1, len(records))
    if len(images) < 2:
        raise CatalogError(f"{str(root)!r} holds {len(images)} readable images; training needs at least 2")
    _, label_ids = np.unique(np.array(names), return_inverse=True)
    if labels == "folders" and len(np.unique(label_ids)) < 2:
        raise CatalogError(f"{str(root)!r} has fewer than 2 class folders; train on it without labels", option="labels")
    return TrainSet(images, label_ids.astype(np.int64), paths), skipped


SplitMode = Literal["items", "per-class", "whole-classes"]
WHOLE_CLASSES_FROM = 10  # labelled classes from which validation holds out whole classes (one-shot)


def split(ts: TrainSet, val_fraction: float, seed: int, labels: LabelMode = "none") -> tuple[TrainSet, TrainSet, SplitMode]:
    """Hold out a validation part, deterministic for `seed`, that always has same and different pairs.

    - Unlabelled (every image its own item): whole items ("items"; positives are two edits of one).
    - Labelled, with `WHOLE_CLASSES_FROM` classes or more: whole classes ("whole-classes", at
      least 3), so validation measures what the model does on items it never saw (one-shot).
    - Labelled, fewer classes: `val_fraction` of each class's images ("per-class", at least 2 of
      a class with 4 or more), so validation has pairs of every class and across classes.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise UsageError(f"the validation fraction must be in [0, 1), got {val_fraction}", option="val_fraction")
    rng = np.random.default_rng(seed)
    classes = ts.classes
    if labels == "folders" and len(classes) < WHOLE_CLASSES_FROM:
        is_val = np.zeros(len(ts.labels), bool)
        if val_fraction > 0:
            for members in ts.by_class().values():
                if len(members) >= 4:
                    take = min(max(2, int(round(val_fraction * len(members)))), len(members) - 2)
                    is_val[rng.permutation(members)[:take]] = True
        mode: SplitMode = "per-class"
    else:
        n_val = int(round(len(classes) * val_fraction))
        if val_fraction > 0 and len(classes) >= 4:
            n_val = max(3 if labels == "folders" else 2, n_val)
        val_classes = set(rng.permutation(classes)[:n_val].tolist())
        is_val = np.array([lab in val_classes for lab in ts.labels])
        mode = "whole-classes" if labels == "folders" else "items"
    return ts.subset(np.flatnonzero(~is_val)), ts.subset(np.flatnonzero(is_val)), mode


def fitting_size(ts: TrainSet, largest: int = 64, smallest: int = 32) -> int:
    """An encoder input no larger than the pictures need: their median longer side, rounded up to
    a multiple of 16, within [`smallest`, `largest`]."""
    side = float(np.median([max(im.size) for im in ts.images]))
    return int(min(largest, max(smallest, 16 * np.ceil(side / 16))))


def view_batch(
    ts: TrainSet, rng: np.random.Generator, batch_size: int, image_size: int, strength: float = 1.0,
    neighbours: np.ndarray | None = None, hard_fraction: float = 0.0, group: int = 4, framing: Framing = Framing(),
    edits: str | View = "copies",
) -> tuple[np.ndarray, np.ndarray]:
    """`batch_size` items (distinct unless there are fewer classes), two augmented views each (two
    images of the class when it has several): returns ((2b, S, S, 3) uint8 pixels, (2b,) labels).

    With `neighbours` (from `dedup.mining.class_neighbours`), `hard_fraction` of the items come in
    groups of `group`: a random class and look-alikes drawn from its nearest classes. `framing` is the
    model's (`dedup.framing.to_input`); `edits` names the views (`dedup.augment.VIEWS`) or is the view itself."""
    classes = ts.classes
    by_class = ts.by_class()
    make_view = VIEWS[edits] if isinstance(edits, str) else edits
    pixels, labels = [], []
    for c in _batch_classes(classes, rng, batch_size, neighbours, hard_fraction, group):
        members = by_class[int(c)]
        picks = rng.choice(members, size=2, replace=len(members) < 2)
        for i in picks:
            view = make_view(ts.images[int(i)], rng, strength)
            pixels.append(to_input(view, image_size, framing))
            labels.append(int(c))
    return np.stack(pixels), np.array(labels, dtype=np.int64)


def _batch_classes(
    classes: np.ndarray, rng: np.random.Generator, batch_size: int, neighbours: np.ndarray | None,
    hard_fraction: float, group: int,
) -> np.ndarray:
    if len(classes) < batch_size:  # few classes (labelled folders): with replacement, batches stay full
        return rng.choice(classes, size=batch_size, replace=True)
    chosen: list[int] = []  # positions in `classes`
    taken: set[int] = set()
    hard = int(batch_size * hard_fraction) if neighbours is not None else 0
    while len(chosen) < hard:
        seed = int(rng.integers(len(classes)))
        if seed in taken:
            continue
        near = [int(n) for n in neighbours[seed] if int(n) not in taken]
        picks = [seed] + [near[i] for i in rng.permutation(len(near))[: group - 1]]
        for p in picks[: hard - len(chosen)]:
            chosen.append(p)
            taken.add(p)
    rest = np.setdiff1d(np.arange(len(classes)), np.fromiter(taken, np.int64, len(taken)), assume_unique=True)
    chosen.extend(rng.choice(rest, size=batch_size - len(chosen), replace=False).tolist())
    return classes[np.array(chosen)]
