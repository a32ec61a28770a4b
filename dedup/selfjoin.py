"""All pairs of rows closer than a radius, searched cell by cell over an IVF index's lists.

Each row lies in the cell of its nearest IVF centroid and probes its own cell and the cells its
neighbours may lie in (`Probes`, stored at build time by `dedup.ann.build_index_cells`). The
cells are searched in ranges (`Task`s): for each cell, every row that probes it is compared with
the cell's rows in one exhaustive range search, as faiss's `big_batch_search` does, so a pair is
found when either row probes the other's cell, across cell borders too. Tasks are independent (rows, cells and a cell
range in, pairs out): they run on threads (`threads`), and any other `Runner` can map them; the
vectors are held once, in row order.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from dedup import cpus
from dedup.pairs import Pairs, id_dtype, sorted_pairs

TASK_ENTRIES = 1_000_000  # (row, cell) probes searched per task
PROBE_BLOCK = 65_536  # rows whose nearest cells are found at once
SCAN_BLOCK = 1 << 20  # rows whose probes are scanned at once (bounds a task's temporary arrays)


@dataclass(frozen=True)
class Probes:
    """The cells each row probes: `near[r]`, its own first (-1: no more), then for rows in
    crowded places further cells, `more[start[r]:start[r + 1]]` (none for most rows)."""

    near: np.ndarray  # (n, p) int16 or int32, -1 padded
    start: np.ndarray | None = None  # (n + 1,) offsets into `more`
    more: np.ndarray | None = None  # (m,) int16 or int32

    @classmethod
    def of(cls, cells: Probes | np.ndarray) -> Probes:
        """`cells` as `Probes` (an (n, p) array probes its p cells only)."""
        return cells if isinstance(cells, Probes) else cls(cells)

    def __len__(self) -> int:
        return len(self.near)

    @property
    def extra(self) -> int:
        """Probes beyond the `near` ones."""
        return 0 if self.more is None else len(self.more)

    def nlist(self) -> int:
        """One more than the highest cell probed."""
        top = int(self.near.max()) if len(self.near) else 0
        return max(top, int(self.more.max()) if self.extra else 0) + 1

    def per_cell(self, nlist: int) -> np.ndarray:
        """(nlist,) how many rows probe each cell (counted in blocks of rows)."""
        counts = np.zeros(nlist, np.int64)
        for s in range(0, len(self.near), SCAN_BLOCK):
            part = np.asarray(self.near[s : s + SCAN_BLOCK]).ravel()
            counts += np.bincount(part[part >= 0], minlength=nlist)
        for s in range(0, self.extra, SCAN_BLOCK * 8):
            counts += np.bincount(self.more[s : s + SCAN_BLOCK * 8], minlength=nlist)
        return counts

    def probing(self, lo: int, hi: int, block: int = SCAN_BLOCK) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The rows probing cells `lo:hi`, the cell each probes and whether it is the row's own,
        sorted by cell (stable in row order); scanned `block` rows at a time."""
        rows, target, own = [], [], []
        for s in range(0, len(self.near), block):
            part = np.asarray(self.near[s : s + block])
            r, c = np.nonzero((part >= lo) & (part < hi))
            rows.append(r.astype(np.int64) + s)
            target.append(part[r, c].astype(np.int32))
            own.append(c == 0)
        for s in range(0, self.extra, block * 8):
            part = self.more[s : s + block * 8]
            k = np.flatnonzero((part >= lo) & (part < hi))
            rows.append(np.searchsorted(self.start, k + s, side="right").astype(np.int64) - 1)
            target.append(part[k].astype(np.int32))
            own.append(np.zeros(len(k), bool))
        rows_, target_, own_ = np.concatenate(rows), np.concatenate(target), np.concatenate(own)
        order = np.argsort(target_, kind="stable")
        return rows_[order], target_[order], own_[order]


@dataclass(frozen=True)
class Task:
    """Search the cells `lo:hi`; a cell probed by more rows than one task holds is searched in
    `parts` tasks, task `part` taking every `parts`-th of the rows probing it."""

    lo: int
    hi: int
    part: int = 0
    parts: int = 1


def nearest_cells(vectors: np.ndarray, centroids: np.ndarray, probes: int, block: int = PROBE_BLOCK) -> np.ndarray:
    """(n, probes) int32: each row's nearest cells, nearest (its own) first; for an index whose
    build did not store them (`dedup.ann.build_index_cells` does)."""
    import faiss

    flat = faiss.IndexFlatL2(centroids.shape[1])
    flat.add(np.ascontiguousarray(centroids, dtype=np.float32))
    p = min(probes, len(centroids))
    out = np.empty((len(vectors), p), dtype=np.int32)
    for s in range(0, len(vectors), block):
        out[s : s + block] = flat.search(np.ascontiguousarray(vectors[s : s + block], dtype=np.float32), p)[1]
    return out


