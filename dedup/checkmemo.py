"""The pair check's work on the pairs it has seen, kept in the index folder, so that a later
find-duplicates or review on the same index matches keypoints and looks for a differing detail
only for pairs it has not seen (new files, another threshold).

What is kept for a pair depends only on its two check pictures and on the check's code and
settings: its keypoint matches at each size they were taken (`dedup.keypoints.Matches`),
whether `dedup.details` tells the two apart, and which of the two is a composite the other was
pasted onto (`dedup.seams`). The verdict is not kept, since it also depends on
the rest of the catalog (background distances, pairs told apart through a copy), and the pairs
a run rules out unmatched (`dedup.keypoints.RULED_OUT`) are ruled out again, so a run gives what
it would give without the memo. An entry's key hashes both pictures' content hashes (in the
pair's order) and the settings; the folder is stamped with the digest of the modules that
compute the entries and the OpenCV version, and another digest discards them all. After a run
each file of `FOLDER` holds the entries it made and the older ones whose two pictures are still
in the index. A file that cannot be read is ignored; when the folder cannot be written, the run
goes on without it.

Pairs between this index and a reference index (`find-duplicates --against`) are kept apart, in
`FOLDER/AGAINST`, and after a run hold those whose picture is still in this index and whose
partner is in the reference the run compared with.
"""
from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import weakref
from functools import cache, cached_property
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from dedup.atomic import atomic_write
from dedup.config import Framing
from dedup.details import Teller
from dedup.errors import DedupError
from dedup.indexdir import ensure_claim, index_lock
from dedup.keypoints import RULED_OUT, Matcher, Matches, Pictures
from dedup.pairs import Pairs
from dedup.parts import PartFinder
from dedup.policy import SECOND_SET
from dedup.seams import Judge

log = logging.getLogger(__name__)

FOLDER = "pair-checks"
AGAINST = "against"  # in FOLDER: the entries of pairs with a reference index's pictures
PARTS = "parts"  # the files of the pictures pasted into the index's pictures, and of their windows (entries: a = b)
PASTED = "pasted"  # in FOLDER: the entries of pairs of a picture pasted into one of the index's with its pictures
CATALOG_WINDOWS = "windows"  # in FOLDER/AGAINST: the windows of the reference index's pictures (`dedup.windows`)
STAMP = "code"  # in each memo folder: the digest of the code its entries come from (`_code`)
_PAIR = [("key", "<u8"), ("a", "<u4"), ("b", "<u4")]  # a, b: the low 32 bits of each picture's `row_keys`
TABLES = {  # file in FOLDER: its entries (each file is whole by itself, so files of two runs mix safely)
    "matches.npy": np.dtype(_PAIR + [("inliers", "<i4"), ("sparser", "<i4")]),
    "maps.npy": np.dtype(_PAIR + [("map", "<f4", (2, 3))]),  # only where the keypoints agree on a map
    "apart.npy": np.dtype(_PAIR + [("apart", "i1")]),
    "composite.npy": np.dtype(_PAIR + [("which", "i1")]),  # which picture is a composite the other was pasted onto (`dedup.seams`)
    f"{PARTS}.npy": np.dtype(_PAIR + [("found", "i1")]),  # a picture looked at: its vectors (`dedup.parts`, `dedup.windows`)
}
MODULES = ("dedup.checkmemo", "dedup.keypoints", "dedup.details", "dedup.pictures", "dedup.framing", "dedup.parts",
           "dedup.windows", "dedup.seams")  # the code an entry comes from, and how it is keyed
CHUNK_BYTES = 1 << 25  # entries merged at a time when the memo is saved (about; 32 MB)
SPILL_BYTES = 1 << 26  # a table's entries made by a run held in memory before they are written to a run file
SPILLED = ".spill-"  # in a memo folder: the run files of a run that has not saved yet (process id, then a suffix)


def parts_table(dim: int) -> tuple[str, np.dtype]:
    """The file in FOLDER of the vectors of `dim` numbers of the pictures pasted into the index's
    pictures (`dedup.parts`), and its entries: one a picture that has one (a = b)."""
    return f"{PARTS}-{dim}.npy", np.dtype(_PAIR + [("vector", "<f4", (dim,))])


