"""Model files without torch: where a model reference points, the JSON card beside each file,
and what any reader of the file shares (the payload's format check, the model's identity, its
calibrated threshold and pair check), whether it runs the network in torch (`dedup.model`) or
in numpy (`dedup.torchless`).

The card (`MODEL.json`, written with every model file) holds the model's input spec and
identity and the SHA-256 of the weights file it describes, so `dedup index` can start reading
and decoding images while torch is still being imported and the weights loaded
(`dedup.loading`).
"""
from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from dedup.atomic import atomic_write_text
from dedup.config import FALLBACK_THRESHOLD, ModelConfig, VerifyConfig
from dedup.errors import ModelError

DEFAULT_MODEL = "default"
CARD_FORMAT = "dedup-model-card"
MODEL_FORMAT = "dedup-model"  # the model file's payload (`dedup.model.save_model`)
MODEL_VERSION = 1


def identity_of(name: str, config: ModelConfig, weights: Iterable[tuple[str, np.ndarray]]) -> str:
    """A model's identity, `name:hash`, where the hash covers the architecture and every weight
    (`weights`: (key, array) of the state dict, in any order)."""
    h = hashlib.sha256(config.fingerprint().encode())
    for key, array in sorted(weights, key=lambda kv: kv[0]):
        h.update(key.encode())
        h.update(np.ascontiguousarray(array).tobytes())
    return f"{name}:{h.hexdigest()[:16]}"


def checked_payload(payload: Any, file: Path) -> dict[str, Any]:
    """`payload` read from the model file `file`, if it is one this dedup can load."""
    if not isinstance(payload, dict) or payload.get("format") != MODEL_FORMAT:
        raise ModelError(f"{str(file)!r} is not a dedup model file")
    if payload.get("version", 0) > MODEL_VERSION:
        raise ModelError(f"model {str(file)!r} has format version {payload['version']}; upgrade dedup")
    return payload


class Calibrated:
    """What a model's metadata (`meta`) says about judging pairs: its threshold and pair check."""

    meta: dict[str, Any]

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


def shipped_model_path(name: str = DEFAULT_MODEL) -> Path:
    """Path of an encoder shipped inside the package (`dedup/weights/<name>.pt`)."""
    return Path(str(resources.files("dedup") / "weights" / f"{name}.pt"))


def _shipped_name(ref: str | Path | None) -> str | None:
    ref = DEFAULT_MODEL if ref is None else ref
    if isinstance(ref, str) and ref.isidentifier() and shipped_model_path(ref).is_file():
        return ref
    return None


def model_file(ref: str | Path | None) -> Path:
    """The file of a model reference: None or a shipped model's name ("default", "seed"), or a path."""
    name = _shipped_name(ref)
    return shipped_model_path(name) if name else Path(ref)


def model_ref(ref: str | Path | None) -> str:
    """How an index records its model: a shipped model by name (survives reinstalls), else the
    absolute path of the file."""
    return _shipped_name(ref) or str(Path(ref).resolve())


def card_path(file: Path) -> Path:
    return Path(file).with_suffix(".json")


def write_card(file: Path, config: ModelConfig, identity: str, threshold: float,
               verify: dict[str, Any] | None = None) -> None:
    """Describe the model file `file` (already written) in the card beside it."""
    card = {
        "format": CARD_FORMAT,
        "weights": Path(file).name,
        "weights_sha256": hashlib.sha256(Path(file).read_bytes()).hexdigest(),
        "identity": identity,
        "threshold": threshold,
        "config": config.to_dict(),
    }
    if verify is not None:
        card["verify"] = verify
    atomic_write_text(card_path(file), json.dumps(card, indent=2) + "\n")


def read_card(file: Path) -> dict[str, Any] | None:
    """The card of `file` if there is one and it describes these exact weights, else None."""
    try:
        card = json.loads(card_path(file).read_text())
        if card.get("format") != CARD_FORMAT:
            return None
        if card["weights_sha256"] != hashlib.sha256(Path(file).read_bytes()).hexdigest():
            return None  # the weights changed after the card was written
        return card
    except (OSError, ValueError, KeyError, TypeError):
        return None


def card_of(ref: str, identity: str) -> dict[str, Any] | None:
    """The card of the model file `ref` (as an index records it) while it still describes the
    model `identity`, else None (the file is gone, or holds other weights)."""
    try:
        card = read_card(model_file(ref))
    except (OSError, ValueError):
        return None
    return card if card is not None and card.get("identity") == identity else None
