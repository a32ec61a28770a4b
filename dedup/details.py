"""Do two pictures the keypoints call one differ in a detail or a colourway?

A catalog sells one design as several items: another letter or number on a badge, another
colour. Such items share nearly every keypoint, so the keypoint check (`dedup.keypoints`)
confirms them as copies. Laid one over the other by the map their keypoints agree on, they show
what tells them apart:

- **a detail**: the pictures agree everywhere but in one or two small regions, and there both
  have drawn detail (edges) that does not agree. An overlay a copy gains (a caption, a sticker)
  tends to cover more of the picture, to sit on the backdrop, to replace detail with flat
  colour or flat colour with detail, so the detail on its two sides is unequal, or to sit near an
  edge (a watermark or a logo in a corner).
- **a colourway**: the subject's saturated colours have their hues turned on most of it, where
  a colour edit (brightness, contrast, saturation, greyscale) keeps them.
- **another drawing in one frame**: a larger region inside both subjects (other pips on a card,
  another sign in a warning triangle) has drawn detail on both sides that is anticorrelated, and
  each side is drawn in colours its picture uses elsewhere; a sticker or caption brings its own.
  Only between pictures stored at about one size: an icon theme redraws each size of an icon.
- **a moved part**: two drawings on a plain backdrop, each drawn somewhere the other shows
  backdrop, in colours of its own drawing (a puzzle piece's knob where the other has a hole, a
  figure's arm raised or lowered), where no small nudge of the map lines them up. An overlay is
  drawn on one side only, and in colours of its own.
- **an exact detail**: two renders that differ in one small spot inside both subjects and
  nowhere else, pixel for pixel (a small letter, a figure in a document's box). A copy differs
  elsewhere too, or, when it is a smooth picture resized (a sky), only along the edge where the
  two overlap.

Two tiny pictures of one size (icons of 32 px or less) are also compared pixel for pixel
(`tiny_told_apart`, which the check asks beside `told_apart`): at that size keypoints found on the
picture blown up agree by chance, and an emblem that tells two icons apart covers a fifth of them.

A flat drawing and its copy (a flag, a sign, stripes) can agree on no keypoint: their corners are
alike, or repeat. `framed_maps` lays such a pair over by their subjects' boxes instead, when the
two correlate there, so that they can be judged as above.

`told_apart` judges pairs on their check pictures (`dedup.pictures`). The bounds below were
chosen on validation catalogs with look-alike series (`benchmarks/details.py`; the moved part's
also on catalogs of the training pool's look-alike drawings, `--part train`), never on the
held-out ones.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from dedup.framing import TRIM_TOLERANCE, border_colour, border_coloured, whiten_backdrop
from dedup.images import DECODE_ERRORS, ImageSkip
from dedup.keypoints import Pictures, rescaled
from dedup.pictures import fitted, picture_size, rgb_of
from dedup.results import Spots

SIDE = 256  # pictures are compared with their longer side at this size (the keypoints' side)
CACHE_PICTURES = 256  # prepared pictures kept while pairs are judged (~250 kB each)
CHUNK = 64  # pairs judged in one go by a thread
MIN_OVERLAP_PX = 100  # fewer pixels in common: no verdict
DIFFERENT = 30  # grey levels (of 255) at which a pixel differs, after matching brightness and contrast
SPREAD_PX = 7  # differing pixels this close together make one region
DETAIL_AREA = (0.006, 0.025)  # share of the common area that differs, for a detail
DETAIL_REGIONS = 2  # at most this many differing regions
ONE_SIDED = 0.5  # a region more than this share backdrop (on either side) is no detail
DETAIL_EDGE = 0.1  # a region closer than this share of a side to the picture's edge is no detail (`near_edge`)
EDGE_BALANCE = 0.3  # the sparser side of the largest region has at least this share of the other's edges
WINDOW, STRIDE = 24, 12  # windows in which the two pictures' structure is correlated
WINDOW_CONTRAST = 8.0  # grey-level deviation both need in a window for its correlation to count
DISAGREE = 0.9  # some window correlates below this: the structure differs there
SATURATED, BRIGHT, SUBJECT = 80, 50, 60  # HSV saturation and value (of 255); summed RGB distance from the border colour
MIN_SUBJECT = 0.02  # share of the common area in colour on both sides needed for a colourway verdict
HUE_TURN = 40  # hue difference (of 256) at which a pixel's colour is turned
TURNED = 0.5  # share of turned subject pixels that makes another colourway
PART_TURNED = (0.15, 0.03)  # one part in another colour: its turned pixels at least this share of the coloured subject, and of the subject
PART_SHADED = 0.5  # ... whose saturation and value correlate at least this much on both sides (the same shading, another hue)
DRAWING_SIZES = 1.25  # another drawing is looked for between pictures stored at sizes at most this far apart
DRAWING_AREA = 0.025  # another drawing: a region at least this share of the common area
DRAWING_BACKDROP = 0.05  # at most this share of it either picture's backdrop
DRAWING_EDGE_BALANCE = 0.5  # the sparser side with at least this share of the other's edges
DRAWING_CORRELATION = -0.4  # some window there anticorrelated below this
MOVED_BACKDROP = 0.4  # a moved part is looked for between pictures at least this share backdrop
MOVED_CORE_PX = 4  # pixels taken off a drawn-only region all round: outlines that do not quite meet are no part
MOVED_AREA = 0.005  # share of the overlap each side's largest drawn-only region must keep
MOVED_NOVEL = 0.1  # at most this share of a moved part in colours new to its picture (`_novel`)
NUDGE_PX, NUDGE_SCALES = (-6, -3, 0, 3, 6), (1.0, 0.97, 1.03)  # shifts and scales tried to line the parts up (most line up unscaled)
PALETTE, RARE, NOVEL = 4, 0.005, 0.2  # colour levels a channel; a colour under RARE of the rest is new; new colours on under NOVEL of the region
SPOT_AREA = 0.001  # a differing region smaller than this share of the common area is not outlined (JPEG noise)
SPOTS = 3  # differing regions outlined at most, the largest
THROUGHOUT = 0.25  # differing over this share of the common area, the pictures differ throughout: nothing is outlined
COVERED = 0.8  # `pair_alike`: each picture covers at least this share of the other's subject (a 5-px edge eroded off)
EXACT_DIFFERENT = 25  # `exact_detail`: grey levels at which a pixel differs, pictures barely blurred (sigma EXACT_SIGMA)
EXACT_SIGMA = 0.5
EXACT_AREA = (0.00015, 0.008)  # share of the overlap differing inside the one region (8 to 400 pixels at 256 px)
EXACT_RIM_PX = 2  # ... and its one region stays further than this from the edge of the overlap
EXACT_SHIFT_PX, EXACT_TURN = 1.0, 0.01  # a map of two pictures of one size shifting less and turning or scaling less lays them over unmoved
IDENTITY = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])  # the map that leaves a picture where it is (2×3, pixels)
SPOT_SIGMA, SPOT_PX = 1.0, 5  # `copy_of_first`: the blur, and the differing pixels the spot needs
FRAMED_CORRELATION = 0.9  # `framed_map`: the correlation in grey of the pictures laid over by their boxes from which the boxes map them
FRAMED_EDGES = 0.8  # ... and of their edges' strength (two skies of one gradient correlate in grey, not in their outlines)
FRAMED_SIGMA = 1.5  # the blur before either is measured
FRAMED_MIN_PX = 10  # a subject narrower or lower than this has no box to lay over
FRAMED_RIM_PX = 4  # the pictures are compared inside the box less this rim (a copy's subject meets a backdrop there)
FRAMED_FLAT = 0.5  # share of each box that must be flat: grey levels deviating less than FLAT_LEVEL over FLAT_WINDOW pixels
FLAT_LEVEL, FLAT_WINDOW = 4.0, 9
TINY_PX = 32  # a check picture stored this large or smaller (an icon, a sprite) is also compared pixel for pixel (`tiny_pixels_differ`)
TINY_MAP = 0.1  # ... unless the keypoints' map is a similarity scaling or turning by more than this
TINY_SHIFT_PX = 2.5  # ... or shifting by more than this many stored pixels (a resized or cropped copy)
TINY_GAIN = (0.5, 2.0)  # bounds of the gain that matches their luminance (a contrast edit)
TINY_PLACES = tuple((dx, dy) for dy in (-1, 0, 1) for dx in (-1, 0, 1))  # shifts (stored pixels) tried to lay them over
TINY_LEVEL = 40  # grey levels beyond the other picture's levels within a pixel at which a tiny picture's pixel differs
TINY_DIFFERS = (0.02, 4)  # share of their subject, and pixels, differing so seen from each side: other items


@dataclass(frozen=True)
class Aligned:
    """Picture j laid over picture i: both at i's size, and where j covers i."""

    i: np.ndarray  # (h, w, 3) uint8 RGB
    j: np.ndarray  # (h, w, 3) uint8 RGB, j warped into i's frame
    overlap: np.ndarray  # (h, w) bool
    subject: np.ndarray  # (h, w) bool: both pictures' subject (not their border colour)
    backdrop: np.ndarray  # (h, w) bool: either picture's backdrop
    backdrop_j: np.ndarray  # (h, w) bool: j's backdrop
    subject_j: np.ndarray  # (h, w) bool: j's subject

    @property
    def grey_i(self) -> np.ndarray:
        return _grey(self.i)

    @property
    def grey_j(self) -> np.ndarray:
        return _grey(self.j)


