"""Candidate pairs by shared keypoints: a heavy crop of a picture, or a picture pasted onto a busier one.

The encoder sees whole pictures, so a crop that keeps a fifth of a drawing, or the drawing pasted
small onto a photo, lands far from it in the encoder's space. Their keypoints do not: the corners
of the kept part are the same corners. Every picture's ORB descriptors (the pair check's own,
`dedup.keypoints`) go into one binary FAISS index; a descriptor votes for the pictures that own
one of its `NEAREST` neighbours when that neighbour is within `HAMMING` bits and clearly nearer
than the rest (`RATIO`: a corner that many pictures share is no evidence). Each picture is paired
with the `NEIGHBOURS` pictures with the most votes, normalised by both pictures' descriptor counts
(a picture of many corners meets every other one somewhere).

The check then compares the two whole pictures, needs agreeing keypoints whatever the distance,
as for a window's pair (`dedup.windows`), and keeps a pair only when one picture, laid over the
other by the keypoints' map, lies inside it and covers at most `HELD_SHARE` of it (`held`): what a
crop or a pasted picture is. Two look-alike drawings of one frame share many corners, but neither
holds the other.

The search goes through inverted lists whose centroids were found once, on training-pool pictures
(`recipes.vote_lists`, shipped as `LISTS_FILE`), not on the catalog: a picture's descriptors land
in the same lists whatever else the catalog holds, so adding pictures changes a descriptor's
neighbours only where a new descriptor comes near it, and no run spends time clustering.

At most `BUDGET` descriptors are held at once, so the pictures of a catalog larger than
`BUDGET` / (the check's 500 keypoints) each give fewer (`per_picture`), spread over ORB's scales.
How many falls by steps (`STEP`), so that a catalog that grows a little keeps its pictures'
descriptors, which the pair-check memo keeps (`dedup.checkmemo.PairChecks.descriptors`).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache, partial
from importlib import resources

import faiss
import numpy as np

from dedup.keypoints import Keypoints
from dedup.pairs import Pairs, nearest_ranks
from dedup.policy import SECOND_SET
from dedup.seams import PairMaps, held_share

BUDGET = 4_000_000  # descriptors held at once (with their owners, copies and the search's lists, ~450 MB)
NEAREST = 8  # neighbours of each descriptor looked at
HAMMING = 40  # of 256 bits: a nearer neighbour is a vote
RATIO = 0.8  # ... when it is also this much nearer than the NEAREST-th neighbour
NEIGHBOURS = 3  # pictures paired with each picture, by votes
MIN_VOTES = 2  # a partner needs at least this many votes
PER_LIST = 700  # descriptors an inverted list of the search holds, at least (about)
MIN_LISTS = 16  # fewer descriptors than this many lists' are searched exactly
MAX_LISTS = 4096  # ... at most this many lists (a power of two; at `BUDGET`, ~1,000 descriptors a list)
PROBE = 1  # lists searched for each descriptor
LISTS_FILE = "vote_lists.npz"  # in the package's assets: the lists' centroids, `lists_<count>` for each of `list_counts`
QUERY_BLOCK = 1 << 18  # descriptors searched at a time
HELD_SHARE = 0.8  # the held picture covers at most this share of the holder's area
STEP = 0.8  # beyond the budget, each picture's descriptors fall by this factor until all fit

Describer = Callable[[Sequence[int]], "list[np.ndarray | None]"]  # rows → each one's descriptors (None: no picture)
Assigner = Callable[[np.ndarray, np.ndarray, int], np.ndarray]  # `nearest_lists` given the descriptors' owners: (owners, descriptors, lists)


def per_picture(pictures: int, most: int, budget: int = BUDGET) -> int:
    """Descriptors kept of each of `pictures` pictures that have at most `most`: `most`, or
    fewer by `STEP`s until all fit in `budget`."""
    keep = most
    while keep > 1 and keep * pictures > budget:
        keep = max(1, int(keep * STEP))
    return keep


def spread(kp: Keypoints, keep: int) -> np.ndarray:
    """At most `keep` of a picture's descriptors, evenly through ORB's list (which goes scale by scale)."""
    d = kp.descriptors
    if len(d) <= keep:
        return d
    return d[np.linspace(0, len(d) - 1, keep).round().astype(np.int64)]


def vote_pairs(rows: Sequence[int], descriptors: Callable[[int], np.ndarray | None], *,
               k: int = NEIGHBOURS, across: int | None = None, assign: Assigner | None = None) -> Pairs:
    """Pairs (i < j, sorted) of `rows` where one is among the other's `k` best-voted pictures;
    `descriptors(row)` is a row's descriptors ((n, 32) uint8; None or empty: the row takes no
    part). With `across`, the rows below it are one set and the others another, and only votes
    between the two sets count. A pair's `d` is its share of votes (higher: more shared corners).
    `assign` finds each descriptor's nearest lists as `nearest_lists` does (one that remembers them)."""
    owner, desc = _stacked(rows, descriptors)
    if owner is None or owner[0] == owner[-1]:  # no picture, or one (`_stacked` lists them in order)
        return Pairs.empty()
    a, b = _votes(owner, desc, assign)
    if across is not None:
        a, b = a[(a < across) != (b < across)], b[(a < across) != (b < across)]
    count = np.bincount(owner).astype(np.float64)
    lo, hi, score = _scored(np.minimum(a, b), np.maximum(a, b), count, count)
    best = nearest_ranks(Pairs(lo, hi, -score)) < k  # each picture's partners ranked by score, best first
    return Pairs(lo[best], hi[best], score[best])