def parts_version(folder: Path, dim: int) -> tuple:
    """What changes when the vectors the memo of the index in `folder` keeps of its pictures
    (`PairChecks.parts`, for `dim` numbers) change: their files' identities, times and sizes."""
    version = []
    for name in (f"{PARTS}.npy", parts_table(dim)[0], STAMP):
        try:
            st = (Path(folder) / FOLDER / name).stat()
        except OSError:
            version.append(None)
            continue
        version.append((st.st_ino, st.st_mtime_ns, st.st_size))
    return tuple(version)


@cache
def _code() -> bytes:
    """The source of `MODULES` and the OpenCV version: what an entry is valid for."""
    import importlib

    import cv2

    h = hashlib.sha256(cv2.__version__.encode())
    for name in MODULES:
        h.update(Path(importlib.import_module(name).__file__).read_bytes())
    return h.digest()


def _salt(*settings: object) -> np.uint64:
    h = hashlib.blake2b(_code() + repr(settings).encode(), digest_size=8)
    return np.uint64(int.from_bytes(h.digest(), "little"))


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser, elementwise on uint64 (wrapping)."""
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def row_keys(content_hashes: Sequence[str]) -> np.ndarray:
    """Each row's content hash as 64 bits (its first 16 hex digits; a hash of it otherwise)."""
    def bits(h: str) -> int:
        try:
            return int(h[:16], 16)
        except ValueError:
            return int.from_bytes(hashlib.blake2b(str(h).encode(), digest_size=8).digest(), "little")

    return np.array([bits(h) for h in content_hashes], np.uint64)


