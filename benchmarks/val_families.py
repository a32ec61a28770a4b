"""Per-edit-family recall on the validation pool: a quick check for recipe and framing decisions.

    python benchmarks/val_families.py [--model M] [--threshold T] [--trim on|off] [--backdrop on|off]

Every distinct validation-pool picture (`benchmarks/pool.py`; never the test pool) and one copy of
it per edit family (`dedup.augment.FAMILIES`, screenshot layouts left out): the share of copies
within the threshold of their original (the model's calibrated threshold unless given), and how
many originals have a different original within it. `--trim` / `--backdrop` override the model's
framing, to see what a framing change does before retraining with it.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from pool import distinct, pool_files  # noqa: E402
from train_default import load_set  # noqa: E402

from dedup.augment import FAMILIES, flatten  # noqa: E402
from dedup.embed import embed_pixels  # noqa: E402
from dedup.framing import to_input  # noqa: E402
from dedup.model import load_model  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="Model file (default: the shipped encoder).")
    ap.add_argument("--threshold", type=float, default=None)
    ap.add_argument("--trim", choices=["on", "off"], default=None)
    ap.add_argument("--backdrop", choices=["on", "off"], default=None)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()

    model = load_model(args.model)
    for option in ("trim", "backdrop"):
        if getattr(args, option) is not None:
            model.config = replace(model.config, **{option: getattr(args, option) == "on"})
    threshold = args.threshold if args.threshold is not None else model.threshold
    val = load_set(pool_files()["val"])
    images = [val.images[i] for i in distinct(val.images)]
    rng = np.random.default_rng(args.seed)

    def embed(pictures) -> np.ndarray:
        return embed_pixels(model, np.stack([to_input(p, model.config.image_size, model.config.framing) for p in pictures]))

    originals = embed([flatten(im) for im in images])
    d = np.sqrt(np.maximum(((originals[:, None] - originals[None]) ** 2).sum(-1), 0))
    np.fill_diagonal(d, np.inf)
    print(f"model {model.identity}, framing {model.config.framing}, threshold {threshold:.4f}, "
          f"{len(images)} validation pictures; {int((d.min(axis=1) < threshold).sum())} have a different picture within it")
    recalls = {}
    for family in (f for f in FAMILIES if f != "screenshot"):
        copies = embed([flatten(FAMILIES[family](im.convert("RGBA"), rng)) for im in images])
        recalls[family] = float((np.linalg.norm(originals - copies, axis=1) < threshold).mean())
    print("| family | recall |\n|---|---|")
    for family, recall in recalls.items():
        print(f"| {family} | {recall:.3f} |")
    print(f"| mean | {np.mean(list(recalls.values())):.3f} |")


if __name__ == "__main__":
    main()
