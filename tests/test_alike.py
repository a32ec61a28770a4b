"""Copies among pictures rich in keypoints in a crowded catalog (pages of text): the encoder, the
keypoints and the overlay call them one picture where the logistic model doubts
(`dedup.policy.rescuable`, `dedup.details.alike`)."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from dedup import augment
from dedup.details import copy_of_first, pair_alike, prepared
from dedup.duplicates import find_duplicates
from dedup.indexer import index_catalog
from dedup.keypoints import keypoints, pair_map
from dedup.model import load_model
from dedup.pairs import Pairs
from dedup.pictures import grey_at, picture_bytes
from dedup.policy import Hopeful, ceiling, sparable
from dedup.query import query_images

WORDS = ("total amount due invoice date customer order shipping tax net gross quantity price item lorem ipsum dolor "
         "sit amet elit tempor labore magna aliqua").split()


def page(k: int, total: int = 100) -> Image.Image:
    """A page of text under a coloured header, ending on a `total` in a grey box: every page of
    the catalog looks like the others."""
    rng = np.random.default_rng(k)
    im = Image.new("RGB", (600, 800), "white")
    draw = ImageDraw.Draw(im)
    font = augment._font(18)
    draw.rectangle([0, 0, 600, 70], fill=tuple(int(c) for c in rng.integers(20, 160, 3)))
    draw.text((20, 22), f"Invoice {1000 + k}", fill="white", font=font)
    for line in range(26):
        draw.text((30, 95 + 24 * line), " ".join(rng.choice(WORDS, 6)), fill="black", font=font)
    draw.rectangle([390, 730, 580, 770], fill=(235, 235, 235), outline="black")
    draw.text((400, 740), f"Total {total}.00", fill="black", font=font)
    return im


def resized_copy(im: Image.Image, scale: float = 0.7, quality: int = 60) -> Image.Image:
    out = io.BytesIO()
    im.resize((round(im.width * scale), round(im.height * scale)), Image.Resampling.BILINEAR).save(out, "JPEG", quality=quality)
    return Image.open(io.BytesIO(out.getvalue())).convert("RGB")


def _alike(a: Image.Image, b: Image.Image) -> bool:
    pa, pb = picture_bytes(a), picture_bytes(b)
    count, to_b = pair_map(keypoints(grey_at(pa, 256)), keypoints(grey_at(pb, 256)), 256)
    assert count >= 12
    return pair_alike(prepared(pa), prepared(pb), to_b)


def test_a_resized_copy_of_a_page_is_alike_but_two_overlapping_crops_of_it_are_not():
    im = page(1)
    assert _alike(im, resized_copy(im))
    top, bottom = im.crop((0, 0, 600, 560)), im.crop((0, 240, 600, 800))  # they share 320 of their 560 rows
    assert not _alike(top, bottom)


def test_a_copy_of_a_page_looks_like_its_page_where_the_page_and_its_variant_differ():
    b, c = page(6), page(6, total=98765)  # a page and another document: one figure differs
    pictures = {name: picture_bytes(im) for name, im in
                (("b", b), ("c", c), ("copy of b", resized_copy(b)), ("copy of c", resized_copy(c, 0.8, 50)))}
    kp = {name: keypoints(grey_at(p, 256)) for name, p in pictures.items()}

    def from_b(name):
        return pair_map(kp["b"], kp[name], 256)[1]

    for copy, of_b in (("copy of b", True), ("copy of c", False)):
        assert copy_of_first(prepared(pictures[copy]), prepared(pictures["b"]), prepared(pictures["c"]), from_b(copy),
                             from_b("c")) is of_b


def test_a_near_pair_within_the_encoders_threshold_is_worth_matching_whatever_the_models_ceiling():
    i, j = np.triu_indices(5, 1)
    d = np.where((i == 0) & (j == 1), 0.3, 0.1 + 0.01 * (j - i)).astype(np.float32)
    pairs = Pairs(i, j, d)  # pictures 0 and 1 are each other's farthest of four
    spared = sparable(pairs, True, 0.3582)
    assert spared.tolist() == [(a, b) != (0, 1) for a, b in zip(i.tolist(), j.tolist())]
    assert not sparable(pairs, True, 0.05).any()  # beyond the encoder's threshold
    assert not sparable(pairs, True, 0.3582, np.ones(len(pairs), bool)).any()  # a pasted picture's distance is not the pair's
    config, sparser = load_model().check, np.full(len(pairs), 500, np.int32)  # a page has ORB's 500 keypoints
    normalised = np.zeros(len(pairs))  # a crowded catalog: the pairs are as close as every picture's usual neighbours
    assert (ceiling(config, d, sparser, np.zeros(len(pairs)), normalised) < config.accept).all()  # the model accepts none
    assert Hopeful.of(config, d, normalised, 0.3582, spared=spared)(np.arange(len(pairs)), sparser).tolist() == spared.tolist()
    assert not Hopeful.of(config, d, normalised, 0.3582)(np.arange(len(pairs)), sparser).any()


def page_catalog(root: Path, count: int) -> Path:
    """`root/cat` holding `page(k)` for k below `count`, as page{k}.png."""
    (root / "cat").mkdir()
    for k in range(count):
        page(k).save(root / "cat" / f"page{k}.png")
    return root / "cat"


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    root = tmp_path_factory.mktemp("pages")
    page_catalog(root, 8)
    for k, scale in [(0, 0.75), (3, 0.6), (5, 0.9)]:
        resized_copy(page(k), scale).save(root / "cat" / f"page{k}_copy.jpg", quality=95)
    page(6, total=98765).save(root / "cat" / "page6_other_total.png")  # another document
    index_catalog(root / "cat", root / "idx", load_model())
    return root


def test_find_duplicates_pairs_each_copy_of_a_page_with_its_page_and_nothing_else(pages):
    # page6 and page6_other_total differ in one figure and nowhere else: told apart (`details.exact_detail`)
    report = find_duplicates(pages / "idx")
    assert sorted(sorted(m.path for m in g.members) for g in report.groups) == [
        ["page0.png", "page0_copy.jpg"], ["page3.png", "page3_copy.jpg"], ["page5.png", "page5_copy.jpg"]]


def test_query_verify_confirms_the_page_a_copy_was_made_of(pages):
    [result] = query_images(pages / "idx", [pages / "cat" / "page3_copy.jpg"], k=3, verify=True)
    assert [n.path for n in result.neighbors if n.same] == ["page3_copy.jpg", "page3.png"]
