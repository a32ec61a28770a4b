"""The image pool for the default encoder: Debian's free clip art and wallpapers, split once.

Split rule (recorded in the model card): each image's base name (the same clip art appears under
several categories) is hashed; 15% of names are the held-out test pool (benchmarks only),
5% the validation pool (threshold calibration), the rest training. Byte-identical files are kept once.
"""
from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

APT_PACKAGES = ("openclipart-png", "gnome-backgrounds", "mate-backgrounds")
SOURCES = (Path("/usr/share/openclipart/png"), Path("/usr/share/backgrounds"))
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp"}


def ensure_pool() -> None:
    """Install the apt packages that hold the pool if they are missing (needs root)."""
    if all(p.is_dir() for p in SOURCES) and any(SOURCES[0].rglob("*.png")):
        return
    if shutil.which("apt-get") is None:
        raise SystemExit("the image pool needs Debian's packages: " + " ".join(APT_PACKAGES))
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", *APT_PACKAGES], check=True)


def part_of(path: Path) -> str:
    """'test', 'val' or 'train' by a hash of the base name."""
    h = int(hashlib.sha256(path.stem.encode()).hexdigest()[:8], 16) % 100
    return "test" if h < 15 else "val" if h < 20 else "train"


def pool_files() -> dict[str, list[Path]]:
    """Sorted, byte-deduplicated pool files by part."""
    ensure_pool()
    seen: set[str] = set()
    parts: dict[str, list[Path]] = {"train": [], "val": [], "test": []}
    for src in SOURCES:
        for path in sorted(src.rglob("*")):
            if path.suffix.lower() not in IMAGE_SUFFIXES or not path.is_file():
                continue
            digest = hashlib.blake2b(path.read_bytes(), digest_size=16).hexdigest()
            if digest in seen:
                continue
            seen.add(digest)
            parts[part_of(path)].append(path)
    return parts


def distinct(images, rms: float = 10.0, min_std: float = 6.0) -> list[int]:
    """Indexes of pool images that are neither blank nor the same picture as an earlier one.

    The clip-art pool holds many near-identical drawings (plain circles, one icon in two files);
    as "different" images they would be label noise in a duplicate benchmark. Judged on pixels
    only (32×32 greyscale over white), independently of any encoder: an image is dropped when
    its RMS difference to an earlier kept image is below `rms` (of 255) or its own standard
    deviation is below `min_std` (almost blank).
    """
    import numpy as np
    from PIL import Image

    from dedup.augment import flatten

    thumbs = np.stack([
        np.asarray(flatten(im).convert("L").resize((32, 32), Image.Resampling.BOX), dtype=np.float32).ravel()
        for im in images
    ])
    keep: list[int] = []
    for k, t in enumerate(thumbs):
        if t.std() < min_std:
            continue
        if keep and np.sqrt(((thumbs[keep] - t) ** 2).mean(axis=1)).min() < rms:
            continue
        keep.append(k)
    return keep
