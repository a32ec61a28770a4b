"""Model files without torch: where a model reference points, and the JSON card beside each file.

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
from typing import Any

from dedup.atomic import atomic_write_text
from dedup.config import ModelConfig

DEFAULT_MODEL = "default"
CARD_FORMAT = "dedup-model-card"


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
