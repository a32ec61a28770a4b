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


def grey_at(picture: bytes, side: int) -> np.ndarray:
    """A check picture as a greyscale uint8 array whose longer side is `side` (a smaller one is
    enlarged, so that both pictures of a pair are seen at one scale). PIL's errors pass through."""
    grey = Image.open(io.BytesIO(picture)).convert("L")
    w, h = grey.size
    if max(w, h) != side:
        f = side / max(w, h)
        method = Image.Resampling.BILINEAR if f < 1 else Image.Resampling.BICUBIC
        grey = grey.resize((max(1, round(w * f)), max(1, round(h * f))), method)
    return np.asarray(grey)
