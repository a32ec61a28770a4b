"""Path confinement: file operations on relative paths inside one real folder.

Every operation walks from the folder's root one component at a time with `O_NOFOLLOW`
descriptors, so no symlink below the root is ever followed, a `..` or absolute path is refused
before anything is opened, and a folder swapped for a link between two operations is caught
rather than followed. Files are only read when they are regular files, up to a size bound, and
nothing here ever replaces an existing name.
"""
from __future__ import annotations

import errno
import os
import posixpath
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dedup.images import content_hash

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC  # a FIFO opens without blocking
_CHUNK = 1 << 20
_NO_LINKS = {errno.EXDEV, errno.EPERM, errno.EMLINK, errno.EOPNOTSUPP, errno.ENOTSUP}


class Refused(Exception):
    """An operation that confinement does not allow; the message is the reason."""


class Missing(Refused):
    """The path, or a folder on its way, does not exist."""


def parts_of(rel: str) -> list[str]:
    """The components of a catalog-relative POSIX path, or `Refused` if it could leave its root."""
    if not isinstance(rel, str) or not rel:
        raise Refused("empty path")
    if "\0" in rel:
        raise Refused("path holds a NUL character")
    if rel.startswith("/"):
        raise Refused(f"absolute path {rel!r} is not inside the folder")
    parts = rel.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise Refused(f"path {rel!r} has a '..', '.' or empty component")
    return parts


def link_target(path: str, keeper: str) -> str:
    """The relative symlink text that makes `path` point at `keeper` (both relative, one root)."""
    return posixpath.relpath(keeper, posixpath.dirname(path) or ".")


