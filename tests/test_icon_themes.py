"""recipes.icons: an icon theme read as labelled renditions."""
from __future__ import annotations

import numpy as np
from PIL import Image

from dedup.data import TrainSet
from recipes import icons
from recipes.pool import CLIP_ART
from recipes.train_default import with_icons, with_series


def _png(path, size, seed):
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (size, size, 4), dtype=np.uint8), "RGBA").save(path)


def test_renditions_are_real_files_one_per_pixel_size_and_aliases_are_dropped(tmp_path, monkeypatch):
    base = tmp_path / "theme"
    for folder, size in (("16x16", 16), ("24x24", 24), ("32x32", 32), ("16x16@2x", 32), ("48x48", 48)):
        _png(base / folder / "apps" / "editor.png", size, seed=size)
    _png(base / "48x48" / "apps" / "viewer.png", 48, seed=1)
    _png(base / "24x24" / "apps" / "viewer.png", 24, seed=2)
    _png(base / "8x8" / "apps" / "viewer.png", 8, seed=3)  # below min_size
    (base / "48x48" / "apps" / "alias.png").symlink_to(base / "48x48" / "apps" / "editor.png")
    (base / "24x24" / "apps" / "alias.png").symlink_to(base / "24x24" / "apps" / "editor.png")
    for folder in ("48x48", "24x24"):  # byte-identical to `editor`, but not a link
        (base / folder / "apps" / "copy.png").write_bytes((base / folder / "apps" / "editor.png").read_bytes())
    _png(base / "scalable" / "apps" / "lonely.png", 64, seed=4)  # no size folder
    for folder in ("48x48", "32x32"):  # the same drawing with one pixel changed: not a second icon
        twin = np.array(Image.open(base / folder / "apps" / "editor.png"))
        twin[0, 0] = 255 - twin[0, 0]
        Image.fromarray(twin).save(base / folder / "apps" / "twin.png")
    monkeypatch.setitem(icons.THEMES, "fake", icons.Theme("fake-icon-theme", base, "test"))

    found = icons.renditions("fake", min_size=16)
    assert sorted(found) == ["apps__editor", "apps__viewer"]
    assert sorted(found["apps__editor"]) == [16, 24, 32, 48]
    assert sorted(found["apps__viewer"]) == [24, 48]
    assert sorted(icons.renditions("fake", min_size=32)) == ["apps__editor"]  # viewer has one size left
    assert icons.renditions("fake", min_size=16, min_count=5) == {}


def test_training_and_benchmark_themes_are_apart_and_oxygen_is_in_neither():
    assert not set(icons.TRAINING) & set(icons.BENCHMARK)
    assert all(icons.THEMES[t].package != "oxygen-icon-theme" for t in icons.TRAINING + icons.BENCHMARK)


def test_recipe_items_icons_are_one_item_each_and_series_replace_their_drawing(tmp_path, monkeypatch):
    base = tmp_path / "theme"
    for size in (24, 32, 48):
        _png(base / f"{size}x{size}" / "apps" / "editor.png", size, seed=size)
        _png(base / f"{size}x{size}" / "apps" / "viewer.png", size, seed=100 + size)
    monkeypatch.setitem(icons.THEMES, "fake", icons.Theme("fake-icon-theme", base, "test"))
    drawing = Image.new("RGBA", (96, 96), (255, 255, 255, 0))
    drawing.paste((200, 40, 40, 255), (20, 20, 76, 76))
    ts = TrainSet([drawing, drawing.copy()], np.arange(2), [str(CLIP_ART / "a" / "one.png"), "/elsewhere/two.jpg"])

    made = with_series(ts, 5, seed=0)  # only the clip-art drawing can be a template
    assert [p.rsplit("/", 1)[-1] for p in made.paths] == ["one.png#series0", "one.png#series1", "one.png#series2", "two.jpg"]
    assert len(made.classes) == 4
    assert len({np.asarray(im).tobytes() for im in made.images[:3]}) == 3  # three different items

    mixed = with_icons(made, ("fake",), min_size=22)
    assert len(mixed.images) == 4 + 6 and len(mixed.classes) == 4 + 2
    assert sorted(np.bincount(mixed.labels).tolist()) == [1, 1, 1, 1, 3, 3]
