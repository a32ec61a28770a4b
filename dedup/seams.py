"""A picture pasted onto another, told from a crop: which of two duplicates to keep.

When one of two duplicates shows the other whole, it is either the original of a crop, to be
kept, or a composite the other was pasted onto (a busier picture, a padded canvas), not to be
kept over the picture it shows. Either way the held picture's frame lies inside the holder. A
crop's content goes on beyond its frame, in the original; a pasted picture's does not: along its
edges the holder shows a seam. `composite` lays the held picture over the holder by the map the
keypoints agree on and measures, along each of its edges that lies inside the holder, how much
more the pixels change across the edge (its own against the holder's just beyond) than within
it. `composites` looks at a run's confirmed pairs so, for `dedup.keep.keep_rank` to rank the
composites after the pictures they show.

A crop whose colours were also changed changes across its edges too, and is taken for a pasted
picture; matching brightness and contrast first would hide the seam of a drawing pasted with its
transparency, whose white backdrop the busier picture replaces.
"""
from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import cv2
import numpy as np

from dedup.images import DECODE_ERRORS, ImageSkip
from dedup.keypoints import Pictures
from dedup.pairs import Pairs, locate
from dedup.pictures import rgb_of

SAMPLES = 48  # points along each edge
GAP = 2.0  # pixels of the held picture beyond its edge where the holder is read
INSIDE = 3.0  # pixels the holder's points stay inside its own frame
FRAME = 0.05  # share of the holder's sides its frame may be overstepped by a held picture's corners
SEAM = 3.0  # how many times more the pixels change across the held picture's edges than within it, for a pasted picture
CHANGE = 10.0  # added to the change within (0–255, the channels' mean): a flat edge divides by this
EDGES = 2  # edges of the held picture inside the holder needed (a crop that trims one side cuts along a stroke)
IDENTITY = 0.02  # a map this close to the identity (units of the longer side) is between two pictures of one frame


@dataclass(frozen=True)
class PairMaps:
    """Keypoint maps of pairs of rows (the map from row i's picture to row j's, in units of each
    one's longer side), sorted by (i, j), each pair once: 40 bytes a pair."""

    i: np.ndarray  # (m,) int64
    j: np.ndarray  # (m,) int64
    maps: np.ndarray  # (m, 2, 3) float32

    def __len__(self) -> int:
        return len(self.i)

    @classmethod
    def of(cls, i: np.ndarray, j: np.ndarray, maps: np.ndarray) -> PairMaps:
        """The maps of pairs (i[k], j[k]), the first one kept of a pair given twice."""
        i, j = np.asarray(i, np.int64).reshape(-1), np.asarray(j, np.int64).reshape(-1)
        maps = np.asarray(maps, np.float32).reshape(-1, 2, 3)
        order = np.lexsort((np.arange(len(i)), j, i))
        i, j, maps = i[order], j[order], maps[order]
        first = np.ones(len(i), bool)
        first[1:] = (i[1:] != i[:-1]) | (j[1:] != j[:-1])
        return cls(i[first], j[first], maps[first])

    def find(self, i: np.ndarray, j: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per pair (i[k], j[k]): whether it has a map, and where (an index into `maps`)."""
        return locate(i, j, self.i, self.j)


class NestedMaps:
    """`Policy.decide`'s `confirmed` hook: keeps the maps of the pairs the keypoints confirm whose
    frames may nest, for `composites` and `dedup.drawn` (`maps`): not those of two pictures of one
    frame (a map within `IDENTITY` of the identity), most of a catalog's."""

    def __init__(self) -> None:
        self._parts: list[PairMaps] = [PairMaps.of(np.zeros(0), np.zeros(0), np.zeros((0, 2, 3)))]  # the first: merged

    def __call__(self, i, j, maps: np.ndarray) -> None:
        maps = np.asarray(maps)
        moved = np.abs(maps - np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])).max(axis=(1, 2)) > IDENTITY
        if moved.any():
            self._parts.append(PairMaps(np.asarray(i, np.int64)[moved], np.asarray(j, np.int64)[moved],
                                        maps[moved].astype(np.float32)))

    @property
    def maps(self) -> PairMaps:
        """The maps kept so far, each pair once (the first kept)."""
        if len(self._parts) > 1:
            parts = self._parts
            self._parts = [PairMaps.of(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("i", "j", "maps")))]
        return self._parts[0]


