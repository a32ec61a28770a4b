"""Parquet shards of embeddings with an explicit schema: writing them in bounded batches, reading
them back in the order a manifest commits them.

A shard may carry its rows' check pictures (`dedup.pictures`): their bytes one after another in a
file beside it (`shard-00000.pictures`), each row's offset and size in the shard, so that one
picture is read without reading the others (`StoredPictures`)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from dedup.atomic import atomic_write
from dedup.errors import IndexFormatError
from dedup.manifest import Manifest, Shard

COLUMNS = ("path", "size", "mtime_ns", "content_hash", "width", "height")
PICTURE_COLUMNS = ("picture_offset", "picture_size")
PICTURES_SUFFIX = ".pictures"


def schema(dim: int, pictures: bool = False) -> pa.Schema:
    """The shard schema: one row per indexed image (with `pictures`, where its check picture lies
    in the shard's picture file)."""
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
        + ([pa.field(PICTURE_COLUMNS[0], pa.int64(), nullable=False),  # bytes into the picture file
            pa.field(PICTURE_COLUMNS[1], pa.int32(), nullable=False)] if pictures else [])
    )


def pictures_file(shard: Path) -> Path:
    """The file holding a shard's check pictures."""
    return shard.with_suffix(PICTURES_SUFFIX)


@dataclass(frozen=True)
class PictureRef:
    """Where a stored check picture lies."""

    file: Path
    offset: int
    size: int

    def read(self) -> bytes:
        """The picture's bytes; `OSError` when the file is gone or cut short."""
        fd = os.open(self.file, os.O_RDONLY | os.O_CLOEXEC)
        try:
            data = os.pread(fd, self.size, self.offset)
        finally:
            os.close(fd)
        if len(data) != self.size:
            raise OSError(f"{self.file} is cut short")
        return data


@dataclass(frozen=True)
class Row:
    """Metadata of one indexed image (its embedding travels separately as an array)."""

    path: str
    size: int
    mtime_ns: int
    content_hash: str
    width: int
    height: int


def write_shard(path: Path, rows: Sequence[Row], embeddings: np.ndarray, metadata: dict[str, str] | None = None,
                pictures: Sequence[bytes] | None = None) -> None:
    """Write one shard atomically, and with `pictures` (one per row) its picture file first;
    `metadata` goes into the Parquet schema (e.g. the model)."""
    dim = embeddings.shape[1]
    flat = _numbers(embeddings.ravel(), pa.float32())
    placed = []
    if pictures is not None:
        sizes = np.array([len(p) for p in pictures], np.int64)
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as fh:
                fh.writelines(pictures)

        atomic_write(pictures_file(path), write)
        placed = [_numbers(offsets, pa.int64()), _numbers(sizes, pa.int32())]
    table = pa.Table.from_arrays(
        [
            _strings([r.path for r in rows]),
            _numbers([r.size for r in rows], pa.int64()),
            _numbers([r.mtime_ns for r in rows], pa.int64()),
            _strings([r.content_hash for r in rows]),
            _numbers([r.width for r in rows], pa.int32()),
            _numbers([r.height for r in rows], pa.int32()),
            pa.FixedSizeListArray.from_arrays(flat, dim),
            *placed,
        ],
        schema=schema(dim, pictures is not None).with_metadata(metadata or {}),
    )
    atomic_write(path, lambda tmp: pq.write_table(table, tmp, compression="zstd"))


def _numbers(values, type: pa.DataType) -> pa.Array:
    """A numeric Arrow array from its values' buffer. `pa.array` would also do, but it imports
    pandas where pandas is installed (~0.2 s of every `dedup index`)."""
    data = np.ascontiguousarray(values, dtype=type.to_pandas_dtype())
    return pa.Array.from_buffers(type, len(data), [None, pa.py_buffer(data)])


def _strings(values: Sequence[str]) -> pa.Array:
    """A string Arrow array from its UTF-8 bytes and their offsets (`_numbers`: without pandas)."""
    data = [v.encode("utf-8") for v in values]
    offsets = np.zeros(len(data) + 1, np.int64)
    np.cumsum([len(b) for b in data], out=offsets[1:])
    if offsets[-1] >= 2**31:
        raise ValueError("a shard's paths exceed 2 GiB; write fewer rows per shard")
    return pa.Array.from_buffers(pa.string(), len(data), [None, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(b"".join(data))])


