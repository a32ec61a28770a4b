"""Plain pictures (one colour throughout): swatches of other colours are never duplicates (`dedup.plain`)."""
from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from test_framing import cutout, on
from test_verify import BY_MATCHES, judge, pictures_of

from dedup.cli import cli
from dedup.config import Framing
from dedup.duplicates import find_duplicates
from dedup.framing import to_input
from dedup.images import load_picture
from dedup.indexer import index_catalog
from dedup.keypoints import RULED_OUT
from dedup.model import load_model
from dedup.pairs import Pairs
from dedup.plain import apart, plain_colour
from dedup.synth import scene

BACKDROP = Framing(trim=True, backdrop=True)
SWATCHES = {"red.png": (230, 20, 20), "blue.png": (0, 0, 255), "navy.png": (0, 0, 128), "white.png": (255, 255, 255),
            "black.png": (0, 0, 0), "cream.png": (250, 244, 225)}


@pytest.fixture(scope="module")
def swatches(tmp_path_factory):
    """A catalog of plain swatches, a JPEG copy of the blue one and a smaller copy of the red one, and a drawing."""
    root = tmp_path_factory.mktemp("plain")
    cat = root / "cat"
    cat.mkdir()
    for name, colour in SWATCHES.items():
        Image.new("RGB", (300, 240), colour).save(cat / name)
    Image.new("RGB", (300, 240), SWATCHES["blue.png"]).save(cat / "blue_copy.jpg", quality=40)
    Image.new("RGB", (120, 96), SWATCHES["red.png"]).save(cat / "red_small.png")
    scene(3, (300, 240)).save(cat / "drawing.png")
    index_catalog(cat, root / "idx", load_model())
    return root


def test_a_plain_picture_keeps_its_colour_for_the_encoder_while_a_backdrop_is_still_repainted():
    red = Image.new("RGB", (100, 80), (200, 30, 30))
    assert (to_input(red, 64, BACKDROP) == (200, 30, 30)).all()  # a repainted swatch would read as white
    obj = cutout()  # the blue around a drawing is its backdrop, repainted white
    repainted = to_input(on(obj, (30, 90, 200)), 64, BACKDROP).astype(int)
    assert np.abs(repainted - to_input(on(obj, (255, 255, 255)), 64, BACKDROP)).mean() < 10


def test_the_plain_colour_of_a_check_picture(tmp_path):
    Image.new("RGB", (200, 150), (10, 20, 120)).save(tmp_path / "navy.jpg", quality=30)
    scene(1, (200, 150)).save(tmp_path / "drawing.png")
    speck = Image.new("RGB", (200, 150), "white")
    speck.paste((0, 0, 0), (90, 70, 100, 80))
    speck.save(tmp_path / "speck.png")
    assert np.abs(plain_colour(load_picture(tmp_path / "navy.jpg")) - (10, 20, 120)).max() <= 8
    assert plain_colour(load_picture(tmp_path / "drawing.png")) is None
    assert plain_colour(load_picture(tmp_path / "speck.png")) is None  # something drawn, however small


def test_plain_pictures_are_apart_unless_both_are_plain_in_one_colour(swatches):
    cat = swatches / "cat"
    names = ["blue.png", "blue_copy.jpg", "navy.png", "drawing.png", "red.png", "red_small.png"]
    pictures = pictures_of([cat / n for n in names])
    i, j = np.array([0, 0, 0, 4, 3]), np.array([1, 2, 3, 5, 3])
    assert apart(i, j, pictures).tolist() == [False, True, True, False, False]


def test_find_duplicates_groups_swatches_only_with_their_own_colour(swatches):
    report = find_duplicates(swatches / "idx")
    assert sorted(sorted(m.path for m in g.members) for g in report.groups) == [["blue.png", "blue_copy.jpg"],
                                                                                 ["red.png", "red_small.png"]]


def test_compare_says_why_two_close_swatches_are_different(swatches):
    cat = swatches / "cat"
    out = CliRunner().invoke(cli, ["compare", str(cat / "blue.png"), str(cat / "navy.png"), "--format", "json"])
    doc = json.loads(out.output)
    assert out.exit_code == 0 and doc["same"] is False and doc["plain_apart"] is True
    table = CliRunner().invoke(cli, ["compare", str(cat / "blue.png"), str(cat / "blue_copy.jpg")])
    assert "→ same" in table.output


def test_a_strip_too_thin_for_keypoints_is_read_not_unreadable(tmp_path):
    Image.new("RGB", (2, 500), (20, 40, 230)).save(tmp_path / "strip.png")
    scene(4).save(tmp_path / "a.png")
    files = [tmp_path / "strip.png", tmp_path / "a.png"]
    v = judge(Pairs(np.array([0]), np.array([1]), np.array([0.1], np.float32)), BY_MATCHES, pictures_of(files))
    assert v.verified.unreadable == 0 and v.inliers[0] in (0, RULED_OUT) and not v.keep[0]
