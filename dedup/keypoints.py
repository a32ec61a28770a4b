"""Keypoint matching between two pictures: ORB keypoints on a greyscale picture and on its mirror
image, ratio-test matches, and the matches that agree on one plausible affine map (RANSAC).

A mechanism with no verdict in it: it counts agreeing keypoints and finds the map they agree on
(`match_pairs`), and leaves the judgement to `dedup.policy`. Keypoints are found on each row's check picture (`dedup.pictures`:
stored in the index, or made from a file) once while they stay in a bounded store, which the
passes of one run may share (`KeypointStore`); in a large catalog pairs are matched region by
region of the embedding space (`locality_regions`) so that they mostly do.
"""
from __future__ import annotations

import hashlib
import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

import cv2
import faiss
import numpy as np

from dedup.images import DECODE_ERRORS, ImageSkip
from dedup.pairs import Pairs
from dedup.pictures import grey_at

RATIO = 0.8  # Lowe's ratio test: a match must be clearly better than the second best
REPROJECTION_PX = 4.0  # RANSAC inlier tolerance, in pixels of the `side`-pixel picture
MAX_SCALE = 8.0  # a copy at most this much larger or smaller (screenshots paste pictures small)
MAX_STRETCH = 2.5  # aspect-ratio changes and shears beyond this are not edits
CACHE_IMAGES = 4096  # keypoint sets kept between blocks of pairs (up to 40 kB each)
CORNER_THRESHOLD = 10  # FAST threshold: clip art has few, sharp corners
EDGE_PX = 15  # ORB's patch and the border it leaves: a picture must be wider than twice this to hold a keypoint
SURE, SURE_INLIERS = 0.25, 20  # agreeing on this share of the sparser picture's keypoints (and this many), a copy is not mirrored
REGION_IMAGES = CACHE_IMAGES // 2  # rows per region of `locality_regions`
MAX_REGIONS = 2048  # beyond ~4M rows regions grow instead (k-means cost stays under a minute)
UNREADABLE = -1  # `Matches.inliers` of a pair with a picture that cannot be had
DESCRIPTOR_BYTES = 32  # an ORB descriptor's length (256 bits)
RULED_OUT = -2  # `Matches.inliers` of a pair not matched: `Worth` found no count of agreeing keypoints that could matter


@dataclass(frozen=True)
class Keypoints:
    """ORB keypoints of a picture and of its mirror image."""

    points: np.ndarray  # (n, 2) float32, in pixels of the keypoint picture
    descriptors: np.ndarray  # (n, DESCRIPTOR_BYTES) uint8
    mirror_points: np.ndarray
    mirror_descriptors: np.ndarray
    width: int  # of the keypoint picture, in pixels (the mirror image's x is width - 1 - x)

    def __len__(self) -> int:
        return len(self.points)


def _orb(count: int, corner: int) -> cv2.ORB:
    # Small patches and a low corner threshold: clip art has few, sharp corners.
    return cv2.ORB_create(nfeatures=count, fastThreshold=corner, edgeThreshold=EDGE_PX, patchSize=EDGE_PX)


