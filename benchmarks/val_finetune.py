"""Probe a training-data idea in minutes: fine-tune the shipped encoder with it, judge on validation.

    python -m benchmarks.val_finetune --out RUN.pt [--icons adwaita tango] [--icon-share 0.25]
                                      [--chance screenshot=0.25 ...] [--series 600] [--epochs 10] [--lr 2e-4]

A full run of `recipes/train_default.py` takes about an hour on 2 cores; this one starts from the
shipped weights and trains `--epochs` more (Adam, cosine from `--lr`, the recipe's batches: 128
items, three quarters in look-alike groups re-mined every 5 epochs), with the idea applied:
icon renditions of `recipes.icons` themes as a fixed share of every batch (two renditions of one
icon are a positive pair, with `dedup.augment.label_view` edits), other chances for the edit
families of the training views (`dedup.augment.VIEW_CHANCES`), and/or look-alike series among the
training items (`recipes.train_default.with_series`: mined into one batch as one another's
negatives). `--epochs 0` judges `--model`
alone. Then the shipped encoder and the run are judged on validation only (never the test pool
or a benchmark theme):

- the recipe's calibration catalog (`recipes.train_default.calibration_pairs`): the threshold at
  precision 0.90, precision / recall / F1 there, ROC-AUC and the best F1;
- one copy of every distinct validation picture per edit family: the share within the threshold;
- a look-alike series (`dedup.augment.series`, 3 different items) of every validation drawing: the
  share of its pairs within the threshold (different items the encoder alone would join);
- the `gnome-icon-theme` library as `benchmarks.icons` builds it (sizes 32–256): encoder-alone
  pair precision / recall / F1 at the threshold, median distances between renditions and to the
  nearest other icon (on a theme trained on when `--icons` names gnome).

A run that passes this is worth the full recipe and the system-level figures
(`recipes.calibrate_verifier`, `benchmarks.details`, `benchmarks.val_normalise`).
"""
from __future__ import annotations

import argparse
import math
import shutil
from functools import partial
from pathlib import Path

import numpy as np
import torch

from benchmarks.icons import build
from dedup.augment import FAMILIES, VIEW_CHANCES, flatten, random_view, series
from dedup.config import TrainConfig
from dedup.data import TrainSet, open_rgba, view_batch
from dedup.embed import embed_pixels, to_tensor
from dedup.framing import to_input
from dedup.images import load
from dedup.losses import make_loss
from dedup.metrics import at_threshold, best_f1_threshold, roc_auc
from dedup.mining import class_neighbours
from dedup.model import Model, load_model, save_model
from recipes import icons
from recipes.pool import pool_files
from recipes.train_default import BATCH_SIZE, HARD_NEGATIVES, calibration_pairs, default_threshold, distinct_set, load_set, with_series

MINING = TrainConfig()  # the recipe's mining: every `mine_every` epochs, `mine_k` look-alikes a class
GNOME = Path("benchmarks/out/val_finetune/gnome")


def icon_set(themes: list[str]) -> TrainSet:
    """One item per icon of `themes`, its renditions up to 256 px as its images."""
    icons.ensure(themes)
    images, labels = [], []
    every = [sizes for theme in themes for sizes in icons.renditions(theme).values()]
    for label, sizes in enumerate(every):
        for size, path in sizes.items():
            if size <= 256:
                images.append(open_rgba(path.read_bytes(), 128))
                labels.append(label)
    return TrainSet(images, np.array(labels, np.int64), [""] * len(images))


def fine_tune(model: Model, train: TrainSet, rendered: TrainSet | None, share: float, chances: dict[str, float],
              epochs: int, lr: float) -> Model:
    spec = model.config
    view = partial(random_view, chances=chances)
    loss_fn = make_loss("infonce")
    opt = torch.optim.Adam(model.net.parameters(), lr=lr)
    steps = math.ceil(len(train.labels) / BATCH_SIZE)
    n_icons = round(BATCH_SIZE * share) if rendered is not None else 0
    for epoch in range(epochs):
        if epoch % MINING.mine_every == 0:
            neighbours = class_neighbours(model, train, MINING.mine_k)
        for group in opt.param_groups:
            group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * epoch / epochs))
        rng = np.random.default_rng([7, epoch])
        model.net.train()
        total = 0.0
        for _ in range(steps):
            pixels, labels = view_batch(train, rng, BATCH_SIZE - n_icons, spec.image_size, 1.0, neighbours, HARD_NEGATIVES,
                                        framing=spec.framing, edits=view)
            if n_icons:
                more, their = view_batch(rendered, rng, n_icons, spec.image_size, 1.0, framing=spec.framing, edits="labelled")
                pixels, labels = np.concatenate([pixels, more]), np.concatenate([labels, their + int(labels.max()) + 1])
            loss = loss_fn(model.net(to_tensor(pixels)), torch.as_tensor(labels))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach())
        print(f"epoch {epoch + 1}: loss {total / steps:.3f}", flush=True)
    model.net.eval()
    return model