@dataclass(frozen=True)
class Searched:
    """The descriptors of a set of pictures, searchable by other pictures' (`searched`):
    descriptor m is of row `owners[m]`, and row r has `counts[r]`; each picture gave at most `keep`
    (`per_picture`), and so should the pictures searching them (`spread`)."""

    owners: np.ndarray
    counts: np.ndarray
    index: object  # a FAISS index over the descriptors (`_searcher`)
    keep: int

    def best(self, descriptors: Sequence[np.ndarray | None], k: int = NEIGHBOURS) -> Pairs:
        """Pairs (q, row) of each picture q, whose descriptors are `descriptors[q]` (None or empty:
        it takes no part), with its `k` best-voted rows, voted and scored as within one catalog;
        `d` the score. Sorted by q, best first."""
        owner, desc = _stacked(range(len(descriptors)), descriptors.__getitem__)
        if owner is None:
            return Pairs.empty()
        dist, near = self.index.search(desc, min(NEAREST, len(self.owners)))
        ok = _voting(dist, near)
        a, b = np.broadcast_to(owner[:, None], near.shape)[ok], self.owners[near[ok]]
        q, row, score = _scored(a, b, np.bincount(owner, minlength=len(descriptors)).astype(np.float64), self.counts)
        order = np.lexsort((-score, q))
        best = order[np.arange(len(order)) - np.searchsorted(q[order], q[order]) < k]
        return Pairs(q[best], row[best], score[best])


def searched(descriptors: Sequence[np.ndarray | None], keep: int, assign: Assigner | None = None) -> Searched | None:
    """`descriptors` (row r's at `descriptors[r]`, at most `keep` each; None or empty: it takes no
    part) made searchable, their lists found by `assign` (as `vote_pairs`'); None when there are none."""
    owner, desc = _stacked(range(len(descriptors)), descriptors.__getitem__)
    if owner is None:
        return None
    index = _searcher(desc, None if assign is None else partial(assign, owner))[0]
    return Searched(owner, np.bincount(owner, minlength=len(descriptors)).astype(np.float64), index, keep)


def _stacked(rows: Sequence[int], descriptors: Callable[[int], np.ndarray | None]
             ) -> tuple[np.ndarray, np.ndarray] | tuple[None, None]:
    """Every descriptor of `rows` (`descriptors(row)`), with its row; (None, None) without any."""
    owner, desc = [], []
    for r in rows:
        d = descriptors(r)
        if d is not None and len(d):
            owner.append(np.full(len(d), r, np.int64))
            desc.append(d)
    if not desc:
        return None, None
    return np.concatenate(owner), np.ascontiguousarray(np.concatenate(desc))


