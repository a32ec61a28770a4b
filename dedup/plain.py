"""Plain pictures: one colour throughout, nothing drawn on them (a colour swatch, a blank page).

Keypoints find nothing on a plain picture, so the pair check would judge two of them on their
distance alone. Two plain pictures are one only when they are one colour; a plain picture and a
picture with something drawn on it are never one (`apart`).
"""
from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from dedup.framing import TRIM_TOLERANCE, border_colour, plain
from dedup.images import DECODE_ERRORS, ImageSkip
from dedup.keypoints import Pictures
from dedup.pictures import rgb_of

SIDE = 64  # a check picture is judged plain at this size, as the encoder's input is (noise averaged away)


def plain_colour(picture: bytes) -> np.ndarray | None:
    """The colour of a plain check picture (`dedup.framing.plain` at `SIDE` px), or None when
    something is drawn on it."""
    small = cv2.resize(rgb_of(picture), (SIDE, SIDE), interpolation=cv2.INTER_AREA)
    colour = border_colour(small)
    return None if colour is None or not plain(small, colour) else colour


def apart(i: Sequence[int], j: Sequence[int], pictures: Pictures) -> np.ndarray:
    """Per pair of rows (`i[k]`, `j[k]`), whose check pictures are `pictures(row)`: is one picture
    plain and the other not plain in about its colour (within the border tolerance)? False where
    a picture cannot be had."""
    colours: dict[int, np.ndarray | None] = {}

    def colour(row: int) -> np.ndarray | None:
        if row not in colours:
            colours[row] = plain_colour(pictures(row))
        return colours[row]

    out = np.zeros(len(i), bool)
    for k, (a, b) in enumerate(zip(np.asarray(i).tolist(), np.asarray(j).tolist())):
        try:
            ca, cb = colour(a), colour(b)
        except (ImageSkip, cv2.error, *DECODE_ERRORS):
            continue
        if ca is None and cb is None:
            continue
        out[k] = ca is None or cb is None or float(np.abs(ca - cb).max()) > TRIM_TOLERANCE
    return out
