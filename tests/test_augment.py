"""Training views with their edit families' chances; look-alike series: different items from one
template, none a copy of another."""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from dedup.augment import DUPLICATE_FAMILIES, FAMILIES, HEAVY_FAMILIES, VIEW_CHANCES, flatten, heavy_crop, lowres, overlay, random_view, series


def drawing(colour: tuple[int, int, int]) -> Image.Image:
    """A filled shape on a transparent canvas, as clip art comes."""
    im = Image.new("RGBA", (120, 90), (0, 0, 0, 0))
    draw = ImageDraw.Draw(im)
    draw.rounded_rectangle([15, 10, 105, 80], radius=12, fill=colour + (255,), outline=(0, 0, 0, 255), width=3)
    draw.ellipse([30, 25, 50, 45], fill=(250, 250, 250, 255))
    return im


def rms(a: Image.Image, b: Image.Image) -> float:
    return float(np.sqrt(((np.asarray(flatten(a), np.float32) - np.asarray(flatten(b), np.float32)) ** 2).mean()))


def test_a_view_applies_each_family_with_its_chance():
    im = drawing((200, 40, 40))
    assert all(rms(random_view(im, np.random.default_rng(s), chances={}), im) == 0 for s in range(5))
    mirrored = random_view(im, np.random.default_rng(0), chances={"hflip": 1.0})
    assert rms(mirrored, im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)) == 0
    shipped = [random_view(im, np.random.default_rng(s)) for s in range(5)]
    given = [random_view(im, np.random.default_rng(s), chances=dict(VIEW_CHANCES)) for s in range(5)]
    assert all(a.size == b.size and rms(a, b) == 0 for a, b in zip(shipped, given))
    assert any(a.size != im.size or rms(a, im) > 0 for a in shipped)


def test_series_items_differ_from_each_other_in_one_place_and_keep_the_template():
    template = drawing((200, 40, 40))
    kinds = set()
    for seed in range(8):
        kind, items = series(template, np.random.default_rng(seed))
        kinds.add(kind)
        assert kind in ("letter", "colour") and len(items) == 3
        assert all(i.size == template.size and i.mode == "RGBA" for i in items)
        assert all(np.array_equal(np.asarray(i.getchannel("A")) > 0, np.asarray(template.getchannel("A")) > 0)
                   for i in items if kind == "colour")
        for a in range(3):
            for b in range(a + 1, 3):
                assert rms(items[a], items[b]) > 2.0  # never the same picture twice
        if kind == "letter":  # only the badge differs: most pixels are the template's
            same = np.all(np.asarray(flatten(items[0])) == np.asarray(flatten(items[1])), axis=2)
            assert same.mean() > 0.8
    assert kinds == {"letter", "colour"}


def test_a_grey_template_gets_letters_not_colourways():
    grey = drawing((128, 128, 128))
    assert {series(grey, np.random.default_rng(s))[0] for s in range(10)} == {"letter"}


def test_a_thumbnail_view_is_16_to_48_px_and_not_a_benchmark_family():
    im = drawing((200, 40, 40))
    sizes = [lowres(im, np.random.default_rng(s)).size for s in range(20)]
    assert all(16 <= max(size) <= 48 and abs(size[0] / size[1] - 120 / 90) < 0.15 for size in sizes)
    assert all(lowres(im.resize((14, 10)), np.random.default_rng(s)).size == (14, 10) for s in range(5))  # smaller already: kept
    assert "lowres" not in DUPLICATE_FAMILIES and "lowres" not in VIEW_CHANCES  # catalogs and the recipe unchanged


def test_a_heavy_crop_keeps_a_fifth_to_under_half_of_the_subject_and_shows_some_of_it():
    im = Image.new("RGBA", (300, 200), (0, 0, 0, 0))
    im.alpha_composite(drawing((200, 40, 40)), (90, 60))  # the subject's box: 90 px by 70 px
    for s in range(20):
        cut = heavy_crop(im, np.random.default_rng(s))
        assert 0.15 <= cut.width * cut.height / (90 * 70) <= 0.5
        assert (np.asarray(cut)[..., 3] > 127).any()


def test_an_overlay_puts_the_whole_picture_onto_a_larger_busier_one():
    im = drawing((40, 40, 200))
    for s in range(5):
        out = overlay(im, np.random.default_rng(s))
        assert out.width >= im.width / 0.7 - 1 and out.height >= im.height
        colours = np.unique(np.asarray(flatten(out)).reshape(-1, 3), axis=0)
        assert len(colours) > 1000  # a busy backdrop (shapes, grain), not a plain one
    photo = Image.new("RGB", (64, 48), (10, 120, 30))  # a given backdrop, enlarged to fit
    out = overlay(im, np.random.default_rng(0), photo)
    assert tuple(np.asarray(out)[0, 0, :3]) in {(10, 120, 30), tuple(np.asarray(flatten(im))[0, 0])}


def test_heavy_edits_are_their_own_families_outside_the_catalogs_usual_ones():
    assert set(HEAVY_FAMILIES) <= set(FAMILIES) and not set(HEAVY_FAMILIES) & set(DUPLICATE_FAMILIES)
