"""Keep policies: which member of a duplicate group to keep; pure."""
from __future__ import annotations

from typing import Literal

import numpy as np

from dedup.errors import UsageError
from dedup.store import Rows

KeepPolicy = Literal["largest", "smallest", "oldest", "newest", "shortest-path", "first"]
KEEP_POLICIES: tuple[str, ...] = ("largest", "smallest", "oldest", "newest", "shortest-path", "first")


def path_rank(rows: Rows) -> np.ndarray:
    """Each row's position in path order; a permutation of 0..n-1 (sorts the rows' own strings,
    no copy)."""
    rank = np.empty(len(rows), dtype=np.int64)
    rank[np.argsort(np.asarray(rows.path, dtype=object), kind="stable")] = np.arange(len(rows))
    return rank


def keep_rank(rows: Rows, policy: KeepPolicy = "largest", path_order: np.ndarray | None = None,
              last: np.ndarray | None = None) -> np.ndarray:
    """Rank of every image under `policy` (0 = most preferred keeper); a permutation of 0..n-1.

    Ties are broken by resolution, then file size (both larger first), then path (`path_order`:
    `path_rank(rows)`, computed when not given). Rows marked in `last` (pages and composites that
    hold another image pasted into them: a screenshot is not kept over the picture it shows) rank
    after all others.
    """
    if policy not in KEEP_POLICIES:
        raise UsageError(f"unknown keep policy {policy!r}; choose one of {', '.join(KEEP_POLICIES)}", option="keep")
    pixels = rows.width.astype(np.int64) * rows.height.astype(np.int64)
    size = rows.size.astype(np.int64)
    path_order = path_rank(rows) if path_order is None else path_order
    primary = {
        "largest": -pixels,
        "smallest": pixels,
        "oldest": rows.mtime_ns.astype(np.int64),
        "newest": -rows.mtime_ns.astype(np.int64),
        "shortest-path": np.array([len(p) for p in rows.path], dtype=np.int64),
        "first": path_order,
    }[policy]
    after = np.zeros(len(rows), bool) if last is None else np.asarray(last, bool)
    order = np.lexsort((path_order, -size, -pixels, primary, after))
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return rank
