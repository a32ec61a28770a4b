"""Train the shipped default encoder (dedup/weights/default.pt) and calibrate its threshold.

    python -m recipes.train_default [--epochs 90] [--out dedup/weights/default.pt]

Data: Debian's openclipart-png (CC0) and the GNOME/MATE wallpapers, installed with apt if
missing, split by `recipes/pool.py` (train / val / held-out test); blank drawings and
pixel-identical look-alikes are dropped (`pool.distinct`) so that no negative pair is a duplicate.
Two more kinds of training item, off by default (tried, not shipped: `docs/experiments.md`): icons
of the training icon themes (`--icons gnome tango`, `recipes/icons.py`; an icon's renditions at 22 px
and up are one item, so two sizes of it are a positive pair) and look-alike series (`--series N`:
N training drawings, each replaced by the 3 different items `dedup.augment.series` makes of it, so
a series' members are one another's negatives). Recipe: self-supervised,
two augmented views per item (`dedup.augment.random_view`), in-batch contrastive loss
(InfoNCE on −d²), Adam with a cosine schedule. Framing (`dedup.framing`): uniform borders
trimmed, a plain backdrop repainted white (`--no-trim`, `--no-backdrop` turn them off). Hard negatives: from epoch 5 on, three quarters of every
batch is groups of look-alike pictures (each one's nearest neighbours under the current encoder,
re-mined every 5 epochs, `dedup.mining`), so the loss must separate them. The default threshold is the largest threshold with
precision ≥ 0.90 on a validation catalog (distinct val-pool pictures + `dedup.augment.duplicate` copies), never
the test pool. `--calibrate-only` redoes just that step for an existing model.
Resumable: rerun the same command after an interruption.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from dedup.augment import duplicate, flatten, series
from dedup.config import ModelConfig, TrainConfig
from dedup.data import TrainSet, open_rgba
from dedup.embed import embed_pixels
from dedup.framing import to_input
from dedup.metrics import at_threshold, best_f1_threshold, precision_threshold, roc_auc
from dedup.model import load_model, new_model, save_model
from dedup.train import plot_history, train
from recipes import icons
from recipes.pool import distinct, is_clip_art, pool_files

ROOT = Path(__file__).resolve().parent.parent
TARGET_PRECISION = 0.90
BATCH_SIZE = 128  # items a batch, two views each
HARD_NEGATIVES = 0.75  # share of each batch drawn as look-alike groups
CALIBRATION_SEED = 1  # one calibration catalog for every encoder, whatever its training seed


def load_set(paths: list[Path], max_side: int = 128) -> TrainSet:
    """Decode the pool files; ones PIL refuses (e.g. a 231-megapixel wallpaper) are left out."""
    images, kept = [], []
    for p in paths:
        try:
            images.append(open_rgba(p.read_bytes(), max_side))
            kept.append(str(p))
        except (OSError, ValueError, Image.DecompressionBombError) as exc:
            print(f"skipped {p}: {exc}", flush=True)
    return TrainSet(images, np.arange(len(images), dtype=np.int64), kept)


def distinct_set(ts: TrainSet) -> TrainSet:
    """`ts` without blank drawings and pixel-identical look-alikes (`pool.distinct`)."""
    return ts.subset(np.array(distinct(ts.images)))


def with_series(ts: TrainSet, count: int, seed: int) -> TrainSet:
    """`ts` (one item per image) with `count` of its clip-art drawings each replaced by the 3
    different items of a look-alike series (`dedup.augment.series`)."""
    rng = np.random.default_rng([seed, 77])
    drawings = [k for k, p in enumerate(ts.paths) if is_clip_art(Path(p))]
    templates = set(rng.choice(drawings, size=min(count, len(drawings)), replace=False).tolist())
    images, paths = [], []
    for k, (im, path) in enumerate(zip(ts.images, ts.paths)):
        if k not in templates:
            images.append(im)
            paths.append(path)
            continue
        _, items = series(im, rng)
        images.extend(items)
        paths.extend(f"{path}#series{n}" for n in range(len(items)))
    return TrainSet(images, np.arange(len(images), dtype=np.int64), paths)


def with_icons(ts: TrainSet, themes: tuple[str, ...], min_size: int) -> TrainSet:
    """`ts` plus one item per icon of `themes`, its renditions of `min_size` px and up as its images."""
    icons.ensure(themes)
    images, labels, paths = list(ts.images), list(ts.labels), list(ts.paths)
    next_label = int(ts.labels.max()) + 1
    for theme in themes:
        for sizes in icons.renditions(theme, min_size=min_size).values():
            for path in sizes.values():
                images.append(open_rgba(path.read_bytes(), 128))
                labels.append(next_label)
                paths.append(str(path))
            next_label += 1
    return TrainSet(images, np.array(labels, dtype=np.int64), paths)


def calibration_catalog(ts: TrainSet, spec: ModelConfig, seed: int = CALIBRATION_SEED) -> tuple[np.ndarray, np.ndarray]:
    """Originals plus 1–3 edited copies of 60% of them: (pixels, source labels)."""
    rng = np.random.default_rng(seed)
    pixels, labels = [], []
    for i, im in enumerate(ts.images):
        pixels.append(to_input(flatten(im), spec.image_size, spec.framing))
        labels.append(i)
        if rng.random() < 0.6:
            for _ in range(int(rng.integers(1, 4))):
                dup, _ = duplicate(im, rng)
                pixels.append(to_input(dup, spec.image_size, spec.framing))
                labels.append(i)
    return np.stack(pixels), np.array(labels)


def calibration_pairs(model, val_set: TrainSet, seed: int = CALIBRATION_SEED) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """Every pair of the calibration catalog: (distances, same picture?, picture of each side, images)."""
    pixels, labels = calibration_catalog(val_set, model.config, seed)
    emb = embed_pixels(model, pixels)
    i, j = np.triu_indices(len(emb), 1)
    d = np.sqrt(np.maximum(((emb[i] - emb[j]) ** 2).sum(1), 0))
    return d, labels[i] == labels[j], labels[i], labels[j], len(emb)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=90)
    ap.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--out", type=Path, default=ROOT / "dedup" / "weights" / "default.pt")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--channels", type=int, nargs="+", default=[32, 64, 128],
                    help="Convolution widths, one 3x3 block each (32 64 128 = the seed CNN).")
    ap.add_argument("--pooling", choices=["avg", "avg+grid2"], default="avg", help="avg = the seed CNN.")
    ap.add_argument("--no-trim", dest="trim", action="store_false", help="Do not cut uniform borders before resizing.")
    ap.add_argument("--no-backdrop", dest="backdrop", action="store_false", help="Do not repaint a plain backdrop white.")
    ap.add_argument("--hard-negatives", type=float, default=HARD_NEGATIVES, help="Share of each batch drawn as look-alike groups.")
    ap.add_argument("--series", type=int, default=0, help="Training drawings made into look-alike series of 3 items.")
    ap.add_argument("--icons", nargs="*", default=[], choices=list(icons.TRAINING),
                    help="Icon themes whose renditions train as positives (`recipes.icons.TRAINING`).")
    ap.add_argument("--icon-min-size", type=int, default=22, help="Smallest icon rendition trained on, in px.")
    ap.add_argument("--calibrate-only", action="store_true", help="Only recalibrate the threshold of --out.")
    args = ap.parse_args()

    torch.set_num_threads(2)
    parts = pool_files()
    print({k: len(v) for k, v in parts.items()}, flush=True)
    if args.calibrate_only:
        calibrate(load_model(args.out), load_set(parts["val"]), args, None)
        return
    train_set, val_set = load_set(parts["train"]), load_set(parts["val"])
    train_set = with_series(distinct_set(train_set), args.series, args.seed)  # no look-alike "negatives" but series
    train_set = with_icons(train_set, tuple(args.icons), args.icon_min_size)
    print(f"{len(train_set.images)} training images of {len(train_set.classes)} items", flush=True)
    cfg = TrainConfig(
        loss="infonce", optimizer="adam", lr=2e-3, epochs=args.epochs, batch_size=args.batch_size,
        seed=args.seed, workers=1, schedule="cosine", hard_negatives=args.hard_negatives,
    )
    config = ModelConfig(channels=tuple(args.channels), image_size=args.image_size, pooling=args.pooling, trim=args.trim,
                         backdrop=args.backdrop)
    model = new_model(config, seed=args.seed, name="default")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    ckpt = args.out.with_suffix(".ckpt")
    start = time.time()
    train(model, train_set, val_set, cfg, checkpoint=ckpt, resume=True,
          on_epoch=lambda r: print(r, flush=True))
    minutes = (time.time() - start) / 60

    calibrate(model, val_set, args, minutes)


def default_threshold(d: np.ndarray, y: np.ndarray) -> float:
    """The default threshold from calibration pairs (distances, same picture?). Precision first: a
    wrong set can lead a user to act on a file that is not a duplicate, so it is the largest
    threshold whose precision is ≥ TARGET_PRECISION (the best-F1 one if none reaches it)."""
    return precision_threshold(d, y, TARGET_PRECISION) or best_f1_threshold(d, y)


def calibrate(model, val_set: TrainSet, args, minutes: float | None) -> None:
    """Choose the default threshold on the validation pool (distinct pictures only) and save."""
    val_set = distinct_set(val_set)
    d, y, _, _, n_images = calibration_pairs(model, val_set)
    thr = default_threshold(d, y)
    calib = at_threshold(d, y, thr, roc_auc(d, y)).as_dict()
    calib["target_precision"] = TARGET_PRECISION
    calib["best_f1_threshold"] = best_f1_threshold(d, y)
    calib["best_f1"] = at_threshold(d, y, calib["best_f1_threshold"]).f1
    model.meta.update(
        threshold=round(thr, 4),
        calibration={"catalog_images": n_images, "positive_pairs": int(y.sum()), **calib},
        data={"sources": ["openclipart-png (CC0)", "gnome-backgrounds", "mate-backgrounds",
                          *(f"{icons.THEMES[t].package} ({icons.THEMES[t].licence}; renditions ≥ {args.icon_min_size} px)"
                            for t in args.icons)],
              "split": "recipes/pool.py: sha256(base name) % 100 → <15 test, <20 val, else train",
              "series": args.series,
              "train_images": model.meta.get("train_items"), "val_images": len(val_set.images)},
        machine="2-core CPU",
    )
    if minutes is not None:
        model.meta["training_minutes"] = round(minutes, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_model(model, args.out)
    plot_history(model.meta["history"], args.out.with_suffix(".loss.png"))
    print("calibrated threshold", thr, calib, flush=True)


if __name__ == "__main__":
    main()
