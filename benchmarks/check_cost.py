"""What the pair check costs: find-duplicates' time as a ratio to the index time, and the index's
bytes per image, on a catalog of photo crops (or any catalog given).

    python -m benchmarks.check_cost [--crops 2000] [--seed 0] [--catalog PATH] [--out benchmarks/out/check_cost]

The crop catalog is the hard case for the check's cost: many crops of each of Debian's raster
wallpapers (`gnome-backgrounds`, `mate-backgrounds`; 25–50% of each side, anywhere in the picture,
saved as ~800-pixel JPEGs), so every image has many near neighbours that the check must look at.
It measures cost only: crops of one photo share content, and the wallpapers include the encoder's
training pool, so no accuracy is claimed here. Runs `dedup index`, then `dedup find-duplicates`
with the check and with `--no-verify` as a user would, each in a fresh process, and again with the
catalog moved away (the check must work from the index alone and give the same sets; this run
finds the pair checks of the first remembered, `dedup.checkmemo`). Then 1% more crops (another
seed) are added and indexed, and find-duplicates runs with the pair checks remembered and,
after they are deleted, without them (the same sets).
"""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.measure import run_dedup
from dedup import checkmemo
from recipes.pool import PHOTOS, ensure_pool

RASTER = {".jpg", ".jpeg", ".png", ".webp"}


def make_crops(out: Path, count: int, seed: int) -> int:
    """Write `count` crops of the wallpapers to `out`; return how many wallpapers were used."""
    ensure_pool()
    walls = sorted(p for src in PHOTOS for p in src.rglob("*") if p.suffix.lower() in RASTER and p.is_file())
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    for k in range(count):
        wall = walls[k % len(walls)]
        with Image.open(wall) as im:
            im = im.convert("RGB")
            w, h = im.size
            cw, ch = int(w * rng.uniform(0.25, 0.5)), int(h * rng.uniform(0.25, 0.5))
            x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
            crop = im.crop((x, y, x + cw, y + ch))
        crop.thumbnail((800, 800), Image.Resampling.BILINEAR)
        crop.save(out / f"{wall.stem}_{k:05d}.jpg", quality=90)
    return len(walls)


def folder_bytes(folder: Path, pattern: str = "**/*") -> int:
    return sum(p.stat().st_size for p in folder.glob(pattern) if p.is_file())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--crops", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--catalog", type=Path, default=None, help="Measure this catalog instead of the crops.")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/out/check_cost"))
    args = ap.parse_args()
    if args.out.exists():
        shutil.rmtree(args.out)
    catalog, index = args.out / "catalog", args.out / "index"
    if args.catalog is None:
        walls = make_crops(catalog, args.crops, args.seed)
        print(f"catalog: {args.crops} crops of {walls} wallpapers (seed {args.seed})")
    else:
        shutil.copytree(args.catalog, catalog)
        print(f"catalog: a copy of {args.catalog}")
    index_s, index_rss, out = run_dedup("index", str(catalog), "--index", str(index), "--format", "json", "-q")
    rows = json.loads(out)["indexed"]
    total, pictures = folder_bytes(index), folder_bytes(index, "shards-*/*.pictures")
    print(f"dedup index: {rows} images, {index_s:.1f} s, peak RSS {index_rss:.0f} MiB; index {total / rows:,.0f} "
          f"bytes per image, of which check pictures {pictures / rows:,.0f}")
    print("\n| find-duplicates | sets | candidates checked (per image) | confirmed | time s | time / index time | "
          "peak RSS MiB |")
    print("|---|---|---|---|---|---|---|")
    sets = {}
    for label, extra in (("default (pair check)", []), ("--no-verify", ["--no-verify"])):
        seconds, rss, out = run_dedup("find-duplicates", "--index", str(index), "--format", "json", "-q", *extra)
        doc = json.loads(out)
        sets[label] = doc["groups"]
        v = doc["verified"] or {}
        per = f"{v['candidates']:,} ({v['candidates'] / rows:.1f})" if v else "—"
        print(f"| {label} | {len(doc['groups'])} | {per} | {v.get('confirmed', '—')} | {seconds:.1f} | "
              f"{seconds / index_s:.2f} | {rss:.0f} |")
    moved = args.out / "catalog-moved"
    catalog.rename(moved)
    try:
        seconds, _, out = run_dedup("find-duplicates", "--index", str(index), "--format", "json", "-q")
    finally:
        moved.rename(catalog)
    doc = json.loads(out)
    same = doc["groups"] == sets["default (pair check)"]
    memo = folder_bytes(index / checkmemo.FOLDER)
    print(f"\nagain, with the catalog moved away: {len(doc['groups'])} sets, {doc['verified']['unreadable']} pairs unreadable, "
          f"{'the same sets' if same else 'DIFFERENT sets'}; {seconds:.1f} s, {seconds / index_s:.2f} × the index time "
          f"(the pair checks remembered: {memo / rows:,.0f} bytes per image)")
    new = args.out / "new"
    make_crops(new, max(1, rows // 100), args.seed + 1)
    for p in sorted(new.iterdir()):
        p.rename(catalog / f"new_{p.name}")
    added_s, _, _ = run_dedup("index", str(catalog), "--index", str(index), "-q")
    seconds, _, out = run_dedup("find-duplicates", "--index", str(index), "--format", "json", "-q")
    remembered = json.loads(out)["groups"]
    shutil.rmtree(index / checkmemo.FOLDER)
    fresh_s, _, out = run_dedup("find-duplicates", "--index", str(index), "--format", "json", "-q")
    same = json.loads(out)["groups"] == remembered
    print(f"{max(1, rows // 100)} new crops: dedup index {added_s:.1f} s, then find-duplicates {seconds:.1f} s with the "
          f"pair checks remembered, {fresh_s:.1f} s without ({'the same sets' if same else 'DIFFERENT sets'})")


if __name__ == "__main__":
    main()
