"""Keep policies: which member of a duplicate group to keep; pure."""
from __future__ import annotations

from typing import Literal

import numpy as np

from dedup.errors import UsageError
from dedup.store import Rows

KeepPolicy = Literal["largest", "smallest", "oldest", "newest", "shortest-path", "first"]
KEEP_POLICIES: tuple[str, ...] = ("largest", "smallest", "oldest", "newest", "shortest-path", "first")


def keep_rank(rows: Rows, policy: KeepPolicy = "largest") -> np.ndarray:
    """Rank of every image under `policy` (0 = most preferred keeper); a permutation of 0..n-1.

    Ties are broken by resolution, then file size (both larger first), then path.
    """
    if policy not in KEEP_POLICIES:
        raise UsageError(f"unknown keep policy {policy!r}; choose one of {', '.join(KEEP_POLICIES)}", option="keep")
    pixels = rows.width.astype(np.int64) * rows.height.astype(np.int64)
    size = rows.size.astype(np.int64)
    path_order = np.argsort(np.argsort(np.asarray(rows.path, dtype=object), kind="stable"), kind="stable")  # the rows' own strings, no copy
    primary = {
        "largest": -pixels,
        "smallest": pixels,
        "oldest": rows.mtime_ns.astype(np.int64),
        "newest": -rows.mtime_ns.astype(np.int64),
        "shortest-path": np.array([len(p) for p in rows.path], dtype=np.int64),
        "first": path_order,
    }[policy]
    order = np.lexsort((path_order, -size, -pixels, primary))
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return rank
