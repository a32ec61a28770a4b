"""The seed experiment on scikit-learn's bundled handwritten digits, reproduced.

    python -m benchmarks.seed_digits [--epochs 15] [--out benchmarks/out/digits]

1. All ten digits: 70% of each class's images train the seed CNN, pairs sampled from the other
   30% are scored (confusion matrix, accuracy, precision, recall, F1, AUC, FAR, FRR at the
   best-F1 threshold of the training pairs, so the test pairs never choose it).
2. One-shot: train on digits 0–6 only; score pairs and 3-way one-shot trials on digits 7–9.
3. Every loss (contrastive, triplet, BCE) with Adam, and contrastive/triplet with SGD.
Prints one markdown table (paste into benchmarks/RESULTS.md).
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from sklearn.datasets import load_digits

from dedup.config import TrainConfig
from dedup.data import load_folder
from dedup.evaluate import folder_pairs, one_shot, pair_distances
from dedup.metrics import at_threshold, best_f1_threshold, roc_auc
from dedup.model import ModelConfig, new_model
from dedup.train import train

SIZE = 32


def export(out: Path, seed: int = 0, polarity: str = "dark", unseen: range = range(0)) -> None:
    """Write digits as 32×32 PNGs: out/{train,test}/<digit>/<n>.png (70/30 split per class), and
    out/unseen/<digit>/ for the digits in `unseen`. `polarity`: dark ink on white, or light on black."""
    if (out / "train").is_dir():
        return
    digits = load_digits()
    rng = np.random.default_rng(seed)
    for c in range(10):
        idx = rng.permutation(np.flatnonzero(digits.target == c))
        cut = int(round(0.7 * len(idx)))
        parts = (("unseen", idx),) if c in unseen else (("train", idx[:cut]), ("test", idx[cut:]))
        for part, ids in parts:
            folder = out / part / str(c)
            folder.mkdir(parents=True, exist_ok=True)
            for i in ids:
                ink = digits.images[i] * 255 / 16
                arr = (255 - ink if polarity == "dark" else ink).astype(np.uint8)
                Image.fromarray(arr, "L").resize((SIZE, SIZE), Image.Resampling.BILINEAR).save(folder / f"{i}.png")


def only(folder: Path, digits: range, dest: Path) -> Path:
    """A copy of `folder` holding only some class sub-folders (hard links, no extra space)."""
    for d in digits:
        (dest / str(d)).mkdir(parents=True, exist_ok=True)
        for f in (folder / str(d)).iterdir():
            if not (dest / str(d) / f.name).exists():
                os.link(f, dest / str(d) / f.name)
    return dest


def run(train_dir: Path, test_dir: Path, loss: str, optimizer: str, epochs: int, ways: int | None) -> dict:
    ts, _ = load_folder(train_dir, "folders", max_side=SIZE)
    lr = 1e-3 if optimizer == "adam" else 0.03
    cfg = TrainConfig(loss=loss, optimizer=optimizer, lr=lr, epochs=epochs, batch_size=64, seed=0, augment_strength=0.0)
    model = new_model(ModelConfig(image_size=SIZE), seed=0, name=f"digits-{loss}-{optimizer}")
    start = time.time()
    train(model, ts, None, cfg)
    seconds = time.time() - start
    d_tr, y_tr, _ = pair_distances(model, folder_pairs(train_dir, 2000, seed=1))
    threshold = best_f1_threshold(d_tr, y_tr)
    d, y, _ = pair_distances(model, folder_pairs(test_dir, 2000, seed=2))
    v = at_threshold(d, y, threshold, roc_auc(d, y))
    row = {"loss": loss, "optimizer": optimizer, "seconds": seconds, **v.as_dict()}
    if ways:
        row["one_shot"] = one_shot(model, test_dir, ways, trials=1000, seed=3)["accuracy"]
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/out/digits"))
    args = ap.parse_args()
    torch.set_num_threads(2)
    export(args.out)
    train_all, test_all = args.out / "train", args.out / "test"
    seen = only(train_all, range(7), args.out / "train_0-6")
    unseen = only(test_all, range(7, 10), args.out / "test_7-9")
    runs = [("contrastive", "adam"), ("triplet", "adam"), ("bce", "adam"), ("contrastive", "sgd"), ("triplet", "sgd")]
    header = "| setting | loss | optimiser | TN | FP | FN | TP | accuracy | precision | recall | F1 | AUC | FAR | FRR | threshold | 3-way one-shot | train s |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for setting, tr, te, ways in (("all digits, held-out pairs", train_all, test_all, None),
                                  ("train 0–6, test unseen 7–9", seen, unseen, 3)):
        for loss, opt in runs:
            r = run(tr, te, loss, opt, args.epochs, ways)
            c = r["confusion"]
            shot = f"{r['one_shot']:.3f}" if "one_shot" in r else "–"
            print(f"| {setting} | {loss} | {opt} | {c['tn']} | {c['fp']} | {c['fn']} | {c['tp']} | {r['accuracy']:.3f} | "
                  f"{r['precision']:.3f} | {r['recall']:.3f} | {r['f1']:.3f} | {r['auc']:.4f} | {r['far']:.3f} | "
                  f"{r['frr']:.3f} | {r['threshold']:.3f} | {shot} | {r['seconds']:.0f} |", flush=True)
    print("| seed paper (MNIST pairs) | contrastive | adam | | | | | 0.982 | | | | 0.998 | | | | | |")


if __name__ == "__main__":
    main()
