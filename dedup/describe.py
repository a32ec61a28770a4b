"""Duplicate sets described for the report: each set's keeper, its members in order with their
distance to the keeper, its diameter, whether its files are byte-identical, and which members
show another one pasted into them; in bounded blocks of members."""
from __future__ import annotations

import numpy as np

from dedup.keep import path_rank
from dedup.results import Group, Member
from dedup.store import Rows

SMALL_GROUP = 16  # groups up to this size get their diameters from every pairwise difference at once
MEDOID_GROUP = 256  # groups up to this size find their most central member from every pairwise distance
CENTRE_DECIMALS = 4  # distances compared for the most central member, to this many decimals
GROUP_BLOCK = 65_536  # members described at once (their float64 vectors: 32 MB)


def page_members(sets: list[np.ndarray], n: int, pages: np.ndarray, shown: np.ndarray) -> np.ndarray:
    """Per id below `n`: a member of `sets` that holds the picture of another member of its set
    (`pages[k]` holds `shown[k]`'s)."""
    which = set_index(sets, n)
    out = np.zeros(len(which), bool)
    if len(pages):
        same = (which[pages] == which[shown]) & (which[pages] >= 0)
        out[pages[same]] = True
    return out


def set_index(sets: list[np.ndarray], n: int) -> np.ndarray:
    """Per id below `n`: the position of its set in `sets`, or -1."""
    which = np.full(n, -1, np.int64)
    for k, s in enumerate(sets):
        which[s] = k
    return which


def describe_groups(groups: list[np.ndarray], vectors: np.ndarray, rows: Rows, rank: np.ndarray,
                    by_path: np.ndarray | None = None, pages: np.ndarray | None = None, tiers: np.ndarray | None = None,
                    outdrawn: np.ndarray | None = None) -> list[Group]:
    """Each group (ids into `rows`, `vectors` and `rank`) with its keeper (lowest rank), members
    keeper first, then by distance to the keeper and path (`by_path`: `dedup.keep.path_rank`,
    computed when not given), and its diameter; `GROUP_BLOCK` members at a time. `pages` (per id,
    `page_members`): the members that hold another member's picture (`Member.page`). With `tiers`
    (`dedup.keep.keep_tiers`), the keeper is the most central member of the best tier, after
    those another member outdraws (per id, `dedup.drawn.outdrawn`); a member with more pixels
    than that keeper is then marked `Member.more_pixels_only`."""
    by_path = path_rank(rows) if by_path is None else by_path
    out: list[Group] = []
    start, held = 0, 0
    for end, members in enumerate(groups, 1):
        held += len(members)
        if held >= GROUP_BLOCK or end == len(groups):
            out += _describe(groups[start:end], vectors, rows, rank, by_path, pages, tiers, outdrawn)
            start, held = end, 0
    return out


def _describe(groups: list[np.ndarray], vectors: np.ndarray, rows: Rows, rank: np.ndarray,
              by_path: np.ndarray, pages: np.ndarray | None = None, tiers: np.ndarray | None = None,
              outdrawn: np.ndarray | None = None) -> list[Group]:
    sizes = np.fromiter(map(len, groups), np.int64, len(groups))
    starts = np.zeros(len(groups), np.int64)
    np.cumsum(sizes[:-1], out=starts[1:])
    ids = np.concatenate(groups).astype(np.int64)
    gid = np.repeat(np.arange(len(groups)), sizes)
    emb = vectors[ids].astype(np.float64)
    if tiers is None:
        keeper = ids[np.lexsort((rank[ids], gid))[starts]]
    else:  # among the members the policy ranks alike, the most central one: the copies were most likely made from it
        behind = np.zeros(len(ids), bool) if outdrawn is None else outdrawn[ids]
        keeper = ids[np.lexsort((rank[ids], _off_centre(emb, sizes, starts), behind, tiers[ids], gid))[starts]]
    to_keeper = np.sqrt(np.maximum(((emb - vectors[keeper].astype(np.float64)[gid]) ** 2).sum(axis=1), 0.0))
    order = np.lexsort((by_path[ids], to_keeper, ids != keeper[gid], gid))
    hashes = rows.content_hash[ids]
    exact = np.logical_and.reduceat(hashes == hashes[starts][gid], starts)
    widths = _diameters(emb, sizes, starts)
    paths = rows.path[ids[order]].tolist()  # the rows' own str objects, shared by the report
    distances = [round(d, 6) for d in to_keeper[order].tolist()]
    page = np.zeros(len(ids), bool) if pages is None or not len(pages) else pages[ids[order]]
    pixels = rows.pixels
    # kept over by the drawn comparison (`dedup.drawn`) though it has more pixels: say why
    canvas = (np.zeros(len(ids), bool) if outdrawn is None else (outdrawn[ids] & (pixels[ids] > pixels[keeper][gid]))[order]) & ~page
    members = [Member(p, d, bool(f), bool(c)) for p, d, f, c in zip(paths, distances, page.tolist(), canvas.tolist())]
    return [Group(keep=str(rows.path[k]), max_distance=round(w, 6), exact=bool(e), members=tuple(members[a : a + n]))
            for k, w, e, a, n in zip(keeper.tolist(), widths.tolist(), exact.tolist(), starts.tolist(), sizes.tolist())]


