"""The pair check's keypoint matching (`dedup.keypoints.match_pairs`) as Ray tasks: the pairs, in
the local engine's order (region by region), are cut into chunks; each Ray task gets its chunk's
check pictures (`dedup.pictures`, read here from the index) and matches its pairs, so workers
need not see the catalog."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from dedup.images import ImageSkip
from dedup.keypoints import CORNER_THRESHOLD, Matcher, Matches, Pictures, Worth, match_order, match_pairs
from dedup.pairs import Pairs
from dedup.policy import Progress

CHUNK_PAIRS = 2048  # pairs a Ray task matches
RETRIES = 3


def _match_chunk(pairs: Pairs, pictures: dict[int, bytes | None], side: int, count: int, corner: int,
                 worth: Worth | None) -> Matches:
    return match_pairs(pairs, lambda row: _had(pictures[row]), side, count, workers=1, corner=corner, worth=worth)


def _had(picture: bytes | None) -> bytes:
    if picture is None:
        raise ImageSkip("unreadable")
    return picture


def held_picture(pictures: Pictures, row: int) -> bytes | None:
    """Row `row`'s check picture to send to a Ray task, or None when it cannot be had: the task
    treats it as unreadable, as the local engine does (a pair judged on distance alone, a picture
    looked at by no one)."""
    try:
        return pictures(row)
    except ImageSkip:
        return None


def ray_matcher(ray: Any, chunk: int | None = None) -> Matcher:
    """A `match_pairs` whose work runs as Ray tasks of `chunk` pairs each (default `CHUNK_PAIRS`;
    one CPU each)."""

    def match(pairs: Pairs, pictures: Pictures, side: int = 256, count: int = 500, workers: int = 2, *,
              on_progress: Progress | None = None, regions: np.ndarray | None = None,
              corner: int = CORNER_THRESHOLD, worth: Worth | None = None, into: Matches | None = None,
              done: Callable[[np.ndarray], None] | None = None) -> Matches:
        out = Matches.empty(len(pairs)) if into is None else into  # filled as the tasks finish
        remote = ray.remote(_match_chunk).options(num_cpus=1, max_retries=RETRIES)
        sequence = match_order(pairs, regions)
        pending = {}
        step = chunk or CHUNK_PAIRS
        for s in range(0, len(pairs), step):
            ks = sequence[s : s + step]
            part = pairs[ks]
            mine = {row: held_picture(pictures, row) for row in np.unique(np.concatenate([part.i, part.j])).tolist()}
            pending[remote.remote(part, mine, side, count, corner, None if worth is None else worth.subset(ks))] = ks
        finished = 0
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            ks = pending.pop(ready[0])
            got = ray.get(ready[0])
            out.put(ks, got)
            if done:
                done(ks)
            finished += len(ks)
            if on_progress:
                on_progress(finished, len(pairs))
        return out

    return match
