"""A second look at candidate pairs: keypoints matched under one affine map (`verify_pairs`).

The encoder sees a 64-pixel picture; two different drawings that share most of their strokes
land as close as a cropped or rotated copy. This stage reopens both files of each candidate pair,
finds ORB keypoints on a larger greyscale picture (and on its mirror image, since a flipped copy
is a duplicate), keeps the matches that agree on one affine map (RANSAC), and combines the match
counts with the embedding distance in a logistic model calibrated for the encoder
(`VerifyConfig`). A pair is only accepted on enough agreeing keypoints (`required_inliers`):
many beyond the encoder's own threshold, one for a close pair with keypoints to spare. Files are
decoded once while they stay in a bounded cache; in a large catalog pairs are checked region by
region of the embedding space (`locality_regions`) so that they mostly do.
"""
from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Iterable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import faiss
import numpy as np

from dedup.config import VerifyConfig
from dedup.images import ImageSkip, load_grey
from dedup.modelfile import model_file, read_card
from dedup.search import Pairs, knn_pairs, range_pairs, union_pairs

RATIO = 0.8  # Lowe's ratio test: a match must be clearly better than the second best
REPROJECTION_PX = 4.0  # RANSAC inlier tolerance, in pixels of the `side`-pixel picture
MAX_SCALE = 8.0  # a copy at most this much larger or smaller (screenshots paste pictures small)
MAX_STRETCH = 2.5  # aspect-ratio changes and shears beyond this are not edits
PROBABILITY_BLOCK = 1_000_000  # pairs whose features are computed at once
CACHE_IMAGES = 4096  # keypoint sets kept between blocks of pairs (up to 40 kB each)
CORNER_THRESHOLD = 10  # FAST threshold: clip art has few, sharp corners
CLOSER_CORNER_THRESHOLD = 5  # `closer_look`, on a picture twice the side
REGION_IMAGES = CACHE_IMAGES // 2  # rows per region of `locality_regions`
MAX_REGIONS = 2048  # beyond ~4M rows regions grow instead (k-means cost stays under a minute)


@dataclass(frozen=True)
class Keypoints:
    """ORB keypoints of a picture and of its mirror image."""

    points: np.ndarray  # (n, 2) float32, in pixels of the keypoint picture
    descriptors: np.ndarray  # (n, 32) uint8
    mirror_points: np.ndarray
    mirror_descriptors: np.ndarray

    def __len__(self) -> int:
        return len(self.points)


@dataclass(frozen=True)
class Verdicts:
    """Per candidate pair: kept?, probability, matched keypoints; `unreadable` pairs were judged
    on the embedding distance alone."""

    keep: np.ndarray  # (m,) bool
    probability: np.ndarray  # (m,) float32; NaN where a file could not be read
    inliers: np.ndarray  # (m,) int32; agreeing keypoints (`closer_look`'s where it looked); -1: unreadable
    unreadable: int
    sparser: np.ndarray  # (m,) int32; keypoints of the sparser picture, likewise


def _orb(count: int, corner: int) -> cv2.ORB:
    # Small patches and a low corner threshold: clip art has few, sharp corners.
    return cv2.ORB_create(nfeatures=count, fastThreshold=corner, edgeThreshold=15, patchSize=15)


def keypoints(grey: np.ndarray, count: int = 500, corner: int = CORNER_THRESHOLD) -> Keypoints:
    """ORB keypoints (FAST threshold `corner`) of a greyscale uint8 picture and of its mirror image."""
    orb = _orb(count, corner)

    def detect(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        kps, desc = orb.detectAndCompute(np.ascontiguousarray(a), None)
        if desc is None:
            return np.zeros((0, 2), np.float32), np.zeros((0, 32), np.uint8)
        return np.array([k.pt for k in kps], np.float32).reshape(-1, 2), desc

    pts, desc = detect(grey)
    mpts, mdesc = detect(grey[:, ::-1])
    return Keypoints(pts, desc, mpts, mdesc)


def _agreeing(p1: np.ndarray, d1: np.ndarray, p2: np.ndarray, d2: np.ndarray,
              matcher: cv2.BFMatcher) -> int:
    """Ratio-test matches from picture 1 to picture 2 that fit one plausible affine map."""
    if len(d1) < 2 or len(d2) < 2:
        return 0
    good = [m[0] for m in matcher.knnMatch(d1, d2, k=2) if len(m) == 2 and m[0].distance < RATIO * m[1].distance]
    if len(good) < 4:
        return 0
    src = p1[[m.queryIdx for m in good]]
    dst = p2[[m.trainIdx for m in good]]
    affine, inlier = cv2.estimateAffine2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=REPROJECTION_PX)
    if affine is None or inlier is None or not plausible(affine):
        return 0
    return int(inlier.sum())