Judge = Callable[[np.ndarray, np.ndarray, np.ndarray, Pictures, int], np.ndarray]  # `which_composite`'s signature


def composites(pairs: Pairs, maps: PairMaps, pictures: Pictures, workers: int = 2,
               frames: tuple[np.ndarray, np.ndarray] | None = None, judge: Judge | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Of `pairs` (rows whose check pictures are `pictures(row)`, `maps` those of the keypoint map
    from picture i to picture j), those where one picture is a composite the other was pasted
    onto, by `judge` (default `which_composite`; `dedup.checkmemo.PairChecks.judge` remembers its
    answers): the composites' rows, and the rows whose pictures they show. A pair without a map is
    neither. With `frames` (every row's height and width), only the pairs whose frames nest by
    them are looked at."""
    found, at = maps.find(pairs.i, pairs.j)
    i, j, to_j = pairs.i[found].astype(np.int64), pairs.j[found].astype(np.int64), maps.maps[at[found]]
    if frames is not None:
        nest = np.array([_nested(m, *(tuple(int(f[r]) for f in frames) for r in (a, b)))
                         for a, b, m in zip(i.tolist(), j.tolist(), to_j)], bool).reshape(-1)
        i, j, to_j = i[nest], j[nest], to_j[nest]
    if not len(i):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    which = (judge or which_composite)(i, j, to_j, pictures, workers)
    on = which >= 0
    pages, shown = np.where(which == 0, i, j), np.where(which == 0, j, i)
    return pages[on], shown[on]


def which_composite(i: np.ndarray, j: np.ndarray, maps: np.ndarray, pictures: Pictures, workers: int = 2) -> np.ndarray:
    """Per pair (pictures `pictures(i[k])` and `pictures(j[k])`, `maps[k]` the keypoint map from
    the first to the second): 0 when the first is a composite the second was pasted onto, 1 the
    other way round, -1 neither (`composite`) or a picture that cannot be had; on `workers` threads."""
    def which(k: int) -> int:
        try:
            found = composite(rgb_of(pictures(int(i[k]))), rgb_of(pictures(int(j[k]))), maps[k])
        except (ImageSkip, cv2.error, *DECODE_ERRORS):
            return -1
        return -1 if found is None else found

    with ThreadPoolExecutor(max(1, workers), thread_name_prefix="seams") as pool:
        return np.fromiter(pool.map(which, range(len(i))), np.int8, len(i))


def _nested(to_b: np.ndarray, a: tuple[int, int], b: tuple[int, int]) -> bool:
    """Whether by `to_b` exactly one of pictures of (h, w) `a` and `b` has its frame inside the other's."""
    return min(*a, *b) > 0 and _holding(to_b, a, b) is not None


def held_share(to_b: np.ndarray, a: tuple[int, int], b: tuple[int, int]) -> float | None:
    """Of pictures of (h, w) `a` and `b`, by the keypoint map `to_b` from a to b: the share of the
    holder's area the held picture covers when one frame holds the other alone (`_holding`); None
    when neither or both do."""
    holding = _holding(to_b, a, b)
    if holding is None:
        return None
    which, to_holder = holding
    (hh, hw), (h, w) = (b, a) if which == 1 else (a, b)
    return float(abs(np.linalg.det(to_holder[:2, :2])) * h * w / (hh * hw))


def _holding(to_b: np.ndarray, a: tuple[int, int], b: tuple[int, int]) -> tuple[int, np.ndarray] | None:
    """Of pictures of (h, w) `a` and `b`, by the keypoint map `to_b` from a to b: the one whose
    frame holds the other's alone (0 for a, 1 for b) and the pixel map from the held one to it;
    None when neither or both do."""
    if not np.isfinite(to_b).all():
        return None
    ab = in_pixels(to_b, a, b)
    try:
        ba = np.linalg.inv(ab)
    except np.linalg.LinAlgError:
        return None
    a_in_b, b_in_a = _frame_inside(ab[:2], a, b), _frame_inside(ba[:2], b, a)
    if a_in_b == b_in_a:
        return None
    return (1, ab) if a_in_b else (0, ba)


def _frame_inside(to_holder: np.ndarray, held: tuple[int, int], holder: tuple[int, int]) -> bool:
    """Whether the frame of a picture of (h, w) `held` lies inside one of `holder`, by `to_holder`."""
    (h, w), (hh, hw) = held, holder
    corners = to_holder @ np.array([[0, 0, 1], [w, 0, 1], [0, h, 1], [w, h, 1]], np.float64).T
    return bool(((corners[0] > -FRAME * hw) & (corners[0] < (1 + FRAME) * hw)
                 & (corners[1] > -FRAME * hh) & (corners[1] < (1 + FRAME) * hh)).all())


def in_pixels(to_b: np.ndarray, a: tuple[int, int], b: tuple[int, int]) -> np.ndarray:
    """A keypoint map (`dedup.keypoints.Matches.maps`: in units of each picture's longer side)
    from a picture of (h, w) `a` to one of `b`, in pixels, as a 3×3 matrix."""
    scale = np.diag([max(b), max(b), 1.0]) @ np.vstack([np.asarray(to_b, np.float64), (0, 0, 1)])
    return scale @ np.diag([1 / max(a), 1 / max(a), 1.0])


def composite(a: np.ndarray, b: np.ndarray, to_b: np.ndarray) -> int | None:
    """Of two pictures ((h, w, 3) uint8) where one shows the other whole, by `to_b` (the keypoint
    map from a to b), the one made by pasting the other onto a busier picture: 0 for `a`, 1 for
    `b`; None when neither shows the other whole or the held one's content goes on beyond its
    frame (a crop)."""
    holding = _holding(to_b, a.shape[:2], b.shape[:2])
    if holding is None:
        return None
    which, to_holder = holding
    held, holder = (a, b) if which == 1 else (b, a)
    seam = seam_difference(held, holder, to_holder[:2])
    return which if seam is not None and seam > SEAM else None


def seam_difference(held: np.ndarray, holder: np.ndarray, to_holder: np.ndarray) -> float | None:
    """The median over the held picture's edges that lie inside the holder (at least `EDGES`) of
    how much more its pixels change across the edge than within it: the median difference along
    the edge between its pixels at the edge and the holder's `GAP` pixels beyond it, over that
    between its pixels at the edge and its own `GAP` pixels inside (plus `CHANGE`); None with fewer
    such edges. The medians ignore the few points where a crop cuts along a stroke."""
    h, w = held.shape[:2]
    t = np.linspace(0.05, 0.95, SAMPLES)
    edges = ((np.c_[t * (w - 1), np.zeros(SAMPLES)], (0.0, 1.0)), (np.c_[t * (w - 1), np.full(SAMPLES, h - 1.0)], (0.0, -1.0)),
             (np.c_[np.zeros(SAMPLES), t * (h - 1)], (1.0, 0.0)), (np.c_[np.full(SAMPLES, w - 1.0), t * (h - 1)], (-1.0, 0.0)))
    found = []
    for base, normal in edges:
        beyond = _mapped(to_holder, base - np.asarray(normal) * GAP)
        inside = ((beyond[:, 0] >= INSIDE) & (beyond[:, 0] <= holder.shape[1] - 1 - INSIDE)
                  & (beyond[:, 1] >= INSIDE) & (beyond[:, 1] <= holder.shape[0] - 1 - INSIDE))
        if inside.mean() < 0.5:
            continue  # this edge is the holder's own edge too
        edge = _read(held, base[inside] + np.asarray(normal) * 0.5)
        across = np.median(np.abs(edge - _read(holder, beyond[inside])).mean(axis=1))
        within = np.median(np.abs(edge - _read(held, base[inside] + np.asarray(normal) * (0.5 + GAP + 0.5))).mean(axis=1))
        found.append(float(across / (within + CHANGE)))
    return float(np.median(found)) if len(found) >= EDGES else None


def _mapped(to: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ to[:, :2].T + to[:, 2]


def _read(rgb: np.ndarray, points: np.ndarray) -> np.ndarray:
    """The pixels of `rgb` at (x, y) `points`, bilinearly; (n, 3) float32."""
    x = np.ascontiguousarray(points[:, 0], np.float32).reshape(1, -1)
    y = np.ascontiguousarray(points[:, 1], np.float32).reshape(1, -1)
    return cv2.remap(rgb, x, y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE).reshape(-1, 3).astype(np.float32)
