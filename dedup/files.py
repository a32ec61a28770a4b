"""Walk a catalog folder into sorted file records; problems become `Skipped` records."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from dedup.errors import CatalogError


@dataclass(frozen=True, slots=True)
class FileRecord:
    """One regular file found in the catalog."""

    rel: str  # POSIX path relative to the catalog root
    size: int
    mtime_ns: int


@dataclass(frozen=True, slots=True)
class Skipped:
    """A file that was not indexed, and why."""

    rel: str
    reason: str


def check_catalog(root: str | os.PathLike) -> Path:
    """Return the catalog root as an absolute path, or raise `CatalogError`."""
    path = Path(root).expanduser()
    if not path.exists():
        raise CatalogError(f"catalog folder {str(root)!r} does not exist; pass a folder of images")
    if not path.is_dir():
        raise CatalogError(f"catalog {str(root)!r} is a file, not a folder; pass the folder that holds it")
    return path.resolve()


def walk_catalog(
    root: Path, *, follow_symlinks: bool = False, exclude: Path | None = None
) -> Iterator[FileRecord | Skipped]:
    """Yield every file under `root` in sorted order (by relative path, depth-first).

    Symlinks are skipped with a reason unless `follow_symlinks`; even then a link that leads
    outside the catalog or back into a folder already visited is skipped. `exclude` (e.g. an
    index folder inside the catalog) is not walked.
    """
    visited: set[tuple[int, int]] = set()
    yield from _walk(root, root, follow_symlinks, exclude.resolve() if exclude else None, visited)


def _walk(root: Path, folder: Path, follow: bool, exclude: Path | None, visited: set) -> Iterator:
    try:
        st = folder.stat()
        key = (st.st_dev, st.st_ino)
        if key in visited:
            yield Skipped(_rel(root, folder), "symlink loop: folder already visited")
            return
        visited.add(key)
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        yield Skipped(_rel(root, folder), f"cannot list folder: {exc.strerror or exc}")
        return
    for entry in entries:
        path = Path(entry.path)
        rel = _rel(root, path)
        if exclude is not None and path == exclude:
            continue
        if not _utf8(entry.name):
            yield Skipped(shown_name(rel), "name is not valid UTF-8; rename it (e.g. with convmv) to index it")
            continue
        try:
            if entry.is_symlink():
                if not follow:
                    yield Skipped(rel, "symlink not followed (following symlinks is off)")
                    continue
                target = path.resolve()
                if not target.exists():
                    yield Skipped(rel, "broken symlink")
                    continue
                if not target.is_relative_to(root):
                    yield Skipped(rel, "symlink leads outside the catalog")
                    continue
            if entry.is_dir(follow_symlinks=follow):
                yield from _walk(root, path, follow, exclude, visited)
            elif entry.is_file(follow_symlinks=follow):
                st = path.stat() if follow else entry.stat(follow_symlinks=False)
                yield FileRecord(rel, st.st_size, st.st_mtime_ns)
            else:
                yield Skipped(rel, "not a regular file")
        except (OSError, RuntimeError) as exc:  # RuntimeError: symlink loop in resolve()
            yield Skipped(rel, f"cannot stat: {getattr(exc, 'strerror', None) or exc}")


def _utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
        return True
    except UnicodeEncodeError:  # undecodable bytes, kept by Python as lone surrogates
        return False


def shown_name(rel: str) -> str:
    """A path that may hold undecodable bytes, as valid text (those bytes as `\\xNN`)."""
    return os.fsencode(rel).decode("utf-8", "backslashreplace")


def _rel(root: Path, path: Path) -> str:
    rel = path.relative_to(root).as_posix()
    return rel if rel != "." else ""


def expand_folders(paths: list[Path]) -> list[Path]:
    """Each folder in `paths` replaced by the files under it (sorted); files kept as given."""
    out: list[Path] = []
    for p in paths:
        if Path(p).is_dir():
            root = Path(p)
            out.extend(root / r.rel for r in walk_catalog(root.resolve()) if isinstance(r, FileRecord))
        else:
            out.append(Path(p))
    return out