def plausible(affine: np.ndarray) -> bool:
    """Could an edit have made this map? No mirroring (the mirror image is matched separately),
    scaling within `MAX_SCALE`× either way, stretching one axis at most `MAX_STRETCH`× the other.
    Chance agreements among a few similar corners (the four corners of two rectangles) often need
    a map no edit makes."""
    a = affine[:, :2]
    if np.linalg.det(a) <= 0:
        return False
    big, small = np.linalg.svd(a, compute_uv=False)
    return bool(small > 1 / MAX_SCALE and big < MAX_SCALE and big / small <= MAX_STRETCH)


def matched(a: Keypoints, b: Keypoints) -> int:
    """Keypoints of `a` matched in `b` or in `b`'s mirror image under one affine map (the larger);
    0 if OpenCV cannot match them (degenerate keypoints)."""
    matcher = cv2.BFMatcher(cv2.NORM_HAMMING)
    try:
        return max(_agreeing(a.points, a.descriptors, b.points, b.descriptors, matcher),
                   _agreeing(a.points, a.descriptors, b.mirror_points, b.mirror_descriptors, matcher))
    except cv2.error:
        return 0


@dataclass(frozen=True)
class Matches:
    """Per pair: keypoints agreeing on one affine map (-1 where a file cannot be read) and
    keypoints of the sparser picture."""

    inliers: np.ndarray  # (m,) int32
    sparser: np.ndarray  # (m,) int32

    def __len__(self) -> int:
        return len(self.inliers)

    def __getitem__(self, sel) -> Matches:
        return Matches(self.inliers[sel], self.sparser[sel])

    @property
    def readable(self) -> np.ndarray:
        return self.inliers >= 0


def features(distance: np.ndarray, m: Matches) -> np.ndarray:
    """The logistic model's inputs (`config.VERIFY_FEATURES`), one row per pair."""
    inliers = np.asarray(m.inliers, np.float64)
    sparser = np.asarray(m.sparser, np.float64)
    return np.column_stack([np.asarray(distance, np.float64), np.log1p(inliers), inliers / np.maximum(sparser, 1.0),
                            np.log1p(sparser)])


def probability(config: VerifyConfig, distance, m: Matches) -> np.ndarray:
    """P(duplicate) of pairs under `config`'s logistic model."""
    z = features(distance, m) @ np.asarray(config.weights) + config.bias
    return 1.0 / (1.0 + np.exp(-z))


def accepted(config: VerifyConfig, distance, m: Matches, encoder_threshold: float,
             look: Matches | None = None) -> np.ndarray:
    """The verdict on readable pairs: probability ≥ `config.accept`, and enough agreeing keypoints
    (`evidence`, judged on `look` when given: `m` after `closer_look`)."""
    d = np.asarray(distance)
    enough = evidence(config, d, m if look is None else look, encoder_threshold)
    return enough & (probability(config, d, m) >= config.accept)


def required_inliers(config: VerifyConfig, distance, sparser, encoder_threshold: float) -> np.ndarray:
    """Agreeing keypoints a pair needs before the logistic model may accept it.

    - Beyond the encoder's own threshold, `config.min_inliers`. Without that, a pair of
      texture-poor pictures (few keypoints, so few matches either way) would be judged on
      distance alone, more leniently than the encoder's threshold; and among a few similar
      corners (the corners of two rectangles) ten chance agreements are common.
    - Within the threshold but not within half of it, one when the sparser picture has at least
      `config.veto_keypoints` (at the finer look `closer_look` takes when it has fewer): a copy
      with that many keypoints agrees on some, while the model,
      fitted on clip art where a flat icon and its copy often share none, would otherwise take
      two different flat pictures the encoder puts close (shapes on similar gradients) as the same.
    - Otherwise none: the encoder's verdict stands unless the model overrules it."""
    d = np.asarray(distance)
    need = np.where(d >= encoder_threshold, config.min_inliers, 0)
    if config.veto_keypoints:
        silent = (d >= encoder_threshold / 2) & (np.asarray(sparser) >= config.veto_keypoints)
        need = np.maximum(need, silent.astype(need.dtype))
    return need


