"""The Siamese encoder (seed CNN → 64-d, L2-normalised) and its self-describing model file."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from dedup.atomic import atomic_write
from dedup.config import ModelConfig
from dedup.errors import ModelError
from dedup.modelfile import MODEL_FORMAT, MODEL_VERSION, Calibrated, checked_payload, identity_of, model_file, model_ref, write_card


class SeedCNN(nn.Module):
    """Conv3x3+ReLU blocks with 2x2 max-pooling between them, global average pooling,
    a dense projection and L2 normalisation (the seed architecture for channels 32-64-128)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        layers: list[nn.Module] = []
        c_in = 3
        for i, c_out in enumerate(config.channels):
            if i > 0:
                layers.append(nn.MaxPool2d(2))
            layers.append(nn.Conv2d(c_in, c_out, 3, padding=1, bias=not config.batchnorm))
            if config.batchnorm:
                layers.append(nn.BatchNorm2d(c_out))
            layers.append(nn.ReLU(inplace=True))
            c_in = c_out
        self.features = nn.Sequential(*layers)
        pooled = c_in * (5 if config.pooling == "avg+grid2" else 1)
        self.head = nn.Linear(pooled, config.embedding_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map (batch, 3, H, W) floats in [0, 1] to (batch, dim) unit vectors."""
        x = self.features(x - 0.5)  # (batch, C, H', W')
        pooled = x.mean(dim=(2, 3))  # (batch, C)
        if self.config.pooling == "avg+grid2":
            grid = nn.functional.adaptive_avg_pool2d(x, 2).flatten(1)  # (batch, 4C)
            pooled = torch.cat([pooled, grid], dim=1)
        return nn.functional.normalize(self.head(pooled), dim=1)


@dataclass
class Model(Calibrated):
    """A network with its config, identity and metadata (training recipe, metrics, history)."""

    net: SeedCNN
    config: ModelConfig
    meta: dict[str, Any] = field(default_factory=dict)
    name: str = "custom"
    source: str | None = None  # how an index records it (`modelfile.model_ref`), when it was loaded from a file

    @property
    def identity(self) -> str:
        """`name:hash` where the hash covers the architecture and every weight (`modelfile.identity_of`)."""
        return identity_of(self.name, self.config, ((k, t.detach().cpu().numpy()) for k, t in self.net.state_dict().items()))

    def embed(self, pixels: np.ndarray) -> np.ndarray:
        """(n, H, W, 3) uint8 images → (n, dim) float32 unit vectors (`dedup.embed.embed_pixels`)."""
        from dedup.embed import embed_pixels

        return embed_pixels(self, pixels)


def new_model(config: ModelConfig | None = None, seed: int = 0, name: str = "custom") -> Model:
    """A freshly initialised model (deterministic for `seed`)."""
    config = config or ModelConfig()
    gen_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    net = SeedCNN(config)
    torch.random.set_rng_state(gen_state)
    return Model(net, config, {}, name)


def save_model(model: Model, path: str | Path) -> None:
    """Write weights, config and metadata (loadable with `weights_only=True`), and the model's
    card beside them (`dedup.modelfile`)."""
    payload = {
        "format": MODEL_FORMAT,
        "version": MODEL_VERSION,
        "name": model.name,
        "config": model.config.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in model.net.state_dict().items()},
        "meta": model.meta,
    }
    path = Path(path)
    atomic_write(path, lambda tmp: torch.save(payload, tmp))
    write_card(path, model.config, model.identity, model.threshold, model.verify)


def load_model(path: str | Path | None = None) -> Model:
    """Load a model file, or a shipped model by name (the default when `path` is None)."""
    file = model_file(path)
    if not file.is_file():
        raise ModelError(f"model file {str(file)!r} not found; give a model file made by `dedup train`", option="model")
    try:
        payload = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file
        raise ModelError(f"cannot load model {str(file)!r}: {exc}") from None
    payload = checked_payload(payload, file)
    config = ModelConfig.from_dict(payload["config"])
    net = SeedCNN(config)
    try:
        net.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        raise ModelError(f"model {str(file)!r} weights do not match its config: {exc}") from None
    net.eval()
    return Model(net, config, dict(payload.get("meta", {})), str(payload.get("name", "custom")), model_ref(path))
