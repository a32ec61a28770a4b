"""Pictures turned a quarter, a half or three quarters of a turn: a photo saved turned by an
editor or a viewer, which the encoder places elsewhere (it learnt small turns only).

Each row's check picture (`dedup.pictures`, kept in the index) is also seen turned (`TURNS`),
framed and embedded as any picture is (`turned_vectors`): a turned view lands near a copy saved
turned that way. Its pairs are found as a window's are (`dedup.windows.window_pairs`) and, like
them, need agreeing keypoints whatever the distance; ORB's keypoints carry their orientation, so a
turned copy agrees with its original.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from dedup.config import Framing
from dedup.framing import to_input
from dedup.keypoints import Pictures
from dedup.parts import Embed, looked_vectors
from dedup.pictures import rgb_of

TURNS = (1, 2, 3)  # quarter turns (anticlockwise) each picture is seen at
KIND = "turned"  # the turned views' vectors in the pair-check memo (`dedup.checkmemo.PairChecks.parts`)


def turned_inputs(picture: bytes, size: int, framing: Framing) -> list[np.ndarray]:
    """The encoder's (size, size, 3) inputs of a check picture turned by each of `TURNS`."""
    framed = to_input(Image.fromarray(rgb_of(picture)), size, framing)
    return [np.ascontiguousarray(np.rot90(framed, k)) for k in TURNS]


def turned_vectors(pictures: Pictures, rows: Sequence[int], embed: Embed, size: int, framing: Framing,
                   workers: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """For every turned view of the check pictures `pictures(row)` of `rows`: its row, and its
    vector (`embed` of its input). A picture that cannot be had has none."""
    return looked_vectors(rows, lambda row: turned_inputs(pictures(row), size, framing), embed, workers)
