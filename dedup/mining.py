"""Hard-negative mining: for each training class, the classes the current encoder puts closest.

Batches built from these neighbourhoods make the in-batch negatives look-alikes (the same clock
at another time, the same card from another deck), which random batches almost never contain.
"""
from __future__ import annotations

import numpy as np

from dedup.augment import flatten
from dedup.data import TrainSet
from dedup.embed import embed_pixels
from dedup.framing import to_input
from dedup.model import Model


def class_neighbours(model: Model, ts: TrainSet, k: int, block: int = 2048) -> np.ndarray:
    """(n_classes, k) positions in `ts.classes` of each class's k nearest other classes, judged by
    the embedding of its first image (unedited, on white)."""
    spec = model.config
    firsts = [int(members[0]) for members in ts.by_class().values()]
    pixels = np.stack([to_input(flatten(ts.images[i]), spec.image_size, spec.framing) for i in firsts])
    emb = embed_pixels(model, pixels)
    k = min(k, len(emb) - 1)
    out = np.empty((len(emb), k), dtype=np.int64)
    for start in range(0, len(emb), block):
        sim = emb[start : start + block] @ emb.T  # unit vectors: larger = closer
        rows = np.arange(start, min(start + block, len(emb)))
        sim[rows - start, rows] = -np.inf
        part = np.argpartition(-sim, k - 1, axis=1)[:, :k]
        order = np.take_along_axis(sim, part, axis=1).argsort(axis=1)[:, ::-1]
        out[rows] = np.take_along_axis(part, order, axis=1)
    return out
