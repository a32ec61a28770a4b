"""One table of the pair-check memo on disk (`dedup.checkmemo`): fixed-size entries sorted by a
64-bit key in an `.npy` file, memory-mapped for lookups; the entries a run makes, held in memory up
to `SPILL_BYTES` and beyond that in sorted run files beside the table; and the save that merges
the table, the run files and what is in memory one key range at a time, so that memory holds about
`CHUNK_BYTES` of entries besides those held."""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
import weakref
from pathlib import Path

import numpy as np

from dedup.atomic import atomic_write

log = logging.getLogger(__name__)

CHUNK_BYTES = 1 << 25  # entries merged at a time when the memo is saved (about; 32 MB)
SPILL_BYTES = 1 << 26  # a table's entries made by a run held in memory before they are written to a run file
SPILLED = ".spill-"  # in a memo folder: the run files of a run that has not saved yet (process id, then a suffix)


class Table:
    """One file's entries, sorted by key (memory-mapped), and those a run made: held in memory up
    to `SPILL_BYTES`, beyond that written to sorted run files beside the table until it is saved."""

    def __init__(self, path: Path, dtype: np.dtype, usable: bool):
        self.path, self.dtype = path, dtype
        self.old = load_table(path, dtype) if usable else np.zeros(0, dtype)
        self.stale = path.exists() and not len(self.old)  # another code's, damaged or empty: written again
        self.made: list[np.ndarray] = []
        self.runs: list[np.ndarray] = []  # the entries made earlier in the run, spilled (memory-mapped, each sorted)
        self._held = 0  # entries in `made`
        self._spill: Path | None = None  # the folder of the run files; None until one is written
        self._spilling = True  # False once a run file could not be written: the entries stay in memory
        self._cleanup: weakref.finalize | None = None

    def has(self, keys: np.ndarray) -> np.ndarray:
        """Which `keys` have an entry in the file."""
        return self._at(keys)[0]

    def find(self, keys: np.ndarray, field: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Which `keys` have an entry in the file, and those entries (only their `field`, when
        named: the rest is not read)."""
        hit, at = self._at(keys)
        if field is not None:
            return hit, np.asarray(self.old[field][at[hit]]) if len(at) else np.zeros(0, self.dtype[field])
        return hit, np.asarray(self.old[at[hit]]) if len(at) else np.zeros(0, self.dtype)

    def _at(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Which `keys` have an entry in the file, and where each key's entry is or would be."""
        if not len(self.old) or not len(keys):
            return np.zeros(len(keys), bool), np.zeros(0, np.int64)
        at = np.minimum(np.searchsorted(self.old["key"], keys), len(self.old) - 1)
        return self.old["key"][at] == keys, at

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
            write_table(run, entries)
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
            write_table(path, np.zeros(0, self.dtype))  # an empty array cannot be memory-mapped
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


def write_table(path: Path, table: np.ndarray) -> None:
    with open(path, "wb") as fh:
        np.save(fh, table, allow_pickle=False)


def load_table(path: Path, dtype: np.dtype) -> np.ndarray:
    """The entries of a table file, sorted by key; none when there is no usable file."""
    try:
        table = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError):
        return np.zeros(0, dtype)
    if table.dtype != dtype or table.ndim != 1 or (len(table) > 1 and not bool(np.all(table["key"][1:] > table["key"][:-1]))):
        log.warning("ignoring the damaged pair-check memo %s", path)
        return np.zeros(0, dtype)
    return table