def evidence(config: VerifyConfig, distance, m: Matches, encoder_threshold: float) -> np.ndarray:
    """Pairs the check may accept: enough keypoints agree (`required_inliers`)."""
    return m.inliers >= required_inliers(config, distance, m.sparser, encoder_threshold)


class KeypointCache:
    """Keypoints of catalog files by row, decoded on demand and kept for the most recent
    `size` rows; None for a file that cannot be read."""

    def __init__(self, files: Callable[[int], Path], side: int, count: int, size: int = CACHE_IMAGES,
                 corner: int = CORNER_THRESHOLD):
        self.files, self.side, self.count, self.size, self.corner = files, side, count, size, corner
        self._cache: OrderedDict[int, Keypoints | None] = OrderedDict()

    def _load(self, row: int) -> Keypoints | None:
        try:
            return keypoints(load_grey(self.files(row), self.side), self.count, self.corner)
        except (ImageSkip, cv2.error):  # judged on distance alone (`verify_pairs`)
            return None

    def _put(self, row: int, kp: Keypoints | None) -> None:
        self._cache[row] = kp
        if len(self._cache) > self.size:
            self._cache.popitem(last=False)

    def prefetch(self, rows: Iterable[int], pool: Executor) -> None:
        """Load the missing ones of `rows` on `pool`'s threads (OpenCV and PIL release the GIL)."""
        missing = [r for r in rows if r not in self._cache]
        for row, kp in zip(missing, pool.map(self._load, missing)):
            self._put(row, kp)

    def __call__(self, row: int) -> Keypoints | None:
        if row in self._cache:
            self._cache.move_to_end(row)
            return self._cache[row]
        kp = self._load(row)
        self._put(row, kp)
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


def match_pairs(
    pairs: Pairs,
    files: Callable[[int], Path],
    side: int = 256,
    count: int = 500,
    workers: int = 2,
    block: int = 1024,
    on_progress: Callable[[int, int], None] | None = None,
    regions: np.ndarray | None = None,
    corner: int = CORNER_THRESHOLD,
) -> Matches:
    """Keypoint matches of each pair (`matched`).

    `files(row)` is the path of an indexed row. Pairs are taken `block` at a time: the files of a
    block are decoded, then its pairs are matched, both on `workers` threads; at most
    `max(CACHE_IMAGES, 2 * block)` files' keypoints are held. With `regions` (a label per row,
    `locality_regions`), pairs are taken region pair by region pair, so that a file's keypoints
    are still cached for most of its pairs. `corner` is ORB's FAST threshold."""
    cache = KeypointCache(files, side, count, max(CACHE_IMAGES, 2 * block), corner)
    m, workers = len(pairs), max(1, workers)
    if regions is None:
        sequence = np.arange(m)
    else:
        ri, rj = regions[pairs.i], regions[pairs.j]
        sequence = np.lexsort((pairs.j, pairs.i, np.maximum(ri, rj), np.minimum(ri, rj)))
    out = Matches(np.full(m, -1, np.int32), np.zeros(m, np.int32))

    def match(ks: list[tuple[int, Keypoints | None, Keypoints | None]]) -> None:
        for k, a, b in ks:
            if a is not None and b is not None:
                out.inliers[k] = matched(a, b) if len(a) <= len(b) else matched(b, a)
                out.sparser[k] = min(len(a), len(b))

    with ThreadPoolExecutor(workers, thread_name_prefix="keypoints") as pool:
        for start in range(0, m, block):
            ks = sequence[start:start + block]
            i, j = pairs.i[ks].tolist(), pairs.j[ks].tolist()
            cache.prefetch(dict.fromkeys(i + j), pool)
            # OpenCV releases the GIL while matching, so a block's pairs are matched on the pool too
            todo = list(zip(ks.tolist(), map(cache, i), map(cache, j)))
            list(pool.map(match, [todo[w::workers] for w in range(workers)]))
            if on_progress:
                on_progress(min(start + block, m), m)
    return out