def keypoints(grey: np.ndarray, count: int = 500, corner: int = CORNER_THRESHOLD) -> Keypoints:
    """ORB keypoints (FAST threshold `corner`) of a greyscale uint8 picture and of its mirror image;
    none on a picture too thin to hold one (a strip a pixel or two wide, which ORB refuses)."""
    orb = _orb(count, corner)

    def detect(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        kps, desc = orb.detectAndCompute(np.ascontiguousarray(a), None) if min(a.shape) > 2 * EDGE_PX else ((), None)
        if desc is None:
            return np.zeros((0, 2), np.float32), np.zeros((0, DESCRIPTOR_BYTES), np.uint8)
        return np.asarray(cv2.KeyPoint_convert(kps), np.float32).reshape(-1, 2), desc

    pts, desc = detect(grey)
    mpts, mdesc = detect(grey[:, ::-1])
    return Keypoints(pts, desc, mpts, mdesc, grey.shape[1])


NO_MAP = np.full((3, 3), np.nan)  # no plausible map: too few agreeing keypoints


def ratio_matches(d1: np.ndarray, d2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lowe's ratio-test matches of binary descriptors `d1` in `d2` (Hamming distance): the
    indices into `d1` and into `d2` of each descriptor whose nearest is closer than `RATIO` times
    its second nearest. Exact search, as a brute-force matcher's; a tie for the nearest fails the
    test, so which of the tied is nearest does not matter."""
    if len(d1) < 1 or len(d2) < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    search = faiss.IndexBinaryFlat(8 * d2.shape[1])
    search.add(np.ascontiguousarray(d2))
    dist, nearest = search.search(np.ascontiguousarray(d1), 2)
    query = np.flatnonzero(dist[:, 0] < RATIO * dist[:, 1])
    return query, nearest[query, 0]


def _agreeing(p1: np.ndarray, d1: np.ndarray, p2: np.ndarray, d2: np.ndarray) -> tuple[int, np.ndarray]:
    """Ratio-test matches from picture 1 to picture 2 that fit one plausible affine map, and
    that map (3×3, picture 1's pixels to picture 2's; `NO_MAP` with none)."""
    if len(d1) < 2 or len(d2) < 2:
        return 0, NO_MAP
    query, train = ratio_matches(d1, d2)
    if len(query) < 4:
        return 0, NO_MAP
    affine, inlier = cv2.estimateAffine2D(p1[query], p2[train], method=cv2.RANSAC, ransacReprojThreshold=REPROJECTION_PX)
    if affine is None or inlier is None or not plausible(affine):
        return 0, NO_MAP
    return int(inlier.sum()), np.vstack([affine, (0.0, 0.0, 1.0)])


def plausible(affine: np.ndarray) -> bool:
    """Could an edit have made this map? No mirroring (the mirror image is matched separately),
    scaling within `MAX_SCALE`× either way, stretching one axis at most `MAX_STRETCH`× the other.
    Chance agreements among a few similar corners (the four corners of two rectangles) often need
    a map no edit makes."""
    (p, q), (r, s) = affine[0, :2].tolist(), affine[1, :2].tolist()
    det = p * s - q * r
    if det <= 0:
        return False
    # singular values of a 2×2 matrix in closed form (numpy's svd costs more than the match)
    half = (p * p + q * q + r * r + s * s) / 2
    root = math.sqrt(max(half * half - det * det, 0.0))
    big, small = math.sqrt(half + root), math.sqrt(max(half - root, 0.0))
    return bool(small > 1 / MAX_SCALE and big < MAX_SCALE and big <= MAX_STRETCH * small)


def matched(a: Keypoints, b: Keypoints) -> tuple[int, np.ndarray]:
    """Keypoints of `a` matched in `b` or in `b`'s mirror image under one affine map (the larger;
    the mirror image is not looked at when `b` itself agrees on `SURE` of them: a copy that is
    not mirrored, or a symmetric picture), and the map from `a`'s pixels to `b`'s (3×3, mirroring
    included; `NO_MAP` with none); 0 if OpenCV cannot match them (degenerate keypoints)."""
    try:
        direct, to_b = _agreeing(a.points, a.descriptors, b.points, b.descriptors)
        if direct >= max(SURE_INLIERS, SURE * min(len(a), len(b))):
            return direct, to_b
        mirrored, to_mirror = _agreeing(a.points, a.descriptors, b.mirror_points, b.mirror_descriptors)
        if mirrored <= direct:
            return direct, to_b
        flip = np.array([[-1.0, 0.0, b.width - 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
        return mirrored, flip @ to_mirror
    except cv2.error:
        return 0, NO_MAP


@dataclass(frozen=True)
class Matches:
    """Per pair: keypoints agreeing on one affine map (`UNREADABLE` where a file cannot be read,
    `RULED_OUT` where `Worth` ruled the pair out before matching), keypoints of the sparser
    picture, and the map they agree on from picture i to picture j.

    A map is in units of the check picture's longer side (so that matches at two sizes compare):
    a point (x, y) of picture i, divided by its longer side, goes to `maps[k] @ (x, y, 1)` of
    picture j, likewise divided; NaN where none was found."""

    inliers: np.ndarray  # (m,) int32
    sparser: np.ndarray  # (m,) int32
    maps: np.ndarray | None = None  # (m, 2, 3) float32; None: not kept

    @classmethod
    def empty(cls, m: int) -> Matches:
        """`m` pairs, none read yet."""
        return cls(np.full(m, UNREADABLE, np.int32), np.zeros(m, np.int32), np.full((m, 2, 3), np.nan, np.float32))

    def __len__(self) -> int:
        return len(self.inliers)

    def __getitem__(self, sel) -> Matches:
        return Matches(self.inliers[sel], self.sparser[sel], None if self.maps is None else self.maps[sel])

    def put(self, sel, other: Matches) -> None:
        """Set pairs `sel` to `other`'s."""
        self.inliers[sel], self.sparser[sel] = other.inliers, other.sparser
        if self.maps is not None:
            self.maps[sel] = np.nan if other.maps is None else other.maps

    def copy(self) -> Matches:
        return Matches(self.inliers.copy(), self.sparser.copy(), None if self.maps is None else self.maps.copy())

    @classmethod
    def concatenate(cls, parts: Sequence[Matches]) -> Matches:
        """The pairs of `parts`, one after another (maps kept only when every part has them)."""
        maps = None if any(p.maps is None for p in parts) else np.concatenate([p.maps for p in parts])
        return cls(np.concatenate([p.inliers for p in parts]), np.concatenate([p.sparser for p in parts]), maps)

    @property
    def readable(self) -> np.ndarray:
        """Both pictures could be had (matched or ruled out)."""
        return self.inliers != UNREADABLE

    @property
    def matched(self) -> np.ndarray:
        """The agreeing keypoints were counted."""
        return self.inliers >= 0


def rescaled(affine: np.ndarray, factor: float) -> np.ndarray:
    """A map between two pictures (2×3 or 3×3) for both pictures scaled by `factor`: 2×3, the
    same linear part, the shift scaled (`Matches.maps` are at 1/side; `factor=side` gives pixels)."""
    out = np.array(affine[:2], np.float64)
    out[:, 2] *= factor
    return out


def pair_map(a: Keypoints, b: Keypoints, side: int) -> tuple[int, np.ndarray]:
    """`matched` between the keypoints of a pair's pictures i (`a`) and j (`b`), found at `side`
    pixels: agreeing keypoints, and the map from i to j in units of the longer side (2×3)."""
    if len(a) <= len(b):
        count, to_j = matched(a, b)
    else:
        count, to_i = matched(b, a)
        to_j = np.linalg.inv(to_i) if np.isfinite(to_i).all() else NO_MAP
    return count, rescaled(to_j, 1.0 / side)


Pictures = Callable[[int], bytes]  # row → its check picture (`dedup.pictures`); raises `ImageSkip`


class Worth(Protocol):
    """Which pairs are worth matching, asked once both pictures' keypoints are found: a pair no
    count of agreeing keypoints could make a duplicate is not matched (`dedup.policy.Hopeful`)."""

    def __call__(self, ks: np.ndarray, sparser: np.ndarray) -> np.ndarray:
        """Per pair `ks[k]` (positions in the matched pairs) whose sparser picture has `sparser[k]`
        keypoints: True when it is worth matching."""

    def subset(self, ks: np.ndarray) -> Worth:
        """The same test for the pairs at positions `ks`, numbered from 0 (a chunk of the pairs)."""


StoreKey = tuple[bytes, int, int, int]  # a check picture's digest, and the side, count and corner its keypoints were found at


class KeypointStore:
    """Keypoints by check picture and the settings they were found at, the most recent `size`
    kept (thread-safe). Keyed by the picture's content, not by row, so the passes of one run share
    it whatever they number their rows: the pictures pasted into pages are checked against
    neighbours the first pass has already looked at, and a query's pasted picture against many of
    the query's own neighbours."""

    def __init__(self, size: int = CACHE_IMAGES):
        self.size = size
        self._kept: OrderedDict[StoreKey, Keypoints] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(picture: bytes, side: int, count: int, corner: int) -> StoreKey:
        return hashlib.blake2b(picture, digest_size=16).digest(), side, count, corner

    def get(self, key: StoreKey) -> Keypoints | None:
        with self._lock:
            kp = self._kept.get(key)
            if kp is not None:
                self._kept.move_to_end(key)
            return kp

    def put(self, key: StoreKey, kp: Keypoints) -> None:
        with self._lock:
            self._kept[key] = kp
            self._kept.move_to_end(key)
            while len(self._kept) > self.size:
                self._kept.popitem(last=False)

    def __len__(self) -> int:
        return len(self._kept)


ROW_KEYS = 8  # `KeypointCache` remembers which picture this many times `size` rows have


class KeypointCache:
    """Keypoints of rows' check pictures, found on demand and held in `store` (one of its own of
    `size` when not given; a row's picture is read again once the store has let its keypoints
    go); None for a row whose picture cannot be had (an unreadable file)."""

    def __init__(self, pictures: Pictures, side: int, count: int, size: int = CACHE_IMAGES,
                 corner: int = CORNER_THRESHOLD, store: KeypointStore | None = None):
        self.pictures, self.side, self.count, self.corner = pictures, side, count, corner
        self.store = KeypointStore(size) if store is None else store
        self._keys: OrderedDict[int, StoreKey | None] = OrderedDict()  # row → its picture's key; None: unreadable
        self._rows = ROW_KEYS * size

    def _load(self, row: int) -> tuple[StoreKey | None, Keypoints | None]:
        try:
            picture = self.pictures(row)
            key = KeypointStore.key(picture, self.side, self.count, self.corner)
            kp = self.store.get(key)
            if kp is None:
                kp = keypoints(grey_at(picture, self.side), self.count, self.corner)
                self.store.put(key, kp)
            return key, kp
        except (ImageSkip, cv2.error, *DECODE_ERRORS):  # the policy judges such pairs on distance alone
            return None, None

    def _held(self, row: int) -> tuple[bool, Keypoints | None]:
        """Whether `row`'s keypoints are at hand (or it is known unreadable), and they."""
        if row not in self._keys:
            return False, None
        key = self._keys[row]
        self._keys.move_to_end(row)
        if key is None:
            return True, None
        kp = self.store.get(key)
        return kp is not None, kp

    def _remember(self, row: int, key: StoreKey | None) -> None:
        self._keys[row] = key
        self._keys.move_to_end(row)
        if len(self._keys) > self._rows:
            self._keys.popitem(last=False)

    def prefetch(self, rows: Iterable[int], pool: Executor) -> None:
        """Load the missing ones of `rows` on `pool`'s threads (OpenCV and PIL release the GIL)."""
        missing = [r for r in rows if not self._held(r)[0]]
        for row, (key, _) in zip(missing, pool.map(self._load, missing)):
            self._remember(row, key)

    def __call__(self, row: int) -> Keypoints | None:
        held, kp = self._held(row)
        if held:
            return kp
        key, kp = self._load(row)
        self._remember(row, key)
        return kp


def locality_regions(embeddings: np.ndarray, size: int = REGION_IMAGES, seed: int = 0) -> np.ndarray | None:
    """Per row, a region of the embedding space (coarse k-means, about `size` rows each); None
    when the catalog fits in the keypoint cache.

    A candidate pair joins two near neighbours, so checking the pairs region by region
    (`match_pairs`) reuses the cached keypoints of a file instead of decoding it again for
    each of its pairs scattered through the catalog."""
    n = len(embeddings)
    if n <= CACHE_IMAGES:
        return None
    x = np.ascontiguousarray(embeddings, dtype=np.float32)
    regions = min(math.ceil(n / size), MAX_REGIONS)
    kmeans = faiss.Kmeans(x.shape[1], regions, niter=10, seed=seed, max_points_per_centroid=64)
    kmeans.train(x)
    return kmeans.index.search(x, 1)[1].ravel()


def match_order(pairs: Pairs, regions: np.ndarray | None = None) -> np.ndarray:
    """The order in which to match `pairs`: as given, or region pair by region pair
    (`locality_regions`), so that a file's keypoints stay cached for most of its pairs."""
    if regions is None:
        return np.arange(len(pairs))
    ri, rj = regions[pairs.i], regions[pairs.j]
    return np.lexsort((pairs.j, pairs.i, np.maximum(ri, rj), np.minimum(ri, rj)))


Matcher = Callable[..., "Matches"]  # `match_pairs`' signature: (pairs, pictures, side, count, workers, *, on_progress, regions, corner, worth, into, done)


def match_pairs(
    pairs: Pairs,
    pictures: Pictures,
    side: int = 256,
    count: int = 500,
    workers: int = 2,
    block: int = 1024,
    on_progress: Callable[[int, int], None] | None = None,
    regions: np.ndarray | None = None,
    corner: int = CORNER_THRESHOLD,
    worth: Worth | None = None,
    store: KeypointStore | None = None,
    into: Matches | None = None,
    done: Callable[[np.ndarray], None] | None = None,
) -> Matches:
    """Keypoint matches of each pair (`matched`).

    `pictures(row)` is a row's check picture. Pairs are taken `block` at a time: the keypoints of
    a block's pictures are found, then its pairs are matched, both on `workers` threads; at most
    `max(CACHE_IMAGES, 2 * block)` pictures' keypoints are held. With `regions` (a label per row,
    `locality_regions`), pairs are taken region pair by region pair, so that a picture's keypoints
    are still cached for most of its pairs. `corner` is ORB's FAST threshold. With `worth`, a
    pair it rules out once both pictures' keypoints are found is not matched (`RULED_OUT`). `store`
    holds the keypoints found (shared with other calls of a run; one of its own otherwise). `into`
    (`Matches.empty` of the pairs) is filled and returned, a block at a time, so that a caller
    interrupted in the middle still has the blocks matched before; `done(ks)` is told the indices
    of each block's pairs once they are."""
    cache = KeypointCache(pictures, side, count, max(CACHE_IMAGES, 2 * block), corner, store)
    m, workers = len(pairs), max(1, workers)
    sequence = match_order(pairs, regions)
    out = Matches.empty(m) if into is None else into

    def match(ks: list[tuple[int, Keypoints | None, Keypoints | None]]) -> None:
        faiss.omp_set_num_threads(1)  # this thread's searches only: the pool's threads are the parallelism
        for k, a, b in ks:
            if a is not None and b is not None:
                out.inliers[k], out.maps[k] = pair_map(a, b, side)
                out.sparser[k] = min(len(a), len(b))

    with ThreadPoolExecutor(workers, thread_name_prefix="keypoints") as pool:
        for start in range(0, m, block):
            ks = sequence[start:start + block]
            i, j = pairs.i[ks].tolist(), pairs.j[ks].tolist()
            cache.prefetch(dict.fromkeys(i + j), pool)
            # OpenCV releases the GIL while matching, so a block's pairs are matched on the pool too
            todo = list(zip(ks.tolist(), map(cache, i), map(cache, j)))
            if worth is not None:
                todo = _worth_matching(todo, worth, out)
            list(pool.map(match, [todo[w::workers] for w in range(workers)]))
            if done:
                done(ks)
            if on_progress:
                on_progress(min(start + block, m), m)
    return out


def _worth_matching(todo: list[tuple[int, Keypoints | None, Keypoints | None]], worth: Worth, out: Matches
                    ) -> list[tuple[int, Keypoints | None, Keypoints | None]]:
    """The readable pairs of `todo` that `worth` finds worth matching; the others it rules out
    are recorded in `out` (`RULED_OUT`, with their sparser picture's keypoints)."""
    have = [t for t in todo if t[1] is not None and t[2] is not None]
    if not have:
        return have
    ks = np.array([k for k, _, _ in have])
    sparser = np.array([min(len(a), len(b)) for _, a, b in have], np.int32)
    keep = np.asarray(worth(ks, sparser), bool)
    out.inliers[ks[~keep]], out.sparser[ks[~keep]] = RULED_OUT, sparser[~keep]
    return [t for t, y in zip(have, keep.tolist()) if y]
