"""The index folder as something dedup owns: which folder it may write, the files it created
there (the only ones it ever removes), the lock that serialises writers and actions, and the
secret that binds undo manifests to this index.

The claim file `.dedup-index` is written when dedup takes a new or empty folder (or adopts an
index written before claim files existed); a folder holding anything else is refused.
"""
from __future__ import annotations

import fcntl
import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from dedup import manifest as manifest_file
from dedup.atomic import atomic_write
from dedup.errors import DedupError, IndexFormatError, UsageError
from dedup.manifest import Manifest

CLAIM = ".dedup-index"
CLAIM_FORMAT = "dedup-index-folder"
LOCK_FILE = "lock"


@dataclass
class Claim:
    """What the claim file records."""

    folder: Path
    key: str  # hex secret for undo manifests
    owned: list[str] = field(default_factory=list)  # top-level names dedup created here

    def save(self) -> None:
        doc = {"format": CLAIM_FORMAT, "version": 1, "key": self.key, "owned": sorted(set(self.owned))}
        data = (json.dumps(doc, indent=2) + "\n").encode()

        def write(tmp: Path) -> None:  # private from the start: the key must not be readable by others
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)

        atomic_write(self.folder / CLAIM, write)

    def own(self, *names: str) -> None:
        """Record names before they are created, so an interrupted run's files stay ours."""
        new = [n for n in names if n not in self.owned]
        if new:
            self.owned.extend(new)
            self.save()

    def remove_owned(self, name: str, files: Iterator[str] | tuple[str, ...] = ()) -> None:
        """Delete an owned entry: a file, or a folder of which only `files` (and dedup's own
        temporaries) are removed; a folder that still holds anything else is left in place."""
        if name not in self.owned:
            return
        path = self.folder / name
        if path.is_symlink() or path.is_file():
            path.unlink(missing_ok=True)
        elif path.is_dir():
            wanted = set(files)
            for child in path.iterdir():
                if child.name in wanted or (child.name.startswith(".") and child.name.endswith(".tmp")):
                    child.unlink(missing_ok=True)
            try:
                path.rmdir()
            except OSError:
                return
        self.owned.remove(name)
        self.save()


def read_claim(folder: Path) -> Claim | None:
    """The folder's claim, or None when it has none; `IndexFormatError` when it is damaged."""
    path = Path(folder) / CLAIM
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text())
        if doc.get("format") != CLAIM_FORMAT:
            raise ValueError("not a dedup claim file")
        key, owned = doc["key"], doc["owned"]
        if not isinstance(key, str) or not isinstance(owned, list) or not all(isinstance(n, str) for n in owned):
            raise ValueError("bad field types")
        bytes.fromhex(key)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise IndexFormatError(f"claim file {str(path)!r} is damaged ({exc}); move the folder aside and index again") from None
    return Claim(Path(folder), key, owned)


def claim(folder: Path, catalog: Path) -> Claim:
    """Take `folder` for an index of `catalog`: a new or empty folder, or one that already holds
    a dedup index. Anything else is refused, so the writer never touches a user's files."""
    folder = Path(folder)
    real = Path(os.path.realpath(folder))
    if real == catalog or catalog.is_relative_to(real):
        raise UsageError(f"index folder {str(folder)!r} holds the catalog {str(catalog)!r}; choose a folder outside it")
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"index folder {str(folder)!r} is a file; choose a new or empty folder")
    found = read_claim(folder) if folder.is_dir() else None
    if found is not None:
        return found
    try:
        folder.mkdir(parents=True, exist_ok=True)
        entries = sorted(p.name for p in folder.iterdir())
    except OSError as exc:
        raise UsageError(f"cannot create index folder {str(folder)!r}: {exc.strerror}") from None
    owned: list[str] = []
    if entries:
        owned = _legacy_index(folder)
        if owned is None:
            shown = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
            raise UsageError(f"folder {str(folder)!r} is not empty ({shown}) and is not a dedup index; "
                             f"choose a new or empty folder")
    found = Claim(folder, secrets.token_hex(32), owned)
    found.save()
    return found


def ensure_claim(folder: Path) -> Claim:
    """The claim of an existing index (adopting one written before claim files existed)."""
    found = read_claim(folder)
    if found is not None:
        return found
    owned = _legacy_index(folder)
    if owned is None:
        raise IndexFormatError(f"{str(folder)!r} is not a dedup index")
    found = Claim(Path(folder), secrets.token_hex(32), owned)
    found.save()
    return found


def _legacy_index(folder: Path) -> list[str] | None:
    """The files a pre-claim index's manifest names (plus its lock), or None if the folder does
    not hold a dedup index."""
    try:
        manifest = Manifest.load(folder)
    except DedupError:
        return None
    return sorted(set(manifest.files()) | {manifest_file.FILE, LOCK_FILE})


@contextmanager
def index_lock(folder: Path) -> Iterator[None]:
    """Hold the folder's exclusive lock (index, find-duplicates --apply and undo all take it);
    a second one gets a clear error instead of waiting."""
    try:
        fh = open(Path(folder) / LOCK_FILE, "a")
    except OSError as exc:
        raise UsageError(f"cannot lock index folder {str(folder)!r}: {exc.strerror}") from None
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DedupError(f"another dedup command is using {str(folder)!r}; wait for it to finish") from None
        yield
    finally:
        fh.close()
