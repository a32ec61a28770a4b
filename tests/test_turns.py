"""Copies saved turned a quarter, half or three quarters of a turn (`dedup.turns`, `find-duplicates --turned`)."""
from __future__ import annotations

import io

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from test_alike import page, page_catalog

from dedup.cli import cli
from dedup.config import Framing
from dedup.duplicates import find_duplicates
from dedup.framing import to_input
from dedup.indexer import index_catalog
from dedup.model import load_model
from dedup.pictures import picture_bytes
from dedup.turns import TURNS, turned_inputs


def test_the_turned_views_are_the_framed_picture_turned():
    im = page(1)
    framed = to_input(Image.open(io.BytesIO(picture_bytes(im))).convert("RGB"), 64, Framing(trim=True))
    views = turned_inputs(picture_bytes(im), 64, Framing(trim=True))
    assert len(views) == len(TURNS) == 3
    for k, view in zip(TURNS, views):
        assert np.array_equal(view, np.rot90(framed, k))


@pytest.fixture(scope="module")
def turned_pages(tmp_path_factory):
    root = tmp_path_factory.mktemp("turned")
    page_catalog(root, 5)
    page(1).transpose(Image.Transpose.ROTATE_90).save(root / "cat" / "page1_turned.jpg", quality=85)
    page(3).transpose(Image.Transpose.ROTATE_270).save(root / "cat" / "page3_turned.jpg", quality=85)
    index_catalog(root / "cat", root / "idx", load_model())
    return root / "idx"


def test_find_duplicates_turned_pairs_a_page_with_its_copy_saved_turned(turned_pages):
    assert find_duplicates(turned_pages).groups == []  # the encoder puts a turned page elsewhere
    report = find_duplicates(turned_pages, turned=True)
    assert sorted(sorted(m.path for m in g.members) for g in report.groups) == [["page1.png", "page1_turned.jpg"],
                                                                                 ["page3.png", "page3_turned.jpg"]]


def test_turned_is_refused_with_against(turned_pages):
    out = CliRunner().invoke(cli, ["find-duplicates", "--index", str(turned_pages), "--against", str(turned_pages), "--turned"])
    assert out.exit_code != 0 and "--turned" in out.output and "Traceback" not in out.output


def test_query_verify_turned_finds_the_catalog_page_a_turned_upload_was_made_of(turned_pages, tmp_path):
    import json

    from dedup.query import query_images

    upload = tmp_path / "upload.jpg"
    page(2).transpose(Image.Transpose.ROTATE_90).save(upload, quality=80)
    [plain] = query_images(turned_pages, [upload], k=3, verify=True)
    assert "page2.png" not in [n.path for n in plain.neighbors if n.same]
    [found] = query_images(turned_pages, [upload], k=3, verify=True, turned=True)
    assert ("page2.png", True) in [(n.path, n.turned) for n in found.neighbors if n.same]
    out = CliRunner().invoke(cli, ["query", str(upload), "--index", str(turned_pages), "-k", "3", "--verify", "--turned",
                                   "--format", "json"])
    [doc] = json.loads(out.output)
    assert [n.get("turned") for n in doc["neighbors"] if n["path"] == "page2.png"] == [True]
