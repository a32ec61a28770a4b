from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
from PIL import Image, ImageDraw

from dedup.images import ImageSkip, decode, light_design, load, quiet_decoders, to_rgb


def encoded(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def red_left(w=80, h=40) -> Image.Image:
    arr = np.zeros((h, w, 3), np.uint8)
    arr[:, : w // 2] = (255, 0, 0)
    arr[:, w // 2 :] = (0, 0, 255)
    return Image.fromarray(arr)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF"])
def test_formats_decode_by_content(fmt, tmp_path):
    path = tmp_path / "wrong_extension.txt"
    path.write_bytes(encoded(red_left(), fmt))
    out = load(path, 32)
    assert out.pixels.shape == (32, 32, 3) and out.pixels.dtype == np.uint8
    assert (out.width, out.height) == (80, 40)
    left, right = out.pixels[:, :8].mean(axis=(0, 1)), out.pixels[:, -8:].mean(axis=(0, 1))
    assert left[0] > 200 and left[2] < 60 and right[2] > 200


def test_animated_gif_uses_first_frame():
    frames = [Image.new("RGB", (20, 20), c) for c in [(255, 0, 0), (0, 255, 0)]]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    px = decode(buf.getvalue(), 8).pixels
    assert px[..., 0].mean() > 200 and px[..., 1].mean() < 50


def test_exif_orientation_applied():
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    data = encoded(red_left(80, 40), "JPEG", exif=exif, quality=95)
    out = decode(data, 32)
    assert (out.width, out.height) == (40, 80)
    top, bottom = out.pixels[:8].mean(axis=(0, 1)), out.pixels[-8:].mean(axis=(0, 1))
    assert top[0] > 200 and bottom[2] > 200  # red (left) is now on top


def test_modes_convert_to_rgb():
    rgba = Image.new("RGBA", (10, 10), (0, 0, 0, 0))
    assert decode(encoded(rgba, "PNG"), 8).pixels.min() == 255  # transparent over white
    pal = Image.new("P", (10, 10), 0)
    pal.putpalette([0, 0, 0] * 256)
    pal.info["transparency"] = 0
    assert decode(encoded(pal, "PNG", transparency=0), 8).pixels.min() == 255
    cmyk = Image.new("CMYK", (10, 10), (0, 255, 255, 0))  # red
    px = decode(encoded(cmyk, "JPEG"), 8).pixels
    assert px[..., 0].mean() > 200 and px[..., 1].mean() < 60
    deep = Image.fromarray(np.full((10, 10), 65535, np.uint16))
    assert decode(encoded(deep, "PNG"), 8).pixels.min() > 250
    grey = Image.new("L", (10, 10), 128)
    assert abs(int(decode(encoded(grey, "PNG"), 8).pixels.mean()) - 128) <= 1


def test_large_jpeg_uses_draft_and_keeps_original_size():
    im = Image.fromarray(np.random.default_rng(0).integers(0, 255, (1200, 1600, 3), np.uint8))
    out = decode(encoded(im, "JPEG", quality=85), 64)
    assert (out.width, out.height) == (1600, 1200) and out.pixels.shape == (64, 64, 3)


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"hello, I am text", "not an image"),
        (b"<html><body>nope</body></html>", "not an image"),
    ],
)
def test_non_images_are_skipped_with_reason(data, reason):
    with pytest.raises(ImageSkip, match=reason):
        decode(data, 8)


