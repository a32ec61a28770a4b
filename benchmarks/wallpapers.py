"""Wallpapers as their authors ship them: one picture at several resolutions, with its preview.

    python -m benchmarks.wallpapers [--model default] [--out benchmarks/out/wallpapers] [--json PATH]

`plasma-workspace-wallpapers` (KDE's wallpapers, LGPL-3 / CC-BY-SA-4.0, installed with apt when
missing; never trained on) ships each wallpaper at one or more resolutions (landscape, and for
some a portrait version redrawn for a phone), some in a dark version too, and a small preview
(`screenshot`). Every file is taken as it is, no edit (a size named by a link to another file is
that file, taken once): the wallpaper's largest landscape file is
its original, and its other files are renditions of it, by kind: `preview`, `resolution` (another
landscape size) and `portrait`. A wallpaper's dark version is another item (with its own
renditions); the wrong pairs reported are split into a wallpaper's light and dark versions, and
others. `dedup index` and `find-duplicates` run as a user runs them, at the defaults and with
`--no-verify`; pHash is scored at its best Hamming threshold on the same catalog (an upper bound
for it). Headline figures go to `--json` when given.
"""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from PIL import Image

from benchmarks.neardup import scored_catalog, write_modes, wrong_by_kind, wrong_pair_rows
from recipes import apt

WALLPAPERS = Path("/usr/share/wallpapers")
PACKAGE = "plasma-workspace-wallpapers"
RASTER = {".jpg", ".jpeg", ".png", ".webp"}


def ensure() -> None:
    """Install the wallpapers when missing (needs root)."""
    if not (WALLPAPERS.is_dir() and any(WALLPAPERS.glob("*/contents"))):
        apt.install((PACKAGE,), "the wallpaper benchmark")


def _kind(size: tuple[int, int], original: tuple[int, int], preview: bool) -> str:
    if preview:
        return "preview"
    if size == original:
        return "original"
    return "portrait" if size[1] > size[0] else "resolution"


def build(out: Path) -> dict[str, tuple[int, str]]:
    """Copy every wallpaper file into `out/catalog`; return {path: (item id, kind)}: item
    `2 * wallpaper` is its light version (with the preview), `2 * wallpaper + 1` its dark one."""
    truth: dict[str, tuple[int, str]] = {}
    for w, folder in enumerate(sorted(p for p in WALLPAPERS.iterdir() if (p / "contents").is_dir())):
        items: dict[int, list[tuple[Path, bool]]] = {}
        for path in sorted((folder / "contents").rglob("*")):
            if path.suffix.lower() not in RASTER or not path.is_file() or path.is_symlink():
                continue  # a size named by a link to another file is that file
            dark, preview = "images_dark" in path.parts, path.stem == "screenshot"
            items.setdefault(2 * w + dark, []).append((path, preview))
        for item, files in items.items():
            sizes = {path: Image.open(path).size for path, _ in files}
            landscape = [sizes[p] for p, preview in files if not preview and sizes[p][0] >= sizes[p][1]]
            original = max(landscape or [s for p, s in sizes.items()], key=lambda s: s[0] * s[1])
            for path, preview in files:
                rel = f"{folder.name}/{'/'.join(path.relative_to(folder / 'contents').parts)}"
                (out / "catalog" / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, out / "catalog" / rel)
                truth[rel] = (item, _kind(sizes[path], original, preview))
    return truth


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="default", help="Encoder to benchmark (a shipped name or a file).")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/out/wallpapers"))
    ap.add_argument("--json", type=Path, default=None, help="Write the headline figures here.")
    args = ap.parse_args()
    ensure()
    truth, run, hashes = scored_catalog(args.model, args.out.resolve(), build)
    paths, true = run["paths"], run["true"]
    kinds = [kind for _, kind in truth.values()]
    print(f"{len(paths)} images: {len({i // 2 for i, _ in truth.values()})} wallpapers, {kinds.count('original')} items "
          f"(light or dark), {len(true)} true pairs; renditions: " + ", ".join(
              f"{k} {kinds.count(k)}" for k in ("resolution", "portrait", "preview")))
    item = [truth[p][0] for p in paths]
    rows = wrong_pair_rows(run, hashes, lambda pred: wrong_by_kind(pred, true, "light and dark of one wallpaper",
                                                                   lambda a, b: item[a] // 2 == item[b] // 2))
    print("recall by rendition (with the check, against the original): "
          + ", ".join(f"{k} {v:.2f}" for k, v in run["families"].items()))
    print(f"find-duplicates {run['find_s']:.1f} s, index {run['index_s']:.1f} s")
    if args.json:
        write_modes(args.json, "wallpapers", "python -m benchmarks.wallpapers", args.model, rows, run,
                    "recall_by_rendition", package=PACKAGE, images=len(paths), true_pairs=len(true))


if __name__ == "__main__":
    main()
