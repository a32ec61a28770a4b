"""Decode image bytes into fixed-size RGB arrays: by content, EXIF-oriented, any mode to RGB."""
from __future__ import annotations

import io
import math
import os
import stat
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from blake3 import blake3
from PIL import Image, ImageOps, UnidentifiedImageError

from dedup.config import Framing
from dedup.framing import TRIM_TOLERANCE, to_input
from dedup.pictures import DECODE_SIDE as PICTURE_DECODE
from dedup.pictures import picture_bytes

SUPPORTED_FORMATS = frozenset({"JPEG", "MPO", "PNG", "WEBP", "GIF", "BMP", "TIFF"})
MAX_FILE_BYTES = 512 * 1024 * 1024
MAX_PIXELS = 200_000_000  # after JPEG draft reduction; larger images are refused as bombs
HASH_NAME = "blake3-128"
DECODING = 1  # how bytes become pixels and check pictures; an index decoded otherwise embeds its files again
LIGHT_DESIGN = 0.98  # share of a transparent picture's visible pixels (by their opacity) near white for it to go over black
DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, MemoryError, ZeroDivisionError)  # PIL on broken data


class ImageSkip(Exception):
    """Raised for a file that cannot be indexed; the message is the reason."""


def quiet_decoders() -> None:
    """Silence the warnings PIL prints about a file it still decodes (corrupt EXIF data, a palette
    with transparency, a large picture it calls a possible decompression bomb): a run reports each
    file it skips with the reason, and a file it decodes needs no note. For programs (`dedup.cli`),
    not for a library's callers."""
    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL(\.|$)")


@dataclass(frozen=True)
class Decoded:
    """One decoded image, ready for the encoder."""

    pixels: np.ndarray  # (size, size, 3) uint8
    width: int  # oriented width of the original image
    height: int
    content_hash: str
    picture: bytes = b""  # the pair check's rendition (`dedup.pictures`)


def content_hash(data: bytes) -> str:
    """Hash of a file's bytes, used to recognise byte-identical files (BLAKE3: cryptographic and
    about 7× faster than BLAKE2b here, which matters when hashing is a third of decoding)."""
    return blake3(data).hexdigest(length=16)


def read_file(path: Path) -> bytes:
    """Read a whole file, refusing ones too large to be an image worth decoding."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)  # a FIFO opens without blocking
    except OSError as exc:
        raise ImageSkip(f"cannot read: {exc.strerror or exc}") from None
    with os.fdopen(fd, "rb") as fh:
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise ImageSkip("not a regular file")
            if st.st_size == 0:
                raise ImageSkip("empty file (0 bytes)")
            if st.st_size > MAX_FILE_BYTES:
                raise ImageSkip(f"file too large ({st.st_size} bytes)")
            data = fh.read(st.st_size + 1)  # a buffer of the file's size: reading up to the limit costs 4× more
            if len(data) > st.st_size:  # the file grew since its stat: read on to its end or past the limit
                data += fh.read(MAX_FILE_BYTES + 1 - len(data))
        except OSError as exc:
            raise ImageSkip(f"cannot read: {exc.strerror or exc}") from None
    if len(data) > MAX_FILE_BYTES:
        raise ImageSkip("file too large (grew while read)")
    return data


def decode(data: bytes, size: int, digest: str | None = None, framing: Framing = Framing()) -> Decoded:
    """Decode image bytes to a (size, size, 3) uint8 array and the check picture
    (`dedup.pictures`); raise `ImageSkip` with a reason.

    `framing` is the model's (`dedup.framing.to_input`)."""
    digest = digest or content_hash(data)
    try:
        im = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise ImageSkip("not an image (unrecognised content)") from None
    except Image.DecompressionBombError as exc:
        raise ImageSkip(f"decompression bomb refused: {exc}") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageSkip(f"cannot open: {exc}") from None
    try:
        if im.format not in SUPPORTED_FORMATS:
            raise ImageSkip(f"unsupported format {im.format}")
        orientation = _orientation(im)
        width, height = (im.size[1], im.size[0]) if orientation in (5, 6, 7, 8) else im.size
        full = im.size
        rgb = _load_rgb(im, picture_request(im.size, size), orientation)
        sharper = None
        if rgb.size != full and rgb.size != full[::-1]:  # a JPEG decoded at a reduced DCT scale

            def sharper(factor: float) -> Image.Image:
                stored = (rgb.size[::-1] if orientation in (5, 6, 7, 8) else rgb.size)
                again = Image.open(io.BytesIO(data))
                return _load_rgb(again, (math.ceil(stored[0] * factor), math.ceil(stored[1] * factor)), orientation)

        return Decoded(to_input(rgb, size, framing, sharper), width, height, digest, picture_bytes(rgb))
    except ImageSkip:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageSkip(f"decompression bomb refused: {exc}") from None
    except DECODE_ERRORS as exc:
        raise ImageSkip(f"cannot decode: {exc}") from None


