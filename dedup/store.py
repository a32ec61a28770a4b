"""Parquet shards of embeddings with an explicit schema, and the manifest that commits them."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from dedup.atomic import atomic_write, atomic_write_bytes
from dedup.errors import IndexFormatError, IndexNotFoundError

INDEX_FORMAT = "dedup-index"
INDEX_VERSION = 1
MANIFEST = "manifest.json"
SHARD_DIR = "shards"


def schema(dim: int) -> pa.Schema:
    """The shard schema: one row per indexed image."""
    return pa.schema(
        [
            pa.field("path", pa.string(), nullable=False),  # relative to the catalog root, POSIX
            pa.field("size", pa.int64(), nullable=False),  # bytes
            pa.field("mtime_ns", pa.int64(), nullable=False),
            pa.field("content_hash", pa.string(), nullable=False),
            pa.field("width", pa.int32(), nullable=False),
            pa.field("height", pa.int32(), nullable=False),
            pa.field("embedding", pa.list_(pa.float32(), dim), nullable=False),
        ]
    )


@dataclass(frozen=True)
class Row:
    """Metadata of one indexed image (its embedding travels separately as an array)."""

    path: str
    size: int
    mtime_ns: int
    content_hash: str
    width: int
    height: int


def write_shard(path: Path, rows: Sequence[Row], embeddings: np.ndarray, metadata: dict[str, str] | None = None) -> None:
    """Write one shard atomically; `metadata` goes into the Parquet schema (e.g. the model)."""
    dim = embeddings.shape[1]
    flat = pa.array(np.ascontiguousarray(embeddings, dtype=np.float32).ravel(), pa.float32())
    table = pa.Table.from_arrays(
        [
            pa.array([r.path for r in rows], pa.string()),
            pa.array([r.size for r in rows], pa.int64()),
            pa.array([r.mtime_ns for r in rows], pa.int64()),
            pa.array([r.content_hash for r in rows], pa.string()),
            pa.array([r.width for r in rows], pa.int32()),
            pa.array([r.height for r in rows], pa.int32()),
            pa.FixedSizeListArray.from_arrays(flat, dim),
        ],
        schema=schema(dim).with_metadata(metadata or {}),
    )
    atomic_write(path, lambda tmp: pq.write_table(table, tmp, compression="zstd"))


class ShardWriter:
    """Buffers rows and flushes a shard every `rows_per_shard` rows (bounded memory)."""

    def __init__(self, folder: Path, dim: int, rows_per_shard: int = 10_000, prefix: str = "shard",
                 metadata: dict[str, str] | None = None):
        self.folder = folder
        self.dim = dim
        self.metadata = metadata
        self.rows_per_shard = rows_per_shard
        self.prefix = prefix
        self.shards: list[dict[str, Any]] = []
        self._rows: list[Row] = []
        self._emb: list[np.ndarray] = []
        folder.mkdir(parents=True, exist_ok=True)

    def add(self, rows: Sequence[Row], embeddings: np.ndarray) -> None:
        """Append rows with their (n, dim) embeddings."""
        self._rows.extend(rows)
        self._emb.append(np.asarray(embeddings, dtype=np.float32).reshape(-1, self.dim))
        while len(self._rows) >= self.rows_per_shard:
            self._flush(self.rows_per_shard)

    def close(self) -> list[dict[str, Any]]:
        """Flush what is left; return the shard list for the manifest."""
        if self._rows:
            self._flush(len(self._rows))
        return self.shards

    def _flush(self, n: int) -> None:
        emb = np.concatenate(self._emb) if len(self._emb) > 1 else self._emb[0]
        name = f"{self.prefix}-{len(self.shards):05d}.parquet"
        write_shard(self.folder / name, self._rows[:n], emb[:n], self.metadata)
        self.shards.append({"file": f"{self.folder.name}/{name}", "rows": n})
        self._rows = self._rows[n:]
        self._emb = [emb[n:]] if len(self._rows) else []


def write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    """Commit an index: the manifest names the only shards and FAISS file that count."""
    data = json.dumps(manifest, indent=2, sort_keys=True).encode()
    atomic_write_bytes(folder / MANIFEST, data)


def read_manifest(folder: Path) -> dict[str, Any]:
    """Read and check an index manifest."""
    path = folder / MANIFEST
    if not path.is_file():
        raise IndexNotFoundError(f"no index at {str(folder)!r} (no {MANIFEST}); run `dedup index CATALOG` first")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise IndexFormatError(f"index manifest {str(path)!r} is unreadable ({exc}); rebuild with `dedup index`") from None
    if not isinstance(manifest, dict) or manifest.get("format") != INDEX_FORMAT:
        raise IndexFormatError(f"{str(path)!r} is not a dedup index manifest")
    version = manifest.get("version", 0)
    if not isinstance(version, int) or version > INDEX_VERSION:
        raise IndexFormatError(f"index {str(folder)!r} has format version {version!r}; upgrade dedup")
    problem = _manifest_problem(manifest)
    if problem:
        raise IndexFormatError(f"index manifest {str(path)!r} is damaged ({problem}); rebuild with `dedup index`")
    return manifest


_REQUIRED = {"catalog": str, "count": int, "dim": int, "shards": list, "faiss": dict, "model": dict}


def _manifest_problem(manifest: dict[str, Any]) -> str | None:
    """What is wrong with a manifest's shape, or None."""
    for key, kind in _REQUIRED.items():
        if not isinstance(manifest.get(key), kind):
            return f"{key!r} missing or not a {kind.__name__}"
    shards = manifest["shards"]
    if not all(isinstance(s, dict) and isinstance(s.get("file"), str) and isinstance(s.get("rows"), int) for s in shards):
        return "a shard entry lacks its file or row count"
    if sum(s["rows"] for s in shards) != manifest["count"]:
        return "shard rows do not add up to the count"
    names = [s["file"] for s in shards] + [manifest["faiss"].get("file")]
    if not all(isinstance(n, str) and _inside(n) for n in names):
        return "a file name leaves the index folder"
    if not isinstance(manifest["model"].get("identity"), str):
        return "model identity missing"
    return None


