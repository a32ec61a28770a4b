"""One icon theme in several colourways: the same icons, each colour a different item.

    python -m benchmarks.colourways [--model default] [--out benchmarks/out/colourways] [--json PATH]

GNOME-Colors (`gnome-brave`, `gnome-wine`, `gnome-wise`: blue, red and green; GPL-2, installed
with apt when missing, with `librsvg2-bin` to render; never trained on) ships one set of icons
in each colour: a folder, a monitor's screen, a volume meter's waves drawn in the theme's colour,
the rest of the icon alike. To a catalog owner each colour is another item, as a product in
another colour is. Each scalable icon (a file named by a link to another is that file, taken
once; an icon drawn alike in every colour is one item) is rendered at 256 px, its `original`,
and at 128 and 64 px; the theme's own 32-px drawing of it, where there is one, is a rendition
too (`32 px drawn`). The wrong pairs reported are split into two colourways of one icon and
others (two icons of one design: a folder with another emblem, a meter at another level).
`dedup index` and `find-duplicates` run as a user runs them, at the defaults and with
`--no-verify`; pHash is scored at its best Hamming threshold on the same catalog (an upper bound
for it). Headline figures go to `--json` when given.
"""
from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
from pathlib import Path

from benchmarks.neardup import scored_catalog, write_modes, wrong_by_kind, wrong_pair_rows
from recipes import apt

ICONS = Path("/usr/share/icons")
THEMES = ("gnome-brave", "gnome-wine", "gnome-wise")
PACKAGES = tuple(f"{t}-icon-theme" for t in THEMES) + ("librsvg2-bin",)
SIZES = {256: "original", 128: "128 px", 64: "64 px"}
DRAWN = "32x32"


def ensure() -> None:
    """Install the themes and the renderer when missing (needs root)."""
    if not (all((ICONS / t / "scalable").is_dir() for t in THEMES) and shutil.which("rsvg-convert")):
        apt.install(PACKAGES, "the colourway benchmark")


def build(out: Path) -> dict[str, tuple[int, str]]:
    """Render every theme's icons into `out/catalog`; return {path: (item id, kind)}."""
    truth: dict[str, tuple[int, str]] = {}
    items: dict[tuple[str, str], int] = {}  # (theme, the icon file's hash) → item
    for theme in THEMES:
        for svg in sorted((ICONS / theme / "scalable").rglob("*.svg")):
            real = svg.resolve()
            data = real.read_bytes()
            key = (theme, hashlib.blake2b(data, digest_size=8).hexdigest())
            if key in items or any(k[1] == key[1] for k in items):
                continue  # a link to a file taken already, or an icon drawn alike in another colour
            item = items[key] = len(items)
            name = f"{real.parent.name}/{real.stem}"
            folder = out / "catalog" / theme / real.parent.name
            folder.mkdir(parents=True, exist_ok=True)
            for px, kind in SIZES.items():
                target = folder / f"{real.stem}-{px}.png"
                subprocess.run(["rsvg-convert", "-w", str(px), "-h", str(px), "-o", str(target), str(real)], check=True)
                truth[str(target.relative_to(out / "catalog"))] = (item, kind)
            drawn = ICONS / theme / DRAWN / name
            drawn = drawn.with_suffix(".png")
            if drawn.is_file():
                target = folder / f"{real.stem}-32.png"
                shutil.copyfile(drawn.resolve(), target)
                truth[str(target.relative_to(out / "catalog"))] = (item, "32 px drawn")
    return truth


def design(path: str) -> str:
    """The icon a catalog path draws, whatever its colour and size: `context/name`."""
    _, context, file = path.split("/")
    return f"{context}/{file.rsplit('-', 1)[0]}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="default", help="Encoder to benchmark (a shipped name or a file).")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/out/colourways"))
    ap.add_argument("--json", type=Path, default=None, help="Write the headline figures here.")
    args = ap.parse_args()
    ensure()
    truth, run, hashes = scored_catalog(args.model, args.out.resolve(), build)
    paths, true = run["paths"], run["true"]
    kinds = [kind for _, kind in truth.values()]
    print(f"{len(paths)} images: {kinds.count('original')} items ({len({design(p) for p in paths})} icons in "
          f"{len(THEMES)} colours), {len(true)} true pairs; renditions: "
          + ", ".join(f"{k} {kinds.count(k)}" for k in ("128 px", "64 px", "32 px drawn")))
    rows = wrong_pair_rows(run, hashes, lambda pred: wrong_by_kind(pred, true, "colourways of one icon",
                                                                   lambda a, b: design(paths[a]) == design(paths[b])))
    print("recall by rendition (with the check, against the original): "
          + ", ".join(f"{k} {v:.2f}" for k, v in run["families"].items()))
    print(f"find-duplicates {run['find_s']:.1f} s, index {run['index_s']:.1f} s")
    if args.json:
        write_modes(args.json, "colourways", "python -m benchmarks.colourways", args.model, rows, run,
                    "recall_by_rendition", packages=list(PACKAGES), images=len(paths), true_pairs=len(true))


if __name__ == "__main__":
    main()
