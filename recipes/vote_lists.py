"""The inverted lists of the keypoint search (`dedup.votes`): ORB descriptors of training-pool
pictures clustered once, for every list count the search uses, and shipped in the package
(`dedup/assets/vote_lists.npz`).

A catalog's descriptors are then assigned to lists that do not depend on the catalog: a picture's
descriptors land in the same lists whatever else the catalog holds, so adding pictures changes a
descriptor's neighbours only where a new descriptor comes near it, and no run spends time clustering.

`make vote-lists` or `python -m recipes.vote_lists` (about a minute on 2 cores; installs the pool's apt packages).
"""
from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path

import faiss
import numpy as np

from dedup.config import VerifyConfig
from dedup.images import ImageSkip, load_picture
from dedup.keypoints import DESCRIPTOR_BYTES, keypoints
from dedup.pictures import grey_at
from dedup.votes import LISTS_FILE, list_counts, spread
from recipes.pool import pool_files

TRAIN_PER_LIST = 40  # descriptors each list count's centroids are found from, per list
TRAIN_ROUNDS = 10  # k-means rounds


def descriptors(paths: list[Path], side: int, count: int) -> np.ndarray:
    """The descriptors the keypoint search takes of each picture (`dedup.votes.spread` of the
    check's keypoints on its check picture), of all `paths` together."""
    found = []
    for path in paths:
        try:
            kp = keypoints(grey_at(load_picture(path), side), count)
        except ImageSkip:
            continue
        found.append(spread(kp, count))
    return np.concatenate(found) if found else np.zeros((0, DESCRIPTOR_BYTES), np.uint8)


def centroids(sample: np.ndarray, lists: int, rounds: int = TRAIN_ROUNDS) -> np.ndarray:
    """`lists` binary centroids of `sample` (FAISS's k-means of binary codes)."""
    ivf = faiss.IndexBinaryIVF(faiss.IndexBinaryFlat(8 * sample.shape[1]), 8 * sample.shape[1], lists)
    ivf.cp.niter = rounds
    ivf.cp.seed = 0
    ivf.train(sample)
    return faiss.downcast_IndexBinary(ivf.quantizer).reconstruct_n(0, lists)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pictures", type=int, default=2000, help="Training-pool pictures whose descriptors are clustered.")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "dedup" / "assets" / LISTS_FILE)
    args = ap.parse_args()
    train = pool_files()["train"]
    rng = np.random.default_rng(args.seed)
    paths = [train[k] for k in sorted(rng.choice(len(train), min(args.pictures, len(train)), replace=False))]
    default = {f.name: f.default for f in fields(VerifyConfig)}  # the check's keypoints: side and count
    pool = descriptors(paths, default["side"], default["keypoints"])
    print(f"{len(pool)} descriptors of {len(paths)} training-pool pictures")
    lists = {}
    for count in list_counts():
        sample = pool[rng.choice(len(pool), min(len(pool), TRAIN_PER_LIST * count), replace=False)]
        lists[f"lists_{count}"] = centroids(sample, count)
        print(f"{count} lists from {len(sample)} descriptors")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "wb") as f:
        np.savez_compressed(f, **lists)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