def judge(name: str, model: Model, val: TrainSet) -> None:
    spec = model.config
    d, y, *_ = calibration_pairs(model, val)
    thr = default_threshold(d, y)
    at = at_threshold(d, y, thr)
    print(f"{name}: threshold {thr:.4f}; calibration P {at.precision:.3f} R {at.recall:.3f} F1 {at.f1:.3f}, "
          f"ROC-AUC {roc_auc(d, y):.4f}, best F1 {at_threshold(d, y, best_f1_threshold(d, y)).f1:.3f}")

    def embed(pictures) -> np.ndarray:
        return embed_pixels(model, np.stack([to_input(p, spec.image_size, spec.framing) for p in pictures]))

    rng = np.random.default_rng(7)
    originals = embed([flatten(im) for im in val.images])
    recall = {f: float((np.linalg.norm(originals - embed([flatten(FAMILIES[f](im.convert("RGBA"), rng)) for im in val.images]),
                                       axis=1) < thr).mean()) for f in FAMILIES}
    print("  families within the threshold: " + ", ".join(f"{f} {r:.3f}" for f, r in recall.items())
          + f"; mean {np.mean(list(recall.values())):.3f}")
    rng = np.random.default_rng(11)
    apart = []
    for im in val.images:
        items = embed(flatten(item) for item in series(im, rng)[1])
        apart.extend(np.linalg.norm(items[a] - items[b]) for a, b in ((0, 1), (0, 2), (1, 2)))
    print(f"  look-alike series: {np.mean(np.array(apart) < thr):.3f} of item pairs within the threshold, "
          f"median distance {np.median(apart):.3f}")

    files = sorted((GNOME / "catalog").rglob("*.png"))
    names = np.array([f.parent.name for f in files])
    sizes = np.array([int(f.stem) for f in files])
    e = embed_pixels(model, np.stack([load(f, spec.image_size, spec.framing).pixels for f in files]))
    dist = np.sqrt(np.maximum(((e[:, None] - e[None]) ** 2).sum(-1), 0))
    i, j = np.triu_indices(len(e), 1)
    same = names[i] == names[j]
    g = at_threshold(dist[i, j], same, thr)
    medians = {f"{a}–{b}": float(np.median(dist[i, j][same & (np.minimum(sizes[i], sizes[j]) == a)
                                                        & (np.maximum(sizes[i], sizes[j]) == b)])) for a, b in ((32, 256), (48, 256))}
    dist[names[:, None] == names[None, :]] = np.inf
    print(f"  gnome library, encoder alone: P {g.precision:.3f} R {g.recall:.3f} F1 {g.f1:.3f}; median distance "
          + ", ".join(f"{k} px {v:.3f}" for k, v in medians.items()) + f", nearest other icon {np.median(dist.min(1)):.3f}",
          flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True, help="Where the fine-tuned model is written.")
    ap.add_argument("--model", default=None, help="Start from this model file (default: the shipped encoder).")
    ap.add_argument("--icons", nargs="*", default=[], choices=list(icons.TRAINING))
    ap.add_argument("--icon-share", type=float, default=0.25, help="Share of every batch drawn from the icons.")
    ap.add_argument("--chance", nargs="*", default=[], metavar="FAMILY=P",
                    help=f"Another chance for an edit family of the training views ({', '.join(FAMILIES)}).")
    ap.add_argument("--series", type=int, default=0, help="Training drawings made into look-alike series of 3 items.")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--lr", type=float, default=2e-4)
    args = ap.parse_args()
    torch.set_num_threads(2)
    chances = dict(VIEW_CHANCES)
    for item in args.chance:
        family, _, p = item.partition("=")
        if family not in FAMILIES:
            raise SystemExit(f"unknown edit family {family!r}")
        chances[family] = float(p)
    if not (GNOME / "catalog").is_dir():
        shutil.rmtree(GNOME, ignore_errors=True)
        build(GNOME, "gnome", 400, 0)
    if "gnome" in args.icons:
        print("note: the gnome library's figures are then on a theme trained on")
    parts = pool_files()
    val = distinct_set(load_set(parts["val"]))
    judge("shipped", load_model(), val)
    model = load_model(args.model)
    if args.epochs:
        rendered = icon_set(args.icons) if args.icons else None
        train = distinct_set(load_set(parts["train"]))
        train = with_series(train, args.series, seed=0) if args.series else train
        model = fine_tune(model, train, rendered, args.icon_share, chances, args.epochs, args.lr)
        save_model(model, args.out)
    judge(str(args.out) if args.epochs else str(args.model or "shipped"), model, val)


if __name__ == "__main__":
    main()