def load(path: Path, size: int, framing: Framing = Framing()) -> Decoded:
    """Read and decode one file."""
    return decode(read_file(path), size, framing=framing)


def load_picture(path: Path) -> bytes:
    """The check picture (`dedup.pictures`) of an image file, as `decode` makes it while
    indexing; raise `ImageSkip` with a reason."""
    data = read_file(path)
    try:
        im = Image.open(io.BytesIO(data))
        return picture_bytes(_load_rgb(im, picture_request(im.size), _orientation(im)))
    except ImageSkip:
        raise
    except (*DECODE_ERRORS, UnidentifiedImageError, Image.DecompressionBombError) as exc:
        raise ImageSkip(f"cannot decode: {exc}") from None


def picture_request(stored: tuple[int, int], size: int = 0) -> tuple[int, int]:
    """The size to decode a picture stored at `stored` at: each side at least `size` (the
    encoder's input) and the longer side at least `pictures.DECODE_SIDE` (the check picture)."""
    longer = max(stored)
    return tuple(max(size, math.ceil(PICTURE_DECODE * s / longer)) for s in stored)


def upright(im: Image.Image, request: tuple[int, int], orientation: int | None = None) -> Image.Image:
    """Decode an opened image in its own mode, upright (EXIF orientation applied); a JPEG at the
    smallest DCT scale that is at least `request` (stored orientation)."""
    orientation = _orientation(im) if orientation is None else orientation
    if im.format in ("JPEG", "MPO"):
        im.draft("RGB", request)
    if im.size[0] * im.size[1] > MAX_PIXELS:
        raise ImageSkip(f"image too large to decode safely ({im.size[0]}x{im.size[1]} pixels)")
    im.load()
    return ImageOps.exif_transpose(im) if orientation != 1 else im


def _load_rgb(im: Image.Image, request: tuple[int, int], orientation: int) -> Image.Image:
    """`upright`, as RGB."""
    return to_rgb(upright(im, request, orientation))


def to_rgb(im: Image.Image) -> Image.Image:
    """Convert any PIL mode to RGB: alpha over white (over black for a `light_design`), 16-bit and
    float scaled to 8-bit."""
    if im.mode == "RGB":
        return im
    if im.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        arr = np.asarray(im, dtype=np.float64)
        top = 65535.0 if arr.max(initial=0) > 255 else 255.0
        if im.mode == "F":
            lo, hi = float(arr.min(initial=0)), float(arr.max(initial=1))
            arr, top = arr - lo, max(hi - lo, 1e-12)
        grey = np.clip(arr * (255.0 / top), 0, 255).astype(np.uint8)
        return Image.fromarray(grey, "L").convert("RGB")
    if im.mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        im = im.convert("RGBA")
        backdrop = Image.new("RGBA", im.size, (0, 0, 0, 255) if light_design(im) else (255, 255, 255, 255))
        return Image.alpha_composite(backdrop, im).convert("RGB")
    return im.convert("RGB")


def light_design(im: Image.Image) -> bool:
    """Is an RGBA picture white wherever it shows, its design all in its transparency (a white logo
    or emblem made for dark backgrounds, a wallpaper overlay)? Over white it would be blank, and
    every such picture the same: at least `LIGHT_DESIGN` of what shows (weighted by opacity, on a
    view of at most ~512 px) is within the border tolerance of white."""
    small = im.reduce(max(1, max(im.size) // 512))
    rgba = np.asarray(small)
    shown = rgba[..., 3].astype(np.float64)
    total = shown.sum()
    if total == 0:
        return False  # nothing shows at all: blank over anything
    light = rgba[..., :3].min(axis=2) >= 255 - TRIM_TOLERANCE
    return bool(shown[light].sum() >= LIGHT_DESIGN * total)


def _orientation(im: Image.Image) -> int:
    """EXIF orientation tag (1 = as stored)."""
    try:
        return int(im.getexif().get(0x0112, 1))
    except Exception:  # a broken EXIF block must not make the image unreadable
        return 1
