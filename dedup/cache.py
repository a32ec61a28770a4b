"""Embeddings already computed by earlier runs: the committed index and shards of a run that
was interrupted before its commit. Lets `dedup index` skip work it has done before."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from dedup.images import DECODING, HASH_NAME
from dedup.manifest import Manifest
from dedup.store import COLUMNS, PICTURE_COLUMNS, PictureRef, embeddings_of, pictures_file, read_table

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Known:
    """A file's content hash, oriented size and embedding, and its check picture (`dedup.pictures`)
    where one is at hand: bytes, or where a shard stores it; None for a file embedded earlier in
    this run (a byte-identical file is decoded again for its picture rather than keeping every
    new picture in memory)."""

    content_hash: str
    width: int
    height: int
    embedding: np.ndarray  # (dim,) float32
    picture: bytes | PictureRef | None = None

    def picture_bytes(self) -> bytes | None:
        """The check picture's bytes; None when not at hand. `OSError` when its shard's picture
        file is gone."""
        return self.picture.read() if isinstance(self.picture, PictureRef) else self.picture


@dataclass(frozen=True)
class Embedded(Known):
    """A file this run embedded elsewhere (on a Ray worker): new, unlike a `Known` from an
    earlier run."""


@dataclass
class KnownEmbeddings:
    """Lookups by (path, size, mtime) — no file read needed — and by content hash."""

    by_key: dict[tuple[str, int, int], Known] = field(default_factory=dict)
    by_hash: dict[str, Known] = field(default_factory=dict)
    previous: dict[str, tuple[int, int]] = field(default_factory=dict)  # committed path → (size, mtime)
    committed_keys: list[tuple[str, int, int]] = field(default_factory=list)  # committed rows, in order
    committed_hashes: list[str] = field(default_factory=list)

    def add(self, path: str, size: int, mtime_ns: int, known: Known) -> None:
        self.by_key[(path, size, mtime_ns)] = known
        self.by_hash.setdefault(known.content_hash, known)


def load_known(folder: Path, manifest: Manifest | None, model_identity: str, owned: Sequence[str] = ()) -> KnownEmbeddings:
    """Everything reusable in `folder` for this model and content hash: the rows of its
    committed `manifest` (None: nothing committed) and the uncommitted shards of this index's own
    shard folders (`owned`). Rows hashed with another algorithm are embedded again (their hashes
    could not be compared with new ones), and so are rows of shards that store no check pictures
    and rows decoded otherwise (another `DECODING`: the same bytes give other pixels now)."""
    known = KnownEmbeddings()
    if not folder.is_dir():
        return known
    committed = [folder / s.file for s in manifest.shards] if manifest else []
    reusable = manifest is not None and (manifest.model.identity, manifest.hash, manifest.decoding) == (model_identity, HASH_NAME, DECODING)
    for shard, table in _tables(committed):
        rows = _rows(table)
        for path, size, mtime, digest, *_ in rows:
            known.previous[path] = (size, mtime)
            known.committed_keys.append((path, size, mtime))
            known.committed_hashes.append(digest)
        if reusable:
            _add_all(known, shard, table, rows)
    done = set(committed)
    own_dirs = [folder / n for n in sorted(owned) if n.startswith("shards-") and (folder / n).is_dir()]
    leftovers = [p for d in own_dirs for p in sorted(d.glob("shard-*.parquet")) if p not in done]
    for shard, table in _tables([p for p in leftovers if _made_by(p) == (model_identity, HASH_NAME, str(DECODING))]):
        _add_all(known, shard, table, _rows(table))
    return known


def _rows(table: pa.Table) -> list[tuple]:
    return list(zip(*(table.column(c).to_pylist() for c in COLUMNS)))


def _add_all(known: KnownEmbeddings, shard: Path, table: pa.Table, rows: list[tuple]) -> None:
    if not set(PICTURE_COLUMNS) <= set(table.column_names):
        return
    emb = embeddings_of(table)
    file = pictures_file(shard)
    offsets, sizes = (table.column(c).to_pylist() for c in PICTURE_COLUMNS)
    for k, (path, size, mtime, digest, w, h) in enumerate(rows):
        known.add(path, size, mtime, Known(digest, w, h, emb[k], PictureRef(file, offsets[k], sizes[k])))


def _made_by(path: Path) -> tuple[str, str, str] | None:
    """The (model identity, hash name, decoding) a shard was written with."""
    try:
        meta = pq.read_schema(path).metadata or {}
    except (OSError, pa.ArrowException):
        return None
    return tuple(meta.get(key, b"").decode() for key in (b"dedup.model", b"dedup.hash", b"dedup.decoding"))


def _tables(paths: list[Path]):
    for path in paths:
        try:
            yield path, read_table(path)
        except (OSError, pa.ArrowException) as exc:  # a shard cut short by a crash: its work is redone
            log.info("ignoring unreadable shard %s: %s", path, exc)