def _scored(a: np.ndarray, b: np.ndarray, count_a: np.ndarray, count_b: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The pairs (a, b) that got at least `MIN_VOTES` of the votes (one entry a vote), each once,
    sorted, with their votes normalised by both pictures' descriptor counts (`count_a[a]`, `count_b[b]`)."""
    top = max(len(count_a), len(count_b))
    key, votes = np.unique(a * top + b, return_counts=True)
    keep = votes >= MIN_VOTES
    lo, hi, votes = key[keep] // top, key[keep] % top, votes[keep]
    return lo, hi, (votes / np.sqrt(count_a[lo] * count_b[hi])).astype(np.float32)


def _votes(owner: np.ndarray, desc: np.ndarray, assign: Assigner | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Every vote: the owner of a descriptor of `desc` and the owner of a neighbour it votes for
    (one entry per vote), searched `QUERY_BLOCK` descriptors at a time."""
    index, lists = _searcher(desc, None if assign is None else partial(assign, owner))
    nearest = min(NEAREST, len(desc) - 1) + 1  # the first is the descriptor itself
    found_a, found_b = [], []
    for start in range(0, len(desc), QUERY_BLOCK):
        block = slice(start, start + QUERY_BLOCK)
        dist, near = (index.search(desc[block], nearest) if lists is None  # each searches the lists it was added to
                      else index.search_preassigned(desc[block], nearest, lists[block], None))
        ok = _voting(dist, near)
        a = np.broadcast_to(owner[block, None], near.shape)[ok]
        b = owner[near[ok]]
        found_a.append(a[a != b])
        found_b.append(b[a != b])
    return np.concatenate(found_a), np.concatenate(found_b)


def _voting(dist: np.ndarray, near: np.ndarray) -> np.ndarray:
    """Which of the neighbours found (`near`, at Hamming distances `dist`, nearest first, a row a
    descriptor) get its vote: within `HAMMING` bits and clearly nearer than the last (`RATIO`)."""
    return (near >= 0) & (dist <= HAMMING) & (dist < RATIO * dist[:, -1:])


def list_counts() -> list[int]:
    """The list counts the search uses: the powers of two from `MIN_LISTS` to `MAX_LISTS`."""
    return [1 << b for b in range(MIN_LISTS.bit_length() - 1, MAX_LISTS.bit_length())]


def lists_for(descriptors: int) -> int:
    """The lists a search of `descriptors` descriptors goes through: the largest of `list_counts`
    that leaves about `PER_LIST` a list; 0 (an exact search) below `MIN_LISTS` lists' worth."""
    fits = [c for c in list_counts() if c * PER_LIST <= descriptors]
    return fits[-1] if fits else 0


@cache
def centroids(lists: int) -> np.ndarray:
    """The shipped centroids of `lists` inverted lists ((lists, 32) uint8; `LISTS_FILE`)."""
    with resources.as_file(resources.files("dedup") / "assets" / LISTS_FILE) as path, np.load(path) as shipped:
        return np.ascontiguousarray(shipped[f"lists_{lists}"])


def _searcher(desc: np.ndarray, assign: Callable[[np.ndarray, int], np.ndarray] | None = None
              ) -> tuple[object, np.ndarray | None]:
    """A FAISS index of `desc`: exact for a few, else through the shipped inverted lists; and,
    through lists, each descriptor's `PROBE` nearest lists (`assign(desc, lists)`, else
    `nearest_lists`), the first the one it is added to, so that searching the descriptors
    themselves need not find them again."""
    bits = 8 * desc.shape[1]
    lists = lists_for(len(desc))
    if not lists:
        index = faiss.IndexBinaryFlat(bits)
        index.add(desc)
        return index, None
    index = faiss.IndexBinaryIVF(_quantizer(lists), bits, lists)
    index.nprobe = PROBE
    nearest = np.ascontiguousarray((nearest_lists if assign is None else assign)(desc, lists), np.int64)
    first = np.ascontiguousarray(nearest[:, 0])
    index.add_core(len(desc), faiss.swig_ptr(desc), None, faiss.swig_ptr(first))  # `first` is held while FAISS reads it
    return index, nearest


def nearest_lists(desc: np.ndarray, lists: int) -> np.ndarray:
    """Each descriptor's `PROBE` nearest of the shipped `lists` lists ((n, PROBE) int64)."""
    return _quantizer(lists).search(np.ascontiguousarray(desc), PROBE)[1]


def _quantizer(lists: int) -> faiss.IndexBinaryFlat:
    """An exact index of the shipped centroids of `lists` lists."""
    quantizer = faiss.IndexBinaryFlat(8 * centroids(lists).shape[1])
    quantizer.add(centroids(lists))
    return quantizer


def held(pairs: Pairs, maps: PairMaps, frames: tuple[np.ndarray, np.ndarray], share: float = HELD_SHARE, *,
         second: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Per pair: by its keypoint map (in `maps`; a pair without one is not), one picture lies
    inside the other and covers at most `share` of its area (`dedup.seams.held_share`);
    `frames`: every row's height and width. With `second` (the frames of a second set), `pairs.j`
    are rows of that set, whose maps are kept at `SECOND_SET + j` (as `CheckedPolicy.decide` gives them)."""
    found, at = maps.find(pairs.i, pairs.j if second is None else pairs.j + SECOND_SET)
    out = np.zeros(len(pairs), bool)
    for k in np.flatnonzero(found).tolist():
        a, b = (int(f[pairs.i[k]]) for f in frames), (int(f[pairs.j[k]]) for f in (frames if second is None else second))
        covered = held_share(maps.maps[at[k]], tuple(a), tuple(b))
        out[k] = covered is not None and covered <= share
    return out
