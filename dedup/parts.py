"""Pictures within pictures: a picture pasted into a larger page (a screenshot of a web page, a
product photo among text and buttons, a scan of a printed page) has a vector of its own, so that
find-duplicates can pair the pasted picture with its duplicates.

The encoder sees the whole page, and a page's vector is far from that of the picture pasted into
it. `part_box` looks for such a picture on a row's check picture (`dedup.pictures`, kept in the
index): the page's frame is mostly one colour, and once thin strokes (lines of text, rules, bars)
are opened away, what differs from that colour has one largest block, clearly smaller than the page
and than all of its content (else the encoder's framing already trims to it), that stands on the
page (mostly page around it: a part of a drawing is joined to the rest). The block is cut out,
framed as the encoder frames any picture and embedded (`part_vectors`); `part_pairs` pairs each
part with its nearest indexed pictures, as the pair check's candidates are found. A pair found
through a part is accepted only on agreeing keypoints (`dedup.policy.required_inliers`): its
distance is the pasted picture's, not the page's.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache, partial

import cv2
import numpy as np
from PIL import Image

from dedup.config import Framing
from dedup.framing import border_colour, to_input
from dedup.images import DECODE_ERRORS, ImageSkip
from dedup.keypoints import Pictures
from dedup.pairs import Pairs, among
from dedup.pictures import picture_bytes, rgb_of
from dedup.search import cross_knn_pairs

PAGE_TOLERANCE = 12  # largest channel difference from the page's colour that is still page (a white card on an off-white page is not)
STROKE = 1 / 24  # strokes thinner than this share of the shorter side are opened away (text, rules, bars)
MIN_SIDE = 0.12  # a part spans at least this share of each side of the page
MAX_AREA = 0.6  # a part's box covers at most this share of the page
MAX_OF_CONTENT = 0.7  # ... and at most this share of the box of all that differs from the page's colour
SURROUND, MAX_SURROUND = 0.03, 0.2  # a strip this share of the shorter side wide around the part is at most this much not page
BLOCKS = 3  # the largest blocks looked at for one of a picture's shape (a page's banner or bar can be larger)
MIN_PAGE_PX = 48  # pages with a shorter side than this have no parts looked for
LOOK_SIDE = 128  # pages are looked at with every k-th pixel, their longer side brought down to about this
BLOCK = 256  # pictures looked at, and parts embedded, at a time
CUTS = 4096  # parts' check pictures kept once cut out (a few kB each)
HOLDS = 0.6  # a page holds another picture when its part is at most this share of the page's distance from it
NEIGHBOURS = 8  # a pasted picture is paired with this many nearest pictures (its duplicates are among the first few)

Embed = Callable[[np.ndarray], np.ndarray]  # (n, size, size, 3) uint8 → (n, dim) unit vectors
PartFinder = Callable[..., "tuple[np.ndarray, np.ndarray]"]  # `part_vectors`' signature: (pictures, rows, embed, size, framing, workers)
Inputs = Callable[[bytes, int, Framing], "list[np.ndarray]"]  # a check picture's encoder inputs: `part_inputs`' signature
Looker = Callable[..., "tuple[np.ndarray, np.ndarray]"]  # (look: picture → inputs, pictures, rows, model) → rows, vectors


def part_box(rgb: np.ndarray) -> tuple[int, int, int, int] | None:
    """(left, top, right, bottom) of the picture pasted into the page `rgb` ((h, w, 3) uint8), or
    None when it is not a page with one."""
    h, w = rgb.shape[:2]
    if min(h, w) < MIN_PAGE_PX:
        return None
    step = max(1, max(h, w) // LOOK_SIDE)  # blocks are large: every k-th pixel shows them
    box = _block(np.ascontiguousarray(rgb[::step, ::step]))
    if box is None:
        return None
    left, top, right, bottom = box
    return left * step, top * step, min(w, right * step), min(h, bottom * step)


def _block(rgb: np.ndarray) -> tuple[int, int, int, int] | None:
    """`part_box` on the page as looked at."""
    h, w = rgb.shape[:2]
    colour = border_colour(rgb)
    if colour is None:
        return None
    r, g, b = cv2.split(cv2.absdiff(rgb, (*np.round(colour).tolist(), 0.0)))  # a 4-tuple is a per-channel scalar to OpenCV
    content = (cv2.max(cv2.max(r, g), b) > PAGE_TOLERANCE).view(np.uint8)  # the largest channel difference
    side = max(3, round(min(h, w) * STROKE)) | 1
    blocks = cv2.morphologyEx(content, cv2.MORPH_OPEN, np.ones((side, side), np.uint8))
    count, _, stats, _ = cv2.connectedComponentsWithStats(blocks, connectivity=8)
    if count <= 1:
        return None
    rows, cols = np.flatnonzero(content.any(axis=1)), np.flatnonzero(content.any(axis=0))
    everything = (rows[-1] - rows[0] + 1) * (cols[-1] - cols[0] + 1)
    for k in 1 + np.argsort(-stats[1:, cv2.CC_STAT_AREA], kind="stable")[:BLOCKS]:  # largest first (a banner may lead)
        x, y, bw, bh, _ = (int(v) for v in stats[k])
        if bw < MIN_SIDE * w or bh < MIN_SIDE * h or bw * bh > MAX_AREA * w * h:
            continue
        if bw * bh > MAX_OF_CONTENT * everything or _surround(content, (x, y, x + bw, y + bh)) > MAX_SURROUND:
            return None
        return x, y, x + bw, y + bh
    return None


def _surround(content: np.ndarray, box: tuple[int, int, int, int]) -> float:
    """The share of the strip around `box` (`SURROUND` of the shorter side wide) where `content`
    is set."""
    h, w = content.shape
    m = max(2, round(SURROUND * min(h, w)))
    left, top, right, bottom = box
    outer = content[max(0, top - m):bottom + m, max(0, left - m):right + m]
    strip = outer.size - (bottom - top) * (right - left)
    return float((np.count_nonzero(outer) - np.count_nonzero(content[top:bottom, left:right])) / strip) if strip else 0.0


def _cut(picture: bytes) -> Image.Image | None:
    """The part of a check picture, cut out at the size it has there; None without one."""
    rgb = rgb_of(picture)
    box = part_box(rgb)
    if box is None:
        return None
    left, top, right, bottom = box
    return Image.fromarray(rgb[top:bottom, left:right])


def part_picture(picture: bytes) -> bytes:
    """The part of a check picture as a check picture of its own (`dedup.pictures`), at the
    size it has there: the pair check matches it, not the page, whose text and bars would take
    most of the keypoints. Raises `ImageSkip` when the picture has no part."""
    part = _cut(picture)
    if part is None:
        raise ImageSkip("no picture pasted into it")
    return picture_bytes(part)


def part_pictures(pictures: Pictures, rows: np.ndarray) -> Pictures:
    """Part m's check picture (`part_picture` of `pictures(rows[m])`), each made once while
    `CUTS` are kept: the pair check asks for it when matching and when looking for details."""
    return lru_cache(maxsize=CUTS)(lambda m: part_picture(pictures(int(rows[m]))))


def part_input(picture: bytes, size: int, framing: Framing) -> np.ndarray | None:
    """The encoder's (size, size, 3) input of the part of a check picture, or None without one."""
    part = _cut(picture)
    return None if part is None else to_input(part, size, framing)