def closer_look(pairs: Pairs, m: Matches, config: VerifyConfig, files: Callable[[int], Path],
                encoder_threshold: float, workers: int = 2) -> Matches:
    """`m`, with the pairs the close-pair rule (`required_inliers`) would judge but for too few
    keypoints matched again on finer keypoints: twice the side, half the corner threshold.

    A flat picture (shapes on a gradient) can have a handful of keypoints at `config.side`, too
    few for no agreement to mean anything, and the encoder puts many such pictures close together;
    the finer look finds enough on both pictures of most such pairs to tell a copy (some agree)
    from a different picture (none do). Only pairs between half the encoder's threshold and the
    threshold are looked at again, so the cost is small."""
    if not config.veto_keypoints:
        return m
    d = np.asarray(pairs.d)
    again = np.flatnonzero(m.readable & (m.sparser < config.veto_keypoints)
                           & (d >= encoder_threshold / 2) & (d < encoder_threshold))
    if len(again) == 0:
        return m
    finer = match_pairs(Pairs(pairs.i[again], pairs.j[again], pairs.d[again]), files, 2 * config.side,
                        config.keypoints, workers, corner=CLOSER_CORNER_THRESHOLD)
    seen = finer.readable
    out = Matches(m.inliers.copy(), m.sparser.copy())
    out.inliers[again[seen]], out.sparser[again[seen]] = finer.inliers[seen], finer.sparser[seen]
    return out


def candidate_pairs(index, embeddings: np.ndarray, neighbours: int, encoder_threshold: float, threshold: float,
                    on_progress: Callable[[int, int], None] | None = None) -> Pairs:
    """The pairs the check looks at: every pair under the encoder's own threshold, and each
    indexed row's `neighbours` nearest under `threshold` (`VerifyConfig.neighbours`; at most
    n·neighbours however crowded the catalog)."""
    near = range_pairs(index, embeddings, min(encoder_threshold, threshold), on_progress=on_progress)
    return union_pairs(near, knn_pairs(index, embeddings, neighbours, threshold))


def verify_pairs(
    pairs: Pairs,
    config: VerifyConfig,
    files: Callable[[int], Path],
    encoder_threshold: float,
    on_progress: Callable[[int, int], None] | None = None,
    workers: int = 2,
    regions: np.ndarray | None = None,
) -> Verdicts:
    """Judge each candidate pair by keypoint matching (`match_pairs`, in `regions` order when
    given) and distance (`accepted`).

    A pair with a file that is gone or unreadable is kept when its distance is under
    `encoder_threshold` (the encoder's own threshold), as without the check."""
    m = match_pairs(pairs, files, config.side, config.keypoints, workers, on_progress=on_progress, regions=regions)
    readable = m.readable
    prob = np.full(len(pairs), math.nan, np.float32)
    rows = np.flatnonzero(readable)
    for part in np.array_split(rows, max(1, len(rows) // PROBABILITY_BLOCK)):  # bounded feature matrices
        prob[part] = probability(config, pairs.d[part], m[part])
    look = closer_look(pairs, m, config, files, encoder_threshold, workers)
    checked = evidence(config, pairs.d, look, encoder_threshold) & (prob >= config.accept)
    keep = np.where(readable, checked, pairs.d < encoder_threshold)
    return Verdicts(keep, prob, look.inliers, int((~readable).sum()), look.sparser)


def manifest_check(manifest: dict) -> VerifyConfig | None:
    """The keypoint check of the index's model: from the manifest, or for an index written before
    manifests recorded it, from the card of the same model."""
    if "verify" in manifest:
        return VerifyConfig.from_dict(manifest["verify"]) if manifest["verify"] else None
    model = manifest.get("model", {})
    try:
        card = read_card(model_file(model["ref"]))
    except (KeyError, TypeError, OSError):
        return None
    if card is None or card.get("identity") != model.get("identity") or not card.get("verify"):
        return None
    return VerifyConfig.from_dict(card["verify"])
