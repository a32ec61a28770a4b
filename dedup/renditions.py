"""Renditions: one picture stored at two of a catalog's standard sizes; numpy only.

An icon theme draws each icon again at every size it ships (32, 48, 256 px), and a shop or a
photo library keeps each picture as a thumbnail beside the full size. A rendition drawn again,
or brought down to a few dozen pixels, keeps few of the large picture's keypoints, so the pair
check (`dedup.policy.CheckedPolicy`) cannot confirm the two; the encoder still puts them nearest
each other. A candidate pair is taken as two renditions of one picture when:

- each picture is stored at a standard size of the catalog: one that at least `STANDARD` pictures
  share, as an icon theme's sizes or a shop's thumbnails do;
- the two sizes are at least `SCALE` apart, in one proportion (`PROPORTION`): one picture at
  another scale, not two drawings of one frame (cards of two decks drawn at one height);
- each is the other's nearest candidate among the pictures stored at its size, they are closer
  than the policy's rendition distance (`reach`), and neither is told apart by the check from a
  picture as near the other (a 48-px thumbnail no longer shows the letter that tells two items
  of a series apart); or the two are joined through such pairs (an icon's 32- and 256-px
  renditions, each the nearest of its 48-px one). Every two sizes of such a family are
  paired, candidates or not (`rendition_pairs`): the candidate search bounds what the check
  looks at, not which sizes one picture has;
- the check did not tell them apart (a differing detail or colourway, `dedup.details`).

Two pictures of one size are never renditions: look-alike items of one series are drawn at one
size, and there only the check decides. The bounds were chosen on the `gnome-icon-theme` library
and the validation catalogs of `benchmarks.details` (docs/experiments.md, "Renditions"), never on
the held-out ones.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from dedup.cluster import component_labels
from dedup.pairs import Pairs, locate, sorted_pairs
from dedup.results import Group

STANDARD = 20  # pictures that share a size for it to be one of the catalog's standard sizes
SCALE = 1.3  # the longer sides of two renditions differ at least this much
PROPORTION = 0.05  # ... and their proportions (width / height) at most this much (as a log ratio)
REACH = 2 / 3  # the rendition distance: this share of the way from the encoder's threshold to the candidate distance
FAMILY = 16  # a family of more pictures pairs only its candidates (a chain gone astray stays bounded)


def reach(encoder_threshold: float, candidates: float) -> float:
    """The distance below which a pair may be two renditions, for a policy's two distances."""
    return encoder_threshold + REACH * max(0.0, candidates - encoder_threshold)


def are_renditions(pairs: Pairs, width: np.ndarray, height: np.ndarray, within: float,
                   apart: np.ndarray | None = None) -> np.ndarray:
    """Per candidate pair of `pairs` (rows i < j of one catalog, as `CheckedPolicy.candidates`
    finds them): whether its two pictures are renditions of one (the module's rules). `width`
    and `height`: every row's stored size; `within`: the rendition distance (`reach`); `apart`:
    per pair, told apart by the check."""
    eligible, family = _families(pairs, np.asarray(width, np.int64), np.asarray(height, np.int64), within, apart)
    return eligible & (family[pairs.i] == family[pairs.j])


