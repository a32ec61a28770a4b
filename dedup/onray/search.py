"""The cell-by-cell pair search (`dedup.selfjoin`) as Ray tasks: the vectors and each row's
cells go to the object store once, each `Task` (a cell range, or part of a crowded cell) is one
Ray task, retried if its worker dies, and the pairs come back to the driver."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from dedup.pairs import Pairs
from dedup.selfjoin import Probes, Runner, Task, run_task

RETRIES = 3  # a task whose worker died is run again this many times


def _search(vectors: np.ndarray, probes: Probes, task: Task, radius: float,
            search: Callable[[np.ndarray, Probes, Task, float], Pairs]) -> Pairs:
    import faiss

    faiss.omp_set_num_threads(1)
    return search(vectors, probes, task, radius)


def ray_runner(ray: Any, search: Callable[[np.ndarray, Probes, Task, float], Pairs] = run_task) -> Runner:
    """A `dedup.selfjoin.Runner` mapping tasks onto Ray tasks (one CPU each); results are
    yielded as they finish (`self_pairs` sorts them). `search` is the task's body."""

    def run(vectors: np.ndarray, probes: Probes, tasks: list[Task], radius: float) -> Iterator[Pairs]:
        remote = ray.remote(_search).options(num_cpus=1, max_retries=RETRIES)
        v = ray.put(np.ascontiguousarray(vectors))
        p = ray.put(Probes(np.ascontiguousarray(probes.near), probes.start, probes.more))  # memory-mapped rows read once
        pending = [remote.remote(v, p, t, radius, search) for t in tasks]
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            yield ray.get(done[0])

    return run
