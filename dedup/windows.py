"""Windows of pictures: a heavy crop of a picture, or a picture pasted onto another, busier one.

The encoder sees a whole picture. A crop that keeps a fifth of a drawing, or the drawing pasted
onto a photo, lands far from the whole drawing in its space. So each row's check picture
(`dedup.pictures`, kept in the index) is also seen through a few windows (`WINDOWS`: each
`SIDE` of the picture's sides, in its corners and centre), embedded as any picture is
(`window_vectors`). A window of a picture lands near a crop of that picture, and a window of a
busy picture near the picture pasted into it. `window_pairs` pairs each window's row with the
rows nearest the window, as the pair check's candidates are found; the check then compares the
two whole pictures and accepts only agreeing keypoints (`dedup.policy.required_inliers`): a
window's distance is not the pictures'.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from dedup.config import Framing
from dedup.framing import to_input
from dedup.keypoints import Pictures
from dedup.pairs import Pairs, among
from dedup.parts import Embed, looked_vectors
from dedup.pictures import rgb_of
from dedup.search import cross_knn_pairs

SIDE = 0.6  # a window's share of each side of the picture
WINDOWS = ((0.0, 0.0), (1.0, 0.0), (0.0, 1.0), (1.0, 1.0), (0.5, 0.5))  # where each window sits (share of the room left)
MIN_PX = 64  # pictures with a shorter side than this are not looked at through windows (an icon: a window under 39 px, blown up)
BLOCK_ROWS = 65_536  # pictures whose windows are held at once (their vectors: ~84 MB)
NEIGHBOURS = 3  # a window is paired with this many nearest pictures
REACH = 0.7  # ... closer than this (beyond it, two thirds of the pairs and a fifth of the confirmed true ones)
KIND = "windows"  # the windows' vectors in the pair-check memo (`dedup.checkmemo.PairChecks.parts`)


def window_inputs(picture: bytes, size: int, framing: Framing) -> list[np.ndarray]:
    """The encoder's (size, size, 3) inputs of a check picture's windows; none for a small picture."""
    rgb = rgb_of(picture)
    h, w = rgb.shape[:2]
    if min(h, w) < MIN_PX:
        return []
    cw, ch = round(w * SIDE), round(h * SIDE)
    out = []
    for fx, fy in WINDOWS:
        x, y = round(fx * (w - cw)), round(fy * (h - ch))
        out.append(to_input(Image.fromarray(np.ascontiguousarray(rgb[y:y + ch, x:x + cw])), size, framing))
    return out


def window_vectors(pictures: Pictures, rows: Sequence[int], embed: Embed, size: int, framing: Framing,
                   workers: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """For every window of the check pictures `pictures(row)` of `rows`: its row, and its vector
    (`embed` of its input). A picture that cannot be had has none."""
    return looked_vectors(rows, lambda row: window_inputs(pictures(row), size, framing), embed, workers)


def near_windows(index, owners: np.ndarray, vectors: np.ndarray, threshold: float, k: int = NEIGHBOURS) -> Pairs:
    """Pairs (`owners[m]`, j) of window m (`vectors[m]`) with each of the `k` rows j of FAISS
    `index` nearest it and closer than `threshold`, at the window's distance; a pair once for each
    window it is found through."""
    if not len(owners):
        return Pairs.empty()
    near = cross_knn_pairs(index, vectors, k, threshold)
    return Pairs(owners[near.i], near.j, near.d)


def owners_near(index, owners: np.ndarray, vectors: np.ndarray, threshold: float, k: int = NEIGHBOURS) -> Pairs:
    """Pairs (m, row) of vector m (`vectors[m]`) with each of the `k` rows whose windows, in FAISS
    `index` (window w of row `owners[w]`), come nearest it and closer than `threshold`: a picture
    that is a crop of the row's, or that the row's shows pasted onto a busier one. Each pair once,
    at its nearest window's distance, sorted by (m, row)."""
    if not len(owners) or not len(vectors):
        return Pairs.empty()
    near = cross_knn_pairs(index, vectors, k * len(WINDOWS), threshold)  # a row's own windows may come first
    pairs = each_once([Pairs(near.i, owners[near.j], near.d)], Pairs.empty())
    by_distance = np.lexsort((pairs.d, pairs.i))
    place = np.arange(len(by_distance)) - np.searchsorted(pairs.i[by_distance], pairs.i[by_distance])
    return pairs[np.sort(by_distance[place < k])]


def window_pairs(index, owners: np.ndarray, vectors: np.ndarray, threshold: float, known: Pairs, *,
                 k: int = NEIGHBOURS) -> Pairs:
    """Pairs (i < j) of `index`'s own rows where the other row is among the `k` rows nearest a
    window of one (window m of row `owners[m]`) and closer to it than `threshold`; each pair once,
    at its smallest window distance, leaving out the pairs of `known`."""
    near = near_windows(index, owners, vectors, threshold, k + 1)  # a window's nearest may be its own row
    near = near[near.i != near.j]
    return each_once([Pairs(np.minimum(near.i, near.j), np.maximum(near.i, near.j), near.d)], known)


def each_once(found: Sequence[Pairs], known: Pairs) -> Pairs:
    """The pairs of `found`, each once at its smallest distance, sorted by (i, j), without those
    of `known` (sorted by (i, j))."""
    if not found:
        return Pairs.empty()
    i, j, d = (np.concatenate([getattr(p, side) for p in found]) for side in "ijd")
    order = np.lexsort((d, j, i))
    i, j, d = i[order], j[order], d[order]
    first = np.ones(len(i), bool)
    first[1:] = (i[1:] != i[:-1]) | (j[1:] != j[:-1])
    pairs = Pairs(i[first].astype(np.int64), j[first].astype(np.int64), d[first].astype(np.float32))
    return pairs[~among(pairs, known)]
