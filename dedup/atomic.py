"""Atomic file writes: a temporary file beside the target, fsync, rename; readers see the old
file or the new one, never half of one, and a failed write leaves no temporary behind."""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def temp_name(path: Path) -> Path:
    """The temporary file `atomic_write` uses for `path` (hidden, unique to this process)."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def atomic_write(path: Path, write: Callable[[Path], None], *, durable: bool = True) -> None:
    """Call `write(tmp)` to produce the file's content, then put it at `path` atomically.

    `durable` fsyncs the file and its folder, so a committed file survives a power cut.
    """
    path = Path(path)
    tmp = temp_name(path)
    try:
        write(tmp)
        if durable:
            fd = os.open(tmp, os.O_RDONLY | os.O_CLOEXEC)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        _fsync_folder(path.parent)


def atomic_write_bytes(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Write `data` to `path` atomically."""
    atomic_write(path, lambda tmp: tmp.write_bytes(data), durable=durable)


def atomic_write_text(path: Path, text: str, *, durable: bool = True) -> None:
    """Write `text` (UTF-8) to `path` atomically."""
    atomic_write_bytes(path, text.encode(), durable=durable)


def _fsync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some filesystems cannot sync a folder; the rename is still atomic
        pass
    finally:
        os.close(fd)