def _inside(name: str) -> bool:
    parts = name.split("/")
    return bool(name) and not name.startswith("/") and all(p not in ("", ".", "..") for p in parts)


def iter_shards(folder: Path, manifest: dict[str, Any], columns: list[str] | None = None) -> Iterator[pa.Table]:
    """Yield each committed shard as a table, in index order."""
    for shard in manifest["shards"]:
        path = folder / shard["file"]
        try:
            table = pq.read_table(path, columns=columns)
        except (OSError, pa.ArrowException) as exc:
            raise IndexFormatError(f"shard {str(path)!r} is unreadable ({exc}); rebuild with `dedup index`") from None
        if table.num_rows != shard["rows"]:
            raise IndexFormatError(f"shard {str(path)!r} has {table.num_rows} rows, manifest says {shard['rows']}")
        yield table


def embeddings_of(table: pa.Table) -> np.ndarray:
    """(rows, dim) float32 view of a shard's embedding column."""
    col = table.column("embedding").combine_chunks()
    dim = col.type.list_size
    return col.values.to_numpy(zero_copy_only=False).reshape(-1, dim)


def read_embeddings(folder: Path, manifest: dict[str, Any]) -> np.ndarray:
    """All embeddings in index order, (n, dim) float32."""
    dim = int(manifest["dim"])
    out = np.empty((int(manifest["count"]), dim), dtype=np.float32)
    pos = 0
    for table in iter_shards(folder, manifest, ["embedding"]):
        emb = embeddings_of(table)
        out[pos : pos + len(emb)] = emb
        pos += len(emb)
    return out


def read_rows(folder: Path, manifest: dict[str, Any]) -> dict[str, np.ndarray]:
    """All metadata columns in index order, as numpy arrays (paths as an object array)."""
    cols = ["path", "size", "mtime_ns", "content_hash", "width", "height"]
    parts: dict[str, list] = {c: [] for c in cols}
    for table in iter_shards(folder, manifest, cols):
        for c in cols:
            parts[c].append(table.column(c).to_numpy(zero_copy_only=False))
    return {c: (np.concatenate(v) if v else np.array([], dtype=object)) for c, v in parts.items()}
