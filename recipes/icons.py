"""Debian icon themes as labelled renditions: one icon (its context and name) drawn by its theme
at several pixel sizes, each size redrawn rather than scaled.

Which theme serves what is decided here and nowhere else:
- `TRAINING`: themes the default encoder's recipe can train on (`--icons`; renditions of one icon are positives).
- `BENCHMARK`: themes of other designers, never trained, tuned or calibrated on; the icon-rendition
  benchmark (`benchmarks/icons.py`) measures on them.
- `oxygen` is held out: never trained, tuned or calibrated on; only measured on
  (`benchmarks/train_icons.py`).

Only real files count: a theme's symlinks (aliases of one drawing under another name) are skipped,
and of icons whose largest renditions are the same drawing (byte-identical, or the same pixels by
`recipes.pool.distinct`) only the one with the most renditions is kept, so two icons are always two
drawings.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from dedup.data import open_rgba
from recipes import apt
from recipes.pool import distinct


@dataclass(frozen=True)
class Theme:
    package: str  # the Debian package that installs it
    folder: Path
    licence: str


THEMES = {
    "gnome": Theme("gnome-icon-theme", Path("/usr/share/icons/gnome"), "CC-BY-SA-3.0 / GPL-2"),
    "tango": Theme("tango-icon-theme", Path("/usr/share/icons/Tango"), "public domain"),
    "adwaita": Theme("adwaita-icon-theme", Path("/usr/share/icons/Adwaita"), "CC-BY-SA-3.0 / LGPL-3"),
    "moka": Theme("moka-icon-theme", Path("/usr/share/icons/Moka"), "CC-BY-SA-4.0"),
    "nuovext2": Theme("lxde-icon-theme", Path("/usr/share/icons/nuoveXT2"), "LGPL-3"),
    "oxygen": Theme("oxygen-icon-theme", Path("/usr/share/icons/oxygen/base"), "LGPL-3"),
}
TRAINING = ("gnome", "tango", "adwaita")
BENCHMARK = ("moka", "nuovext2")

_SIZE_DIR = re.compile(r"(\d+)x\d+(@2x)?$")


def ensure(names) -> None:
    """Install the apt packages of the themes `names` that are missing (needs root)."""
    missing = [THEMES[n].package for n in names if not THEMES[n].folder.is_dir()]
    if missing:
        apt.install(missing, "the icon themes")


def renditions(name: str, min_size: int = 16, min_count: int = 2) -> dict[str, dict[int, Path]]:
    """{context__icon: {pixel size: file}} of theme `name`: icons with at least `min_count`
    renditions of `min_size` px or more, one file per pixel size (a size@2x folder is twice its size)."""
    base = THEMES[name].folder
    found: dict[str, dict[int, Path]] = {}
    for path in sorted(base.rglob("*.png")):
        match = _SIZE_DIR.match(path.relative_to(base).parts[0])
        if path.is_symlink() or not match:
            continue
        size = int(match.group(1)) * (2 if match.group(2) else 1)
        if size >= min_size:
            found.setdefault(f"{path.parent.name}__{path.stem}", {}).setdefault(size, path)
    seen: set[str] = set()
    icons = []
    for icon, sizes in sorted(found.items(), key=lambda kv: (-len(kv[1]), kv[0])):  # of copies, the fullest stays
        if len(sizes) < min_count:
            continue
        digest = hashlib.blake2b(sizes[max(sizes)].read_bytes(), digest_size=16).hexdigest()
        if digest not in seen:
            seen.add(digest)
            icons.append((icon, sizes))
    largest = [open_rgba(sizes[max(sizes)].read_bytes(), 64) for _, sizes in icons]
    return dict(sorted(icons[k] for k in distinct(largest))) if icons else {}