def part_inputs(picture: bytes, size: int, framing: Framing) -> list[np.ndarray]:
    """`part_input` as a list: none, or the part's."""
    part = part_input(picture, size, framing)
    return [] if part is None else [part]


def part_vectors(pictures: Pictures, rows: Sequence[int], embed: Embed, size: int, framing: Framing,
                 workers: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """The rows among `rows` whose check picture `pictures(row)` has a part, and the parts'
    vectors (`embed` of their inputs). A picture that cannot be had has none."""
    return looked_vectors(rows, lambda row: part_inputs(pictures(row), size, framing), embed, workers)


def finder_on(looker: Looker, inputs: Inputs, model: object) -> PartFinder:
    """A finder with `part_vectors`' signature whose pictures `looker` looks at (on another
    engine: `dedup.onray.looking`): `inputs` makes a picture's encoder inputs, `model` embeds them."""
    def find(pictures: Pictures, rows: Sequence[int], embed: Embed, size: int, framing: Framing,
             workers: int = 2) -> tuple[np.ndarray, np.ndarray]:
        return looker(partial(inputs, size=size, framing=framing), pictures, rows, model)

    return find


def looked_vectors(rows: Sequence[int], look: Callable[[int], list[np.ndarray]], embed: Embed,
                   workers: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """For every encoder input `look(row)` makes of a row's check picture: its row, and its
    vector (`embed` of it); `BLOCK` rows at a time, their inputs made on `workers` threads while
    the block before is embedded. A picture that cannot be had gives none."""
    def inputs_of(row: int) -> list[np.ndarray]:
        try:
            return look(row)
        except (ImageSkip, cv2.error, *DECODE_ERRORS):
            return []

    owners: list[int] = []
    found: list[np.ndarray] = []
    rows = list(rows)
    blocks = [rows[start:start + BLOCK] for start in range(0, len(rows), BLOCK)]
    with ThreadPoolExecutor(max(1, workers), thread_name_prefix="looks") as pool:
        ahead = [pool.submit(inputs_of, r) for r in blocks[0]] if blocks else []
        for k, chunk in enumerate(blocks):
            made = [f.result() for f in ahead]
            # the next block's inputs are made while this one's are embedded (the encoder releases the GIL)
            ahead = [pool.submit(inputs_of, r) for r in blocks[k + 1]] if k + 1 < len(blocks) else []
            inputs = [(r, x) for r, xs in zip(chunk, made) for x in xs]
            if inputs:
                owners.extend(r for r, _ in inputs)
                found.append(embed(np.stack([x for _, x in inputs])))
    vectors = np.concatenate(found).astype(np.float32) if found else np.zeros((0, 0), np.float32)
    return np.array(owners, np.int64), vectors


def part_pairs(index, part_rows: np.ndarray, vectors: np.ndarray, threshold: float, known: Pairs, *,
               k: int = NEIGHBOURS, within: bool = True) -> Pairs:
    """Pairs (m, j) of part m (of row `part_rows[m]`) with each of the `k` rows j of FAISS `index`
    nearest to it and closer than `threshold`, at the part's distance, leaving out the pairs of
    `known` (found by the pictures' own vectors: (i < j) pairs `within` one set, else (row, j)).
    `within`: the parts are of `index`'s own rows, and a part is not paired with its own row."""
    if not len(part_rows):
        return Pairs.empty()
    near = cross_knn_pairs(index, vectors, k + within, threshold)
    rows = part_rows[near.i]
    if within:
        mine = rows != near.j
        near, rows = near[mine], rows[mine]
        pairs = Pairs(np.minimum(rows, near.j), np.maximum(rows, near.j), near.d)
    else:
        pairs = Pairs(rows, near.j, near.d)
    return near[~among(pairs, known)]


@dataclass(frozen=True)
class Parts:
    """The rows whose pictures have a part, and the parts' vectors."""

    rows: np.ndarray  # sorted
    vectors: np.ndarray

    def holders(self, pairs: Pairs, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Of `pairs`, however they were found, those where one row's part is much nearer the other
        row's picture than the row itself is (`HOLDS`): (the pages, the rows whose picture they
        hold). `vectors`: the rows' own."""
        i, j = pairs.i, pairs.j
        none = np.zeros(0, np.int64)
        if not len(self.rows) or not len(i):
            return none, none
        whole = np.linalg.norm(vectors[i] - vectors[j], axis=1)

        def holds(page: np.ndarray, other: np.ndarray) -> np.ndarray:
            at = np.minimum(np.searchsorted(self.rows, page), len(self.rows) - 1)
            has = self.rows[at] == page
            out = np.zeros(len(page), bool)
            out[has] = np.linalg.norm(self.vectors[at[has]] - vectors[other[has]], axis=1) < HOLDS * whole[has]
            return out

        by_i, by_j = holds(i, j), holds(j, i)
        return np.concatenate([i[by_i], j[by_j]]), np.concatenate([j[by_i], i[by_j]])
