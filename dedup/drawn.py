"""How large the members of a duplicate set draw their picture, for `--keep largest`: the keeper
is the member that shows the picture at the highest resolution, not the one with the most pixels.

A copy rotated onto a larger canvas, or stretched along one axis, has more pixels than its
original but no more of the picture. The keypoints' map between two confirmed pictures, in
pixels, says how large one draws the picture against the other (its singular values) and whether
it turns it. Between two members of a set:

- one that draws the picture larger along both axes by `MARGIN` outdraws the other;
- one turned by `TURNED` or more at the other's scale (within `SAME`) has more pixels only by its
  canvas: it does not outdraw the other, and when its canvas just holds the other's frame (each
  of its sides within `TOUCH` of a turned corner) it is the rotated copy and counts as outdrawn;
- of two where one is stretched along one axis against the other, neither outdraws the other (an
  original and its squeezed copy look the same as a stretched copy and its original); in a set of
  three or more, a member stretched against most of the others is the distorted one, and counts
  as outdrawn;
- any other two compare by their pixels: two pictures of one frame (whose map is the identity,
  not kept), a pair the keypoints did not confirm, and two whose frames nest (a crop drawn at its
  original's scale; a padded copy, ranked after its original as a composite by `dedup.seams`).

Members ranked last whatever they draw (pages and composites) take no part.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from dedup.seams import PairMaps

TOUCH = 0.03  # share of each side within which a turned frame's corners reach the canvas's sides
MARGIN = 1.05  # how much larger along both axes a member must draw the picture to outdraw another (maps are found to ±4%)
SAME = 1.08  # a turned member drawing the picture within this factor of another draws it at its scale
TURNED = np.radians(2.0)  # a map turning by this much is between a picture and a rotated copy (others turn < 1°)


@dataclass(frozen=True)
class Scales:
    """Per mapped pair of rows (i, j), each unordered pair once: how large j draws the picture
    against i along the map's two axes, in the pictures' own pixels (`lo` ≤ `hi`), and by how
    much the map turns (radians, 0 to π); `canvas`: 1 where j is i turned onto a canvas that
    just holds it (its frame, turned, touches the four sides of j's), -1 the other way round."""

    i: np.ndarray  # (m,) int64
    j: np.ndarray  # (m,) int64
    lo: np.ndarray  # (m,) float64
    hi: np.ndarray  # (m,) float64
    turn: np.ndarray  # (m,) float64
    canvas: np.ndarray  # (m,) int8

    def __len__(self) -> int:
        return len(self.i)


def drawn_scales(maps: PairMaps, ids: np.ndarray, height: np.ndarray, width: np.ndarray) -> Scales:
    """The scales of the pairs of `maps` (`dedup.seams.PairMaps`) between rows in `ids` (sorted),
    numbered as positions in it; `height`, `width`: per position, the picture's size in pixels."""
    a, b = maps.i, maps.j
    at_a, at_b = np.searchsorted(ids, a), np.searchsorted(ids, b)
    inside = (at_a < len(ids)) & (at_b < len(ids))
    inside[inside] = (ids[at_a[inside]] == a[inside]) & (ids[at_b[inside]] == b[inside])
    if not inside.any():
        empty = np.zeros(0, np.int64)
        return Scales(empty, empty, np.zeros(0), np.zeros(0), np.zeros(0), np.zeros(0, np.int8))
    a, b = at_a[inside], at_b[inside]
    height, width = np.asarray(height, np.float64), np.asarray(width, np.float64)
    long_side = np.maximum(height, width)
    to_b = maps.maps[inside].astype(np.float64)
    to_b[:, :, :2] *= (long_side[b] / long_side[a])[:, None, None]  # in pixels (`dedup.seams.in_pixels`)
    to_b[:, :, 2] *= long_side[b][:, None]
    sv = np.maximum(_singular_values(to_b[:, :, :2]), 1e-9)
    turned = np.abs(np.arctan2(to_b[:, 1, 0] - to_b[:, 0, 1], to_b[:, 0, 0] + to_b[:, 1, 1]))
    canvas = np.zeros(len(a), np.int8)
    t = np.flatnonzero(turned >= TURNED)  # few: only these can be a turned copy
    holds = _holds_turned(to_b[t], a[t], b[t], height, width)
    canvas[t[holds]] = 1
    canvas[t[~holds & _holds_turned(_inverse(to_b[t]), b[t], a[t], height, width)]] = -1
    later = a > b  # a map from the later row: its inverse's scales are the reciprocals
    sv[later] = 1 / sv[later][:, ::-1]
    canvas[later] *= -1
    i, j = np.minimum(a, b), np.maximum(a, b)
    order = np.lexsort((np.arange(len(i)), j, i))
    first = order[np.r_[True, (i[order][1:] != i[order][:-1]) | (j[order][1:] != j[order][:-1])]]
    return Scales(i[first], j[first], sv[first, 1], sv[first, 0], turned[first], canvas[first])


def _singular_values(linear: np.ndarray) -> np.ndarray:
    """The singular values of (m, 2, 2) matrices, larger first (in closed form: batched SVD is slow)."""
    a, b, c, d = linear[:, 0, 0], linear[:, 0, 1], linear[:, 1, 0], linear[:, 1, 1]
    total, det = a * a + b * b + c * c + d * d, a * d - b * c
    root = np.sqrt(np.maximum(total * total - 4 * det * det, 0.0))
    return np.sqrt(np.stack([(total + root) / 2, np.maximum(total - root, 0.0) / 2], 1))


def _inverse(to_b: np.ndarray) -> np.ndarray:
    """The inverses of (m, 2, 3) affine maps (NaN for a singular one)."""
    linear = to_b[:, :, :2]
    det = linear[:, 0, 0] * linear[:, 1, 1] - linear[:, 0, 1] * linear[:, 1, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = np.stack([np.stack([linear[:, 1, 1], -linear[:, 0, 1]], 1), np.stack([-linear[:, 1, 0], linear[:, 0, 0]], 1)], 1) / det[:, None, None]
    return np.concatenate([inv, -inv @ to_b[:, :, 2:]], axis=2)


def _holds_turned(to_b: np.ndarray, a: np.ndarray, b: np.ndarray, height: np.ndarray, width: np.ndarray) -> np.ndarray:
    """Per pixel map from picture a to picture b: whether b's frame just holds a's as the map lays
    it (a turned onto a canvas): each side of b's within `TOUCH` of one of a's corners."""
    corners = np.stack([np.zeros(len(a)), width[a], np.zeros(len(a)), width[a]], 1), np.stack([np.zeros(len(a)), np.zeros(len(a)), height[a], height[a]], 1)
    x = to_b[:, 0, :1] * corners[0] + to_b[:, 0, 1:2] * corners[1] + to_b[:, 0, 2:]
    y = to_b[:, 1, :1] * corners[0] + to_b[:, 1, 1:2] * corners[1] + to_b[:, 1, 2:]
    tx, ty = TOUCH * width[b], TOUCH * height[b]
    with np.errstate(invalid="ignore"):
        return ((np.abs(x.min(1)) < tx) & (np.abs(x.max(1) - width[b]) < tx)
                & (np.abs(y.min(1)) < ty) & (np.abs(y.max(1) - height[b]) < ty))


def outdrawn(set_of: np.ndarray, pixels: np.ndarray, scales: Scales) -> np.ndarray:
    """Per row (`set_of[r]`: its set, or -1 for none, and for a member ranked last whatever it
    draws, such as a composite): whether another member of its set draws the picture larger
    (`scales` between rows; by `pixels` where two members have no map), or it is stretched against
    most of its set."""
    n = len(set_of)
    pixels = np.asarray(pixels, np.int64)
    member = set_of >= 0
    rows = np.flatnonzero(member)
    order = rows[np.lexsort((pixels[rows], set_of[rows]))]
    # members of its set with more pixels: those after the last member with as many or fewer
    key = set_of[order] * (int(pixels.max(initial=0)) + 1) + pixels[order]
    set_end = np.searchsorted(set_of[order], set_of[order], side="right")
    more = np.zeros(n, np.int64)
    more[order] = set_end - np.searchsorted(key, key, side="right")
    same = member[scales.i] & member[scales.j] & (set_of[scales.i] == set_of[scales.j])
    i, j, lo, hi = scales.i[same], scales.j[same], scales.lo[same], scales.hi[same]
    j_larger, i_larger = lo >= MARGIN, hi <= 1 / MARGIN
    stretched = ~j_larger & ~i_larger & (hi >= lo * MARGIN)
    at_scale = (scales.turn[same] >= TURNED) & (lo > 1 / SAME) & (hi < SAME)
    j_canvas, i_canvas = at_scale & (scales.canvas[same] == 1), at_scale & (scales.canvas[same] == -1)
    tie = at_scale | stretched
    j_more, i_more = pixels[j] > pixels[i], pixels[i] > pixels[j]
    excused = (np.bincount(i, j_more & (i_larger | tie), n) + np.bincount(j, i_more & (j_larger | tie), n)).astype(np.int64)
    forced = np.zeros(n, bool)
    forced[i[j_larger & ~j_more]] = True
    forced[j[i_larger & ~i_more]] = True
    forced[j[j_canvas]] = True
    forced[i[i_canvas]] = True
    size = np.bincount(set_of[member], minlength=int(set_of.max(initial=0)) + 1)
    others = np.where(member, size[np.maximum(set_of, 0)] - 1, 0)
    against = np.bincount(i[stretched], minlength=n) + np.bincount(j[stretched], minlength=n)
    distorted = (others >= 2) & (2 * against > others)
    return (more - excused > 0) | forced | distorted
