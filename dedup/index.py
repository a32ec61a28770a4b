"""An index on disk as one handle (`Index.open`): its manifest, rows, vectors, FAISS index and
the catalog its paths are relative to; and where indexes live by default."""
from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Union

import numpy as np

from dedup import manifest as manifest_file
from dedup.errors import IndexNotFoundError, ModelError
from dedup.images import load_picture
from dedup.manifest import Manifest
from dedup.store import Rows, StoredPictures, read_embeddings, read_rows

if TYPE_CHECKING:
    import faiss

    from dedup.selfjoin import Probes

DEFAULT_INDEX_HOME = "indexes"


class Index:
    """A committed index. Rows, vectors and the FAISS index are read on first use; each reflects
    the generation whose manifest was read when the handle was opened."""

    def __init__(self, folder: Path, manifest: Manifest):
        self.folder = Path(folder)
        self.manifest = manifest

    @classmethod
    def open(cls, folder: str | os.PathLike) -> Index:
        return cls(Path(folder), Manifest.load(Path(folder)))

    def __len__(self) -> int:
        return self.manifest.count

    @property
    def catalog(self) -> Path:
        return Path(self.manifest.catalog)

    @cached_property
    def rows(self) -> Rows:
        return read_rows(self.folder, self.manifest)

    @cached_property
    def vectors(self) -> np.ndarray:
        """(rows, dim) float32 unit vectors, row k = indexed row k."""
        return read_embeddings(self.folder, self.manifest)

    @cached_property
    def faiss(self) -> faiss.Index:
        from dedup.ann import load_index

        return load_index(self.folder, self.manifest)

    @cached_property
    def cells(self) -> Probes | None:
        """The IVF cells each row probes, its own first (`dedup.selfjoin.Probes`); its nearest
        ones found from the centroids when the index's build did not store them; None for a
        flat index."""
        from dedup.ann import PROBES, load_cells, load_centroids
        from dedup.selfjoin import Probes, nearest_cells

        stored = load_cells(self.folder, self.manifest)
        if stored is not None:
            return stored
        centroids = load_centroids(self.folder, self.manifest)
        return None if centroids is None else Probes(nearest_cells(self.vectors, centroids, PROBES))

    def release(self, *names: str) -> None:
        """Forget the cached attributes `names` (rows, vectors, faiss, cells) to give their memory
        back; each is read again on next use."""
        for name in names:
            self.__dict__.pop(name, None)

    def rows_of(self, ids: np.ndarray) -> Rows:
        """The metadata of rows `ids` (sorted, unique), read without holding every row's."""
        if "rows" in self.__dict__:
            return self.rows.take(ids)
        return read_rows(self.folder, self.manifest, ids)

    def file(self, row: int) -> Path:
        """The catalog file of indexed row `row`."""
        return self.catalog / str(self.rows.path[row])

    @cached_property
    def _stored(self) -> StoredPictures | None:
        return StoredPictures(self.folder, self.manifest) if self.manifest.pictures else None

    def picture(self, row: int) -> bytes:
        """The check picture of row `row` (`dedup.pictures`): the one the index stores, or, for
        an index built before indexes stored them, made from the catalog file."""
        if self._stored is not None:
            return self._stored(row)
        return load_picture(self.file(row))

    def same_model(self, other: Index) -> None:
        """Refuse to compare with an index built by another model."""
        mine, theirs = self.manifest.model.identity, other.manifest.model.identity
        if mine != theirs:
            raise ModelError(f"{self.folder} was built by {mine} but {other.folder} by {theirs}; "
                             "index both with the same model", option="model")


IndexLike = Union[Index, str, os.PathLike, None]


def as_index(index: IndexLike) -> Index:
    """An open `Index`: `index` itself, the index in that folder, or for None the only index
    under ./indexes (`resolve_index`)."""
    return index if isinstance(index, Index) else Index.open(resolve_index(index))


def default_index_path(catalog: Path, home: Path | None = None) -> Path:
    """Where an index of `catalog` goes when no folder is given."""
    return (home or Path.cwd() / DEFAULT_INDEX_HOME) / (catalog.name or "catalog")


def resolve_index(path: str | os.PathLike | None, home: Path | None = None) -> Path:
    """The index folder to use: `path` if given, else the only index under `./indexes`."""
    if path is not None:
        folder = Path(path)
        if not manifest_file.exists(folder):
            raise IndexNotFoundError(f"no index at {str(path)!r}; build one with `dedup index CATALOG`", option="index")
        return folder
    home = home or Path.cwd() / DEFAULT_INDEX_HOME
    found = sorted(p for p in home.iterdir() if manifest_file.exists(p)) if home.is_dir() else []
    if not found:
        raise IndexNotFoundError(f"no index found under {str(home)!r}; run `dedup index CATALOG` first", option="index")
    if len(found) > 1:
        names = ", ".join(str(p) for p in found)
        raise IndexNotFoundError(f"several indexes found ({names}); choose one", option="index")
    return found[0]