def plan(probes: Probes | np.ndarray, nlist: int, entries: int = TASK_ENTRIES) -> list[Task]:
    """Tasks of about `entries` probes each: runs of whole cells, and a cell probed more than
    `entries` times split into parts of its probing rows."""
    per_cell = Probes.of(probes).per_cell(nlist)
    tasks: list[Task] = []
    lo, held = 0, 0
    for cell, count in enumerate(per_cell.tolist()):
        if count > entries:
            if lo < cell:
                tasks.append(Task(lo, cell))
            parts = -(-count // entries)
            tasks.extend(Task(cell, cell + 1, k, parts) for k in range(parts))
            lo, held = cell + 1, 0
            continue
        if held + count > entries and lo < cell:
            tasks.append(Task(lo, cell))
            lo, held = cell, 0
        held += count
    if lo < nlist or not tasks:
        tasks.append(Task(lo, nlist))
    return tasks


def run_task(vectors: np.ndarray, probes: Probes | np.ndarray, task: Task, radius: float) -> Pairs:
    """The pairs closer than `radius` between a row of a cell in `task` and a row probing it
    (i < j; a pair may appear in two tasks)."""
    import faiss

    r2 = radius * radius
    ids = id_dtype(len(vectors))
    rows, target, own = Probes.of(probes).probing(task.lo, task.hi)
    bounds = np.searchsorted(target, np.arange(task.lo, task.hi + 1))
    parts_i, parts_j, parts_d = [], [], []
    for k in range(task.hi - task.lo):
        a, b = bounds[k], bounds[k + 1]
        if b - a < 2:
            continue
        members = rows[a:b][own[a:b]].astype(ids)
        queries, member = rows[a:b][task.part :: task.parts].astype(ids), own[a:b][task.part :: task.parts]
        if len(members) == 0 or len(queries) == 0:
            continue
        flat = faiss.IndexFlatL2(vectors.shape[1])
        flat.add(np.ascontiguousarray(vectors[members], dtype=np.float32))
        lims, d2, found = flat.range_search(np.ascontiguousarray(vectors[queries], dtype=np.float32), r2)
        per_query = np.diff(lims).astype(np.int64)
        i, j = np.repeat(queries, per_query), members[found]
        # two members find each other twice: kept once, from the lower row
        keep = (i < j) | ((i > j) & ~np.repeat(member, per_query))
        parts_i.append(np.minimum(i, j)[keep])
        parts_j.append(np.maximum(i, j)[keep])
        parts_d.append(np.sqrt(np.maximum(d2[keep], 0.0)).astype(np.float32))
    return sorted_pairs(parts_i, parts_j, parts_d, unique=True)


Runner = Callable[[np.ndarray, Probes, list[Task], float], Iterable[Pairs]]


def threads(workers: int) -> Runner:
    """Run tasks on `workers` threads, one FAISS thread each (its searches release the GIL)."""

    def one(vectors, probes, task, radius) -> Pairs:
        import faiss

        faiss.omp_set_num_threads(1)  # OpenMP's thread count is per calling thread: this worker's only
        return run_task(vectors, probes, task, radius)

    def run(vectors, probes, tasks, radius):
        with ThreadPoolExecutor(max(1, workers)) as pool:
            yield from pool.map(lambda t: one(vectors, probes, t, radius), tasks)

    return run


def self_pairs(
    vectors: np.ndarray,
    cells: Probes | np.ndarray,
    radius: float,
    runner: Runner | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> Pairs:
    """All pairs (i < j) of `vectors` rows closer than `radius` where one row probes the other's
    cell (`cells`: the `Probes`, or (n, p) each row's nearest cells, its own first), sorted,
    each once."""
    probes = Probes.of(cells)
    tasks = plan(probes, probes.nlist())
    n = len(vectors)
    keys, dists = [], []  # each task's pairs as one int64 key i·n + j and a distance
    for done, found in enumerate((runner or threads(cpus.check_threads()))(vectors, probes, tasks, radius), 1):
        keys.append(found.i.astype(np.int64) * n + found.j)
        dists.append(found.d)
        if on_progress:
            on_progress(done, len(tasks))
    return _merged(keys, dists, n)


def _merged(keys: list[np.ndarray], dists: list[np.ndarray], n: int) -> Pairs:
    """The pairs of all tasks sorted by (i, j), each once (the first task's distance kept),
    holding about three copies of them at most."""
    if not keys:
        return Pairs.empty()
    key, d = np.concatenate(keys), np.concatenate(dists)
    keys.clear(), dists.clear()
    order = np.argsort(key, kind="stable")
    key = key[order]
    d = d[order]
    del order
    first = np.ones(len(key), dtype=bool)
    first[1:] = key[1:] != key[:-1]
    key, d = key[first], d[first]
    i = key // n
    key -= i * n
    return Pairs(i, key, d)