class _Table:
    """One file's entries, sorted by key (memory-mapped), and those a run made: held in memory up
    to `SPILL_BYTES`, beyond that written to sorted run files beside the table until it is saved."""

    def __init__(self, path: Path, dtype: np.dtype, usable: bool):
        self.path, self.dtype = path, dtype
        self.old = _load(path, dtype) if usable else np.zeros(0, dtype)
        self.stale = path.exists() and not len(self.old)  # another code's, damaged or empty: written again
        self.made: list[np.ndarray] = []
        self.runs: list[np.ndarray] = []  # the entries made earlier in the run, spilled (memory-mapped, each sorted)
        self._held = 0  # entries in `made`
        self._spill: Path | None = None  # the folder of the run files; None until one is written
        self._spilling = True  # False once a run file could not be written: the entries stay in memory
        self._cleanup: weakref.finalize | None = None

    def has(self, keys: np.ndarray) -> np.ndarray:
        """Which `keys` have an entry in the file."""
        if not len(self.old) or not len(keys):
            return np.zeros(len(keys), bool)
        return self.old["key"][np.minimum(np.searchsorted(self.old["key"], keys), len(self.old) - 1)] == keys

    def find(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Which `keys` have an entry in the file, and those entries."""
        if not len(self.old) or not len(keys):
            return np.zeros(len(keys), bool), np.zeros(0, self.dtype)
        at = np.minimum(np.searchsorted(self.old["key"], keys), len(self.old) - 1)
        hit = self.old["key"][at] == keys
        return hit, np.asarray(self.old[at[hit]])

    def add(self, keys: np.ndarray, a: np.ndarray, b: np.ndarray, **fields: np.ndarray) -> None:
        entry = np.zeros(len(keys), self.dtype)
        entry["key"], entry["a"], entry["b"] = keys, a, b
        for name, values in fields.items():
            entry[name] = values
        self.made.append(entry)
        self._held += len(entry)
        if self._spilling and self._held * self.dtype.itemsize >= SPILL_BYTES:
            self._write_run()

    def _write_run(self) -> None:
        """Write the entries held in memory to a run file (sorted, the first entry of each key)."""
        entries = _first_of_each_key(np.concatenate(self.made))
        try:
            if self._spill is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._spill = Path(tempfile.mkdtemp(prefix=f"{SPILLED}{os.getpid()}-", dir=self.path.parent))
                self._cleanup = weakref.finalize(self, shutil.rmtree, self._spill, True)
            run = self._spill / f"{len(self.runs)}.npy"
            _write(run, entries)
            self.runs.append(np.load(run, mmap_mode="r"))
        except OSError as exc:
            log.info("pair checks kept in memory until saved (%s)", exc)
            self._spilling = False
            return
        self.made, self._held = [], 0

    def save(self, present_a: np.ndarray, present_b: np.ndarray) -> None:
        """Write what the file should hold after this run, unless that is what it holds: the
        entries made (the first made of each key), and the older ones whose pictures are still
        present, the first in `present_a`, the second in `present_b` (low 32 bits of `row_keys`,
        sorted). One entry a key, sorted by key. The entries are merged a range of keys at a time
        (at most about `CHUNK_BYTES` of entries a range), so memory holds about one range besides
        the entries held in memory; the run files are deleted after."""
        made = [*self.runs, _first_of_each_key(np.concatenate(self.made) if self.made else np.zeros(0, self.dtype))]
        ranges = _key_ranges([self.old, *made], self.dtype.itemsize)
        counts = [sum(map(len, self._range(made, lo, hi, present_a, present_b))) for lo, hi in ranges]
        if not any(len(m) for m in made) and sum(counts) == len(self.old) and not self.stale:
            self._drop_runs()
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(self.path, lambda tmp: self._merge(tmp, made, ranges, present_a, present_b, sum(counts)), durable=False)
        self._drop_runs()
        _drop_dead_spills(self.path.parent)

    def _range(self, made: list[np.ndarray], lo: int, hi: int | None, present_a: np.ndarray, present_b: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
        """The entries made with keys in [lo, hi) (None: to the end), and the older ones there that stay:
        both pictures present, and not made again."""
        fresh = _first_of_each_key(np.concatenate([np.asarray(m[_between(m["key"], lo, hi)]) for m in made]))
        old = np.asarray(self.old[_between(self.old["key"], lo, hi)])
        alive = (np.isin(old["a"], present_a) & np.isin(old["b"], present_b)
                 & ~np.isin(old["key"], fresh["key"], assume_unique=True))
        return fresh, old[alive]

    def _merge(self, path: Path, made: list[np.ndarray], ranges: list[tuple[int, int | None]], present_a: np.ndarray,
               present_b: np.ndarray, count: int) -> None:
        """Write `count` entries to `path` as an `.npy`: per key range, the entries made and the
        older ones that stay, in key order."""
        if not count:
            _write(path, np.zeros(0, self.dtype))  # an empty array cannot be memory-mapped
            return
        out = np.lib.format.open_memmap(path, mode="w+", dtype=self.dtype, shape=(count,))
        at = 0
        for lo, hi in ranges:
            part = np.concatenate(self._range(made, lo, hi, present_a, present_b))
            out[at : at + len(part)] = part[np.argsort(part["key"], kind="stable")]
            at += len(part)
        out.flush()
        del out

    def _drop_runs(self) -> None:
        self.runs = []
        if self._cleanup is not None:
            self._cleanup()
            self._spill, self._cleanup = None, None


def _drop_dead_spills(folder: Path) -> None:
    """Delete the run files in `folder` of runs whose process has ended without saving."""
    for spill in folder.glob(f"{SPILLED}*"):
        try:
            os.kill(int(spill.name[len(SPILLED):].split("-")[0]), 0)
        except ProcessLookupError:
            shutil.rmtree(spill, ignore_errors=True)
        except (ValueError, OSError):
            continue


def _first_of_each_key(entries: np.ndarray) -> np.ndarray:
    """`entries` sorted by key, the first of each key only."""
    return entries[np.unique(entries["key"], return_index=True)[1]]


def _key_ranges(tables: list[np.ndarray], itemsize: int) -> list[tuple[int, int | None]]:
    """Ranges [lo, hi) of the 64-bit keys (hi None: to the end) where the sorted `tables` hold
    at most about `CHUNK_BYTES` of entries of `itemsize` bytes together: cut at every `step`-th
    key of each table, so that each holds at most `step` entries in a range."""
    step = max(1, CHUNK_BYTES // itemsize // max(1, len(tables)))
    cuts = np.unique(np.concatenate([np.asarray(t["key"][step::step], np.uint64) for t in tables] or [np.zeros(0, np.uint64)]))
    bounds = [0, *cuts.tolist()]
    return list(zip(bounds, [*bounds[1:], None]))


def _between(keys: np.ndarray, lo: int, hi: int | None) -> slice:
    """The positions of sorted `keys` in [lo, hi)."""
    start = int(np.searchsorted(keys, np.uint64(lo)))
    return slice(start, len(keys) if hi is None else int(np.searchsorted(keys, np.uint64(hi))))


class PairChecks:
    """The memo of one index folder for one run: `matcher` and `teller` wrap the check's
    functions, `save` writes what the run made and keeps what still concerns the index's
    pictures."""

    def __init__(self, folder: Path, content_hashes: Sequence[str], reference: Sequence[str] | None = None,
                 place: str = AGAINST):
        """The memo of the index in `folder`, whose rows have `content_hashes`; nothing is read
        until a pair is looked up, so a run without the pair check pays nothing for it. With
        `reference` (the content hashes of another index's rows), the memo of pairs between the
        two: a pair's second row is the reference's row `j - policy.SECOND_SET`."""
        self.folder, self.content_hashes, self.reference = Path(folder), content_hashes, reference
        self.at = self.folder / FOLDER / place if reference is not None else self.folder / FOLDER
        self.checked = False

    @cached_property
    def rows(self) -> np.ndarray:
        """`row_keys` of the index's rows."""
        return row_keys(self.content_hashes)

    @cached_property
    def reference_rows(self) -> np.ndarray:
        """`row_keys` of the reference's rows (the index's own without a reference)."""
        return self.rows if self.reference is None else row_keys(self.reference)

    @cached_property
    def stamped(self) -> bool:
        """Whether the memo's entries come from this code (`_code`)."""
        try:
            return (self.at / STAMP).read_text().strip() == _code().hex()
        except OSError:
            return False

    @cached_property
    def tables(self) -> dict[str, _Table]:
        return {name: _Table(self.at / name, dtype, self.stamped) for name, dtype in TABLES.items()}

    def _keys(self, i: np.ndarray, j: np.ndarray, *settings: object) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each pair's key, and the low 32 bits of both pictures' row keys."""
        self.checked = True
        j = np.asarray(j) if self.reference is None else np.asarray(j) - SECOND_SET
        if len(j) and j.min() < 0:
            raise ValueError("a pair against a reference needs its second row at SECOND_SET + row")
        a, b = self.rows[np.asarray(i)], self.reference_rows[j]
        return _mix(a ^ _mix(b ^ _salt(*settings))), _low(a), _low(b)

    def matcher(self, match: Matcher) -> Matcher:
        """`match` for the pairs without an entry; entries for the rest (ruled out again where
        the run's `worth` rules them out), and new entries for the pairs it matched."""

        def remembered(pairs: Pairs, pictures: Pictures, side: int = 256, count: int = 500, workers: int = 2, **kwargs):
            matches, maps = self.tables["matches.npy"], self.tables["maps.npy"]
            keys, a, b = self._keys(pairs.i, pairs.j, "match", side, count, kwargs.get("corner"))
            hit, entries = matches.find(keys)
            out = Matches.empty(len(pairs))
            ks = np.flatnonzero(hit)
            out.inliers[ks], out.sparser[ks] = entries["inliers"], entries["sparser"]
            with_map, mapped = maps.find(keys[ks])
            out.maps[ks[with_map]] = mapped["map"]
            worth = kwargs.get("worth")
            if len(ks):  # the run's `worth` rules out what it rules out; what it does not is matched
                keep = np.ones(len(ks), bool) if worth is None else np.asarray(worth(ks, entries["sparser"]), bool)
                out.inliers[ks[~keep]], out.maps[ks[~keep]] = RULED_OUT, np.nan
                hit[ks[keep & (entries["inliers"] == RULED_OUT)]] = False
            todo = np.flatnonzero(~hit)
            if len(todo):
                if worth is not None:
                    kwargs["worth"] = worth.subset(todo)
                found = match(pairs[todo], pictures, side, count, workers, **kwargs)
                out.put(todo, found)
                done = todo[found.readable]  # matched, or ruled out with its sparser picture's keypoints
                matches.add(keys[done], a[done], b[done], inliers=out.inliers[done], sparser=out.sparser[done])
                mapped = done[np.isfinite(out.maps[done]).all(axis=(1, 2))]
                maps.add(keys[mapped], a[mapped], b[mapped], map=out.maps[mapped])
            return out

        return remembered

    def teller(self, tell: Teller) -> Teller:
        """`tell` for the pairs without an entry; entries for the rest."""

        def remembered(i: np.ndarray, j: np.ndarray, maps: np.ndarray, pictures: Pictures, workers: int = 2) -> np.ndarray:
            apart = self.tables["apart.npy"]
            keys, a, b = self._keys(i, j, "apart")
            hit, entries = apart.find(keys)
            out = np.zeros(len(keys), bool)
            out[hit] = entries["apart"] == 1
            todo = np.flatnonzero(~hit)
            if len(todo):
                found = np.asarray(tell(np.asarray(i)[todo], np.asarray(j)[todo], maps[todo], pictures, workers), bool)
                out[todo] = found
                apart.add(keys[todo], a[todo], b[todo], apart=found)
            return out

        return remembered

    def judge(self, which: Judge) -> Judge:
        """`which` (`dedup.seams.which_composite`) for the pairs without an entry; entries for the rest."""

        def remembered(i: np.ndarray, j: np.ndarray, maps: np.ndarray, pictures: Pictures, workers: int = 2) -> np.ndarray:
            table = self.tables["composite.npy"]
            keys, a, b = self._keys(i, j, "composite")
            hit, entries = table.find(keys)
            out = np.full(len(keys), -1, np.int8)
            out[hit] = entries["which"]
            todo = np.flatnonzero(~hit)
            if len(todo):
                found = np.asarray(which(np.asarray(i)[todo], np.asarray(j)[todo], maps[todo], pictures, workers), np.int8)
                out[todo] = found
                table.add(keys[todo], a[todo], b[todo], which=found)
            return out

        return remembered

    def parts(self, find: PartFinder, model: str, dim: int, kind: str = PARTS, most: int = 1) -> PartFinder:
        """`find` (`dedup.parts.part_vectors`, or another finder of up to `most` vectors a
        picture, `kind` naming it: `dedup.windows.window_vectors`) for the pictures without an
        entry; entries for the rest. `model`: the identity of the model whose `dim`-number vectors
        they are. Returns the rows (sorted; a row once for each of its vectors, in the finder's
        order) and the vectors."""

        def remembered(pictures: Pictures, rows: Sequence[int], embed, size: int, framing: Framing,
                       workers: int = 2) -> tuple[np.ndarray, np.ndarray]:
            self.checked = True
            rows = np.asarray(rows, np.int64)
            a = self.rows[rows]
            looked, kept = self._parts_tables(dim)
            slot_salts = [_salt(kind, slot, model, size, framing) for slot in range(most)]
            hit, old_rows, old_vectors = self._stored(a, model, dim, kind, most, size, framing)
            todo = np.flatnonzero(~hit)
            found, vectors = find(pictures, rows[todo], embed, size, framing, workers)
            vectors = vectors.reshape(-1, dim)
            by_row = np.argsort(rows[todo], kind="stable")
            at = todo[by_row[np.searchsorted(rows[todo][by_row], found)]] if len(found) else np.zeros(0, np.int64)  # into `rows`
            slot = np.arange(len(at)) - np.searchsorted(at, at)  # a row's vectors come together, in order
            low = _low(a)
            looked.add(_mix(a[todo] ^ _salt(kind, model, size, framing)), low[todo], low[todo],
                       found=np.bincount(at, minlength=len(rows))[todo])
            for s in range(most):
                mine = slot == s
                kept.add(_mix(a[at[mine]] ^ slot_salts[s]), low[at[mine]], low[at[mine]], vector=vectors[mine])
            kept_rows = [old for old in old_rows if len(old)] + ([at] if len(at) else [])
            positions = np.concatenate(kept_rows) if kept_rows else np.zeros(0, np.int64)
            all_vectors = np.concatenate([*old_vectors, vectors]) if len(positions) else np.zeros((0, dim), np.float32)
            order = np.argsort(positions, kind="stable")
            return rows[positions[order]], all_vectors[order]

        return remembered

    def stored_parts(self, model: str, dim: int, size: int, framing: Framing, kind: str = PARTS,
                     most: int = 1) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """What `parts` of the same finder keeps for all the index's rows, without looking at any
        picture, one slot at a time (so that memory holds one slot's vectors): the rows with a
        vector in the slot (sorted) and those vectors. Nothing is written."""
        a = self.rows
        _, kept = self._parts_tables(dim)
        whole = self._complete(a, model, dim, kind, most, size, framing)
        for slot in range(most):
            stored, known = kept.find(_mix(a[whole[slot]] ^ _salt(kind, slot, model, size, framing)))
            yield whole[slot][stored], np.asarray(known["vector"], np.float32).reshape(-1, dim)

    def _complete(self, a: np.ndarray, model: str, dim: int, kind: str, most: int, size: int, framing: Framing
                  ) -> list[np.ndarray]:
        """Per slot, the positions in `a` (row keys) of the pictures looked at with all their vectors
        kept that have a vector in the slot."""
        looked, kept = self._parts_tables(dim)
        hit, entries = looked.find(_mix(a ^ _salt(kind, model, size, framing)))
        counts = np.zeros(len(a), np.int64)
        counts[hit] = entries["found"]
        for slot in range(most):
            had = np.flatnonzero(hit & (counts > slot))
            hit[had[~kept.has(_mix(a[had] ^ _salt(kind, slot, model, size, framing)))]] = False  # a vector lost since
        return [np.flatnonzero(hit & (counts > slot)) for slot in range(most)]

    def _parts_tables(self, dim: int) -> tuple[_Table, _Table]:
        """The table of the pictures looked at, and that of their `dim`-number vectors."""
        name, dtype = parts_table(dim)
        return self.tables[f"{PARTS}.npy"], self.tables.setdefault(name, _Table(self.at / name, dtype, self.stamped))

    def _stored(self, a: np.ndarray, model: str, dim: int, kind: str, most: int, size: int, framing: Framing
                ) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
        """For the pictures of row keys `a`: which were looked at with all their vectors kept, and
        per slot the positions in `a` that have a vector there and those vectors."""
        looked, kept = self._parts_tables(dim)
        hit, entries = looked.find(_mix(a ^ _salt(kind, model, size, framing)))
        counts = np.zeros(len(a), np.int64)
        counts[hit] = entries["found"]
        old_rows, old_vectors = [], []
        for slot in range(most):  # the vectors of the rows looked at before
            had = np.flatnonzero(hit & (counts > slot))
            stored, known = kept.find(_mix(a[had] ^ _salt(kind, slot, model, size, framing)))
            hit[had[~stored]] = False  # a vector lost since (a file damaged or deleted): look again
            old_rows.append(had[stored])
            old_vectors.append(np.asarray(known["vector"], np.float32).reshape(-1, dim))
        whole = [hit[rows] for rows in old_rows]  # a picture with a vector lost is looked at again, all of it
        return hit, [r[w] for r, w in zip(old_rows, whole)], [v[w] for v, w in zip(old_vectors, whole)]

    def save(self) -> None:
        """Write each table as `_Table.save` says, holding the index lock (the claim file records
        the folder); when the folder cannot be written or another command holds the lock, the
        memo stays as it was."""
        if not self.checked:
            return  # no pair was checked (no pair check, or no pairs): nothing to learn from this run
        present_a, present_b = np.unique(_low(self.rows)), np.unique(_low(self.reference_rows))
        try:
            with index_lock(self.folder):
                ensure_claim(self.folder).own(FOLDER)
                folder = self.at
                for name, table in self.tables.items():  # a picture's own entries (`parts`) are the index's
                    table.save(present_a, present_a if name.startswith(PARTS) else present_b)
                if folder.is_dir() and not self.stamped:
                    atomic_write(folder / STAMP, lambda tmp: tmp.write_text(_code().hex() + "\n"), durable=False)
        except (OSError, DedupError) as exc:
            log.warning("the pair checks of this run were not kept (%s)", exc)


def _low(row_keys: np.ndarray) -> np.ndarray:
    return (row_keys & np.uint64(0xFFFFFFFF)).astype(np.uint32)


def _write(path: Path, table: np.ndarray) -> None:
    with open(path, "wb") as fh:
        np.save(fh, table, allow_pickle=False)


def _load(path: Path, dtype: np.dtype) -> np.ndarray:
    """The entries of a memo file, sorted by key; none when there is no usable file."""
    try:
        table = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError):
        return np.zeros(0, dtype)
    if table.dtype != dtype or table.ndim != 1 or (len(table) > 1 and not bool(np.all(table["key"][1:] > table["key"][:-1]))):
        log.warning("ignoring the damaged pair-check memo %s", path)
        return np.zeros(0, dtype)
    return table
