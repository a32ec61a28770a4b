"""Generated images for tests and the demo: distinct scenes and planted near-duplicates."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


def scene(seed: int, size: tuple[int, int] = (256, 192)) -> Image.Image:
    """A distinct, deterministic RGB picture: a gradient backdrop with random shapes."""
    rng = np.random.default_rng(seed)
    w, h = size
    c0, c1 = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    t = np.linspace(0.0, 1.0, w)[None, :, None] if rng.random() < 0.5 else np.linspace(0.0, 1.0, h)[:, None, None]
    grad = (c0 * (1 - t) + c1 * t) * np.ones((h, w, 1))
    im = Image.fromarray(grad.astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(im)
    for _ in range(int(rng.integers(4, 10))):
        x0, y0 = rng.integers(0, w), rng.integers(0, h)
        x1, y1 = x0 + rng.integers(w // 10, w // 2), y0 + rng.integers(h // 10, h // 2)
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        kind = rng.integers(0, 4)
        if kind == 0:
            draw.ellipse([x0, y0, x1, y1], fill=color)
        elif kind == 1:
            draw.rectangle([x0, y0, x1, y1], fill=color)
        elif kind == 2:
            pts = [(int(rng.integers(0, w)), int(rng.integers(0, h))) for _ in range(3)]
            draw.polygon(pts, fill=color)
        else:
            draw.line([x0, y0, x1, y1], fill=color, width=int(rng.integers(2, 8)))
    return im


def near_duplicate(im: Image.Image, seed: int) -> Image.Image:
    """A lightly edited copy: resize, crop of ≥ 80% area, brightness change or blur."""
    rng = np.random.default_rng(seed)
    w, h = im.size
    kind = seed % 4
    if kind == 0:
        return im.resize((int(w * 0.6), int(h * 0.6)), Image.Resampling.BILINEAR)
    if kind == 1:
        dx, dy = int(w * rng.uniform(0.02, 0.08)), int(h * rng.uniform(0.02, 0.08))
        return im.crop((dx, dy, w - dx, h - dy))
    if kind == 2:
        arr = np.asarray(im, dtype=np.float32) * rng.uniform(0.85, 1.15)
        return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    return im.filter(ImageFilter.GaussianBlur(1.0))


def jpeg_bytes(im: Image.Image, quality: int = 85) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def make_catalog(folder: str | Path, originals: int = 40, duplicated: int = 12, seed: int = 0) -> dict[str, list[str]]:
    """Write a catalog with planted duplicates; return {original: [its copies]} (relative paths).

    `duplicated` of the originals get one or two edited copies and one gets a byte-identical copy.
    """
    folder = Path(folder)
    (folder / "photos").mkdir(parents=True, exist_ok=True)
    (folder / "copies").mkdir(parents=True, exist_ok=True)
    truth: dict[str, list[str]] = {}
    for k in range(originals):
        im = scene(seed * 100_003 + k)
        rel = f"photos/img_{k:04d}.jpg" if k % 3 else f"photos/img_{k:04d}.png"
        if rel.endswith(".png"):
            im.save(folder / rel)
        else:
            (folder / rel).write_bytes(jpeg_bytes(im, 90))
        truth[rel] = []
        if k < duplicated:
            for c in range(1 + k % 2):
                copy_rel = f"copies/img_{k:04d}_copy{c}.jpg"
                (folder / copy_rel).write_bytes(jpeg_bytes(near_duplicate(im, k * 7 + c), 75))
                truth[rel].append(copy_rel)
        if k == 0:
            (folder / "copies/exact_copy.bin").write_bytes((folder / rel).read_bytes())
            truth[rel].append("copies/exact_copy.bin")
    return truth


if __name__ == "__main__":  # python -m dedup.synth FOLDER
    import sys

    target = Path(sys.argv[1] if len(sys.argv) > 1 else "sample-catalog")
    result = make_catalog(target)
    print(f"wrote {len(result) + sum(len(v) for v in result.values())} images to {target}")
