"""Is this pair a duplicate? One policy object per kind of decision, used by every command that
judges pairs (find-duplicates, `--against`, `query --verify`, compare, the server).

- `DistancePolicy`: closer than the threshold.
- `CheckedPolicy`: the pair check. Candidates are every pair under the encoder's own threshold
  and each image's `neighbours` nearest under the candidate distance; each is judged by keypoint
  matches (`dedup.keypoints`) and distance in a logistic model calibrated for the encoder
  (`VerifyConfig`; a recent one also judges the distance against the pair's background,
  `dedup.background`), and needs enough agreeing keypoints (`required_inliers`); a confirmed pair
  whose pictures, laid over each other, differ in a detail or a colourway is told apart
  (`dedup.details`), and so is the weaker of two confirmed pairs that would join two pictures
  told apart (`through_copies`).

`policy_for` is the one place a threshold is resolved from the model's calibration.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Literal, Union

import cv2
import numpy as np

from dedup import plain
from dedup.background import backgrounds, normalised
from dedup.config import VerifyConfig, check_threshold
from dedup.details import Framer, Teller, alike, copy_of_first, framed_maps, prepared_rows, tiny_told_apart, told_apart
from dedup.images import DECODE_ERRORS, ImageSkip
from dedup.keypoints import Matcher, Matches, Pictures, locality_regions, match_pairs
from dedup.pairs import Pairs, nearest_ranks, rows_of, union_pairs
from dedup.results import Verified
from dedup.search import cross_knn_pairs, cross_range_pairs, knn_pairs, loaded, range_pairs
from dedup.selfjoin import Runner

PROBABILITY_BLOCK = 1_000_000  # pairs whose features are computed at once
CLOSER_CORNER_THRESHOLD = 3  # `closer_look`, on the check picture enlarged to twice the side
CLOSE_PAIR_NEEDS = 1  # agreeing keypoints the close-pair rule asks of a close pair rich in keypoints (`required_inliers`)
EVEN = 0.1  # `through_copies`: agreeing-keypoint counts this close leave the choice to the differing spot
SPARED_NEAREST = 3  # `sparable`: a copy is among its original's 3 nearest (on a catalog of pages, 92% of them)
CEILING_SLACK = 1e-6  # `Hopeful` matches a pair whose best probability falls short of the cut by less (float32 rounding)
SECOND_SET = 1 << 40  # with a second set of pictures, its row r is row SECOND_SET + r for `match` and `tell`
Progress = Callable[[int, int], None]
Backgrounds = tuple[np.ndarray, np.ndarray]  # per row of the pairs' first set, and of their second
Hashes = tuple[np.ndarray, np.ndarray]  # content hashes of the rows of the pairs' first set, and of their second
Confirmed = Callable[[np.ndarray, np.ndarray, np.ndarray], None]  # given the confirmed pairs' rows i, j and maps


@dataclass(frozen=True)
class Decision:
    """The verdict on each pair, and with the pair check what it found."""

    keep: np.ndarray  # (m,) bool: a duplicate
    verified: Verified | None = None  # with the pair check: what it did
    probability: np.ndarray | None = None  # (m,) float32, the check's P(same); NaN: not looked at, unreadable or ruled out
    inliers: np.ndarray | None = None  # (m,) int32, agreeing keypoints; -1: not looked at or unreadable; -2: ruled out (`Hopeful`)
    needed: np.ndarray | None = None  # (m,) int32, agreeing keypoints the pair needs
    told_apart: np.ndarray | None = None  # (m,) bool: confirmed by keypoints, but differing in a detail or colourway
    plain_apart: np.ndarray | None = None  # (m,) bool: one picture plain, the other not plain in its colour (`dedup.plain`)
    framed: np.ndarray | None = None  # (m,) bool: no keypoint agrees, laid over by their subjects' boxes (`dedup.details.framed_maps`)


@dataclass(frozen=True)
class DistancePolicy:
    """A pair is a duplicate when closer than `threshold`."""

    threshold: float
    kind: Literal["distance"] = "distance"
    linkage: str = "center"  # every member close to the set's centre (`dedup.cluster`)

    @property
    def encoder_threshold(self) -> float:
        return self.threshold

    def candidates(self, index, queries: np.ndarray, *, within: bool, cells: np.ndarray | None = None,
                   runner: Runner | None = None, on_progress: Progress | None = None) -> Pairs:
        """The pairs to judge: every pair closer than the threshold. `index`: a FAISS index, or a
        function returning it (called only when needed). `within`: `queries` are the indexed rows
        themselves (row k has id k), so pairs are (i < j) within one set; `cells`: their nearest
        IVF cells, searched without the FAISS index (`dedup.selfjoin`) by `runner`'s tasks."""
        if within:
            return range_pairs(index, queries, self.threshold, cells=cells, runner=runner, on_progress=on_progress)
        return cross_range_pairs(loaded(index), queries, self.threshold)

    def backgrounds(self, queries: np.ndarray, pairs: Pairs, *, reference: Callable[[], np.ndarray] | None = None) -> None:
        return None

    def decide(self, pairs: Pairs, pictures: Pictures, other: Pictures | None = None, *, vectors: np.ndarray | None = None,
               background: Backgrounds | None = None, workers: int = 2, match: Matcher = match_pairs,
               tell: Teller = told_apart, alike: Teller = alike, frame: Framer = framed_maps, tiny: Teller = tiny_told_apart,
               on_progress: Progress | None = None, thorough: bool = False, through_part: np.ndarray | None = None,
               hashes: Hashes | None = None, confirmed: Confirmed | None = None) -> Decision:
        return Decision(np.asarray(pairs.d) < self.threshold)


