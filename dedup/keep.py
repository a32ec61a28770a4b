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
    after all others. Within a duplicate set, find-duplicates puts the most central of the images
    that `keep_tiers` ranks alike before these tie-breaks.
    """
    pixels = rows.pixels
    size = rows.size.astype(np.int64)
    path_order = path_rank(rows) if path_order is None else path_order
    order = np.lexsort((path_order, -size, -pixels, *_tier(rows, policy, path_order, last)))
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return rank


def keep_tiers(rows: Rows, policy: KeepPolicy = "largest", path_order: np.ndarray | None = None,
               last: np.ndarray | None = None, drawn: bool = False) -> np.ndarray:
    """Per image, its place under `policy` and `last` alone, before `keep_rank` breaks ties
    (0 first): images of one tier are equally good keepers by the policy itself. With `drawn`,
    the members of a set are compared by how large they draw the picture (`dedup.drawn`) where
    the policy asks for it (`by_drawing`), and its pixels are left out here."""
    primary, after = _tier(rows, policy, path_rank(rows) if path_order is None else path_order, last)
    if drawn and by_drawing(policy):
        primary = np.zeros(len(rows), np.int64)
    return np.unique(np.stack([after.astype(np.int64), primary]), axis=1, return_inverse=True)[1].reshape(-1)


def by_drawing(policy: KeepPolicy) -> bool:
    """Whether `policy` prefers the member that shows the picture at the highest resolution: with
    the keypoints' maps between members (`dedup.drawn`), rather than by pixels alone."""
    return policy == "largest"


def _tier(rows: Rows, policy: KeepPolicy, path_order: np.ndarray, last: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """The policy's own key per image (lower first), and whether it goes `last`: lexsort keys, the last most significant."""
    if policy not in KEEP_POLICIES:
        raise UsageError(f"unknown keep policy {policy!r}; choose one of {', '.join(KEEP_POLICIES)}", option="keep")
    pixels = rows.pixels
    primary = {
        "largest": -pixels,
        "smallest": pixels,
        "oldest": rows.mtime_ns.astype(np.int64),
        "newest": -rows.mtime_ns.astype(np.int64),
        "shortest-path": np.array([len(p) for p in rows.path], dtype=np.int64),
        "first": path_order,
    }[policy]
    return primary, np.zeros(len(rows), bool) if last is None else np.asarray(last, bool)
