from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw

from dedup.config import Framing, ModelConfig
from dedup.framing import content_box, to_input
from dedup.images import decode
from dedup.synth import scene

TRIM = Framing(trim=True)
BACKDROP = Framing(trim=True, backdrop=True)


def framed(im: Image.Image, left: int, top: int, right: int, bottom: int, colour) -> Image.Image:
    out = Image.new("RGB", (im.width + left + right, im.height + top + bottom), colour)
    out.paste(im, (left, top))
    return out


def test_trim_cuts_uniform_borders_so_margins_do_not_matter():
    pic = scene(3, (160, 120))
    plain = to_input(pic, 64, TRIM)
    for left, top, right, bottom, colour in [(80, 10, 5, 60, "white"), (0, 40, 0, 40, "black"), (30, 30, 30, 30, (200, 30, 90))]:
        boxed = framed(pic, left, top, right, bottom, colour)
        assert np.abs(to_input(boxed, 64, TRIM).astype(int) - plain).mean() < 6
        assert np.abs(to_input(boxed, 64, Framing()).astype(int) - plain).mean() > 20


def test_trim_is_robust_to_noise_and_leaves_photos_and_blanks_alone():
    pic = scene(4, (160, 120))
    boxed = np.asarray(framed(pic, 60, 20, 60, 20, "white"), dtype=np.float32)
    noisy = np.clip(boxed + np.random.default_rng(0).normal(0, 18, boxed.shape), 0, 255).astype(np.uint8)
    clean = to_input(Image.fromarray(boxed.astype(np.uint8)), 64, TRIM)
    assert np.abs(to_input(Image.fromarray(noisy), 64, TRIM).astype(int) - clean).mean() < 8
    photo = scene(5)  # a gradient backdrop: no uniform frame
    assert np.array_equal(to_input(photo, 64, TRIM), to_input(photo, 64, Framing()))
    blank = Image.new("RGB", (100, 80), (240, 240, 240))
    assert np.array_equal(to_input(blank, 64, TRIM), to_input(blank, 64, Framing()))
    speck = blank.copy()
    speck.putpixel((50, 40), (0, 0, 0))
    assert content_box(to_input(speck, 64)) is None  # too small to zoom into


def test_decode_applies_trim_when_asked():
    data = io.BytesIO()
    framed(scene(6, (160, 120)), 100, 0, 0, 50, "white").save(data, "PNG")
    trimmed = decode(data.getvalue(), 64, framing=TRIM).pixels
    assert np.abs(trimmed.astype(int) - to_input(scene(6, (160, 120)), 64)).mean() < 6
    assert decode(data.getvalue(), 64).pixels.shape == trimmed.shape


def cutout(size=(160, 120)) -> Image.Image:
    """An RGBA product cut-out: shapes with anti-aliased edges on a transparent background."""
    big = Image.new("RGBA", (size[0] * 4, size[1] * 4), (0, 0, 0, 0))
    draw = ImageDraw.Draw(big)
    draw.ellipse([80, 60, 400, 380], fill=(200, 40, 40, 255))
    draw.rectangle([300, 160, 600, 420], fill=(30, 160, 60, 255))
    draw.ellipse([180, 160, 260, 240], fill=(255, 255, 255, 255))  # a white highlight inside the object
    return big.resize(size, Image.Resampling.LANCZOS)


def on(im: Image.Image, colour) -> Image.Image:
    base = Image.new("RGBA", im.size, colour + (255,))
    return Image.alpha_composite(base, im).convert("RGB")


def test_backdrop_reads_an_object_the_same_on_any_colour():
    obj = cutout()
    white = to_input(on(obj, (255, 255, 255)), 64, BACKDROP)
    assert np.array_equal(white, to_input(on(obj, (255, 255, 255)), 64, TRIM))  # a white backdrop stays as it is
    for colour in [(30, 90, 200), (250, 200, 40), (0, 0, 0), (120, 120, 120)]:
        shot = on(obj, colour)
        repainted = np.abs(to_input(shot, 64, BACKDROP).astype(int) - white).mean()
        kept = np.abs(to_input(shot, 64, TRIM).astype(int) - white).mean()
        assert repainted < 10 and repainted < 0.35 * kept  # what is left: anti-aliased edges mixed with the backdrop


def test_backdrop_leaves_photos_and_letterboxed_photos_alone():
    photo = scene(5)
    assert np.array_equal(to_input(photo, 64, BACKDROP), to_input(photo, 64, Framing()))
    texture = Image.fromarray(np.random.default_rng(1).integers(0, 256, (120, 160, 3), dtype=np.uint8))
    boxed = framed(texture, 0, 40, 0, 40, "black")  # trimmed to the photo, whose dark pixels are not a backdrop
    assert np.array_equal(to_input(boxed, 64, BACKDROP), to_input(boxed, 64, TRIM))


def test_a_model_identity_covers_the_backdrop_option_only_when_it_is_on():
    off, on_ = ModelConfig(), ModelConfig(backdrop=True)
    assert "backdrop" not in off.fingerprint()  # identities of models saved before the option are unchanged
    assert "backdrop" in on_.fingerprint() and off.fingerprint() != on_.fingerprint()
    assert on_.framing == Framing(trim=False, backdrop=True)


def test_a_jpeg_decoded_at_reduced_scale_is_decoded_again_when_its_trimmed_part_is_small():
    page = framed(scene(8, (400, 110)), 300, 350, 300, 340, "white")  # a thin picture on a large white page
    as_png, as_jpeg = io.BytesIO(), io.BytesIO()
    page.save(as_png, "PNG")
    page.save(as_jpeg, "JPEG", quality=95)
    sharp = decode(as_png.getvalue(), 64, framing=TRIM).pixels.astype(int)
    again = decode(as_jpeg.getvalue(), 64, framing=TRIM).pixels.astype(int)
    reduced = Image.open(io.BytesIO(as_jpeg.getvalue()))
    reduced.draft("RGB", (64, 64))  # the first, reduced-scale decode on its own
    blurred = to_input(reduced.convert("RGB"), 64, TRIM).astype(int)
    assert np.abs(again - sharp).mean() < 0.5 * np.abs(blurred - sharp).mean()
