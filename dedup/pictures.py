"""The check picture: the small upright rendition of an image that the pair check looks at.

`dedup index` makes it from the picture it has already decoded (`dedup.images.decode`) and stores
it with the row (`dedup.store`), so the check never needs the catalog's files again; an image
outside any index (a query, `compare`) gets the same rendition from its file
(`dedup.images.load_picture`). One definition for both: a JPEG whose longer side is at most
`SIDE`, made from the upright RGB picture.
"""
from __future__ import annotations

import io

import numpy as np
from PIL import Image

from dedup.framing import border_colour, whiten_backdrop

SIDE = 256  # longer side of a stored picture at most (the check's keypoints are found at this size)
DECODE_SIDE = 128  # a JPEG is decoded at the smallest scale whose longer side is at least this (draft)
QUALITY = 90  # JPEG quality: about 6 kB a picture, and ORB finds ~80% of the same keypoints


def picture_bytes(rgb: Image.Image) -> bytes:
    """The check picture of an upright RGB image: a JPEG with its longer side at most `SIDE`."""
    small = rgb
    if max(rgb.size) > SIDE:
        small = rgb.copy()
        small.thumbnail((SIDE, SIDE), Image.Resampling.BILINEAR)
    out = io.BytesIO()
    small.save(out, format="JPEG", quality=QUALITY)
    return out.getvalue()


def fitted(width: int, height: int, side: int) -> tuple[int, int] | None:
    """The size with longer side `side` that a picture of `width` × `height` is compared at (a
    smaller one is enlarged, so that both pictures of a pair are seen at one scale); None when it
    is that size already."""
    longer = max(width, height)
    if longer == side:
        return None
    f = side / longer
    return max(1, round(width * f)), max(1, round(height * f))


_FRAMES = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # JPEG start-of-frame markers


def _jpeg_frame(data: bytes) -> tuple[int, int, int] | None:
    """(width, height, components) from the frame header of a whole JPEG (from its start marker
    to its end marker); None for anything else."""
    if not (data.startswith(b"\xff\xd8") and data.endswith(b"\xff\xd9")):
        return None
    at = 2
    while at + 10 <= len(data):
        if data[at] != 0xFF:
            return None
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
        elif marker in _FRAMES:
            return int.from_bytes(data[at + 7 : at + 9], "big"), int.from_bytes(data[at + 5 : at + 7], "big"), data[at + 9]
        elif marker == 0xDA:  # a scan before any frame header
            return None
        else:
            at += 2 + int.from_bytes(data[at + 2 : at + 4], "big")
    return None


def picture_size(picture: bytes) -> tuple[int, int]:
    """A check picture's (width, height), read from its header without decoding it."""
    frame = _jpeg_frame(picture)
    if frame is not None:
        return frame[0], frame[1]
    with Image.open(io.BytesIO(picture)) as im:
        return im.size


def rgb_of(picture: bytes) -> np.ndarray:
    """A check picture's pixels, (h, w, 3) uint8 RGB. A whole JPEG in RGB or greyscale of a check
    picture's size is decoded by OpenCV, which gives PIL's pixels without holding the GIL (the
    check decodes in several threads); anything else by PIL, whose errors pass through."""
    frame = _jpeg_frame(picture)
    if frame is not None and frame[2] in (1, 3) and 0 < min(frame[:2]) and max(frame[:2]) <= SIDE:
        import cv2

        bgr = cv2.imdecode(np.frombuffer(picture, np.uint8), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
        if bgr is not None and bgr.shape[:2] == (frame[1], frame[0]):
            return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    with Image.open(io.BytesIO(picture)) as im:
        return np.asarray(im.convert("RGB"))


def grey_at(picture: bytes, side: int) -> np.ndarray:
    """A check picture as a greyscale uint8 array at its `fitted` size, a plain backdrop repainted
    white first (`dedup.framing.whiten_backdrop`, as the encoder's input is): a drawing cut out onto
    a colour darker than itself shows its outline with the polarity the same drawing has on white,
    so its keypoints' descriptors agree. PIL's errors pass through."""
    rgb = rgb_of(picture)
    colour = border_colour(rgb)
    grey = Image.fromarray(rgb if colour is None else whiten_backdrop(rgb, colour)).convert("L")
    size = fitted(*grey.size, side)
    if size is not None:
        shrink = max(size) < max(grey.size)
        grey = grey.resize(size, Image.Resampling.BILINEAR if shrink else Image.Resampling.BICUBIC)
    return np.asarray(grey)