class _once:
    """`functools.cached_property` without its lock, which Python 3.11 shares among all
    instances: the judging threads prepare different pictures at once."""

    def __init__(self, compute: Callable) -> None:
        self.compute, self.name, self.__doc__ = compute, compute.__name__, compute.__doc__

    def __get__(self, obj: object, owner: type | None = None) -> object:
        if obj is None:
            return self
        value = obj.__dict__[self.name] = self.compute(obj)  # a race computes it twice, alike
        return value


@dataclass(frozen=True)
class Picture:
    """A check picture ready to be compared: RGB with its longer side `SIDE`, and its subject."""

    rgb: np.ndarray  # (h, w, 3) uint8
    stored: int  # the longer side of the check picture as stored, before it was brought to `SIDE`
    subject: np.ndarray  # (h, w) bool: away from the border colour
    backdrop: np.ndarray  # (h, w) bool: the border colour, joined to the border (a backdrop, padding, a rotation's fill)

    @_once
    def backdrop_share(self) -> float:
        return float(self.backdrop.mean())

    @_once
    def box(self) -> tuple[int, int, int, int] | None:
        """(left, top, right, bottom) of the subject, or None when it is too small to lay over (`framed_map`)."""
        x, y, w, h = cv2.boundingRect(self.subject.view(np.uint8))
        return None if min(w, h) < max(FRAMED_MIN_PX, 3 * FRAMED_RIM_PX) else (x, y, x + w, y + h)

    @_once
    def framed_grey(self) -> np.ndarray:
        """In grey with its backdrop white (`dedup.framing.whiten_backdrop`), blurred by `FRAMED_SIGMA`."""
        colour = border_colour(self.rgb)
        rgb = self.rgb if colour is None else whiten_backdrop(self.rgb, colour)
        return cv2.GaussianBlur(_grey(rgb), (0, 0), FRAMED_SIGMA)

    @_once
    def framed_edges(self) -> np.ndarray:
        """`framed_grey`'s gradient magnitude, blurred by `FRAMED_SIGMA`."""
        grey = self.framed_grey
        return cv2.GaussianBlur(cv2.magnitude(cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1)), (0, 0),
                                FRAMED_SIGMA)

    @_once
    def flat_drawing(self) -> bool:
        """Whether at least `FRAMED_FLAT` of its box is flat: `framed_grey`'s `FLAT_WINDOW`-pixel
        neighbourhood deviates less than `FLAT_LEVEL` grey levels there."""
        if self.box is None:
            return False
        x0, y0, x1, y1 = self.box
        grey = self.framed_grey
        mean = cv2.blur(grey, (FLAT_WINDOW, FLAT_WINDOW))
        spread = cv2.blur(grey * grey, (FLAT_WINDOW, FLAT_WINDOW)) - mean * mean
        return float((spread[y0:y1, x0:x1] < FLAT_LEVEL * FLAT_LEVEL).mean()) >= FRAMED_FLAT


def prepared_rows(pictures: Pictures) -> Callable[[int], Picture]:
    """Row → its check picture `prepared`, the most recent `CACHE_PICTURES` kept (a set's members
    are in several pairs)."""
    return lru_cache(maxsize=CACHE_PICTURES)(lambda row: prepared(pictures(row)))


def prepared(picture: bytes, side: int = SIDE) -> Picture:
    """A check picture (`dedup.pictures`) at its `fitted` size, as the keypoints see it."""
    rgb = rgb_of(picture)
    h, w = rgb.shape[:2]
    size = fitted(w, h, side)
    if size is not None:
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_LINEAR if max(size) < max(w, h) else cv2.INTER_CUBIC)
    subject = _subject(rgb)
    return Picture(rgb, max(w, h), subject, _backdrop(~subject))


