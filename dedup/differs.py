"""Where an image differs from the one it duplicates, for a person deciding (`dedup review`,
`dedup compare`) and for acting without looking (`find-duplicates --nothing-differs`): the
image's check picture with the other's laid over it by the map their keypoints agree on
(`dedup.keypoints`, remembered by `dedup.checkmemo`), and the regions that differ there
(`dedup.details.differing_spots`). Another letter on a badge shows as one small region, a caption
or a sticker as the region it covers, an edited copy's noise as nothing."""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np

from dedup.checkmemo import PairChecks
from dedup.config import VerifyConfig
from dedup.details import Picture, differing_spots, differs_nowhere, prepared, prepared_rows, told_apart
from dedup.images import DECODE_ERRORS, ImageSkip
from dedup.index import Index
from dedup.keypoints import Matcher, Pictures, match_pairs
from dedup.pairs import Pairs
from dedup.results import Group, Member, Spots

Found = Mapping[tuple[str, str], Spots | None]  # (path a, path b) → where a differs from b


def keeper_pairs(groups: Sequence[Group]) -> list[tuple[str, str]]:
    """(member, keeper) of every member but the keeper of each set that is not of exact copies."""
    return [(m.path, g.keep) for g in groups if not g.exact for m in g.members if m.path != g.keep]


def spots_between(index: Index, pairs: Sequence[tuple[str, str]], row: Mapping[str, int], workers: int = 2) -> Found:
    """Where the first image of each pair of paths differs from the second (`member_spots`);
    `row` gives each path's row of `index`."""
    return dict(zip(pairs, member_spots(index, [(row[a], row[b]) for a, b in pairs], workers)))


def other_pairs(groups: Sequence[Group], most: int) -> list[list[tuple[str, str]]]:
    """Per set of at most `most` members (and not exact copies): every pair of members other than
    the keeper, so that where they differ is known whichever member is kept; none for larger sets."""
    out = []
    for g in groups:
        others = [m.path for m in g.members if m.path != g.keep]
        out.append([] if g.exact or len(g.members) > most else
                   [(a, b) for k, a in enumerate(others) for b in others[k + 1:]])
    return out


def set_differs_nowhere(group: Group, found: Found) -> bool:
    """No member of `group` differs from its keeper: exact copies, or every member `differs_nowhere`
    by `found` (a member missing from it counts as differing)."""
    return len(unchanged_members(group, found)) == len(group.members)


def unchanged_members(group: Group, found: Found) -> tuple[Member, ...]:
    """The keeper of `group` and the members that differ nowhere from it by `found` (every member
    of a set of exact copies; a member missing from `found` counts as differing): the part of a set
    that may be acted on without looking."""
    return tuple(m for m in group.members if group.exact or m.path == group.keep
                 or differs_nowhere(found.get((m.path, group.keep))))


def member_spots(index: Index, pairs: Sequence[tuple[int, int]], workers: int = 2) -> list[Spots | None]:
    """Per (member row, keeper row) of `index`: where the member differs from the keeper (boxes in
    shares of the member's picture); None without a pair check, without a map their keypoints
    agree on, or with a picture that cannot be had."""
    check = index.manifest.verify
    if check is None or not pairs:
        return [None] * len(pairs)
    rows = np.array(pairs, np.int64).reshape(-1, 2)
    low, high = rows.min(axis=1), rows.max(axis=1)  # the order find-duplicates matched (and remembered) them in
    memo = PairChecks(index.folder, index.rows.content_hash)
    return pair_spots(Pairs(low, high, np.zeros(len(rows), np.float32)), index.picture, memo.matcher(match_pairs), check,
                      workers, from_j=rows[:, 0] == high)


def pair_spots(pairs: Pairs, pictures: Pictures, match: Matcher, check: VerifyConfig, workers: int = 2,
               from_j: np.ndarray | None = None) -> list[Spots | None]:
    """Per pair: where picture i differs from picture j laid over it (where j differs from i where
    `from_j`), by the map `match` finds at the check's size; None without one, or with a picture
    that cannot be had."""
    found = match(pairs, pictures, check.side, check.keypoints, workers)
    picture = prepared_rows(pictures)
    flip = np.zeros(len(pairs), bool) if from_j is None else np.asarray(from_j, bool)

    def spots(k: int) -> Spots | None:
        return _spots(picture, int(pairs.i[k]), int(pairs.j[k]), found.maps[k], bool(flip[k]))

    with ThreadPoolExecutor(max(1, workers), thread_name_prefix="differs") as pool:
        return list(pool.map(spots, range(len(pairs))))


def _spots(picture: Callable[[int], Picture], i: int, j: int, to_j: np.ndarray | None, flip: bool = False) -> Spots | None:
    """Where prepared picture i differs from picture j laid over it by `to_j` (with `flip`, where j
    differs from i); None without a map or with a picture that cannot be had."""
    if to_j is None or not np.isfinite(to_j).all():
        return None
    a, b, to_b = (j, i, _inverse(to_j)) if flip else (i, j, to_j)
    try:
        return differing_spots(picture(a), picture(b), to_b)
    except (ImageSkip, cv2.error, *DECODE_ERRORS):
        return None


class SeenMaps:
    """A teller for `Policy.decide` (`dedup.details.told_apart`) that also keeps the maps of the
    pairs it is asked about (those the keypoints confirm), so that `spots` can say where they
    differ without matching them again."""

    def __init__(self) -> None:
        self.maps: dict[tuple[int, int], np.ndarray] = {}
        self.pictures: Pictures | None = None

    def __call__(self, i, j, maps: np.ndarray, pictures: Pictures, workers: int = 2) -> np.ndarray:
        self.maps.update(zip(zip(map(int, i), map(int, j)), maps))
        self.pictures = pictures
        return told_apart(i, j, maps, pictures, workers)

    def spots(self, i: int, j: int) -> Spots | None:
        """Where picture i differs from picture j (rows as the teller saw them); None for a pair
        it was not asked about or whose pictures cannot be had."""
        pictures = self.pictures
        return None if pictures is None else _spots(lambda row: prepared(pictures(row)), i, j, self.maps.get((i, j)))


def _inverse(affine: np.ndarray) -> np.ndarray:
    """The inverse of a 2×3 affine map."""
    return np.linalg.inv(np.vstack([affine, (0.0, 0.0, 1.0)]))[:2]