def narrowed(group: Group, members: tuple[Member, ...], vectors: np.ndarray, hashes: np.ndarray) -> Group:
    """`group` with only `members` (its keeper first; `vectors` and content `hashes` are theirs, in
    that order), its diameter and whether its files are byte-identical found again."""
    return Group(keep=group.keep, max_distance=round(diameter(np.asarray(vectors, np.float64)), 6),
                 exact=bool((np.asarray(hashes) == hashes[0]).all()), members=members)


def _off_centre(emb: np.ndarray, sizes: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Per member (rows `starts[g]:starts[g] + sizes[g]` of `emb` for group g), how far it is from
    the rest of its group: the sum of its distances to the other members (up to `MEDOID_GROUP`
    members; beyond, its distance to their mean), rounded to `CENTRE_DECIMALS` so that the two
    members of a pair tie."""
    out = np.zeros(len(emb))
    for k in np.unique(sizes).tolist():
        which = np.flatnonzero(sizes == k)
        if k > MEDOID_GROUP:
            for g in which.tolist():
                group = emb[starts[g] : starts[g] + k]
                out[starts[g] : starts[g] + k] = np.sqrt(((group - group.mean(axis=0)) ** 2).sum(axis=1))
            continue
        step = max(1, GROUP_BLOCK // (k * k))
        for s in range(0, len(which), step):
            part = which[s : s + step]
            at = starts[part][:, None] + np.arange(k)
            block = emb[at]  # (groups, k, dim)
            out[at] = np.sqrt(((block[:, :, None] - block[:, None]) ** 2).sum(axis=3)).sum(axis=2)
    return np.round(out, CENTRE_DECIMALS)


def _diameters(emb: np.ndarray, sizes: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Per group (rows `starts[g]:starts[g] + sizes[g]` of `emb`), the largest pairwise distance."""
    out = np.zeros(len(sizes))
    for k in np.unique(sizes).tolist():
        which = np.flatnonzero(sizes == k)
        if k > SMALL_GROUP:
            for g in which.tolist():
                out[g] = diameter(emb[starts[g] : starts[g] + k])
            continue
        a, b = np.triu_indices(k, 1)
        step = GROUP_BLOCK // k
        for s in range(0, len(which), step):
            part = which[s : s + step]
            block = emb[starts[part][:, None] + np.arange(k)]  # (groups, k, dim)
            out[part] = np.sqrt(((block[:, a] - block[:, b]) ** 2).sum(axis=2).max(axis=1))
    return out


def diameter(emb: np.ndarray, block: int = 2048) -> float:
    """Largest pairwise Euclidean distance among rows, in blocks (no n² matrix at once)."""
    sq = (emb**2).sum(axis=1)
    best = 0.0
    for s in range(0, len(emb), block):
        d2 = sq[s : s + block, None] + sq[None, :] - 2.0 * emb[s : s + block] @ emb.T
        best = max(best, float(d2.max()))
    return float(np.sqrt(max(best, 0.0)))
