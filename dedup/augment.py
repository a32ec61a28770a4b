"""Random edits that real catalogs apply to images; training views and benchmark duplicates.

Every edit takes an RGBA image (alpha marks the subject, e.g. clip art) and a numpy
`Generator`, and returns an RGBA image. `flatten` composites onto a background colour.
"""
from __future__ import annotations

import io
import string
from collections.abc import Mapping
from typing import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont, ImageOps

Edit = Callable[[Image.Image, np.random.Generator], Image.Image]
WHITE = (255, 255, 255)


def flatten(im: Image.Image, background: tuple[int, int, int] = WHITE) -> Image.Image:
    """RGBA → RGB over a solid background."""
    if im.mode != "RGBA":
        return im.convert("RGB")
    base = Image.new("RGBA", im.size, background + (255,))
    return Image.alpha_composite(base, im).convert("RGB")


def _rgb_edit(fn: Callable[[Image.Image, np.random.Generator], Image.Image]) -> Edit:
    """Apply an RGB-only edit while keeping the alpha channel."""

    def edit(im: Image.Image, rng: np.random.Generator) -> Image.Image:
        alpha = im.getchannel("A") if im.mode == "RGBA" else None
        out = fn(im.convert("RGB"), rng)
        if alpha is not None and out.size == alpha.size:
            out = out.convert("RGBA")
            out.putalpha(alpha)
        return out.convert("RGBA")

    edit.__name__ = fn.__name__
    return edit


def _color(c) -> tuple[int, int, int]:
    return tuple(int(v) for v in c)


