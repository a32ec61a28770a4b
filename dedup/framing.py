"""Frame a decoded picture for the encoder: the (size, size, 3) input, with the model's `Framing`.

Catalog copies of one picture often differ only in what surrounds it: white margins, letterboxing, a
product cut out and placed on another backdrop colour. Borders and backdrops are judged on the
downscaled image, where sensor and JPEG noise are averaged away; a picture whose frame is not mostly
one colour (a photo) is left as it is, and so is a plain picture (one colour throughout: a swatch, a
blank page), whose colour is all it shows."""
from __future__ import annotations

from typing import Callable

import numpy as np
from PIL import Image

from dedup.config import Framing

TRIM_TOLERANCE = 24  # max channel difference from the border colour that still counts as border
TRIM_MIN_SIDE = 0.125  # content narrower than this share of a side is not zoomed into
UNIFORM_FRAME = 0.6  # share of the frame within tolerance of its median colour for a one-colour frame
SHARPER_FROM = 1.25  # enlargement of a trimmed part above which a reduced-scale JPEG is decoded again
BACKDROP_FRAME = 0.3  # share of the framed input's edge still showing the backdrop for it to be repainted
BACKDROP_BLEND = 80  # colour distance over which anti-aliased edges blend from backdrop into the object


def to_input(rgb: Image.Image, size: int, framing: Framing = Framing(),
             sharper: Callable[[float], Image.Image] | None = None) -> np.ndarray:
    """The encoder's (size, size, 3) uint8 input for an RGB image.

    `framing.trim` cuts uniform borders first, so the same picture with other margins fills the
    frame the same way. `framing.backdrop` then repaints a plain backdrop white (`whiten_backdrop`).
    A `plain` picture is neither: a red swatch stays red.
    `sharper(factor)`, where given, decodes the same picture at `factor` × `rgb`'s resolution (or
    as close as it can): a JPEG decoded at a reduced scale is decoded again when its trimmed part
    would otherwise be enlarged, so it is framed as sharply as the same picture in another format."""
    small = rgb.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=3.0)
    arr = np.asarray(small, dtype=np.uint8)
    if not (framing.trim or framing.backdrop):
        return arr
    colour = border_colour(arr)
    if colour is None or plain(arr, colour):
        return arr
    if framing.trim:
        box = content_box(arr, colour)
        if box is not None:
            # how much the trimmed part of `rgb` would be enlarged to fill the input
            enlarge = size / min((box[2] - box[0]) / size * rgb.width, (box[3] - box[1]) / size * rgb.height)
            arr = _crop(sharper(enlarge) if sharper is not None and enlarge > SHARPER_FROM else rgb, size, box)
    if framing.backdrop:
        arr = whiten_backdrop(arr, colour)
    return arr


def border_colour(arr: np.ndarray) -> np.ndarray | None:
    """The median colour of an (h, w, 3) array's outer frame, or None when the frame is not mostly
    that one colour."""
    frame = _frame(arr)
    colour = np.median(frame, axis=0)
    if (_distance(frame, colour) <= TRIM_TOLERANCE).mean() < UNIFORM_FRAME:
        return None
    return colour


def border_coloured(arr: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """Per pixel of an (h, w, 3) array, whether it is within the border tolerance of `colour`
    (its frame's, `border_colour`)."""
    return _distance(arr, colour) <= TRIM_TOLERANCE


def plain(arr: np.ndarray, colour: np.ndarray) -> bool:
    """No pixel of an (h, w, 3) array differs from `colour` beyond the border tolerance: a picture
    of one colour, with nothing drawn on it."""
    return bool(border_coloured(arr, colour).all())


def content_box(arr: np.ndarray, colour: np.ndarray | None = None) -> tuple[int, int, int, int] | None:
    """(left, top, right, bottom) of what differs from the border colour in an (h, w, 3) array, or
    None when there is nothing to trim (no uniform border, a blank image, or content too small to
    zoom into)."""
    h, w = arr.shape[:2]
    colour = border_colour(arr) if colour is None else colour
    if colour is None:
        return None
    content = _distance(arr, colour) > TRIM_TOLERANCE
    rows = np.flatnonzero(content.sum(axis=1) >= 2)
    cols = np.flatnonzero(content.sum(axis=0) >= 2)
    if len(rows) == 0 or len(cols) == 0:
        return None
    top, bottom, left, right = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    if (left, top, right, bottom) == (0, 0, w, h):
        return None
    if bottom - top < TRIM_MIN_SIDE * h or right - left < TRIM_MIN_SIDE * w:
        return None
    return left, top, right, bottom


def whiten_backdrop(arr: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """Repaint the backdrop of colour `colour` white, blending anti-aliased edges and soft shadows
    by their distance from it. Left alone when the input's edge hardly shows the backdrop (a
    letterboxed photo trimmed to the photo): its dark or light areas are not a backdrop."""
    if (colour >= 255).all():
        return arr  # already white: repainting changes nothing
    near = _distance(arr, colour)
    if (_frame(near) <= TRIM_TOLERANCE).mean() < BACKDROP_FRAME:
        return arr
    weight = np.clip(1 - (near - TRIM_TOLERANCE) / (BACKDROP_BLEND - TRIM_TOLERANCE), 0, 1)
    shift = weight[..., None] * (255 - colour).astype(np.float32)
    return np.clip(arr.astype(np.float32) + shift, 0, 255).round().astype(np.uint8)


def _distance(arr: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """Per pixel of an (..., 3) array, the largest channel difference from `colour` (float32; a
    per-channel maximum is several times faster than numpy's reduction over a length-3 axis)."""
    d = np.abs(arr.astype(np.float32) - colour.astype(np.float32))
    return np.maximum(np.maximum(d[..., 0], d[..., 1]), d[..., 2])


def _frame(arr: np.ndarray) -> np.ndarray:
    """The outer rows and columns of an (h, w) or (h, w, c) array, as (n,) or (n, c)."""
    return np.concatenate([arr[0], arr[-1], arr[:, 0], arr[:, -1]])


def _crop(rgb: Image.Image, size: int, box: tuple[int, int, int, int]) -> np.ndarray:
    """Resize the part of `rgb` inside `box` (in (size, size) coordinates) to the input size."""
    sx, sy = rgb.width / size, rgb.height / size
    left, top, right, bottom = box
    # an edge pixel of the box is part border, part content: put the cut in its middle
    left, top = left + 0.5 * (left > 0), top + 0.5 * (top > 0)
    right, bottom = right - 0.5 * (right < size), bottom - 0.5 * (bottom < size)
    crop = (left * sx, top * sy, right * sx, bottom * sy)
    return np.asarray(rgb.resize((size, size), Image.Resampling.BILINEAR, box=crop, reducing_gap=3.0), dtype=np.uint8)
