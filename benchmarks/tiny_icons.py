"""Tiny icons of one size: every icon a different item, half of them with a copy of that size.

    python -m benchmarks.tiny_icons [--model default] [--libraries gnome:16 gnome:24 adwaita:16 gnome:32] [--icons 400]
                                    [--out benchmarks/out/tiny_icons]

An icon theme draws its 16- to 32-pixel icons on a few templates (a folder, a monitor, a
document) with another emblem, face or logo: at that size two icons differ in a handful of
pixels, and the pair check's keypoints, found on the picture blown up, agree by chance. Each
library holds up to `--icons` icons of one validation theme (`gnome`, `adwaita`: never trained
on by the shipped encoder, so decisions may be taken on them) at one size, as the theme ships them
(PNG with transparency); half get a copy of the same size, as a catalog holds one: re-encoded as
JPEG (quality 70–95, on white), flattened onto a light grey, reduced to 64 colours, or a tenth
brighter or darker. `dedup index` and `find-duplicates` run as a user runs them, at the defaults
and with `--no-verify`; pHash is scored at its best Hamming threshold on the same catalog (an
upper bound for it).
"""
from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance

from benchmarks.neardup import scored_catalog, wrong_pair_rows
from recipes import icons

LIBRARIES = ("gnome:16", "gnome:24", "adwaita:16", "gnome:32")
COPIES = ("jpeg", "grey backdrop", "64 colours", "brightness")


def flattened(im: Image.Image, colour: tuple[int, int, int]) -> Image.Image:
    base = Image.new("RGBA", im.size, (*colour, 255))
    base.alpha_composite(im.convert("RGBA"))
    return base.convert("RGB")


def copy_of(im: Image.Image, kind: str, rng: np.random.Generator) -> Image.Image:
    """A copy of an icon as a catalog may hold it (`COPIES`), at its size."""
    if kind == "jpeg":
        out = io.BytesIO()
        flattened(im, (255, 255, 255)).save(out, "JPEG", quality=int(rng.integers(70, 96)))
        return Image.open(io.BytesIO(out.getvalue())).convert("RGB")
    if kind == "grey backdrop":
        level = int(rng.integers(225, 246))
        return flattened(im, (level, level, level))
    if kind == "64 colours":
        return im.convert("RGBA").quantize(64).convert("RGBA")
    return ImageEnhance.Brightness(flattened(im, (255, 255, 255))).enhance(float(rng.uniform(0.9, 1.1)))


def builder(theme: str, size: int, count: int, seed: int):
    """`build(out)` for `scored_catalog`: the library of `theme` at `size` px in `out/catalog`."""
    def build(out: Path) -> dict[str, tuple[int, str]]:
        found = {name: sizes[size] for name, sizes in icons.renditions(theme, min_size=size, min_count=1).items()
                 if size in sizes}
        names = sorted(found)
        rng = np.random.default_rng(seed)
        (out / "catalog").mkdir(parents=True)
        truth = {}
        for k in sorted(rng.choice(len(names), size=min(count, len(names)), replace=False).tolist()):
            im = Image.open(found[names[k]]).convert("RGBA")
            if im.size != (size, size):
                continue
            im.save(out / "catalog" / f"i{k:05d}.png")
            truth[f"i{k:05d}.png"] = (k, "original")
            if rng.random() < 0.5:
                kind = COPIES[int(rng.integers(0, len(COPIES)))]
                name = f"i{k:05d}_copy.{'jpg' if kind == 'jpeg' else 'png'}"
                copy_of(im, kind, rng).save(out / "catalog" / name, **({"quality": 95} if kind == "jpeg" else {}))
                truth[name] = (k, kind)
        return truth
    return build


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="default", help="Encoder to benchmark (a shipped name or a file).")
    ap.add_argument("--libraries", nargs="+", default=list(LIBRARIES), help="theme:size of each library.")
    ap.add_argument("--icons", type=int, default=400, help="Icons per library (seeded sample).")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/out/tiny_icons"))
    args = ap.parse_args()
    libraries = [(theme, int(size)) for theme, size in (spec.split(":") for spec in args.libraries)]
    icons.ensure({theme for theme, _ in libraries})
    for theme, size in libraries:
        truth, run, hashes = scored_catalog(args.model, (args.out / f"{theme}-{size}").resolve(),
                                            builder(theme, size, args.icons, args.seed))
        kinds = [kind for _, kind in truth.values()]
        print(f"\n{theme} at {size} px: {kinds.count('original')} icons, {len(kinds) - kinds.count('original')} copies, "
              f"{len(run['true'])} true pairs")
        wrong_pair_rows(run, hashes, lambda pred: {"two icons": len(pred - run["true"])})
        print("recall by copy (with the check): " + ", ".join(f"{k} {v:.2f}" for k, v in run["families"].items()))
        print(f"find-duplicates {run['find_s']:.1f} s, index {run['index_s']:.1f} s")


if __name__ == "__main__":
    main()