@dataclass(frozen=True)
class CheckedPolicy:
    """A pair is a duplicate when closer than `threshold` (the candidate distance) and the pair
    check confirms it; a pair whose file cannot be read is judged by the encoder's own threshold."""

    check: VerifyConfig
    threshold: float
    encoder_threshold: float  # the model's calibrated threshold (at most `threshold`)
    kind: Literal["checked"] = "checked"
    linkage: str = "complete"  # every two members were confirmed
    tell_apart: bool = True  # veto confirmed pairs that differ in a detail or colourway (`dedup.details`)

    def candidates(self, index, queries: np.ndarray, *, within: bool, cells: np.ndarray | None = None,
                   runner: Runner | None = None, on_progress: Progress | None = None) -> Pairs:
        """Every pair the encoder alone would call the same, and each query's `check.neighbours`
        nearest under the threshold (at most n·neighbours beyond, however crowded the catalog).
        Arguments as `DistancePolicy.candidates`."""
        if within:
            near = range_pairs(index, queries, self.encoder_threshold, cells=cells, runner=runner, on_progress=on_progress)
            return union_pairs(near, knn_pairs(loaded(index), queries, self.check.neighbours, self.threshold))
        index = loaded(index)
        return union_pairs(cross_range_pairs(index, queries, self.encoder_threshold),
                           cross_knn_pairs(index, queries, self.check.neighbours, self.threshold))

    def backgrounds(self, queries: np.ndarray, pairs: Pairs, *, reference: Callable[[], np.ndarray] | None = None
                    ) -> Backgrounds | None:
        """The background distances (`dedup.background`) `decide` needs for `pairs` (as found by
        `candidates` for `queries`), or None when the check does not use them. Within one set both
        sides are rows of `queries`, the indexed rows themselves; across two, `reference()` gives
        the indexed rows (`pairs.j`), and both sides are measured in that catalog. Only rows of
        pairs closer than the threshold are measured."""
        if not self.check.normalised:
            return None
        look = pairs[np.asarray(pairs.d) < self.threshold]
        measure = partial(backgrounds, typical=self.check.typical_background, threshold=self.encoder_threshold)
        if reference is None:
            mine = measure(queries, queries, rows_of(look, len(queries)), within=True)
            return mine, mine
        catalog = reference()
        return (measure(catalog, queries, np.unique(look.i), within=False),
                measure(catalog, catalog, np.unique(look.j), within=True))

    def decide(self, pairs: Pairs, pictures: Pictures, other: Pictures | None = None, *, vectors: np.ndarray | None = None,
               background: Backgrounds | None = None, workers: int = 2, match: Matcher = match_pairs,
               tell: Teller = told_apart, alike: Teller = alike, frame: Framer = framed_maps, tiny: Teller = tiny_told_apart,
               on_progress: Progress | None = None, thorough: bool = False, through_part: np.ndarray | None = None,
               hashes: Hashes | None = None, confirmed: Confirmed | None = None) -> Decision:
        """Judge each pair closer than the threshold. `pictures(row)` is the check picture of a
        row (`dedup.pictures`); with `other`, `pairs.j` are rows of a second set whose pictures
        are `other(row)` (`match` and `tell` see them as rows `SECOND_SET + j`). `vectors` (of
        the rows, one set) let a large catalog be matched region by region. `background`: from
        `backgrounds` (without it a normalising check takes each side's background as typical).
        `match` counts the agreeing keypoints (`dedup.keypoints.match_pairs`, or an engine's
        distributed one), `tell` looks for a differing detail (`dedup.details.told_apart`) and
        `alike` says whether a pair laid over by its map differs nowhere (`dedup.details.alike`,
        asked of the `sparable` pairs that agree on `min_inliers` keypoints) and `frame` lays over
        by their boxes the close pairs that the check accepts but for the one agreeing keypoint
        the close-pair rule asks (`dedup.details.framed_maps`) and `tiny` tells apart the confirmed pairs
        of tiny pictures of one size pixel for pixel (`dedup.details.tiny_told_apart`; not taken
        through copies: their keypoints are too few to say which pair is the copy's); each may remember earlier runs' answers
        (`dedup.checkmemo`). A pair that no count of agreeing keypoints could make a duplicate
        (`Hopeful`) is not matched, unless `thorough` (the count is then reported for every pair).
        `through_part` (per pair): found through a picture pasted into the other (`dedup.parts`),
        so accepted only on agreeing keypoints (`required_inliers`). `hashes`: the content hashes of
        the rows of `pairs.i` and of `pairs.j`; a pair of files with the same bytes is a duplicate
        without a look (counted as checked and confirmed). `confirmed(i, j, maps)` is given the
        pairs the keypoints confirm with their maps (`dedup.seams.NestedMaps`), told apart or not."""
        close = np.asarray(pairs.d) < self.threshold
        same_bytes = np.zeros(len(pairs), bool) if hashes is None else same_files(pairs, hashes, close)
        look_at = np.flatnonzero(close & ~same_bytes)
        todo = pairs[look_at]
        pasted = None if through_part is None else np.asarray(through_part, bool)[look_at]
        norm = self._normalised(todo, background)
        if other is None:
            both, regions = todo, locality_regions(vectors) if vectors is not None else None
        else:  # the second set's rows after the first's
            both, regions = Pairs(todo.i, todo.j + SECOND_SET, todo.d), None
            pictures = joined(pictures, other)
        spared = sparable(todo, other is None, self.encoder_threshold, pasted)
        worth = None if thorough else Hopeful.of(self.check, todo.d, norm, self.encoder_threshold, pasted, spared)
        m = match(both, pictures, self.check.side, self.check.keypoints, workers, on_progress=on_progress, regions=regions,
                  worth=worth)
        readable = m.readable
        prob = np.full(len(todo), math.nan, np.float32)
        rows = np.flatnonzero(m.matched)
        for part in np.array_split(rows, max(1, len(rows) // PROBABILITY_BLOCK)):  # bounded feature matrices
            prob[part] = probability(self.check, todo.d[part], m[part], None if norm is None else norm[part])
        look = closer_look(both, m, self.check, pictures, self.encoder_threshold, workers, match)
        same, needed = verdict(self.check, todo.d, prob, look, self.encoder_threshold, pasted)
        framed = np.zeros(len(todo), bool)
        vetoed = np.flatnonzero(readable & ~same & (look.inliers == 0) & (needed == CLOSE_PAIR_NEEDS) & (prob >= self.check.accept))
        if len(vetoed) and look.maps is not None:
            maps = frame(both.i[vetoed], both.j[vetoed], pictures, workers)
            framed[vetoed] = np.isfinite(maps).all(axis=(1, 2))
            look = look.copy()
            look.maps[vetoed[framed[vetoed]]] = maps[framed[vetoed]]
            same |= framed
        spare = np.flatnonzero(readable & ~same & spared & (look.inliers >= self.check.min_inliers))
        if len(spare) and look.maps is not None:
            same[spare] = alike(both.i[spare], both.j[spare], look.maps[spare], pictures, workers)
        plain_apart = np.zeros(len(todo), bool)
        bare = np.flatnonzero(readable & same & (look.sparser == 0))  # a side without keypoints: perhaps a plain picture
        if len(bare):
            plain_apart[bare] = plain.apart(both.i[bare], both.j[bare], pictures)
            same &= ~plain_apart
        apart = np.zeros(len(todo), bool)
        small = np.zeros(len(todo), bool)  # tiny pictures told apart pixel for pixel (`dedup.details.tiny_told_apart`)
        agreed = np.flatnonzero(readable & same)
        if len(agreed) and look.maps is not None:
            if confirmed is not None:
                confirmed(both.i[agreed], both.j[agreed], look.maps[agreed])
            if self.tell_apart:
                apart[agreed] = tell(both.i[agreed], both.j[agreed], look.maps[agreed], pictures, workers)
                rest = agreed[~apart[agreed]]
                small[rest] = tiny(both.i[rest], both.j[rest], look.maps[rest], pictures, workers)
                apart |= small
        on_distance = todo.d < self.encoder_threshold  # a picture that cannot be had: the encoder's verdict
        if pasted is not None:
            on_distance &= ~pasted  # ... but a pasted picture's distance is not the pair's
        verdict_ = np.where(readable, same & ~apart, on_distance)
        if other is None and apart.any():
            # tiny pictures' keypoints are few and unsure: which of a third picture's two pairs is its copy is not theirs to say
            moved = through_copies(todo, verdict_, apart & ~small, look.inliers, _by_spot(todo, look.maps, pictures))
            verdict_, apart = verdict_ & ~moved, apart | moved
        n = len(pairs)
        keep, p_all = np.zeros(n, bool), np.full(n, math.nan, np.float32)
        inl, need, apart_all, plain_all = np.full(n, -1, np.int32), np.zeros(n, np.int32), np.zeros(n, bool), np.zeros(n, bool)
        keep[look_at], p_all[look_at], inl[look_at], need[look_at], apart_all[look_at] = verdict_, prob, look.inliers, needed, apart
        plain_all[look_at] = plain_apart
        framed_all = np.zeros(n, bool)
        framed_all[look_at] = framed
        keep[same_bytes] = True
        identical = int(same_bytes.sum())
        summary = Verified(len(todo) + identical, int(verdict_.sum()) + identical, int((~readable).sum()), int(apart.sum()))
        return Decision(keep, summary, p_all, inl, need, apart_all, plain_all, framed_all)

    def _normalised(self, todo: Pairs, background: Backgrounds | None) -> np.ndarray | None:
        if not self.check.normalised:
            return None
        if background is None:
            return np.asarray(todo.d, np.float64) - self.check.typical_background
        return normalised(todo.d, background[0][todo.i], background[1][todo.j])


Policy = Union[DistancePolicy, CheckedPolicy]


def policy_for(model_threshold: float, check: VerifyConfig | None, threshold: float | None = None,
               verify: bool = True, variants_together: bool = False) -> Policy:
    """The duplicate policy of a model (its calibrated threshold and pair check, from the model
    or an index's manifest): with the check when the model has one and `verify` is on, and then
    `threshold` (default: the check's candidate distance) bounds the candidates; else `threshold`
    (default: the model's) alone decides. `variants_together`: items the check would tell apart
    by a differing detail, colourway or part (one design's variants) count as duplicates."""
    if verify and check is not None:
        t = check_threshold(check.candidates if threshold is None else threshold)
        return CheckedPolicy(check, t, min(float(model_threshold), t), tell_apart=not variants_together)
    return DistancePolicy(check_threshold(float(model_threshold) if threshold is None else threshold))


def through_copies(pairs: Pairs, kept: np.ndarray, apart: np.ndarray, inliers: np.ndarray,
                   prefer: Callable[[int, int, int], bool | None] | None = None) -> np.ndarray:
    """The kept pairs to tell apart because they would join two pictures told apart: for each
    pair (b, c) told apart and each picture a kept with both, the one of (a, b) and (a, c) with
    fewer agreeing keypoints (`inliers`; the farther when they have as many). When the two counts
    are within `EVEN` of each other, `prefer(x, y, t)` (the indices of (a, b), (a, c) and (b, c))
    decides where it can: True keeps (a, b), False keeps (a, c), None leaves it to the counts.

    Two items of one series, b and c, are told apart by the detail they differ in, but an edited
    copy a of b (blurred, recompressed, with a sticker) differs from c in more than that detail,
    so the test passes it, and a would join b's set and c's. One of a's two pairs is wrong; a copy
    shares the detail's keypoints with its own original, not with the other item (an edit may
    move it further from its original than the detail moves the other item). Pairs within one
    set of rows (i < j)."""
    drop = np.zeros(len(pairs), bool)
    k = np.flatnonzero(kept)
    if len(k) == 0 or not apart.any():
        return drop
    node, neighbour, pair = np.concatenate([pairs.i[k], pairs.j[k]]), np.concatenate([pairs.j[k], pairs.i[k]]), np.concatenate([k, k])
    order = np.lexsort((neighbour, node))
    node, neighbour, pair = node[order], neighbour[order], pair[order]
    for t, b, c in zip(np.flatnonzero(apart).tolist(), pairs.i[apart].tolist(), pairs.j[apart].tolist()):
        (b0, b1), (c0, c1) = np.searchsorted(node, [b, b + 1]), np.searchsorted(node, [c, c + 1])
        _, at_b, at_c = np.intersect1d(neighbour[b0:b1], neighbour[c0:c1], assume_unique=True, return_indices=True)
        for x, y in zip(pair[b0 + at_b].tolist(), pair[c0 + at_c].tolist()):
            weaker = (inliers[x], -pairs.d[x]) < (inliers[y], -pairs.d[y])
            if prefer is not None and abs(int(inliers[x]) - int(inliers[y])) <= EVEN * max(int(inliers[x]), int(inliers[y])):
                first = prefer(x, y, t)
                weaker = weaker if first is None else not first
            drop[x if weaker else y] = True
    return drop


def _by_spot(pairs: Pairs, maps: np.ndarray | None, pictures: Pictures) -> Callable[[int, int, int], bool | None] | None:
    """`through_copies`' `prefer` for pairs of one set (i < j) with `maps` (i to j, units of the
    longer side): `dedup.details.copy_of_first` on the three pictures."""
    if maps is None:
        return None
    picture = prepared_rows(pictures)

    def from_row(k: int, row: int) -> np.ndarray:  # pair k's map from `row` to the other picture
        m = np.vstack([maps[k], (0.0, 0.0, 1.0)])
        return (m if pairs.i[k] == row else np.linalg.inv(m))[:2]

    def prefer(x: int, y: int, t: int) -> bool | None:
        b, c = int(pairs.i[t]), int(pairs.j[t])
        a = int(pairs.i[x] + pairs.j[x] - b)
        if not (np.isfinite(maps[x]).all() and np.isfinite(maps[t]).all()):
            return None
        try:
            return copy_of_first(picture(a), picture(b), picture(c), from_row(x, b), from_row(t, b))
        except (ImageSkip, cv2.error, *DECODE_ERRORS, np.linalg.LinAlgError):
            return None

    return prefer


def same_files(pairs: Pairs, hashes: Hashes, among: np.ndarray | None = None) -> np.ndarray:
    """Per pair, whether its two files have the same bytes (`hashes`: the content hashes of the
    rows of `pairs.i` and of `pairs.j`), compared only where `among` is set: a duplicate without
    a look."""
    out = np.zeros(len(pairs), bool)
    at = np.arange(len(pairs)) if among is None else np.flatnonzero(among)
    out[at] = hashes[0][pairs.i[at]] == hashes[1][pairs.j[at]]
    return out


def joined(a: Pictures, b: Pictures) -> Pictures:
    """The pictures of two sets as one: `a`'s rows, then `b`'s from `SECOND_SET` on."""

    def pictures(row: int) -> bytes:
        return a(row) if row < SECOND_SET else b(row - SECOND_SET)

    return pictures


def features(distance: np.ndarray, m: Matches, normalised_distance: np.ndarray | None = None) -> np.ndarray:
    """The logistic model's inputs, one row per pair: `config.VERIFY_FEATURES`, and with
    `normalised_distance` also that (`config.NORMALISED_FEATURES`)."""
    inliers = np.asarray(m.inliers, np.float64)
    sparser = np.asarray(m.sparser, np.float64)
    columns = [np.asarray(distance, np.float64), np.log1p(inliers), inliers / np.maximum(sparser, 1.0), np.log1p(sparser)]
    if normalised_distance is not None:
        columns.append(np.asarray(normalised_distance, np.float64))
    return np.column_stack(columns)


def probability(config: VerifyConfig, distance, m: Matches, normalised_distance: np.ndarray | None = None) -> np.ndarray:
    """P(duplicate) of pairs under `config`'s logistic model (`normalised_distance`: needed when
    the model uses it)."""
    if not config.normalised:
        normalised_distance = None
    elif normalised_distance is None:
        raise ValueError("this pair check needs each pair's normalised distance")
    z = features(distance, m, normalised_distance) @ np.asarray(config.weights) + config.bias
    return 1.0 / (1.0 + np.exp(-z))


def ceiling(config: VerifyConfig, distance, sparser, fewest, normalised_distance: np.ndarray | None = None) -> np.ndarray:
    """The highest P(duplicate) under `config`'s logistic model that any count of agreeing keypoints
    from `fewest` to `sparser` (the sparser picture's keypoints) could give a pair; 0 where
    `fewest` > `sparser`.

    The count enters the model as w₁·log(1 + n) + w₂·n / max(s, 1): monotone in n, or concave with
    its peak where the derivative is 0, so the highest value over whole counts is at one of the
    ends or on either side of that peak."""
    s = np.asarray(sparser, np.int64)
    low = np.asarray(fewest, np.int64)
    w1, w2 = config.weights[1], config.weights[2]
    counts = [low, s]
    if w2 != 0:
        peak = -w1 * np.maximum(s, 1) / w2 - 1.0
        counts += [np.floor(peak), np.ceil(peak)]
    best = np.zeros(len(s))
    for n in counts:
        n = np.clip(n, low, np.maximum(s, low)).astype(np.int32)
        best = np.maximum(best, probability(config, distance, Matches(n, s.astype(np.int32)), normalised_distance))
    return np.where(low <= s, best, 0.0)


@dataclass(frozen=True)
class Hopeful:
    """`dedup.keypoints.Worth` for `CheckedPolicy.decide`: a pair is worth matching when some count
    of agreeing keypoints could make it a duplicate (`ceiling` reaches the acceptance cut), so
    leaving the others unmatched changes no verdict. The count considered starts at what the pair
    needs whatever `closer_look` finds (`required_inliers` of a picture without keypoints). A pair
    the model cannot accept is still worth matching when it is `sparable` (`spared`) and its
    sparser picture has the keypoints to agree on."""

    config: VerifyConfig
    distance: np.ndarray
    fewest: np.ndarray
    spared: np.ndarray
    normalised: np.ndarray | None = None

    @classmethod
    def of(cls, config: VerifyConfig, distance, normalised_distance: np.ndarray | None, encoder_threshold: float,
           through_part: np.ndarray | None = None, spared: np.ndarray | None = None) -> Hopeful:
        d = np.asarray(distance)
        fewest = required_inliers(config, d, np.zeros(len(d), np.int32), encoder_threshold, through_part)
        return cls(config, d, fewest, np.zeros(len(d), bool) if spared is None else np.asarray(spared, bool), normalised_distance)

    def __call__(self, ks: np.ndarray, sparser: np.ndarray) -> np.ndarray:
        norm = None if self.normalised is None else self.normalised[ks]
        top = ceiling(self.config, self.distance[ks], sparser, self.fewest[ks], norm)
        return (top >= self.config.accept - CEILING_SLACK) | (self.spared[ks] & (np.asarray(sparser) >= self.config.min_inliers))

    def subset(self, ks: np.ndarray) -> Hopeful:
        return Hopeful(self.config, self.distance[ks], self.fewest[ks], self.spared[ks],
                       None if self.normalised is None else self.normalised[ks])


def required_inliers(config: VerifyConfig, distance, sparser, encoder_threshold: float,
                     through_part: np.ndarray | None = None) -> np.ndarray:
    """Agreeing keypoints a pair needs before the logistic model may accept it.

    - Beyond the encoder's own threshold, `config.min_inliers`. Without that, a pair of
      texture-poor pictures (few keypoints, so few matches either way) would be judged on
      distance alone, more leniently than the encoder's threshold; and among a few similar
      corners (the corners of two rectangles) ten chance agreements are common.
    - Within the threshold but not within half of it, one when the sparser picture has at least
      `config.veto_keypoints` (at the finer look `closer_look` takes when it has fewer): a copy
      with that many keypoints agrees on some, while the model, fitted on clip art where a flat
      icon and its copy often share none, would otherwise take two different flat pictures the
      encoder puts close (shapes on similar gradients) as the same.
    - Otherwise none: the encoder's verdict stands unless the model overrules it.

    A pair found through a picture pasted into the other (`through_part`, `dedup.parts`) needs
    `config.min_inliers` at any distance: its distance is the pasted picture's, and a page holds
    one design's look-alikes as small as it holds copies."""
    d = np.asarray(distance)
    far = d >= encoder_threshold
    if through_part is not None:
        far = far | np.asarray(through_part, bool)
    need = np.where(far, config.min_inliers, 0)
    if config.veto_keypoints:
        silent = (d >= encoder_threshold / 2) & (d < encoder_threshold) & (np.asarray(sparser) >= config.veto_keypoints)
        need = np.maximum(need, np.where(silent, CLOSE_PAIR_NEEDS, 0))
    return need


def sparable(pairs: Pairs, within: bool, encoder_threshold: float, through_part: np.ndarray | None = None) -> np.ndarray:
    """Pairs that are the same whatever the logistic model says if their keypoints agree on
    `min_inliers` and, laid over each other by the map, they differ nowhere (`dedup.details.alike`):
    within the encoder's own threshold, one picture among the other's `SPARED_NEAREST` nearest
    (`pairs.nearest_ranks`; `within`: both sides are rows of one set). Among pictures rich in
    keypoints in a crowded catalog (pages of text, screenshots of one app) the model's keypoint
    count and normalised distance reject even a resized copy, while the encoder, the keypoints and
    the overlay all call it one picture; the rank bounds the work there, where every picture is
    within the threshold of many. Never a pair found through a pasted picture or a window
    (`through_part`): its distance is not the pair's."""
    out = np.asarray(pairs.d) < encoder_threshold
    if through_part is not None:
        out &= ~np.asarray(through_part, bool)
    if out.any():  # ranked only where it can matter (not in a pass of pasted pictures or windows)
        out &= nearest_ranks(pairs, within) < SPARED_NEAREST
    return out


def verdict(config: VerifyConfig, distance, prob: np.ndarray, look: Matches, encoder_threshold: float,
            through_part: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The check's rule on readable pairs, and the agreeing keypoints each needs: probability
    `prob` ≥ `config.accept` and enough agreeing keypoints in `look` (`required_inliers`)."""
    needed = required_inliers(config, distance, look.sparser, encoder_threshold, through_part)
    return (look.inliers >= needed) & (np.asarray(prob) >= config.accept), needed


def accepted(config: VerifyConfig, distance, m: Matches, encoder_threshold: float, look: Matches | None = None,
             normalised_distance: np.ndarray | None = None) -> np.ndarray:
    """`verdict` on matches `m` (and `look`: `m` after `closer_look`, when given)."""
    prob = probability(config, distance, m, normalised_distance)
    return verdict(config, distance, prob, m if look is None else look, encoder_threshold)[0]


def closer_look(pairs: Pairs, m: Matches, config: VerifyConfig, pictures: Pictures, encoder_threshold: float,
                workers: int = 2, match: Matcher = match_pairs) -> Matches:
    """`m`, with the pairs the close-pair rule (`required_inliers`) would judge but for too few
    keypoints matched again on finer keypoints: the check picture enlarged to twice the side, half
    the corner threshold.

    A flat picture (shapes on a gradient) can have a handful of keypoints at `config.side`, too
    few for no agreement to mean anything, and the encoder puts many such pictures close together;
    the finer look finds enough on both pictures of most such pairs to tell a copy (some agree)
    from a different picture (none do). Only pairs between half the encoder's threshold and the
    threshold are looked at again, so the cost is small."""
    if not config.veto_keypoints:
        return m
    d = np.asarray(pairs.d)
    again = np.flatnonzero(m.matched & (m.sparser < config.veto_keypoints)
                           & (d >= encoder_threshold / 2) & (d < encoder_threshold))
    if len(again) == 0:
        return m
    finer = match(pairs[again], pictures, 2 * config.side, config.keypoints, workers, corner=CLOSER_CORNER_THRESHOLD)
    seen = finer.matched
    out = m.copy()
    out.put(again[seen], finer[seen])
    return out