def recompress(im: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Downscale then JPEG (quality 20–70) or WebP re-encode."""
    bg = _color(rng.integers(200, 256, 3)) if rng.random() < 0.3 else WHITE
    rgb = flatten(im, bg)
    s = rng.uniform(0.35, 1.0)
    rgb = rgb.resize((max(8, int(rgb.width * s)), max(8, int(rgb.height * s))), Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    if rng.random() < 0.75:
        rgb.save(buf, "JPEG", quality=int(rng.integers(20, 71)))
    else:
        rgb.save(buf, "WEBP", quality=int(rng.integers(30, 80)))
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGBA")


def crop(im: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Keep 50–95% of the area, anywhere."""
    area = rng.uniform(0.5, 0.95)
    ratio = np.exp(rng.uniform(np.log(0.75), np.log(1.33)))
    w = min(im.width, max(4, int(round(im.width * np.sqrt(area * ratio)))))
    h = min(im.height, max(4, int(round(im.height * np.sqrt(area / ratio)))))
    x, y = int(rng.integers(0, im.width - w + 1)), int(rng.integers(0, im.height - h + 1))
    return im.crop((x, y, x + w, y + h))


def pad(im: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Letterbox or pad with a solid border on some sides."""
    w, h = im.size
    fill = _color(rng.integers(0, 256, 3)) + (255,)
    padw = [int(rng.uniform(0, 0.3) * w) for _ in range(2)]
    padh = [int(rng.uniform(0, 0.3) * h) for _ in range(2)]
    out = Image.new("RGBA", (w + sum(padw), h + sum(padh)), fill)
    out.alpha_composite(im, (padw[0], padh[0]))
    return out


def aspect(im: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Stretch one axis by up to 40%."""
    f = rng.uniform(0.7, 1.4)
    size = (max(4, int(im.width * f)), im.height) if rng.random() < 0.5 else (im.width, max(4, int(im.height * f)))
    return im.resize(size, Image.Resampling.BILINEAR)


def hflip(im: Image.Image, rng: np.random.Generator) -> Image.Image:
    return ImageOps.mirror(im)


def rotate(im: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Rotate up to ±20°, corners filled white or transparent."""
    angle = rng.uniform(-20, 20)
    return im.rotate(angle, Image.Resampling.BILINEAR, expand=rng.random() < 0.5, fillcolor=(255, 255, 255, 0))


@_rgb_edit
def color(im: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Brightness, contrast, saturation changes, sometimes greyscale."""
    im = ImageEnhance.Brightness(im).enhance(rng.uniform(0.6, 1.4))
    im = ImageEnhance.Contrast(im).enhance(rng.uniform(0.6, 1.4))
    im = ImageEnhance.Color(im).enhance(rng.uniform(0.3, 1.6))
    if rng.random() < 0.3:
        im = ImageOps.grayscale(im).convert("RGB")
    return im


@_rgb_edit
def blur(im: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Gaussian blur or sharpening."""
    if rng.random() < 0.6:
        return im.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 2.0) * max(im.size) / 256))
    return im.filter(ImageFilter.UnsharpMask(radius=2, percent=int(rng.integers(100, 250))))


@_rgb_edit
def noise(im: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Additive Gaussian noise."""
    arr = np.asarray(im, dtype=np.float32)
    arr = arr + rng.normal(0, rng.uniform(4, 18), arr.shape)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has no sized default font
        return ImageFont.load_default()


def text(im: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A caption, price tag or semi-transparent watermark."""
    out = im.copy()
    layer = Image.new("RGBA", out.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    size = max(8, int(min(out.size) * rng.uniform(0.08, 0.2)))
    words = "".join(rng.choice(list(string.ascii_letters + string.digits + " $%"), int(rng.integers(4, 14))))
    alpha = int(rng.integers(90, 256))
    x, y = int(rng.uniform(0, 0.6) * out.width), int(rng.uniform(0, 0.85) * out.height)
    if rng.random() < 0.4:
        draw.rectangle([x - 2, y - 2, x + size * len(words) // 2, y + size + 2], fill=_color(rng.integers(0, 256, 3)) + (alpha,))
    draw.text((x, y), words, fill=_color(rng.integers(0, 256, 3)) + (alpha,), font=_font(size))
    return Image.alpha_composite(out, layer)


def sticker(im: Image.Image, rng: np.random.Generator) -> Image.Image:
    """An emoji-like sticker: a coloured disc or star covering 3–12% of the area."""
    out = im.copy()
    draw = ImageDraw.Draw(out)
    r = int(np.sqrt(rng.uniform(0.03, 0.12) * out.width * out.height / np.pi))
    cx, cy = int(rng.integers(0, out.width)), int(rng.integers(0, out.height))
    fill = _color(rng.integers(0, 256, 3)) + (255,)
    if rng.random() < 0.5:
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill, outline=(0, 0, 0, 255), width=max(1, r // 10))
        draw.ellipse([cx - r // 2, cy - r // 3, cx - r // 4, cy - r // 8], fill=(0, 0, 0, 255))
        draw.ellipse([cx + r // 4, cy - r // 3, cx + r // 2, cy - r // 8], fill=(0, 0, 0, 255))
    else:
        ang = np.linspace(0, 2 * np.pi, 11)[:-1]
        rad = np.where(np.arange(10) % 2 == 0, r, r * 0.45)
        draw.polygon([(cx + rr * np.cos(a), cy + rr * np.sin(a)) for rr, a in zip(rad, ang)], fill=fill)
    return out


def background(im: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Re-shoot on a different background colour (uses the alpha channel where there is one)."""
    return flatten(im, _color(rng.integers(0, 256, 3))).convert("RGBA")


def heavy_crop(im: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Keep 20–45% of the subject's box (opaque pixels that are not near-white; the whole picture
    for a photo), centred on a drawn pixel so that the crop shows some of the subject."""
    arr = np.asarray(im.convert("RGBA"))
    drawn = (arr[..., 3] > 127) & (arr[..., :3].min(axis=2) < 235)
    if drawn.sum() < 16:
        drawn = np.ones(drawn.shape, bool)
    ys, xs = np.nonzero(drawn)
    x0, y0, x1, y1 = int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1
    area = rng.uniform(0.2, 0.45)
    ratio = np.exp(rng.uniform(np.log(0.75), np.log(1.33)))
    w = min(x1 - x0, max(8, round((x1 - x0) * np.sqrt(area * ratio))))
    h = min(y1 - y0, max(8, round((y1 - y0) * np.sqrt(area / ratio))))
    k = int(rng.integers(0, len(xs)))
    x = int(np.clip(xs[k] - w // 2, x0, x1 - w))
    y = int(np.clip(ys[k] - h // 2, y0, y1 - h))
    return im.crop((x, y, x + w, y + h))


def busy_backdrop(size: tuple[int, int], rng: np.random.Generator) -> Image.Image:
    """A photo-like backdrop: a smooth field of colours with soft shapes, grain and detail."""
    w, h = size
    field = Image.fromarray(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)).resize((w, h), Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(field)
    for _ in range(int(rng.integers(6, 16))):
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        rx, ry = rng.uniform(0.03, 0.25) * w, rng.uniform(0.03, 0.25) * h
        shape = [cx - rx, cy - ry, cx + rx, cy + ry]
        fill = _color(rng.integers(0, 256, 3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(shape, fill=fill)
    field = field.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 2.5) * max(w, h) / 256))
    grain = np.asarray(field, np.float32) + rng.normal(0, rng.uniform(3, 10), (h, w, 3))
    return Image.fromarray(np.clip(grain, 0, 255).astype(np.uint8)).convert("RGBA")


def overlay(im: Image.Image, rng: np.random.Generator, backdrop: Image.Image | None = None) -> Image.Image:
    """Paste the picture (its subject where it has transparency) onto another, busier picture:
    `backdrop` (a photo; a random part of it is used) or a generated one (`busy_backdrop`). The
    picture covers 30–70% of the result's longer side, anywhere inside it."""
    s = rng.uniform(0.3, 0.7)
    out_w = max(16, int(im.width / s))
    out_h = max(16, int(out_w * rng.uniform(0.6, 1.4)))
    if im.height > out_h:
        out_h = im.height
    if backdrop is None:
        base = busy_backdrop((out_w, out_h), rng)
    else:
        scale = max(out_w / backdrop.width, out_h / backdrop.height)
        if scale > 1:
            backdrop = backdrop.resize((int(np.ceil(backdrop.width * scale)), int(np.ceil(backdrop.height * scale))),
                                       Image.Resampling.BILINEAR)
        bx, by = int(rng.integers(0, backdrop.width - out_w + 1)), int(rng.integers(0, backdrop.height - out_h + 1))
        base = backdrop.convert("RGBA").crop((bx, by, bx + out_w, by + out_h))
    x, y = int(rng.integers(0, out_w - im.width + 1)), int(rng.integers(0, out_h - im.height + 1))
    base.alpha_composite(im.convert("RGBA"), (x, y))
    return base


def screenshot(im: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Paste the image small (25–55% of the width) into a larger page with other blocks."""
    page_w = max(64, int(max(im.size) * rng.uniform(1.8, 3.0)))
    page_h = int(page_w * rng.uniform(0.6, 1.3))
    page = Image.new("RGBA", (page_w, page_h), _color(rng.integers(225, 256, 3)) + (255,))
    draw = ImageDraw.Draw(page)
    for _ in range(int(rng.integers(3, 8))):
        x, y = int(rng.integers(0, page_w)), int(rng.integers(0, page_h))
        draw.rectangle([x, y, x + int(rng.integers(page_w // 8, page_w // 2)), y + int(rng.integers(4, 20))], fill=_color(rng.integers(0, 200, 3)) + (255,))
    s = rng.uniform(0.25, 0.55) * page_w / im.width
    small = flatten(im).resize((max(4, int(im.width * s)), max(4, int(im.height * s))), Image.Resampling.BILINEAR)
    x, y = int(rng.integers(0, page_w - small.width + 1)), int(rng.integers(0, max(1, page_h - small.height + 1)))
    page.paste(small, (x, y))
    return page


def lowres(im: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A thumbnail: the longer side brought down to 16–48 px."""
    f = int(rng.integers(16, 49)) / max(im.size)
    if f >= 1:
        return im
    how = (Image.Resampling.BOX, Image.Resampling.BILINEAR, Image.Resampling.LANCZOS)[int(rng.integers(0, 3))]
    return im.resize((max(1, round(im.width * f)), max(1, round(im.height * f))), how)


FAMILIES: dict[str, Edit] = {
    "recompress": recompress,
    "crop": crop,
    "pad": pad,
    "aspect": aspect,
    "hflip": hflip,
    "rotate": rotate,
    "color": color,
    "blur": blur,
    "noise": noise,
    "text": text,
    "sticker": sticker,
    "background": background,
    "screenshot": screenshot,
    "lowres": lowres,
    "heavy_crop": heavy_crop,
    "overlay": overlay,
}


VIEW_CHANCES: dict[str, float] = {  # each edit family's chance in a training view, applied in this order
    "background": 0.4, "crop": 0.5, "pad": 0.25, "aspect": 0.2, "hflip": 0.5, "rotate": 0.25, "color": 0.5,
    "blur": 0.2, "noise": 0.15, "text": 0.2, "sticker": 0.15, "screenshot": 0.04, "recompress": 0.4,
}


def random_view(im: Image.Image, rng: np.random.Generator, strength: float = 1.0,
                chances: Mapping[str, float] = VIEW_CHANCES) -> Image.Image:
    """A training view: each edit family applied with its chance (`VIEW_CHANCES`), flattened to RGB.

    `strength` scales the chances (0 = unchanged image).
    """
    out = im.convert("RGBA")
    for name, p in chances.items():
        if rng.random() < p * strength:
            out = FAMILIES[name](out, rng)
    return flatten(out)


def label_view(im: Image.Image, rng: np.random.Generator, strength: float = 1.0) -> Image.Image:
    """A training view of a labelled picture that keeps what it shows: a small shift, scale and
    rotation (the uncovered corners take the picture's border colour, so light-on-dark stays
    light-on-dark), contrast and brightness, blur, noise. No flips, overlays or crops that could
    cut the subject (a mirrored 2 is not a 2). `strength` scales every edit (0 = unchanged)."""
    out = flatten(im)
    if strength <= 0:
        return out
    arr = np.asarray(out)
    edge = np.concatenate([arr[0], arr[-1], arr[:, 0], arr[:, -1]])
    fill = tuple(int(v) for v in np.median(edge, axis=0))
    w, h = out.size
    angle = np.deg2rad(rng.uniform(-12, 12) * strength)
    scale = 1.0 + rng.uniform(-0.12, 0.12) * strength
    tx, ty = rng.uniform(-0.08, 0.08, 2) * strength * np.array([w, h])
    cos, sin = np.cos(angle) / scale, np.sin(angle) / scale
    cx, cy = w / 2, h / 2  # inverse map of: rotate and scale about the centre, then shift
    matrix = (cos, sin, cx - cos * (cx + tx) - sin * (cy + ty), -sin, cos, cy + sin * (cx + tx) - cos * (cy + ty))
    out = out.transform((w, h), Image.Transform.AFFINE, matrix, Image.Resampling.BILINEAR, fillcolor=fill)
    if rng.random() < 0.5 * strength:
        out = ImageEnhance.Contrast(out).enhance(1.0 + rng.uniform(-0.25, 0.25) * strength)
        out = ImageEnhance.Brightness(out).enhance(1.0 + rng.uniform(-0.15, 0.15) * strength)
    if rng.random() < 0.2 * strength:
        out = out.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 0.8) * max(w, h) / 64))
    if rng.random() < 0.2 * strength:
        noisy = np.asarray(out, np.float32) + rng.normal(0, rng.uniform(2, 8), (h, w, 3))
        out = Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))
    return out


View = Callable[[Image.Image, np.random.Generator, float], Image.Image]  # (picture, rng, strength) → a training view
VIEWS: dict[str, View] = {
    "copies": random_view,  # an unlabelled catalog: the edits catalogs make to copies
    "labelled": label_view,  # labelled classes: edits that keep the label true
}


HEAVY_FAMILIES: tuple[str, ...] = ("heavy_crop", "overlay")  # heavy copy-detection edits, a catalog's own part
DUPLICATE_FAMILIES: tuple[str, ...] = tuple(f for f in FAMILIES if f not in ("lowres", *HEAVY_FAMILIES))  # the catalogs' families


def duplicate(im: Image.Image, rng: np.random.Generator, families: tuple[str, ...] = DUPLICATE_FAMILIES) -> tuple[Image.Image, str]:
    """One near-duplicate of `im`: a single edit family (70%) or a combination of two or three.

    Returns the RGB image and its family label (``"crop+text"`` for combinations).
    """
    k = 1 if rng.random() < 0.7 else int(rng.integers(2, 4))
    chosen = [str(f) for f in rng.choice([f for f in families if f != "screenshot"] if k > 1 else list(families), size=k, replace=False)]
    out = im.convert("RGBA")
    for name in chosen:
        out = FAMILIES[name](out, rng)
    return flatten(out), "+".join(chosen)


SERIES_KINDS: tuple[str, ...] = ("letter", "colour")
SERIES_GLYPHS = string.ascii_uppercase + string.digits


def series(im: Image.Image, rng: np.random.Generator, count: int = 3) -> tuple[str, list[Image.Image]]:
    """`count` different items made from one template, as catalogs sell them in series: the same
    drawing with a different letter or number on one badge ("letter"), or in another colourway
    (the subject's hues turned, "colour"; only for a template with colour to turn). Returns the
    kind and the RGBA items; none of them is a copy of another."""
    im = im.convert("RGBA")
    hsv = np.asarray(flatten(im).convert("HSV"))
    alpha = np.asarray(im.getchannel("A"), dtype=np.float32) / 255.0
    subject = (alpha > 0.5) & (hsv[..., 1] > 60) & (hsv[..., 2] > 40)
    kinds = SERIES_KINDS if subject.mean() > 0.05 else ("letter",)
    kind = str(rng.choice(kinds))
    if kind == "colour":
        start = rng.uniform(0, 1.0 / count)
        return kind, [_turn_hue(im, start + k / count) for k in range(count)]
    ys, xs = np.nonzero(alpha > 0.5) if (alpha > 0.5).any() else np.indices(alpha.shape).reshape(2, -1)
    centre = (float(xs.mean()), float(ys.mean()))
    radius = max(6, int(0.13 * min(im.size)))
    fill = _color(rng.integers(0, 256, 3))
    ink = (0, 0, 0) if sum(fill) > 380 else (255, 255, 255)
    glyphs = rng.choice(list(SERIES_GLYPHS), size=count, replace=False)
    return kind, [_badge(im, str(g), centre, radius, fill, ink) for g in glyphs]


def _turn_hue(im: Image.Image, turn: float) -> Image.Image:
    """The subject's hues turned by `turn` of a full circle; saturation, value and alpha kept."""
    h, s, v = (np.asarray(c) for c in im.convert("RGB").convert("HSV").split())
    h = ((h.astype(np.int32) + int(round(turn * 256))) % 256).astype(np.uint8)
    out = Image.merge("HSV", [Image.fromarray(c) for c in (h, s, v)]).convert("RGBA")
    out.putalpha(im.getchannel("A"))
    return out


def _badge(im: Image.Image, glyph: str, centre: tuple[float, float], radius: int, fill, ink) -> Image.Image:
    """A round badge with `glyph` on it at `centre` of the subject."""
    out = im.copy()
    draw = ImageDraw.Draw(out)
    cx, cy = centre
    draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], fill=fill + (255,), outline=ink + (255,),
                 width=max(1, radius // 8))
    draw.text((cx, cy), glyph, fill=ink + (255,), font=_font(int(radius * 1.3)), anchor="mm")
    return out