def numpy_of(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A column without nulls as numpy: numbers as a read-only view of its buffer, strings as
    objects (`to_numpy` would import pandas, `_numbers`)."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if values.null_count:
        raise IndexFormatError("a shard column holds missing values; rebuild with `dedup index`")
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        return np.array(values.to_pylist(), dtype=object)
    dtype = np.dtype(values.type.to_pandas_dtype())
    return np.frombuffer(values.buffers()[1], dtype, count=len(values), offset=values.offset * dtype.itemsize)


def read_table(path: Path, columns: Sequence[str] | None = None) -> pa.Table:
    """One Parquet file as a table (`pq.read_table` would import `pyarrow.dataset`: ~0.25 s of
    every command that reads an index). A column the file lacks raises `KeyError`."""
    with pq.ParquetFile(path) as parquet:
        missing = set(columns or ()) - set(parquet.schema_arrow.names)
        if missing:
            raise KeyError(f"no column {', '.join(sorted(missing))}")
        return parquet.read(columns=list(columns) if columns else None)


class ShardWriter:
    """Buffers rows and flushes a shard every `rows_per_shard` rows (bounded memory); with
    `pictures`, every row comes with its check picture."""

    def __init__(self, folder: Path, dim: int, rows_per_shard: int = 10_000, prefix: str = "shard",
                 metadata: dict[str, str] | None = None, pictures: bool = False):
        self.folder = folder
        self.dim = dim
        self.metadata = metadata
        self.rows_per_shard = rows_per_shard
        self.prefix = prefix
        self.pictures = pictures
        self.shards: list[Shard] = []
        self._rows: list[Row] = []
        self._emb: list[np.ndarray] = []
        self._pictures: list[bytes] = []
        folder.mkdir(parents=True, exist_ok=True)

    def add(self, rows: Sequence[Row], embeddings: np.ndarray, pictures: Sequence[bytes] = ()) -> None:
        """Append rows with their (n, dim) embeddings (and, for a writer with pictures, their check
        pictures)."""
        if self.pictures and len(pictures) != len(rows):
            raise ValueError(f"{len(rows)} rows but {len(pictures)} pictures")
        self._rows.extend(rows)
        self._pictures.extend(pictures)
        self._emb.append(np.asarray(embeddings, dtype=np.float32).reshape(-1, self.dim))
        while len(self._rows) >= self.rows_per_shard:
            self._flush(self.rows_per_shard)

    def close(self) -> list[Shard]:
        """Flush what is left; return the shard list for the manifest."""
        if self._rows:
            self._flush(len(self._rows))
        return self.shards

    def _flush(self, n: int) -> None:
        emb = np.concatenate(self._emb) if len(self._emb) > 1 else self._emb[0]
        name = f"{self.prefix}-{len(self.shards):05d}.parquet"
        write_shard(self.folder / name, self._rows[:n], emb[:n], self.metadata,
                    self._pictures[:n] if self.pictures else None)
        self.shards.append(Shard(f"{self.folder.name}/{name}", n))
        self._rows = self._rows[n:]
        self._pictures = self._pictures[n:]
        self._emb = [emb[n:]] if len(self._rows) else []


@dataclass(frozen=True)
class Rows:
    """The metadata columns of an index, in row order (row k of each array is indexed row k)."""

    path: np.ndarray  # (n,) object: catalog-relative POSIX paths
    size: np.ndarray  # (n,) int64
    mtime_ns: np.ndarray  # (n,) int64
    content_hash: np.ndarray  # (n,) object
    width: np.ndarray  # (n,) int32
    height: np.ndarray  # (n,) int32

    def __len__(self) -> int:
        return len(self.path)

    @property
    def pixels(self) -> np.ndarray:
        """(n,) int64: width × height."""
        return self.width.astype(np.int64) * self.height.astype(np.int64)

    def take(self, ids: np.ndarray) -> Rows:
        """Rows `ids`, in that order."""
        return Rows(*(getattr(self, c)[ids] for c in COLUMNS))


def iter_shards(folder: Path, manifest: Manifest, columns: Sequence[str] | None = None) -> Iterator[pa.Table]:
    """Yield each committed shard as a table, in index order."""
    for shard in manifest.shards:
        path = folder / shard.file
        try:
            table = read_table(path, columns)
        except (OSError, pa.ArrowException, KeyError) as exc:
            raise IndexFormatError(f"shard {str(path)!r} is unreadable ({exc}); rebuild with `dedup index`") from None
        if table.num_rows != shard.rows:
            raise IndexFormatError(f"shard {str(path)!r} has {table.num_rows} rows, manifest says {shard.rows}")
        yield table


def embeddings_of(table: pa.Table) -> np.ndarray:
    """(rows, dim) float32 view of a shard's embedding column."""
    col = table.column("embedding").combine_chunks()
    dim = col.type.list_size
    return numpy_of(col.values).reshape(-1, dim)


def read_embeddings(folder: Path, manifest: Manifest) -> np.ndarray:
    """All embeddings in index order, (n, dim) float32."""
    out = np.empty((manifest.count, manifest.dim), dtype=np.float32)
    pos = 0
    for table in iter_shards(folder, manifest, ["embedding"]):
        emb = embeddings_of(table)
        out[pos : pos + len(emb)] = emb
        pos += len(emb)
    return out


def read_rows(folder: Path, manifest: Manifest, ids: np.ndarray | None = None) -> Rows:
    """All metadata columns in index order; with `ids` (sorted, unique) only those rows, read
    shard by shard."""
    parts: dict[str, list] = {c: [] for c in COLUMNS}
    ids = None if ids is None else np.asarray(ids, dtype=np.int64)
    start = 0
    for table in iter_shards(folder, manifest, COLUMNS):
        if ids is not None:
            lo, hi = np.searchsorted(ids, [start, start + table.num_rows])
            start += table.num_rows
            if lo == hi:
                continue
            table = table.take(_numbers(ids[lo:hi] - (start - table.num_rows), pa.int64()))
        for c in COLUMNS:
            parts[c].append(numpy_of(table.column(c)))
    empty = {"path": object, "content_hash": object, "width": np.int32, "height": np.int32}
    return Rows(**{c: (np.concatenate(v) if v else np.array([], dtype=empty.get(c, np.int64))) for c, v in parts.items()})


class StoredPictures:
    """The check pictures of a committed index's rows: `pictures(row)` reads one from its shard's
    picture file. Each shard's offsets are read when one of its rows is first asked for."""

    def __init__(self, folder: Path, manifest: Manifest):
        self.folder, self.manifest = Path(folder), manifest
        self._starts = np.cumsum([0] + [s.rows for s in manifest.shards])
        self._placed: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def ref(self, row: int) -> PictureRef:
        """Where row `row`'s picture lies; `IndexFormatError` when its shard stores none."""
        s = int(np.searchsorted(self._starts, row, side="right")) - 1
        if not 0 <= s < len(self.manifest.shards) or row < 0:
            raise IndexError(f"row {row} is not in the index")
        shard = self.folder / self.manifest.shards[s].file
        if s not in self._placed:
            try:
                table = read_table(shard, PICTURE_COLUMNS)
            except (OSError, pa.ArrowException, KeyError) as exc:
                raise IndexFormatError(f"shard {str(shard)!r} holds no check pictures ({exc}); "
                                       "rebuild with `dedup index`") from None
            self._placed[s] = (numpy_of(table.column(0)), numpy_of(table.column(1)))
        offsets, sizes = self._placed[s]
        k = row - int(self._starts[s])
        return PictureRef(pictures_file(shard), int(offsets[k]), int(sizes[k]))

    def __call__(self, row: int) -> bytes:
        ref = self.ref(row)
        try:
            return ref.read()
        except OSError as exc:
            raise IndexFormatError(f"check picture of row {row} is unreadable ({exc}); rebuild with `dedup index`") from None
