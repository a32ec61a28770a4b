"""The image pool for the default encoder: Debian's free clip art and wallpapers, split once, and
the labelled near-duplicate catalogs drawn from it (`build_catalog`).

Split rule (recorded in the model card): each image's base name (the same clip art appears under
several categories) is hashed; 15% of names are the held-out test pool (benchmarks only),
5% the validation pool (threshold calibration), the rest training. Byte-identical files are kept once.
"""
from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from dedup.augment import FAMILIES, HEAVY_FAMILIES, duplicate, flatten, overlay, series
from dedup.data import open_rgba
from recipes import apt

APT_PACKAGES = ("openclipart-png", "gnome-backgrounds", "mate-backgrounds")
CLIP_ART = Path("/usr/share/openclipart/png")
PHOTOS = (Path("/usr/share/backgrounds/gnome"), Path("/usr/share/backgrounds/mate"))  # the two packages' own folders:
# other packages put wallpapers in /usr/share/backgrounds too, and the pool is the same whatever else is installed
SOURCES = (CLIP_ART, *PHOTOS)
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp"}


def ensure_pool() -> None:
    """Install the apt packages that hold the pool if they are missing (needs root)."""
    if not (all(p.is_dir() for p in SOURCES) and any(CLIP_ART.rglob("*.png"))):
        apt.install(APT_PACKAGES, "the image pool")


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


SERIES_PREFIX = "s"  # file names of series items and their duplicates
SERIES_ID = 1_000_000  # source ids of series items start here


def build_catalog(out: Path, originals: int, seed: int, part: str = "test", series: int = 0,
                  heavy: int = 0) -> dict[str, tuple[int, str]]:
    """Write the catalog from pool `part`; return {relative path: (source id, family or "original")}.

    With `series`, that many clip-art drawings not otherwise used also become look-alike series
    (`dedup.augment.series`: 3 different items each, named `s…`), and each item gets a
    near-duplicate half of the time. With `heavy`, that many of the originals also get a copy
    with a heavy edit (`dedup.augment.HEAVY_FAMILIES`, named `…_h0`): a crop of a fifth to under
    half of the subject, or the picture pasted onto a photo of the pool part that is not in the
    catalog. Either way the rest of the catalog does not change."""
    rng = np.random.default_rng(seed)
    loaded = []
    files = pool_files()[part]
    for k, path in enumerate(files):
        try:
            loaded.append((k, open_rgba(path.read_bytes(), 512)))
        except Exception:  # noqa: BLE001 - a pool file PIL refuses is simply not used
            continue
    usable = [loaded[i] for i in distinct([im for _, im in loaded])]
    picks = sorted(rng.choice(len(usable), size=min(originals, len(usable)), replace=False).tolist())
    truth: dict[str, tuple[int, str]] = {}
    (out / "catalog").mkdir(parents=True, exist_ok=True)
    for pick in picks:
        src, im = usable[pick]
        copies = int(rng.integers(1, 4)) if rng.random() < 0.5 else 0
        _write_item(out / "catalog", truth, f"o{src:05d}", src, im, copies, rng)
    unused = [usable[k] for k in sorted(set(range(len(usable))) - set(picks))]
    if series:
        templates = [u for u in unused if is_clip_art(files[u[0]])]
        _add_series(out / "catalog", truth, templates, series, np.random.default_rng([seed, 1]))
    if heavy:
        photos = [im for src, im in unused if not is_clip_art(files[src])]
        _add_heavy(out / "catalog", truth, [usable[p] for p in picks], photos, heavy, np.random.default_rng([seed, 2]))
    return truth


def _add_heavy(folder: Path, truth: dict[str, tuple[int, str]], originals: list, photos: list, count: int,
               rng: np.random.Generator) -> None:
    for pick in sorted(rng.choice(len(originals), size=min(count, len(originals)), replace=False).tolist()):
        src, im = originals[pick]
        family = str(rng.choice(HEAVY_FAMILIES))
        if family == "overlay" and photos:
            dup = overlay(im, rng, photos[int(rng.integers(0, len(photos)))])
        else:
            dup = FAMILIES[family](im.convert("RGBA"), rng)
        ext = ["jpg", "png", "webp"][int(rng.integers(0, 3))]
        flatten(dup).save(folder / f"o{src:05d}_h0.{ext}", **({"quality": 85} if ext != "png" else {}))
        truth[f"o{src:05d}_h0.{ext}"] = (src, family)


def is_clip_art(path: Path) -> bool:
    return CLIP_ART in path.parents


def _add_series(folder: Path, truth: dict[str, tuple[int, str]], templates: list, count: int,
                rng: np.random.Generator) -> None:
    for t in sorted(rng.choice(len(templates), size=min(count, len(templates)), replace=False).tolist()):
        src, im = templates[t]
        _, items = series(im, rng)
        for k, item in enumerate(items):
            copies = 1 if rng.random() < 0.5 else 0
            _write_item(folder, truth, f"{SERIES_PREFIX}{src:05d}_{k}", SERIES_ID + 10 * src + k, item, copies, rng)


def _write_item(folder: Path, truth: dict[str, tuple[int, str]], name: str, item_id: int, im, copies: int,
                rng: np.random.Generator) -> None:
    """Write an item as `name`.jpg and `copies` near-duplicates of it (`name`_d<k>), labelled in `truth`."""
    flatten(im).save(folder / f"{name}.jpg", quality=92)
    truth[f"{name}.jpg"] = (item_id, "original")
    for k in range(copies):
        dup, family = duplicate(im, rng)
        ext = ["jpg", "png", "webp"][int(rng.integers(0, 3))]
        dup.save(folder / f"{name}_d{k}.{ext}", **({"quality": 85} if ext != "png" else {}))
        truth[f"{name}_d{k}.{ext}"] = (item_id, family)


def series_template(source: np.ndarray) -> np.ndarray:
    """Per source id (`build_catalog`'s truth): the series template of an item of a look-alike
    series, -1 for anything else."""
    source = np.asarray(source)
    return np.where(source >= SERIES_ID, source // 10, -1)


def indexed_catalog(out: Path, originals: int, seed: int, part: str, series: int = 0,
                    model: Path | None = None, heavy: int = 0) -> dict[str, tuple[int, str]]:
    """`build_catalog` into a fresh `out` and `dedup index` of it into `out/index` (with `model`,
    else the default encoder), run as a user would; returns the truth."""
    if out.exists():
        shutil.rmtree(out)
    truth = build_catalog(out, originals, seed, part=part, series=series, heavy=heavy)
    subprocess.run([sys.executable, "-m", "dedup", "index", str(out / "catalog"), "--index", str(out / "index"), "-q",
                    *(["--model", str(model)] if model is not None else [])], check=True)
    return truth


def true_pairs(truth: dict[str, tuple[int, str]], paths: list[str]) -> set[tuple[int, int]]:
    by_src = defaultdict(list)
    for k, p in enumerate(paths):
        by_src[truth[p][0]].append(k)
    return {(a, b) for ids in by_src.values() for i, a in enumerate(ids) for b in ids[i + 1 :]}
