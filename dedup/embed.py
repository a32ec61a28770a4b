"""Images → float32 (n, dim) unit vectors: pixel batches, or image files (`embed_files`).

torch is imported by the functions that run the network, so that a model without torch
(`dedup.torchless.NumpyEncoder`) embeds through `embed_loaded` without it."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol, Sequence

import numpy as np

from dedup.config import ModelConfig
from dedup.images import Decoded, ImageSkip, load

if TYPE_CHECKING:
    import torch


class Encoder(Protocol):
    """What embedding needs of a model: `dedup.model.Model`, or `dedup.torchless.NumpyEncoder`."""

    config: ModelConfig

    def embed(self, pixels: np.ndarray) -> np.ndarray: ...


class Network(Protocol):
    """What running the network needs of a model (`dedup.model.Model`)."""

    config: ModelConfig
    net: torch.nn.Module


def to_tensor(pixels: np.ndarray) -> torch.Tensor:
    """(n, H, W, 3) uint8 → (n, 3, H, W) float32 in [0, 1], channels-last in memory (no copy
    of the layout: the permuted view of NHWC pixels already has channels-last strides)."""
    import torch

    t = torch.from_numpy(np.require(pixels, dtype=np.uint8, requirements=["C", "W"]))
    return t.permute(0, 3, 1, 2).float().div_(255.0)


FORWARD_BATCH = 32  # images per forward pass: measured ~1.5× faster than 64 and ~2× faster than 256 on a 2-core CPU


def embed_pixels(model: Network, pixels: np.ndarray, batch_size: int = FORWARD_BATCH) -> np.ndarray:
    """Embed (n, H, W, 3) uint8 images, `batch_size` per forward pass (the vectors do not
    depend on it); returns (n, dim) float32 L2-normalised rows."""
    import torch

    n = len(pixels)
    out = np.empty((n, model.config.embedding_dim), dtype=np.float32)
    model.net.eval()
    model.net.to(memory_format=torch.channels_last)  # measured ~1.5–2× faster convolutions on CPU
    with torch.inference_mode():
        for start in range(0, n, batch_size):
            batch = to_tensor(pixels[start : start + batch_size])  # (b, 3, H, W)
            out[start : start + len(batch)] = model.net(batch).numpy()
    return out


def distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distance between rows of unit vectors (0 = identical, 2 = opposite)."""
    return np.sqrt(np.maximum(((a - b) ** 2).sum(axis=-1), 0.0))


def load_files(model: Encoder, paths: Sequence[Path]) -> tuple[list[Decoded | None], list[str | None]]:
    """Decode image files for `model` (its input and the check picture); None for an unreadable
    file, and its reason."""
    decoded: list[Decoded | None] = [None] * len(paths)
    errors: list[str | None] = [None] * len(paths)
    for k, path in enumerate(paths):
        try:
            decoded[k] = load(Path(path), model.config.image_size, model.config.framing)
        except ImageSkip as exc:
            errors[k] = str(exc)
    return decoded, errors


def embed_loaded(model: Encoder, decoded: Sequence[Decoded | None]) -> np.ndarray:
    """Embed decoded images (`load_files`); rows of missing ones are NaN."""
    out = np.full((len(decoded), model.config.embedding_dim), np.nan, dtype=np.float32)
    good = [k for k, d in enumerate(decoded) if d is not None]
    if good:
        out[good] = model.embed(np.stack([decoded[k].pixels for k in good]))
    return out


def embed_files(model: Encoder, paths: Sequence[Path]) -> tuple[np.ndarray, list[str | None]]:
    """Embed image files; rows of unreadable files are NaN and their reason is returned."""
    decoded, errors = load_files(model, paths)
    return embed_loaded(model, decoded), errors
