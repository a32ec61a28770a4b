"""Hard-negative mining: look-alike neighbourhoods and the batches built from them."""
from __future__ import annotations

import numpy as np
from PIL import ImageEnhance

from dedup.data import TrainSet, _batch_classes, view_batch
from dedup.mining import class_neighbours
from dedup.synth import scene


def twins(n: int) -> TrainSet:
    """n pictures, each with a slightly brightened twin that is its own class: 2n classes."""
    images = []
    for k in range(n):
        im = scene(300 + k, (96, 72))
        images += [im.convert("RGBA"), ImageEnhance.Brightness(im).enhance(1.08).convert("RGBA")]
    return TrainSet(images, np.arange(2 * n, dtype=np.int64), [f"{k}" for k in range(2 * n)])


def test_each_class_finds_its_look_alike_first(encoder):
    ts = twins(20)
    near = class_neighbours(encoder, ts, k=3)
    assert near.shape == (40, 3)
    assert all(k not in near[k] for k in range(40))  # never itself
    first = near[:, 0]
    assert (first == (np.arange(40) ^ 1)).mean() >= 0.9  # the twin (0↔1, 2↔3, ...)


def test_hard_batches_are_groups_of_neighbours():
    rng = np.random.default_rng(0)
    classes = np.arange(2000) * 3  # labels need not be positions
    neighbours = np.array([[(k + d) % 2000 for d in range(1, 4)] for k in range(2000)])
    for _ in range(20):
        chosen = _batch_classes(classes, rng, 32, neighbours, 1.0, 4)
        assert len(set(chosen.tolist())) == 32 and set(chosen.tolist()) <= set(classes.tolist())
        pos = set((chosen // 3).tolist())
        related = sum(1 for p in pos if any((p - d) % 2000 in pos for d in range(1, 4)))
        assert related >= 24  # at least 3 of every 4 follow a look-alike in the batch
    random_batch = set((_batch_classes(classes, rng, 32, None, 1.0, 4) // 3).tolist())
    assert sum(1 for p in random_batch if any((p - d) % 2000 in random_batch for d in range(1, 4))) < 8


def test_view_batch_with_neighbours_keeps_its_shape():
    ts = twins(10)
    near = np.array([[k ^ 1] for k in range(20)])
    pixels, labels = view_batch(ts, np.random.default_rng(1), 8, 32, neighbours=near, hard_fraction=0.5, group=2)
    assert pixels.shape == (16, 32, 32, 3) and len(set(labels.tolist())) == 8


def test_view_batch_takes_a_view_of_its_own():
    ts = twins(10)
    seen = []

    def view(im, rng, strength):
        seen.append(strength)
        return im.convert("RGB")

    pixels, _ = view_batch(ts, np.random.default_rng(1), 4, 32, strength=0.5, edits=view)
    assert pixels.shape == (8, 32, 32, 3) and seen == [0.5] * 8
