"""The Siamese encoder (seed CNN → 64-d, L2-normalised) and its self-describing model file."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dedup.atomic import atomic_write
from dedup.config import FALLBACK_THRESHOLD, ModelConfig, VerifyConfig
from dedup.errors import ModelError
from dedup.modelfile import model_file, model_ref, write_card

MODEL_FORMAT = "dedup-model"
MODEL_VERSION = 1


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
class Model:
    """A network with its config, identity and metadata (training recipe, metrics, history)."""

    net: SeedCNN
    config: ModelConfig
    meta: dict[str, Any] = field(default_factory=dict)
    name: str = "custom"
    source: str | None = None  # how an index records it (`modelfile.model_ref`), when it was loaded from a file

    @property
    def threshold(self) -> float:
        """The model's calibrated default distance threshold (0.5 when it has none)."""
        return float(self.meta.get("threshold", FALLBACK_THRESHOLD))

    @property
    def verify(self) -> dict[str, Any] | None:
        """The calibrated second look at candidate pairs (`dedup.config.VerifyConfig` as a dict), if any."""
        return self.meta.get("verify")

    @property
    def check(self) -> VerifyConfig | None:
        """`verify` as a `VerifyConfig`."""
        return VerifyConfig.from_dict(self.verify) if self.verify else None

    @property
    def identity(self) -> str:
        """`name:hash` where the hash covers the architecture and every weight."""
        h = hashlib.sha256(self.config.fingerprint().encode())
        for key, tensor in sorted(self.net.state_dict().items()):
            h.update(key.encode())
            h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        return f"{self.name}:{h.hexdigest()[:16]}"


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
    if not isinstance(payload, dict) or payload.get("format") != MODEL_FORMAT:
        raise ModelError(f"{str(file)!r} is not a dedup model file")
    if payload.get("version", 0) > MODEL_VERSION:
        raise ModelError(f"model {str(file)!r} has format version {payload['version']}; upgrade dedup")
    config = ModelConfig.from_dict(payload["config"])
    net = SeedCNN(config)
    try:
        net.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        raise ModelError(f"model {str(file)!r} weights do not match its config: {exc}") from None
    net.eval()
    return Model(net, config, dict(payload.get("meta", {})), str(payload.get("name", "custom")), model_ref(path))