def _families(pairs: Pairs, width: np.ndarray, height: np.ndarray, within: float,
              apart: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Per pair, whether its two pictures are stored at two standard sizes as the rules ask and
    not told apart; and per row, its family (`component_labels` of the rendition pairs the rules
    seed it with: mutual nearest, within reach, not ambiguous)."""
    if not len(pairs):
        return np.zeros(0, bool), np.arange(len(width))
    _, size, counts = np.unique((width << 32) | height, return_inverse=True, return_counts=True)
    size = size.reshape(-1).astype(np.int64)
    standard = counts[size] >= STANDARD
    i, j = np.asarray(pairs.i), np.asarray(pairs.j)
    looked = np.flatnonzero(standard[i] & standard[j] & (size[i] != size[j]))
    # each looked-at pair in both directions: picture `src`'s candidate `dst`, of size `size[dst]`
    m = len(looked)
    src, dst = np.concatenate([i[looked], j[looked]]), np.concatenate([j[looked], i[looked]])
    among = src * len(counts) + size[dst]  # a picture's candidates of one other size
    order = np.lexsort((np.concatenate([pairs.d[looked]] * 2), among))
    first = np.ones(2 * m, bool)  # each picture's nearest candidate of each other standard size
    first[1:] = among[order][1:] != among[order][:-1]
    nearest = np.zeros(2 * m, bool)
    nearest[order[first]] = True
    mutual = np.zeros(len(pairs), bool)
    mutual[looked] = nearest[:m] & nearest[m:]
    sizes_apart = standard[i] & standard[j] & (size[i] != size[j]) & _rescaled(i, j, width, height)
    near = np.asarray(pairs.d) < within
    seeds = mutual & sizes_apart & near
    if apart is not None:
        apart = np.asarray(apart, bool)
        sizes_apart &= ~apart
        seeds &= ~apart & ~_ambiguous(pairs, apart, near, len(width))
    return sizes_apart, component_labels(len(width), pairs[seeds])


def _rescaled(i: np.ndarray, j: np.ndarray, width: np.ndarray, height: np.ndarray) -> np.ndarray:
    """Per pair (i, j): whether the two stored sizes are `SCALE` apart or more, in one proportion."""
    longer_i, longer_j = np.maximum(width[i], height[i]), np.maximum(width[j], height[j])
    scale = np.maximum(longer_i, longer_j) / np.maximum(1, np.minimum(longer_i, longer_j))
    proportion = np.abs(np.log(np.maximum(1, width[i] * height[j]) / np.maximum(1, height[i] * width[j])))
    return (scale >= SCALE) & (proportion <= PROPORTION)


def rendition_pairs(pairs: Pairs, width: np.ndarray, height: np.ndarray, within: float, vectors: np.ndarray,
                    apart: np.ndarray | None = None) -> Pairs:
    """The pairs of pictures that are renditions of one (`are_renditions` on the candidate
    `pairs`), and every other two pictures of one family of renditions stored at two sizes as
    the rules ask, at the distance of their `vectors`; never a pair told apart (`apart`)."""
    width, height = np.asarray(width, np.int64), np.asarray(height, np.int64)
    eligible, label = _families(pairs, width, height, within, apart)
    found = pairs[eligible & (label[pairs.i] == label[pairs.j])]
    if not len(found):
        return found
    members = np.unique(np.concatenate([found.i, found.j]))
    members = members[np.argsort(label[members], kind="stable")]
    parts_i, parts_j = [found.i], [found.j]
    for family in np.split(members, np.flatnonzero(np.diff(label[members])) + 1):
        if len(family) <= FAMILY:
            a, b = np.triu_indices(len(family), 1)
            parts_i.append(np.minimum(family[a], family[b]))
            parts_j.append(np.maximum(family[a], family[b]))
    i, j = np.concatenate(parts_i), np.concatenate(parts_j)
    keep = _rescaled(i, j, width, height)
    if apart is not None and np.any(apart):
        told = pairs[np.asarray(apart, bool)]
        told = sorted_pairs([told.i], [told.j], [told.d], unique=True)
        keep &= ~locate(i, j, told.i, told.j)[0]
    i, j = i[keep], j[keep]
    d = np.sqrt(((vectors[i].astype(np.float32) - vectors[j].astype(np.float32)) ** 2).sum(axis=1))
    return sorted_pairs([i], [j], [d.astype(np.float32)], unique=True)


def _ambiguous(pairs: Pairs, apart: np.ndarray, near: np.ndarray, n: int) -> np.ndarray:
    """Per pair (a, b): whether the check told a apart from some picture c that is a candidate
    of b within reach (`near`), or b from one within reach of a."""
    i, j = np.asarray(pairs.i), np.asarray(pairs.j)
    told_x, told_y = np.concatenate([i[apart], j[apart]]), np.concatenate([j[apart], i[apart]])  # x told apart from y
    near_y, near_t = np.concatenate([i[near], j[near]]), np.concatenate([j[near], i[near]])  # y's candidate t within reach
    order = np.argsort(near_y, kind="stable")
    near_y, near_t = near_y[order], near_t[order]
    start, end = np.searchsorted(near_y, told_y, "left"), np.searchsorted(near_y, told_y, "right")
    count = end - start
    offsets = np.repeat(start - np.concatenate([[0], np.cumsum(count)[:-1]]), count) + np.arange(count.sum())
    keys = np.unique(np.repeat(told_x, count) * n + near_t[offsets])  # (x, t): x told apart from a picture near t
    return np.isin(i * n + j, keys) | np.isin(j * n + i, keys)


def marked(groups: list[Group], a: Sequence[str], b: Sequence[str]) -> list[Group]:
    """`groups` with `Member.rendition` set on each member whose pair with its keeper is one of
    the rendition pairs (`a[k]`, `b[k]`, catalog paths)."""
    if not len(a):
        return groups
    pairs = {frozenset(p) for p in zip(a, b)}
    out = []
    for g in groups:
        if any(frozenset((g.keep, m.path)) in pairs for m in g.members):
            g = replace(g, members=tuple(replace(m, rendition=True) if frozenset((g.keep, m.path)) in pairs else m
                                         for m in g.members))
        out.append(g)
    return out
