"""A small deterministic fake encoder for tests whose subject is not the shipped weights.

A real `SeedCNN` (so it saves, loads, indexes and serves like any model) whose weights are set by
hand instead of trained: one convolution (centre tap only) passes each colour channel through as +x and -x
(ReLU keeps both halves), pooling keeps the global and 2x2-grid colour averages, and a fixed
orthogonal projection maps them to 16 dimensions. Resized, blurred, re-encoded or slightly
cropped copies land close together; pictures with other colours or layouts land apart.

`lying_copy`: a model file whose card names another model, for the checks that catch it.
`drawing`, `series_items`: clip art and a look-alike series made of it. `checking_model`: a model
file with a pair check that takes every pair as a candidate.
"""
from __future__ import annotations

import json

import numpy as np
import torch
from PIL import Image, ImageDraw

from dedup import augment
from dedup.config import ModelConfig, VerifyConfig
from dedup.model import Model, SeedCNN, load_model, save_model
from dedup.modelfile import card_path

FAKE_CONFIG = ModelConfig(channels=(6,), embedding_dim=16, image_size=32, pooling="avg+grid2")


def fake_model(name: str = "fake", seed: int = 0) -> Model:
    """A fresh fake encoder (each call builds its own: no test shares a mutable model)."""
    net = SeedCNN(FAKE_CONFIG)
    conv, head = net.features[0], net.head
    with torch.no_grad():
        conv.weight.zero_()
        for c in range(3):
            conv.weight[2 * c, c, 1, 1] = 4.0
            conv.weight[2 * c + 1, c, 1, 1] = -4.0
        conv.bias.zero_()
        q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((head.in_features, head.in_features)))
        head.weight.copy_(torch.from_numpy(q[: head.out_features].astype(np.float32)))
        head.bias.zero_()
    net.eval()
    return Model(net, FAKE_CONFIG, {"threshold": 0.22}, name)


def lying_copy(model_file, tmp_path):
    """A copy of `model_file` whose card names another identity."""
    out = tmp_path / "m.pt"
    save_model(load_model(model_file), out)
    card = json.loads(card_path(out).read_text())
    card["identity"] = "tiny:0000000000000000"
    card_path(out).write_text(json.dumps(card))
    return out


def drawing(seed: int) -> Image.Image:
    """Clip art: coloured shapes outlined in black on a transparent backdrop."""
    rng = np.random.default_rng(seed)
    im = Image.new("RGBA", (256, 256), (255, 255, 255, 0))
    draw = ImageDraw.Draw(im)
    for _ in range(7):
        points = [tuple(int(v) for v in rng.integers(20, 236, 2)) for _ in range(int(rng.integers(3, 6)))]
        fill = tuple(int(v) for v in rng.integers(0, 256, 3)) + (255,)
        draw.polygon(points, fill=fill, outline=(0, 0, 0, 255), width=3)
    return im


def series_items(kind: str, seed: int = 3) -> list[Image.Image]:
    """The items of a look-alike series of `drawing(seed)` (`augment.series`) of `kind`, on white."""
    rng = np.random.default_rng(seed)
    while True:  # `series` picks its kind at random
        got, items = augment.series(drawing(seed), rng)
        if got == kind:
            return [augment.flatten(item) for item in items]


def checking_model(model_file, out):
    """A copy of `model_file` with a pair check for which every pair is a candidate and 20
    agreeing keypoints confirm one."""
    model = load_model(model_file)
    model.meta["verify"] = VerifyConfig(candidates=2.0, weights=(0.0, 2.0, 0.0, 0.0), bias=-6.0, accept=0.5,
                                        min_inliers=1).to_dict()
    save_model(model, out)
    return out


def page_with(picture: Image.Image, width: int = 640, at: tuple[int, int] = (200, 150)) -> Image.Image:
    """A light page with bars of text-like strokes and `picture` pasted at `at`."""
    page = Image.new("RGB", (width, width * 3 // 4), (246, 246, 244))
    draw = ImageDraw.Draw(page)
    for k in range(9):
        y = 20 + 50 * k
        draw.rectangle([20, y, 20 + 60 * (k % 4 + 3), y + 6], fill=(40, 40, 60))
    page.paste(picture, at)
    return page


def page_data(out) -> dict:
    """The data a review page in folder `out` embeds."""
    text = (out / "index.html").read_text()
    start = text.index('<script id="data" type="application/json">') + len('<script id="data" type="application/json">')
    return json.loads(text[start:text.index("</script>", start)].replace("<\\/", "</"))


def count_rows(monkeypatch, module, name: str) -> list[int]:
    """Replace `module.name` (a finder called with (pictures, rows, ...)) by one that also
    records how many rows each call is given; returns that record."""
    looked: list[int] = []
    real = getattr(module, name)

    def counting(pictures, rows, *args, **kwargs):
        looked.append(len(rows))
        return real(pictures, rows, *args, **kwargs)

    monkeypatch.setattr(module, name, counting)
    return looked


def member_sets(report) -> list[set[str]]:
    """The paths of each set of a `DuplicateReport`."""
    return [{m.path for m in g.members} for g in report.groups]
