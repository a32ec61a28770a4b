"""Pictures looked at again by the encoder (`dedup.parts.looked_vectors`: a picture pasted into a
page, a picture's windows) as Ray tasks: the rows are cut into chunks; each task gets its chunk's
check pictures (read here from the index) and the model, makes the encoder's inputs and embeds
them, so workers need not see the catalog. The vectors come back in the order of the rows."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from dedup.keypoints import Pictures
from dedup.onray.matching import held_picture
from dedup.parts import Looker, looked_vectors

CHUNK_ROWS = 1024  # pictures a Ray task looks at
RETRIES = 3


def _look_chunk(rows: list[int], pictures: dict[int, bytes | None], look: Callable[[bytes], list[np.ndarray]],
                model: list) -> tuple[np.ndarray, np.ndarray]:
    import ray

    encoder = ray.get(model[0])
    return looked_vectors(rows, lambda row: [] if pictures[row] is None else look(pictures[row]), encoder.embed, workers=1)


def ray_looker(ray: Any, chunk: int | None = None) -> Looker:
    """A `dedup.parts.Looker` whose work runs as Ray tasks of `chunk` pictures each (default
    `CHUNK_ROWS`; one CPU each)."""

    def find(look: Callable[[bytes], list[np.ndarray]], pictures: Pictures, rows: Sequence[int], model: Any
             ) -> tuple[np.ndarray, np.ndarray]:
        rows = [int(r) for r in rows]
        held = ray.put(model)  # passed inside a list: fetched by each task
        remote = ray.remote(_look_chunk).options(num_cpus=1, max_retries=RETRIES)
        step = chunk or CHUNK_ROWS
        pending = [remote.remote(part, {row: held_picture(pictures, row) for row in part}, look, [held])
                   for part in (rows[s : s + step] for s in range(0, len(rows), step))]
        found = [got for got in ray.get(pending) if len(got[0])]
        if not found:
            return np.zeros(0, np.int64), np.zeros((0, 0), np.float32)
        return np.concatenate([o for o, _ in found]), np.concatenate([v for _, v in found]).astype(np.float32)

    return find