def test_empty_and_truncated_files_skipped(tmp_path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(ImageSkip, match="empty"):
        load(tmp_path / "empty.jpg", 8)
    data = encoded(red_left(200, 200), "PNG")
    with pytest.raises(ImageSkip):
        decode(data[: len(data) // 2], 8)
    jpeg = encoded(Image.fromarray(np.random.default_rng(1).integers(0, 255, (200, 200, 3), np.uint8)), "JPEG")
    with pytest.raises(ImageSkip):
        decode(jpeg[: len(jpeg) // 3], 8)


def test_decompression_bomb_refused():
    import struct
    import zlib

    def chunk(tag, body):
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))

    ihdr = struct.pack(">IIBBBBB", 50_000, 50_000, 8, 2, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 100)) + chunk(b"IEND", b"")
    with pytest.raises(ImageSkip, match="bomb|too large"):
        decode(png, 8)


def test_a_program_decodes_a_large_picture_without_pils_warning(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1_000)  # a 40×40 picture is "large": PIL warns, still decodes
    buf = io.BytesIO()
    Image.new("RGB", (40, 40), (200, 30, 30)).save(buf, "PNG")
    with pytest.warns(Image.DecompressionBombWarning):
        decode(buf.getvalue(), 8)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet_decoders()
        assert decode(buf.getvalue(), 8).pixels.shape == (8, 8, 3)
    assert not caught


def test_training_sees_pictures_upright_as_indexing_does(tmp_path):
    """An EXIF-rotated JPEG: the training loader and the indexer both turn it upright."""
    import io

    from PIL import Image

    from dedup.data import open_rgba
    from dedup.images import decode
    from dedup.synth import scene

    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: shown rotated 90°
    buf = io.BytesIO()
    scene(3, (120, 60)).save(buf, "JPEG", exif=exif)
    data = buf.getvalue()
    trained = open_rgba(data, 256)
    indexed = decode(data, 64)
    assert trained.size == (60, 120) and (indexed.width, indexed.height) == (60, 120)
    upright = Image.open(io.BytesIO(data)).transpose(Image.Transpose.ROTATE_270).convert("RGB")
    diff = abs(np.asarray(trained.convert("RGB"), np.int16) - np.asarray(upright, np.int16)).mean()
    assert diff < 3


def test_a_jpeg_is_decoded_small_enough_for_speed_and_large_enough_for_the_check_picture():
    from dedup.images import picture_request
    from dedup.pictures import DECODE_SIDE

    assert picture_request((1155, 866), 64) == (DECODE_SIDE, 96)  # 1/8 scale (144×108) is enough
    assert picture_request((300, 2000), 64) == (64, DECODE_SIDE)  # each side at least the encoder's input
    assert picture_request((100, 80)) == (DECODE_SIDE, 103)


def test_read_file_reads_a_file_that_grew_since_its_stat(tmp_path, monkeypatch):
    """The read is sized by the file's stat; bytes written after it are still read, and a file
    that grew past the limit is refused."""
    import os

    import dedup.images as images

    path = tmp_path / "growing.jpg"
    path.write_bytes(bytes(range(256)) * 40)
    real_fstat = os.fstat

    class Stale:  # the stat taken before the last 10,000 bytes were written
        def __init__(self, st):
            self.st_mode, self.st_size = st.st_mode, st.st_size - 10_000

    monkeypatch.setattr(images.os, "fstat", lambda fd: Stale(real_fstat(fd)))
    assert images.read_file(path) == path.read_bytes()
    monkeypatch.setattr(images, "MAX_FILE_BYTES", 5_000)
    with pytest.raises(ImageSkip, match="grew"):
        images.read_file(path)


def _white_design(seed: int, size: int = 200) -> Image.Image:
    """A white emblem on transparency (made for dark backgrounds): shapes of `seed`, anti-aliased edges."""
    rng = np.random.default_rng(seed)
    mask = Image.new("L", (size * 2, size * 2), 0)
    draw = ImageDraw.Draw(mask)
    for _ in range(5):
        x, y = (int(v) for v in rng.integers(20, size * 2 - 120, 2))
        w, h = (int(v) for v in rng.integers(40, 110, 2))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)((x, y, x + w, y + h), fill=255)
    out = Image.new("RGBA", (size, size), (255, 255, 255, 0))
    out.putalpha(mask.resize((size, size), Image.Resampling.LANCZOS))
    return out


def test_a_white_design_on_transparency_goes_over_black_not_into_a_blank_white():
    emblem = _white_design(1)
    assert light_design(emblem)
    rgb = np.asarray(to_rgb(emblem))
    assert rgb.min() == 0 and rgb.max() == 255  # its shapes show, white on black
    drawn = Image.new("RGBA", (64, 64), (255, 255, 255, 0))
    ImageDraw.Draw(drawn).ellipse((8, 8, 56, 56), fill=(200, 40, 40, 255))
    assert not light_design(drawn) and np.asarray(to_rgb(drawn))[0, 0].tolist() == [255, 255, 255]
    blank = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    assert not light_design(blank) and np.asarray(to_rgb(blank)).min() == 255  # nothing shows: blank either way


def test_white_designs_on_transparency_are_told_apart_and_found_in_their_copies_on_a_dark_colour(tmp_path):
    from dedup.duplicates import find_duplicates
    from dedup.indexer import index_catalog

    catalog = tmp_path / "catalog"
    catalog.mkdir()
    for seed in range(6):
        _white_design(seed).save(catalog / f"emblem_{seed}.png")
    for name, colour in (("emblem_0_on_black.jpg", (0, 0, 0, 255)), ("emblem_0_on_navy.jpg", (20, 30, 90, 255))):
        Image.alpha_composite(Image.new("RGBA", (200, 200), colour), _white_design(0)).convert("RGB").save(catalog / name)
    index_catalog(catalog, tmp_path / "index")
    sets = [sorted(m.path for m in g.members) for g in find_duplicates(tmp_path / "index").groups]
    assert sets == [["emblem_0.png", "emblem_0_on_black.jpg", "emblem_0_on_navy.jpg"]]
