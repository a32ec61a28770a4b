"""The index manifest: one typed, versioned record of what an index holds and how it was made.

It names the only shards and FAISS file that count (writing it commits an index), the model
and its calibration, and the files that were skipped. This module is the only place its keys
are spelled."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dedup.atomic import atomic_write_bytes
from dedup.config import FALLBACK_THRESHOLD, VerifyConfig
from dedup.errors import IndexFormatError, IndexNotFoundError
from dedup.files import Skipped

FORMAT = "dedup-index"
VERSION = 1
FILE = "manifest.json"


@dataclass(frozen=True)
class Shard:
    file: str  # relative to the index folder
    rows: int


@dataclass(frozen=True)
class FaissFile:
    file: str  # relative to the index folder
    factory: str  # FAISS index factory string
    params: dict[str, Any] = field(default_factory=dict)  # search-time parameters (nprobe)
    cells: str = ""  # relative to the index folder: each row's nearest IVF cells (.npy); "" for none


@dataclass(frozen=True)
class ModelRef:
    identity: str  # `Model.identity`
    ref: str  # a shipped model's name, or the model file's absolute path


@dataclass(frozen=True)
class Manifest:
    """One committed generation of an index."""

    catalog: str  # absolute path of the catalog root
    model: ModelRef
    image_size: int
    dim: int
    hash: str  # content hash algorithm of the rows
    shards: tuple[Shard, ...]
    faiss: FaissFile
    threshold: float = FALLBACK_THRESHOLD  # the model's calibrated distance threshold
    verify: VerifyConfig | None = None  # the model's calibrated pair check
    skipped: tuple[Skipped, ...] = ()
    generation: int = 0
    created: str = ""
    dedup_version: str = ""
    metric: str = "l2"
    pictures: int = 0  # longer side of the check pictures the shards store (`dedup.pictures`); 0: none
    decoding: int = 0  # `dedup.images.DECODING` of the rows' pixels (0: before it was recorded)
    version: int = VERSION

    @property
    def count(self) -> int:
        return sum(s.rows for s in self.shards)

    def files(self) -> list[str]:
        """Top-level names in the index folder this manifest refers to."""
        return sorted({s.file.split("/")[0] for s in self.shards} | {self.faiss.file} | ({self.faiss.cells} - {""}))

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": self.version,
            "dedup_version": self.dedup_version,
            "generation": self.generation,
            "created": self.created,
            "catalog": self.catalog,
            "model": {"identity": self.model.identity, "ref": self.model.ref},
            "threshold": self.threshold,
            "verify": self.verify.to_dict() if self.verify else None,
            "image_size": self.image_size,
            "dim": self.dim,
            "metric": self.metric,
            "pictures": self.pictures,
            "decoding": self.decoding,
            "hash": self.hash,
            "count": self.count,
            "shards": [{"file": s.file, "rows": s.rows} for s in self.shards],
            "faiss": {"file": self.faiss.file, "factory": self.faiss.factory, "params": dict(self.faiss.params),
                      **({"cells": self.faiss.cells} if self.faiss.cells else {})},
            "skipped": [{"path": s.rel, "reason": s.reason} for s in self.skipped],
        }

    @classmethod
    def from_dict(cls, d: Any) -> Manifest:
        """The manifest in `d`; `ValueError` saying what is wrong with its shape."""
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise ValueError("not a dedup index manifest")
        try:
            shards = tuple(Shard(_str(s["file"]), _int(s["rows"])) for s in d["shards"])
            faiss = FaissFile(_str(d["faiss"]["file"]), _str(d["faiss"]["factory"]), dict(d["faiss"].get("params", {})),
                              _str(d["faiss"].get("cells", "")))
            model = ModelRef(_str(d["model"]["identity"]), _str(d["model"].get("ref", "default")))
            manifest = cls(
                catalog=_str(d["catalog"]), model=model, image_size=_int(d.get("image_size", 64)), dim=_int(d["dim"]),
                hash=_str(d.get("hash", "")), shards=shards, faiss=faiss,
                threshold=float(d.get("threshold", FALLBACK_THRESHOLD)),
                verify=VerifyConfig.from_dict(d["verify"]) if d.get("verify") else None if "verify" in d else _legacy_check(model),
                skipped=tuple(Skipped(_str(s["path"]), _str(s["reason"])) for s in d.get("skipped", [])),
                generation=_int(d.get("generation", 0)), created=str(d.get("created", "")),
                dedup_version=str(d.get("dedup_version", "")), metric=_str(d.get("metric", "l2")), pictures=_int(d.get("pictures", 0)),
                decoding=_int(d.get("decoding", 0)),
                version=_int(d.get("version", 0)),
            )
            count = _int(d["count"])
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"{exc!s} missing or of the wrong type") from None
        if manifest.version > VERSION:
            raise ValueError(f"format version {manifest.version}; upgrade dedup")
        if count != manifest.count:
            raise ValueError("shard rows do not add up to the count")
        if not all(_inside(name) for name in [s.file for s in shards] + [faiss.file] + ([faiss.cells] if faiss.cells else [])):
            raise ValueError("a file name leaves the index folder")
        return manifest

    def save(self, folder: Path) -> None:
        """Commit: write the manifest atomically (after every file it names is written)."""
        atomic_write_bytes(Path(folder) / FILE, json.dumps(self.to_dict(), indent=2, sort_keys=True).encode())

    @classmethod
    def load(cls, folder: Path) -> Manifest:
        """The committed manifest of the index in `folder`."""
        path = Path(folder) / FILE
        if not path.is_file():
            raise IndexNotFoundError(f"no index at {str(folder)!r} (no {FILE}); run `dedup index CATALOG` first")
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise IndexFormatError(f"index manifest {str(path)!r} is unreadable ({exc}); rebuild with `dedup index`") from None
        try:
            return cls.from_dict(doc)
        except ValueError as exc:
            raise IndexFormatError(f"index manifest {str(path)!r} is damaged ({exc}); rebuild with `dedup index`") from None


def exists(folder: Path) -> bool:
    """Whether `folder` holds a committed index (a manifest file)."""
    return (Path(folder) / FILE).is_file()


def _legacy_check(model: ModelRef) -> VerifyConfig | None:
    """The pair check of an index written before manifests recorded it: the card of the same model."""
    from dedup.modelfile import card_of

    card = card_of(model.ref, model.identity)
    return VerifyConfig.from_dict(card["verify"]) if card is not None and card.get("verify") else None


def _str(v: Any) -> str:
    if not isinstance(v, str):
        raise TypeError(repr(v))
    return v


def _int(v: Any) -> int:
    if not isinstance(v, int) or isinstance(v, bool):
        raise TypeError(repr(v))
    return v


def _inside(name: str) -> bool:
    parts = name.split("/")
    return bool(name) and not name.startswith("/") and all(p not in ("", ".", "..") for p in parts)