class Tree:
    """A real folder; every path handed to its methods is relative to it and stays inside it."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(os.path.realpath(root))

    @classmethod
    def exact(cls, root: str | os.PathLike) -> Tree:
        """The folder recorded as `root` (a real path when it was recorded), refused if it has
        become a symlink, or lies behind one, since."""
        tree = cls(root)
        if str(tree.root) != os.path.abspath(root):
            raise Refused(f"{str(root)!r} is now a symlink (to {str(tree.root)!r}); it is not followed")
        return tree

    def __str__(self) -> str:
        return str(self.root)

    def contains(self, other: Tree) -> bool:
        return other.root.is_relative_to(self.root)

    @contextmanager
    def parent(self, rel: str, *, create: bool = False) -> Iterator[tuple[int, str]]:
        """(descriptor of the folder holding `rel`, `rel`'s last component); with `create`,
        missing folders on the way are made. `Refused` if a component is a link or no folder."""
        parts = parts_of(rel)
        try:
            fd = os.open(self.root, _DIR & ~os.O_NOFOLLOW)
        except FileNotFoundError:
            raise Missing(f"folder {str(self.root)!r} does not exist yet") from None
        except OSError as exc:
            raise Refused(f"folder {str(self.root)!r} cannot be opened: {exc.strerror}") from None
        try:
            for k, part in enumerate(parts[:-1]):
                child = _descend(fd, part, create, "/".join(parts[: k + 1]))
                os.close(fd)
                fd = child
            yield fd, parts[-1]
        finally:
            os.close(fd)

    def lstat(self, rel: str) -> os.stat_result | None:
        """The entry's own status (a link is not followed), or None if it does not exist."""
        try:
            with self.parent(rel) as (fd, name):
                return os.stat(name, dir_fd=fd, follow_symlinks=False)
        except (FileNotFoundError, Missing):
            return None

    def hash_regular(self, rel: str, limit: int) -> tuple[str, os.stat_result]:
        """Content hash and status of a regular file of at most `limit` bytes; `Refused` for a
        link, FIFO, device or folder, or a larger file."""
        with self.parent(rel) as (dir_fd, name):
            try:
                fd = os.open(name, _FILE, dir_fd=dir_fd)
            except FileNotFoundError:
                raise Missing("missing") from None
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    raise Refused("a symlink, not a regular file") from None
                raise Refused(f"cannot open: {exc.strerror}") from None
            try:
                st = os.fstat(fd)
                if not stat.S_ISREG(st.st_mode):
                    raise Refused("not a regular file")
                if st.st_size > limit:
                    raise Refused(f"larger than when indexed (now {st.st_size} bytes)")
                data = _read_at_most(fd, limit)
                return content_hash(data), st
            finally:
                os.close(fd)


def _descend(fd: int, part: str, create: bool, shown: str) -> int:
    try:
        try:
            child = os.open(part, _DIR, dir_fd=fd)
        except FileNotFoundError:
            if not create:
                raise Missing(f"folder {shown!r} is missing") from None
            try:
                os.mkdir(part, 0o777, dir_fd=fd)
            except FileExistsError:
                pass
            child = os.open(part, _DIR, dir_fd=fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise Refused(f"{shown!r} is a symlink or not a folder; links are not followed") from None
        raise Refused(f"cannot open folder {shown!r}: {exc.strerror}") from None
    return child


def _read_at_most(fd: int, limit: int) -> bytes:
    chunks, total = [], 0
    while True:
        chunk = os.read(fd, min(_CHUNK, limit + 1 - total))
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        total += len(chunk)
        if total > limit:
            raise Refused(f"grew past its indexed size ({limit} bytes)")


def identity(st: os.stat_result) -> tuple[int, int]:
    return st.st_dev, st.st_ino


def move_file(src: Tree, rel: str, dst: Tree, dst_rel: str, expect: os.stat_result, digest: str) -> None:
    """Move the regular file `src/rel` (the inode `expect`, holding `digest`) to `dst/dst_rel`,
    never replacing an existing name. Across filesystems the copy is written beside its target,
    synced and hashed before it takes the name and before the source goes; on any failure the
    source stays and no partial copy is left."""
    with src.parent(rel) as (sfd, sname), dst.parent(dst_rel, create=True) as (dfd, dname):
        _same_entry(sfd, sname, expect)
        try:
            os.link(sname, dname, src_dir_fd=sfd, dst_dir_fd=dfd, follow_symlinks=False)
        except FileExistsError:
            raise Refused(f"{dst_rel!r} already exists in {str(dst)!r}") from None
        except OSError as exc:
            if exc.errno not in _NO_LINKS:
                raise
            _copy_new(sfd, sname, dfd, dname, expect, digest)
        else:
            if identity(os.stat(dname, dir_fd=dfd, follow_symlinks=False)) != identity(expect):
                os.unlink(dname, dir_fd=dfd)
                raise Refused("file changed while it was being moved")
        _same_entry(sfd, sname, expect)
        os.unlink(sname, dir_fd=sfd)


def _same_entry(fd: int, name: str, expect: os.stat_result) -> None:
    try:
        now = os.stat(name, dir_fd=fd, follow_symlinks=False)
    except FileNotFoundError:
        raise Refused("file disappeared while acting") from None
    if identity(now) != identity(expect) or not stat.S_ISREG(now.st_mode):
        raise Refused("file was replaced while acting")


def _copy_new(sfd: int, sname: str, dfd: int, dname: str, expect: os.stat_result, digest: str) -> None:
    """Copy to a new hidden file, sync, check its hash, then give it the name `dname`."""
    if _exists(dfd, dname):
        raise Refused(f"{dname!r} already exists")
    tmp = f".{dname}.{os.getpid()}.dedup-tmp"
    src = os.open(sname, _FILE, dir_fd=sfd)
    try:
        if identity(os.fstat(src)) != identity(expect):
            raise Refused("file was replaced while acting")
        out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dfd)
        try:
            try:
                while chunk := os.read(src, _CHUNK):
                    view = memoryview(chunk)
                    while view:
                        view = view[os.write(out, view):]
                os.fchmod(out, stat.S_IMODE(expect.st_mode))
                os.utime(out, ns=(expect.st_atime_ns, expect.st_mtime_ns))
                os.fsync(out)
            finally:
                os.close(out)
            if _hash_fd_file(dfd, tmp, expect.st_size) != digest:
                raise Refused("the copy does not match the original; nothing was moved")
            _rename_new(dfd, tmp, dname)
        except BaseException:
            try:
                os.unlink(tmp, dir_fd=dfd)
            except FileNotFoundError:
                pass
            raise
    finally:
        os.close(src)


def _hash_fd_file(dfd: int, name: str, limit: int) -> str:
    fd = os.open(name, _FILE, dir_fd=dfd)
    try:
        return content_hash(_read_at_most(fd, limit))
    finally:
        os.close(fd)


def _exists(fd: int, name: str) -> bool:
    try:
        os.stat(name, dir_fd=fd, follow_symlinks=False)
        return True
    except FileNotFoundError:
        return False


def _rename_new(fd: int, old: str, new: str) -> None:
    """Give the entry `old` the name `new` in the same folder, refusing to replace `new`."""
    try:
        os.link(old, new, src_dir_fd=fd, dst_dir_fd=fd, follow_symlinks=False)
    except FileExistsError:
        raise Refused(f"{new!r} already exists") from None
    except OSError as exc:
        if exc.errno not in _NO_LINKS:
            raise
        if _exists(fd, new):
            raise Refused(f"{new!r} already exists") from None
        os.rename(old, new, src_dir_fd=fd, dst_dir_fd=fd)
        return
    os.unlink(old, dir_fd=fd)


def place_symlink(tree: Tree, rel: str, text: str) -> str:
    """Create a symlink holding `text` under a hidden temporary name in `rel`'s folder and return
    that name (made before the original moves, so a failure changes nothing)."""
    with tree.parent(rel) as (fd, name):
        tmp = f".{name}.{os.getpid()}.dedup-link"
        os.symlink(text, tmp, dir_fd=fd)
        return tmp


def place_hardlink(tree: Tree, rel: str, keeper: str, expect: os.stat_result) -> str:
    """Hard-link the file `keeper` (the inode `expect`) under a hidden temporary name in `rel`'s
    folder and return that name; on another filesystem this fails while nothing has changed."""
    with tree.parent(rel) as (fd, name), tree.parent(keeper) as (kfd, kname):
        tmp = f".{name}.{os.getpid()}.dedup-link"
        os.link(kname, tmp, src_dir_fd=kfd, dst_dir_fd=fd, follow_symlinks=False)
        if identity(os.stat(tmp, dir_fd=fd, follow_symlinks=False)) != identity(expect):
            os.unlink(tmp, dir_fd=fd)
            raise Refused("keeper was replaced while acting")
        return tmp


def finish_link(tree: Tree, rel: str, tmp: str) -> None:
    """Give the temporary link from `place_symlink`/`place_hardlink` the name `rel` (which must be free by now)."""
    with tree.parent(rel) as (fd, name):
        _rename_new(fd, tmp, name)


def drop_temp(tree: Tree, rel: str, tmp: str) -> None:
    """Remove a temporary link that will not be used."""
    with tree.parent(rel) as (fd, _):
        try:
            os.unlink(tmp, dir_fd=fd)
        except FileNotFoundError:
            pass


def unlink_entry(tree: Tree, rel: str, expect: os.stat_result) -> None:
    """Remove `rel` if it is still the entry `expect` (same inode, same kind)."""
    with tree.parent(rel) as (fd, name):
        try:
            now = os.stat(name, dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            raise Refused("disappeared while acting") from None
        if identity(now) != identity(expect) or stat.S_IFMT(now.st_mode) != stat.S_IFMT(expect.st_mode):
            raise Refused("was replaced while acting")
        os.unlink(name, dir_fd=fd)


def read_link(tree: Tree, rel: str) -> str | None:
    """The text of the symlink `rel`, or None if `rel` is not a symlink."""
    with tree.parent(rel) as (fd, name):
        try:
            return os.readlink(name, dir_fd=fd)
        except OSError:
            return None