def _grey(rgb: np.ndarray) -> np.ndarray:
    """The mean of the three channels, float32."""
    return cv2.transform(rgb, np.full((1, 3), 1.0 / 3.0)).astype(np.float32)


def _subject(rgb: np.ndarray) -> np.ndarray:
    """Pixels away from the picture's border colour (a backdrop or padding is not the subject)."""
    border = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]])
    colour = tuple(float(c) for c in np.median(border, axis=0)) + (0.0,)
    return cv2.transform(cv2.absdiff(rgb, colour), np.ones((1, 3))) > SUBJECT


def _backdrop(plain: np.ndarray) -> np.ndarray:
    """The parts of `plain` (pixels of the border colour) that touch the picture's border."""
    count, labels = cv2.connectedComponents(plain.astype(np.uint8), connectivity=4)
    touching = np.zeros(count, bool)
    touching[np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])] = True
    touching[0] = False  # not of the border colour
    return touching[labels]


def _laid_over(a: Picture, b: Picture, to_b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where `b` laid over `a` by `to_b` covers it (eroded off its edge), and `b`'s subject and
    backdrop there."""
    h, w = a.rgb.shape[:2]
    masks = np.dstack([np.ones(b.subject.shape, np.uint8), b.subject, b.backdrop]).astype(np.uint8)
    inside, subject_b, backdrop_b = cv2.split(cv2.warpAffine(masks, to_b, (w, h), flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP))
    return cv2.erode(inside, np.ones((5, 5), np.uint8)) > 0, subject_b > 0, backdrop_b > 0


def align(a: Picture, b: Picture, to_b: np.ndarray) -> Aligned | None:
    """`b` laid over `a` by `to_b` (2×3, `a`'s pixels to `b`'s); None when they share too little."""
    overlap, subject_b, backdrop_b = _laid_over(a, b, to_b)
    if np.count_nonzero(overlap) < MIN_OVERLAP_PX:
        return None
    h, w = a.rgb.shape[:2]
    warped = cv2.warpAffine(b.rgb, to_b, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
    return Aligned(a.rgb, warped, overlap, a.subject & subject_b, a.backdrop | backdrop_b, backdrop_b, subject_b)


def _matched_grey(gi: np.ndarray, gj: np.ndarray, overlap: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Both grey pictures blurred by `sigma`, j's brought to i's brightness and contrast (least
    squares over the overlap)."""
    gi, gj = cv2.GaussianBlur(gi, (0, 0), sigma), cv2.GaussianBlur(gj, (0, 0), sigma)
    mask = overlap.view(np.uint8)  # OpenCV's masked sums (in float64) leave the GIL to the other threads
    mean, std = cv2.meanStdDev(gj, mask=mask)
    mx, var, my = float(mean[0, 0]), float(std[0, 0]) ** 2, cv2.mean(gi, mask=mask)[0]
    cov = cv2.mean(cv2.multiply(gi, gj, dtype=cv2.CV_64F), mask=mask)[0] - mx * my
    gain = cov / var if var > 1e-9 else 0.0
    return gi, np.float32(gain) * gj + np.float32(my - gain * mx)


def _edges(grey: np.ndarray) -> np.ndarray:
    return cv2.Canny(np.clip(grey, 0, 255).astype(np.uint8), 50, 150) > 0


def _least_correlation(gi: np.ndarray, gj: np.ndarray, overlap: np.ndarray, region: np.ndarray) -> float:
    """The lowest correlation of two grey pictures over windows inside the overlap that meet
    `region` and where both have some contrast (1.0 when there is none)."""
    gi = cv2.GaussianBlur(gi, (0, 0), 2.0).astype(np.float64)
    gj = cv2.GaussianBlur(gj, (0, 0), 2.0).astype(np.float64)
    h, w = gi.shape
    if h < WINDOW or w < WINDOW:
        return 1.0
    area = float(WINDOW * WINDOW)

    def sums(x: np.ndarray) -> np.ndarray:  # per window at every STRIDE
        s = cv2.integral(x)
        return (s[WINDOW::STRIDE, WINDOW::STRIDE] - s[:-WINDOW:STRIDE, WINDOW::STRIDE]
                - s[WINDOW::STRIDE, :-WINDOW:STRIDE] + s[:-WINDOW:STRIDE, :-WINDOW:STRIDE])

    inside = (sums(overlap.astype(np.float64)) >= 0.9 * area) & (sums(region.astype(np.float64)) > 0)
    mi, mj = sums(gi) / area, sums(gj) / area
    vi = np.maximum(sums(gi * gi) / area - mi * mi, 0)
    vj = np.maximum(sums(gj * gj) / area - mj * mj, 0)
    cov = sums(gi * gj) / area - mi * mj
    both = inside & (np.sqrt(np.minimum(vi, vj)) >= WINDOW_CONTRAST)
    if not both.any():
        return 1.0
    return float((cov[both] / np.sqrt(vi[both] * vj[both])).min())


class Differences:
    """Where two aligned pictures differ: pixels more than `DIFFERENT` apart once brightness and
    contrast are matched (over `fitted`, default their overlap), grown by `SPREAD_PX` into regions."""

    def __init__(self, al: Aligned, fitted: np.ndarray | None = None):
        self.al, self.grey_i, self.grey_j = al, al.grey_i, al.grey_j
        gi, gj = _matched_grey(self.grey_i, self.grey_j, al.overlap if fitted is None else fitted, 1.8)
        differs = (cv2.absdiff(gi, gj) > DIFFERENT) & al.overlap
        self.grown = cv2.dilate(differs.astype(np.uint8), np.ones((SPREAD_PX, SPREAD_PX), np.uint8))
        self.overlap_px = np.count_nonzero(al.overlap)
        self.share = float(np.count_nonzero(self.grown[al.overlap])) / self.overlap_px

    @_once
    def regions(self) -> tuple[np.ndarray, np.ndarray]:
        """Each pixel's region label (0: none) and each label's area in pixels."""
        _, labels, stats, _ = cv2.connectedComponentsWithStats(self.grown)
        return labels, stats[:, cv2.CC_STAT_AREA]

    @_once
    def edges(self) -> tuple[np.ndarray, np.ndarray]:
        """Each side's edges (Canny), brightness and contrast matched."""
        si, sj = _matched_grey(self.grey_i, self.grey_j, self.al.overlap, 1.5)
        return _edges(si), _edges(sj)

    @_once
    def colours(self) -> tuple[np.ndarray, np.ndarray]:
        """Each side's pixels as one of `PALETTE`³ colours."""
        def coded(rgb: np.ndarray) -> np.ndarray:
            q = rgb.astype(np.int32) * PALETTE // 256
            return (q[..., 0] * PALETTE + q[..., 1]) * PALETTE + q[..., 2]
        return coded(self.al.i), coded(self.al.j)

    def balanced(self, region: np.ndarray, least: float) -> bool:
        """Both sides have drawn detail (edges) in `region`, the sparser at least `least` of the other's."""
        ei, ej = (e[region].mean() for e in self.edges)
        return max(ei, ej) > 0 and min(ei, ej) >= least * max(ei, ej)

    def least_correlation(self, region: np.ndarray) -> float:
        return _least_correlation(self.grey_i, self.grey_j, self.al.overlap, region)


def differing_detail(diff: Differences) -> bool:
    """One or two small regions differ, with comparable drawn detail on both sides that does not
    correlate, while the rest agrees. A region that is mostly either picture's backdrop is no
    detail: a copy's new padding, a rotation's fill, a caption beside the subject."""
    if not DETAIL_AREA[0] <= diff.share < DETAIL_AREA[1]:
        return False
    labels, area = diff.regions
    if len(area) - 1 > DETAIL_REGIONS:
        return False
    region = labels == 1 + int(np.argmax(area[1:]))
    if diff.al.backdrop[region].mean() > ONE_SIDED or near_edge(region):
        return False
    return diff.balanced(region, EDGE_BALANCE) and diff.least_correlation(region) < DISAGREE


def near_edge(region: np.ndarray) -> bool:
    """Does a region come within `DETAIL_EDGE` of a side of the picture? A mark put on a copy (a
    watermark, a logo, a price tag) sits near an edge or corner; a design's detail within it."""
    ys, xs = np.nonzero(region)
    h, w = region.shape
    return bool(min(xs.min() / w, ys.min() / h, 1 - (xs.max() + 1) / w, 1 - (ys.max() + 1) / h) < DETAIL_EDGE)


def exact_detail(a: Picture, b: Picture, to_b_px: np.ndarray, al: Aligned | None = None) -> bool:
    """Two renders of one design that differ in one small spot and nowhere else, pixel for pixel
    (another letter or figure where everything around it is the same): laid over each other,
    barely blurred, no pixel differs outside one region of `EXACT_AREA`, which lies inside both
    subjects (no backdrop), away from the edge of their overlap (`EXACT_RIM_PX`), and has
    comparable edges on both sides. A copy is re-encoded, resized or edited, and differs somewhere
    else too (a smooth picture resized, only along that edge); a caption or sticker put beside or onto a drawing
    touches its backdrop or lies on one side's flat colour. `al`: `b` laid over `a` by `to_b_px`,
    when already at hand."""
    if (a.rgb.shape == b.rgb.shape and np.abs(to_b_px[:, 2]).max() < EXACT_SHIFT_PX
            and np.abs(to_b_px[:, :2] - np.eye(2)).max() < EXACT_TURN):
        to_b_px, al = IDENTITY, None  # a subpixel shift of the map would make every edge differ
    al = align(a, b, to_b_px) if al is None else al
    if al is None:
        return False
    gi, gj = _matched_grey(al.grey_i, al.grey_j, al.overlap, EXACT_SIGMA)
    differs = (cv2.absdiff(gi, gj) > EXACT_DIFFERENT) & al.overlap
    count = np.count_nonzero(differs)
    if not count:
        return False
    _, labels, stats, _ = cv2.connectedComponentsWithStats(cv2.dilate(differs.view(np.uint8), np.ones((5, 5), np.uint8)))
    region = labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    inside = np.count_nonzero(differs & region)
    if inside < count or not EXACT_AREA[0] <= inside / np.count_nonzero(al.overlap) <= EXACT_AREA[1]:
        return False
    if al.backdrop[region].any() or _on_rim(differs & region, al.overlap):
        return False
    ei, ej = (_edges(g)[region].mean() for g in (gi, gj))
    return max(ei, ej) > 0 and min(ei, ej) >= DRAWING_EDGE_BALANCE * max(ei, ej)


def _on_rim(spot: np.ndarray, overlap: np.ndarray) -> bool:
    """Does `spot` reach within `EXACT_RIM_PX` of the edge of `overlap`, where the map's
    resampling meets the picture's border (a thumbnail laid over its picture differs there)?"""
    inner = cv2.erode(overlap.view(np.uint8), np.ones((2 * EXACT_RIM_PX + 1,) * 2, np.uint8), borderValue=0)
    return bool((spot & (inner == 0)).any())


def copy_of_first(a: Picture, b: Picture, c: Picture, b_to_a: np.ndarray, b_to_c: np.ndarray) -> bool | None:
    """Of two pictures told apart, `b` and `c`, is `a` (confirmed with both) a copy of `b`? Laid
    over `b` (maps in units of the longer side), where `b` and `c` differ (`EXACT_DIFFERENT`
    grey levels, lightly blurred), `a`'s grey levels are nearer `b`'s than `c`'s. None when the
    three share no such spot."""
    with_c, with_a = align(b, c, rescaled(b_to_c, SIDE)), align(b, a, rescaled(b_to_a, SIDE))
    if with_c is None or with_a is None:
        return None
    gb, gc = _matched_grey(with_c.grey_i, with_c.grey_j, with_c.overlap, SPOT_SIGMA)
    spot = (cv2.absdiff(gb, gc) > EXACT_DIFFERENT) & with_c.overlap & with_a.overlap
    if np.count_nonzero(spot) < SPOT_PX:
        return None
    ga = _matched_grey(with_a.grey_i, with_a.grey_j, with_a.overlap, SPOT_SIGMA)[1]
    return float(np.abs(ga - gb)[spot].mean()) < float(np.abs(ga - gc)[spot].mean())


def other_drawing(diff: Differences) -> bool:
    """Another drawing in one frame (another sign on a warning triangle, other pips on a card):
    a large region inside both subjects where both pictures have comparable drawn detail that is
    anticorrelated, each drawn in colours its picture uses elsewhere. An overlay a copy gains (a
    sticker, a caption) brings colours of its own, or sits on the backdrop. `pair_told_apart`
    asks only of pictures stored at about one size (`DRAWING_SIZES`): an icon theme redraws each
    of an icon's sizes, simpler at the small ones, while one design's variants are made alike."""
    if diff.share < DRAWING_AREA:
        return False
    labels, area = diff.regions
    backdrop = diff.al.backdrop
    subject = ~backdrop
    for label in 1 + np.flatnonzero(area[1:] >= DRAWING_AREA * diff.overlap_px):
        region = labels == label
        if (backdrop[region].mean() <= DRAWING_BACKDROP and diff.balanced(region, DRAWING_EDGE_BALANCE)
                and diff.least_correlation(region) < DRAWING_CORRELATION
                and all(_novel(colour, region, subject) < NOVEL for colour in diff.colours)):
            return True
    return False


def _novel(colour: np.ndarray, region: np.ndarray, subject: np.ndarray) -> float:
    """The share of `region`'s pixels in colours (`Differences.colours`) that cover less than
    `RARE` of the rest of `subject`."""
    rest = subject & ~region
    if not rest.any():
        return 1.0
    palette = np.bincount(colour[rest], minlength=PALETTE ** 3) / np.count_nonzero(rest)
    return float((palette[colour[region]] < RARE).mean())


_CORE = np.ones((2 * MOVED_CORE_PX + 1, 2 * MOVED_CORE_PX + 1), np.uint8)


def _drawn_only(a: Picture, overlap: np.ndarray, subject_b: np.ndarray, backdrop_b: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    """Where only `a` is drawn (on `b`'s backdrop) and where only `b` is (on `a`'s), within `overlap`."""
    return a.subject & backdrop_b & overlap, a.backdrop & subject_b & overlap


def _largest(drawn: np.ndarray, least: float = 0.0) -> tuple[np.ndarray | None, int]:
    """The largest region of `drawn` once `MOVED_CORE_PX` is taken off all round (grown back
    within `drawn`), and the area of its core; None, and the area of all cores, when that is
    under `least`."""
    core = cv2.erode(drawn.view(np.uint8), _CORE)
    total = cv2.countNonZero(core)
    if total == 0 or total < least:
        return None, total
    count, labels, stats, _ = cv2.connectedComponentsWithStats(core)
    label = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return (cv2.dilate((labels == label).view(np.uint8), _CORE) > 0) & drawn, int(stats[label, cv2.CC_STAT_AREA])


def moved_part(a: Picture, b: Picture, diff: Differences, to_b: np.ndarray) -> bool:
    """A part drawn in one place on `a` and in another on `b` (`diff`: of `b` laid over `a` by
    `to_b`, in pixels): both pictures mostly backdrop, each with a region of at least
    `MOVED_AREA` of the overlap drawn only on it, in colours its picture uses elsewhere, and no
    nudge of the map (`NUDGE_PX`, `NUDGE_SCALES`) shrinks either region below that: a map a few
    pixels off leaves thin drawn-only slivers along an outline that a nudge removes."""
    if a.backdrop_share < MOVED_BACKDROP or b.backdrop_share < MOVED_BACKDROP:
        return False
    al, least = diff.al, MOVED_AREA * diff.overlap_px
    regions = []
    for drawn in _drawn_only(a, al.overlap, al.subject_j, al.backdrop_j):
        region, area = _largest(drawn, least)
        if region is None or area < least:
            return False
        regions.append((region, area))
    for (region, _), colours, subject in zip(regions, diff.colours, (a.subject, al.subject_j)):
        if _novel(colours, region, subject & al.overlap) >= MOVED_NOVEL:
            return False
    return not _nudged_away(a, b, to_b)


def _nudged_away(a: Picture, b: Picture, to_b: np.ndarray) -> bool:
    """Does some nudge of the map (`b` scaled about `a`'s centre by one of `NUDGE_SCALES`, then
    shifted by whole pixels of `NUDGE_PX`, the smallest first) leave either side's largest
    drawn-only region under `MOVED_AREA` of the overlap?"""
    h, w = a.rgb.shape[:2]
    full = np.vstack([to_b, (0.0, 0.0, 1.0)])
    shifts = sorted(((dx, dy) for dx in NUDGE_PX for dy in NUDGE_PX), key=lambda d: d[0] ** 2 + d[1] ** 2)
    pad = max(abs(p) for p in NUDGE_PX)
    # a region's core is the intersection of the masks' cores (erosion distributes over it, and a shift commutes with it)
    subject_a, backdrop_a = (cv2.erode(m.view(np.uint8), _CORE) for m in (a.subject, a.backdrop))
    for scale in NUDGE_SCALES:
        about = np.array([[scale, 0.0, (1 - scale) * w / 2], [0.0, scale, (1 - scale) * h / 2], [0.0, 0.0, 1.0]])
        overlap, subject_b, backdrop_b = _laid_over(a, b, (full @ about)[:2])  # laid over once a scale, then shifted
        masks = [np.pad(m, pad) for m in (overlap.view(np.uint8), *(cv2.erode(m.view(np.uint8), _CORE) for m in (overlap, subject_b, backdrop_b)))]
        for dx, dy in shifts:
            covered, core, drawn_b, backdrop = (m[pad + dy : pad + dy + h, pad + dx : pad + dx + w] for m in masks)
            least = MOVED_AREA * max(1, cv2.countNonZero(covered))
            if any(_core_area(cv2.bitwise_and(cv2.bitwise_and(mine, theirs), core)) < least
                   for mine, theirs in ((subject_a, backdrop), (backdrop_a, drawn_b))):
                return True
    return False


def _core_area(core: np.ndarray) -> int:
    """The area of the largest region of a core mask (uint8)."""
    if cv2.countNonZero(core) == 0:
        return 0
    x, y, w, h = cv2.boundingRect(core)  # regions only where the mask is set
    count, _, stats, _ = cv2.connectedComponentsWithStats(np.ascontiguousarray(core[y : y + h, x : x + w]))
    return int(stats[1:, cv2.CC_STAT_AREA].max()) if count > 1 else 0


def other_colourway(al: Aligned) -> bool:
    """Most of the subject coloured on both sides has its hue turned, or one part of it has
    (`_part_turned`: a folder, a screen, a strap in another colour)."""
    hi = cv2.cvtColor(al.i, cv2.COLOR_RGB2HSV_FULL)
    hj = cv2.cvtColor(al.j, cv2.COLOR_RGB2HSV_FULL)
    coloured = (al.overlap & al.subject & (hi[..., 1] > SATURATED) & (hj[..., 1] > SATURATED)
                & (hi[..., 2] > BRIGHT) & (hj[..., 2] > BRIGHT))
    count = np.count_nonzero(coloured)
    if count < MIN_SUBJECT * np.count_nonzero(al.overlap):
        return False
    turn = np.abs(hi[..., 0].astype(np.int16) - hj[..., 0].astype(np.int16))
    turned = coloured & (np.minimum(turn, 256 - turn) > HUE_TURN)
    if np.count_nonzero(turned) > TURNED * count:
        return True
    return _part_turned(turned, hi, hj, count, np.count_nonzero(al.overlap & al.subject))


def _part_turned(turned: np.ndarray, hi: np.ndarray, hj: np.ndarray, coloured: int, subject: int) -> bool:
    """The largest connected part of the `turned` pixels (opened by 3×3: not a JPEG's fringe) holds
    at least `PART_TURNED` of the `coloured` pixels and of the `subject`'s, and is shaded alike on
    both sides (HSV `hi`, `hj`: saturation and value correlating at least `PART_SHADED` there).
    A sticker or caption in new colours brings its own shading; a colour edit turns no hue."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(
        cv2.morphologyEx(turned.view(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)), connectivity=8)
    if count <= 1:
        return False
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    area = int(stats[largest, cv2.CC_STAT_AREA])
    if area < PART_TURNED[0] * coloured or area < PART_TURNED[1] * subject:
        return False
    part = (labels == largest).view(np.uint8)
    return all(_correlation(hi[..., c].astype(np.float32), hj[..., c].astype(np.float32), part) >= PART_SHADED for c in (1, 2))


def pair_told_apart(a: Picture, b: Picture, to_b: np.ndarray) -> bool:
    """Do the pictures differ in a detail, a colourway, another drawing in one frame or a moved
    part? `to_b`: the map from `a` to `b` in units
    of the longer side (`dedup.keypoints.Matches.maps`)."""
    to_b_px = rescaled(to_b, SIDE)
    al = align(a, b, to_b_px)
    if al is None:
        return False
    if other_colourway(al) or exact_detail(a, b, to_b_px, al):
        return True
    diff = Differences(al)
    return (differing_detail(diff) or (max(a.stored, b.stored) <= DRAWING_SIZES * min(a.stored, b.stored) and other_drawing(diff))
            or moved_part(a, b, diff, to_b_px))


def tiny_told_apart(i: Sequence[int], j: Sequence[int], maps: np.ndarray, pictures: Pictures, workers: int = 2) -> np.ndarray:
    """Per pair (rows `i[k]`, `j[k]` with map `maps[k]`): two check pictures stored at one size of
    `TINY_PX` or less that `tiny_pixels_differ`. Only tiny pictures are decoded (a picture's size is
    read from its header); a picture that cannot be had tells nothing apart."""
    out = np.zeros(len(maps), bool)
    seen: dict[int, np.ndarray | None] = {}

    def tiny(row: int) -> np.ndarray | None:
        if row not in seen:
            try:
                data = pictures(row)
                seen[row] = rgb_of(data) if max(picture_size(data)) <= TINY_PX else None
            except (ImageSkip, OSError, *DECODE_ERRORS):
                seen[row] = None
        return seen[row]

    for k, (a, b) in enumerate(zip(np.asarray(i).tolist(), np.asarray(j).tolist())):
        rgb_a = tiny(a)
        rgb_b = None if rgb_a is None else tiny(b)
        out[k] = rgb_b is not None and tiny_pixels_differ(rgb_a, rgb_b, maps[k])
    return out


def tiny_pixels_differ(a: np.ndarray, b: np.ndarray, to_b: np.ndarray) -> bool:
    """Two tiny pictures of one size (RGB check pictures stored at `TINY_PX` or smaller: icons) on
    one backdrop that differ, pixel for pixel, by more than an edit of the whole picture explains.
    However they are laid over (as they are or one mirrored, shifted by up to a pixel each way,
    luminance matched in gain and offset), seen from each side at least `TINY_DIFFERS` of their
    subject has a grey level `TINY_LEVEL` beyond every level the other shows at that pixel and its
    four neighbours: a blurred, sharpened, recoloured or re-encoded copy stays within that range on
    one side at least; an emblem, a face's mouth or another logo on one template does not.
    Keypoints are few and unsure at this size, so their map (`to_b`, in units of the longer side)
    only rules the test out when it is sure of another fit: a similarity that scales, turns or
    shifts by more than `TINY_MAP` (a resized, turned or cropped copy). Pictures on backdrops of
    two colours are left alone: a transparent icon's soft edges and shadows take each one's colour."""
    if a.shape != b.shape or max(a.shape[:2]) > TINY_PX or _fits_otherwise(to_b, *a.shape[:2]):
        return False
    grey_a, back_a, colour_a = _tiny_grey(a)
    grey_b, back_b, colour_b = _tiny_grey(b)
    if (colour_a is None) != (colour_b is None) or (colour_a is not None and np.abs(colour_a - colour_b).max() > TRIM_TOLERANCE):
        return False
    h, w = grey_a.shape
    range_a = _levels_near(grey_a)
    least = None
    for grey, back in ((grey_b, back_b), (grey_b[:, ::-1], back_b[:, ::-1])):
        for dx, dy in TINY_PLACES:
            move = np.float32([[1, 0, dx], [0, 1, dy]])
            moved = cv2.warpAffine(np.ascontiguousarray(grey), move, (w, h), borderMode=cv2.BORDER_REPLICATE)
            moved_back = cv2.warpAffine(np.ascontiguousarray(back).view(np.uint8), move, (w, h), borderMode=cv2.BORDER_REPLICATE) > 0
            shown = ~(back_a & moved_back)
            if np.count_nonzero(shown) < 2 * TINY_DIFFERS[1]:
                continue
            moved = _matched(moved, grey_a, shown)
            seen = min(np.count_nonzero(_beyond(grey_a, _levels_near(moved)) & shown), np.count_nonzero(_beyond(moved, range_a) & shown))
            share = seen / np.count_nonzero(shown)
            if least is None or share < least[0]:
                least = (share, seen)
    return least is not None and least[0] >= TINY_DIFFERS[0] and least[1] >= TINY_DIFFERS[1]


def _fits_otherwise(to_b: np.ndarray, height: int, width: int) -> bool:
    """The map (units of the longer side of a `height` × `width` picture) is a similarity, as is or
    mirrored, that scales or turns by more than `TINY_MAP` or shifts by more than `TINY_SHIFT_PX`
    pixels beyond the identity or the mirror image; False for a map that is no similarity (chance
    agreements) or none."""
    m = np.asarray(to_b, np.float64)
    if not np.isfinite(m).all():
        return False
    (p, q), (r, s) = m[:, :2]
    as_is, mirrored = abs(p - s) + abs(q + r), abs(p + s) + abs(q - r)
    if min(as_is, mirrored) > 2 * TINY_MAP:
        return False  # no similarity: keypoints agreeing by chance
    longer = max(height, width)
    shift = np.array([m[0, 2] - ((width - 1) / longer if mirrored < as_is else 0.0), m[1, 2]]) * longer
    return (abs(np.sqrt(abs(p * s - q * r)) - 1) > TINY_MAP or abs(q) + abs(r) > TINY_MAP
            or np.abs(shift).max() > TINY_SHIFT_PX)


def _tiny_grey(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """A tiny picture's luminance (float32), its backdrop (the border colour, where the frame is
    mostly one) and that colour (None without one)."""
    rgb = np.ascontiguousarray(rgb)
    colour = border_colour(rgb)
    back = np.zeros(rgb.shape[:2], bool) if colour is None else border_coloured(rgb, colour)
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32), back, colour


def _matched(x: np.ndarray, to: np.ndarray, where: np.ndarray) -> np.ndarray:
    """`x`'s levels brought to `to`'s over `where`: the gain of their spreads (within
    `TINY_GAIN`) and the offset of their medians."""
    low, high = np.percentile(x[where], [10, 90])
    low_to, high_to = np.percentile(to[where], [10, 90])
    gain = float(np.clip((high_to - low_to) / (high - low), *TINY_GAIN)) if high - low > 4 else 1.0
    y = x * gain
    return y + float(np.median(to[where] - y[where]))


def _levels_near(grey: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel, the lowest and the highest level of `grey` at it and its four neighbours."""
    near = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
    return cv2.erode(grey, near), cv2.dilate(grey, near)


def _beyond(x: np.ndarray, levels: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Pixels of grey `x` more than `TINY_LEVEL` below the lowest of `levels` (`_levels_near` of
    the other picture) or above the highest."""
    low, high = levels
    return (x < low - TINY_LEVEL) | (x > high + TINY_LEVEL)


def differing_spots(a: Picture, b: Picture, to_b: np.ndarray) -> Spots | None:
    """Where `a` differs from `b` laid over it by `to_b` (as `pair_told_apart` sees them), leaving
    out where both show their backdrop and next to it (a backdrop of another colour is no spot),
    brightness and contrast matched on the rest: the `SPOTS` largest differing regions of at
    least `SPOT_AREA` of their common area (in both pictures), none when they differ over
    `THROUGHOUT` of it; None when they share too little."""
    to_b_px = rescaled(to_b, SIDE)
    al = align(a, b, to_b_px)
    return None if al is None else _spots(a, b, al, to_b_px)


def _spots(a: Picture, b: Picture, al: Aligned, to_b_px: np.ndarray) -> Spots:
    """`differing_spots` of `b` laid over `a` (`al`, by `to_b_px` in pixels)."""
    backdrops = a.backdrop & al.backdrop_j
    fitted = al.overlap & ~backdrops
    diff = Differences(al, fitted if np.count_nonzero(fitted) >= MIN_OVERLAP_PX else None)
    edge = 2 * SPREAD_PX + 1  # a subject's outline against a backdrop of another colour differs all round
    shown = diff.grown * (cv2.dilate(backdrops.view(np.uint8), np.ones((edge, edge), np.uint8)) == 0)
    share = float(np.count_nonzero(shown[al.overlap]) / diff.overlap_px)
    if share > THROUGHOUT:
        return Spots(share, (), throughout=True)
    _, _, stats, _ = cv2.connectedComponentsWithStats(shown)
    stats = stats[1:]
    area = stats[:, cv2.CC_STAT_AREA]
    big = np.flatnonzero(area >= SPOT_AREA * diff.overlap_px)
    big = big[np.argsort(-area[big], kind="stable")][:SPOTS]
    px = stats[big][:, [cv2.CC_STAT_LEFT, cv2.CC_STAT_TOP, cv2.CC_STAT_WIDTH, cv2.CC_STAT_HEIGHT]].astype(np.float64)
    return Spots(share, _shares(px, a.rgb.shape), _shares(_mapped(px, to_b_px), b.rgb.shape))


def _mapped(boxes: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """The bounding boxes (x, y, width, height) of `boxes` after the 2×3 map `affine`."""
    x, y, w, h = boxes.T
    corners = np.stack([np.stack([x, y]), np.stack([x + w, y]), np.stack([x, y + h]), np.stack([x + w, y + h])])  # (4, 2, n)
    moved = np.einsum("ij,kjn->kin", affine[:, :2], corners) + affine[:, 2][None, :, None]
    low, high = moved.min(axis=0), moved.max(axis=0)
    return np.column_stack([low[0], low[1], high[0] - low[0], high[1] - low[1]])


def _shares(boxes: np.ndarray, shape: tuple[int, ...]) -> tuple[tuple[float, float, float, float], ...]:
    """Boxes in pixels as shares of a picture of `shape`, cut to the picture."""
    h, w = shape[:2]
    x0, y0 = np.clip(boxes[:, 0] / w, 0, 1), np.clip(boxes[:, 1] / h, 0, 1)
    x1, y1 = np.clip((boxes[:, 0] + boxes[:, 2]) / w, 0, 1), np.clip((boxes[:, 1] + boxes[:, 3]) / h, 0, 1)
    return tuple(zip(x0.tolist(), y0.tolist(), (x1 - x0).tolist(), (y1 - y0).tolist()))


Teller = Callable[..., np.ndarray]  # `told_apart`'s signature: (i, j, maps, pictures, workers)
Framer = Callable[..., np.ndarray]  # `framed_maps`' signature: (i, j, pictures, workers)


def differs_nowhere(spots: Spots | None) -> bool:
    """Laid over the other, the picture differs nowhere (not even in specks above `SPOT_AREA`);
    unknown (no map, no pair check) counts as differing."""
    return spots is not None and not spots.throughout and not spots.boxes


def told_apart(i: Sequence[int], j: Sequence[int], maps: np.ndarray, pictures: Pictures, workers: int = 2) -> np.ndarray:
    """Per pair (rows `i[k]`, `j[k]` with map `maps[k]`): told apart by `pair_told_apart`. A pair
    without a map, or with a picture that cannot be had, is not told apart."""
    return _per_pair(pair_told_apart, i, j, maps, pictures, workers)


def alike(i: Sequence[int], j: Sequence[int], maps: np.ndarray, pictures: Pictures, workers: int = 2) -> np.ndarray:
    """Per pair (rows `i[k]`, `j[k]` with map `maps[k]`): `pair_alike`. A pair without a map, or
    with a picture that cannot be had, is not alike."""
    return _per_pair(pair_alike, i, j, maps, pictures, workers)


def pair_alike(a: Picture, b: Picture, to_b: np.ndarray) -> bool:
    """Laid over each other by `to_b` (in units of the longer side), does each picture cover at
    least `COVERED` of what the other shows (its subject, edges eroded: not two overlapping crops
    of one photo, while a margin added or cut does not count) and do they differ nowhere
    (`differs_nowhere`)?"""
    to_b_px = rescaled(to_b, SIDE)
    al = align(a, b, to_b_px)
    if al is None:
        return False
    b_scale = abs(float(np.linalg.det(to_b_px[:, :2])))  # an area of a's pixels in b's
    if (np.count_nonzero(al.overlap & a.subject) < COVERED * np.count_nonzero(a.subject)
            or np.count_nonzero(al.overlap & al.subject_j) * b_scale < COVERED * np.count_nonzero(b.subject)):
        return False
    return differs_nowhere(_spots(a, b, al, to_b_px))


def framed_maps(i: Sequence[int], j: Sequence[int], pictures: Pictures, workers: int = 2) -> np.ndarray:
    """Per pair (rows `i[k]`, `j[k]`): `framed_map`, (m, 2, 3) in units of the longer side; NaN
    where there is none or a picture cannot be had."""
    out = np.full((len(i), 2, 3), np.nan, np.float32)

    def judge(a: Picture, b: Picture, k: int) -> None:
        found = framed_map(a, b)
        if found is not None:
            out[k] = found

    _each_pair(judge, i, j, pictures, workers)
    return out


def framed_map(a: Picture, b: Picture) -> np.ndarray | None:
    """The map (2×3, in units of the longer side) that lays `b`'s subject box onto `a`'s, or the
    mirror image's where that correlates better, when the two pictures laid over by it (backdrops
    white, blurred by `FRAMED_SIGMA`) correlate over `a`'s box, less a rim of `FRAMED_RIM_PX`, at
    least `FRAMED_CORRELATION` in grey and `FRAMED_EDGES` in their edges' strength; None otherwise.
    Only a copy that keeps the subject's outline (re-encoded, recoloured, padded or stretched; not
    cropped or turned) lines up so. Both must be flat drawings (at least `FRAMED_FLAT` of each box
    flat), whose keypoints are few or alike, so that none agreeing means little; two pages of text
    laid out alike agree on no keypoint because they differ."""
    if not (a.flat_drawing and b.flat_drawing):
        return None
    (box_a, grey_a), (box_b, grey_b) = (a.box, a.framed_grey), (b.box, b.framed_grey)
    edges_a, edges_b = a.framed_edges, b.framed_edges
    (ax0, ay0, ax1, ay1), (bx0, by0, bx1, by1) = box_a, box_b
    sx, sy = (bx1 - bx0) / (ax1 - ax0), (by1 - by0) / (ay1 - ay0)
    inside = np.zeros(grey_a.shape, np.uint8)
    inside[ay0 + FRAMED_RIM_PX : ay1 - FRAMED_RIM_PX, ax0 + FRAMED_RIM_PX : ax1 - FRAMED_RIM_PX] = 1
    best, best_map = FRAMED_CORRELATION, None
    width = grey_b.shape[1]
    for mirrored in (False, True):
        left = width - bx1 if mirrored else bx0  # the box's left edge in the picture as laid over
        to_b = np.array([[sx, 0.0, left - sx * ax0], [0.0, sy, by0 - sy * ay0]])

        def laid(picture: np.ndarray, outside: float) -> np.ndarray:
            seen = np.ascontiguousarray(picture[:, ::-1]) if mirrored else picture
            return cv2.warpAffine(seen, to_b, grey_a.shape[::-1], flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                  borderValue=outside)

        grey = _correlation(grey_a, laid(grey_b, 255.0), inside)
        if grey >= best and _correlation(edges_a, laid(edges_b, 0.0), inside) >= FRAMED_EDGES:
            flip = np.array([[-1.0, 0.0, width - 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]) if mirrored else np.eye(3)
            best, best_map = grey, (flip @ np.vstack([to_b, (0.0, 0.0, 1.0)]))[:2]
    return None if best_map is None else rescaled(best_map, 1.0 / SIDE)


def _correlation(x: np.ndarray, y: np.ndarray, mask: np.ndarray) -> float:
    """The correlation of two float32 pictures over `mask` (uint8); 0 where either is flat there."""
    mean_x, std_x = cv2.meanStdDev(x, mask=mask)
    mean_y, std_y = cv2.meanStdDev(y, mask=mask)
    spread = float(std_x[0, 0]) * float(std_y[0, 0])
    if spread < 1e-6:
        return 0.0
    return cv2.mean(cv2.multiply(x - np.float32(mean_x[0, 0]), y - np.float32(mean_y[0, 0])), mask=mask)[0] / spread


def _per_pair(judged: Callable[[Picture, Picture, np.ndarray], bool], i: Sequence[int], j: Sequence[int],
              maps: np.ndarray, pictures: Pictures, workers: int) -> np.ndarray:
    """`judged(picture i, picture j, map)` of each pair on `workers` threads; False without a map
    or with a picture that cannot be had."""
    out = np.zeros(len(maps), bool)
    mapped = np.flatnonzero(np.isfinite(maps).all(axis=(1, 2)))

    def judge(a: Picture, b: Picture, k: int) -> None:
        out[mapped[k]] = judged(a, b, maps[mapped[k]])

    _each_pair(judge, np.asarray(i)[mapped], np.asarray(j)[mapped], pictures, workers)
    return out


def _each_pair(judge: Callable[[Picture, Picture, int], None], i: Sequence[int], j: Sequence[int], pictures: Pictures,
               workers: int) -> None:
    """`judge(picture i, picture j, k)` of each pair k on `workers` threads, skipping a pair with a
    picture that cannot be had. Pictures are prepared once while they stay recent (`prepared_rows`)."""
    picture = prepared_rows(pictures)
    i, j = np.asarray(i), np.asarray(j)

    def run(ks: list[int]) -> None:
        for k in ks:
            try:
                judge(picture(int(i[k])), picture(int(j[k])), k)
            except (ImageSkip, cv2.error, *DECODE_ERRORS):
                pass

    order = np.lexsort((j, i))  # a row's pairs together, while its picture is cached
    with ThreadPoolExecutor(max(1, workers), thread_name_prefix="details") as pool:
        list(pool.map(run, [chunk.tolist() for chunk in np.array_split(order, max(1, len(order) // CHUNK))]))
