"""The pair check's keypoint matching (`dedup.keypoints.match_pairs`) as Ray tasks: the pairs, in
the local engine's order (region by region), are cut into chunks; each Ray task decodes its
chunk's files (which every worker must see at the same path) and matches its pairs."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from dedup.keypoints import CORNER_THRESHOLD, Matcher, Matches, match_order, match_pairs
from dedup.pairs import Pairs
from dedup.policy import Files, Progress

CHUNK_PAIRS = 2048  # pairs a Ray task matches
RETRIES = 3


def _match_chunk(pairs: Pairs, paths: dict[int, str], side: int, count: int, corner: int) -> Matches:
    return match_pairs(pairs, lambda row: Path(paths[row]), side, count, workers=1, corner=corner)


def ray_matcher(ray: Any, chunk: int | None = None) -> Matcher:
    """A `match_pairs` whose work runs as Ray tasks of `chunk` pairs each (default `CHUNK_PAIRS`;
    one CPU each)."""

    def match(pairs: Pairs, files: Files, side: int = 256, count: int = 500, workers: int = 2, *,
              on_progress: Progress | None = None, regions: np.ndarray | None = None,
              corner: int = CORNER_THRESHOLD) -> Matches:
        out = Matches(np.full(len(pairs), -1, np.int32), np.zeros(len(pairs), np.int32))
        remote = ray.remote(_match_chunk).options(num_cpus=1, max_retries=RETRIES)
        sequence = match_order(pairs, regions)
        pending = {}
        step = chunk or CHUNK_PAIRS
        for s in range(0, len(pairs), step):
            ks = sequence[s : s + step]
            part = pairs[ks]
            paths = {row: str(files(row)) for row in np.unique(np.concatenate([part.i, part.j])).tolist()}
            pending[remote.remote(part, paths, side, count, corner)] = ks
        done = 0
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            ks = pending.pop(ready[0])
            got = ray.get(ready[0])
            out.inliers[ks], out.sparser[ks] = got.inliers, got.sparser
            done += len(ks)
            if on_progress:
                on_progress(done, len(pairs))
        return out

    return match
