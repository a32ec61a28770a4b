"""Pictures within pictures (`dedup.parts`): a picture pasted into a page is found on the page's
check picture, paired with its duplicates by its own vector, and accepted only on keypoints."""
from __future__ import annotations

import faiss
import numpy as np
import pytest
from fakes import count_rows, member_sets, page_with
from PIL import Image, ImageDraw

from dedup import parts
from dedup.checkmemo import PairChecks
from dedup.config import Framing, VerifyConfig
from dedup.duplicates import find_against, find_duplicates
from dedup.indexer import index_catalog
from dedup.pairs import Pairs
from dedup.pictures import picture_bytes
from dedup.policy import required_inliers
from dedup.synth import scene


def test_a_picture_pasted_into_a_page_is_found():
    photo = scene(5, (240, 180))
    box = parts.part_box(np.asarray(page_with(photo)))
    assert box is not None
    left, top, right, bottom = box
    assert abs(left - 200) <= 4 and abs(top - 150) <= 4 and abs(right - 440) <= 4 and abs(bottom - 330) <= 4


@pytest.mark.parametrize("picture", [
    scene(6, (256, 192)),  # a photo: no one-colour frame
    Image.new("RGB", (200, 150), (255, 255, 255)),  # blank
    scene(7, (40, 30)),  # too small to hold a page
])
def test_no_part_where_there_is_no_page(picture):
    assert parts.part_box(np.asarray(picture)) is None


def test_a_subject_on_a_plain_backdrop_is_not_a_page():
    im = Image.new("RGB", (256, 256), (255, 255, 255))
    ImageDraw.Draw(im).ellipse([40, 50, 220, 210], fill=(200, 30, 30), outline=(0, 0, 0), width=4)
    assert parts.part_box(np.asarray(im)) is None  # the block is all of the content: framing trims to it


def test_part_input_frames_the_pasted_picture_as_the_encoder_frames_any():
    picture = picture_bytes(page_with(scene(5, (240, 180))))
    pixels = parts.part_input(picture, 32, Framing())
    assert pixels is not None and pixels.shape == (32, 32, 3) and pixels.dtype == np.uint8
    assert parts.part_input(picture_bytes(scene(6)), 32, Framing()) is None


def _flat(vectors: np.ndarray) -> faiss.IndexFlatL2:
    index = faiss.IndexFlatL2(vectors.shape[1])
    index.add(np.ascontiguousarray(vectors, np.float32))
    return index


def test_part_pairs_pair_a_part_with_its_neighbours_but_not_its_own_row_or_known_pairs():
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(6, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = _flat(vectors)
    part = vectors[[4]] * 0.99  # row 5's part (part 0) is close to row 4
    found = parts.part_pairs(index, np.array([5]), part, threshold=0.5, k=2, known=Pairs.empty())
    assert list(zip(found.i.tolist(), found.j.tolist())) == [(0, 4)]  # (part, row)
    assert found.d[0] == pytest.approx(0.01, abs=1e-4)
    known = Pairs(np.array([4]), np.array([5]), np.array([0.9], np.float32))  # rows 4 and 5 are candidates already
    assert len(parts.part_pairs(index, np.array([5]), part, threshold=0.5, k=2, known=known)) == 0
    own = parts.part_pairs(index, np.array([4]), part, threshold=0.5, k=2, known=Pairs.empty())
    assert len(own) == 0  # a part of row 4 close to row 4 itself is no pair
    across = parts.part_pairs(index, np.array([5]), part, threshold=0.5, k=2, known=known, within=False)
    assert list(zip(across.i.tolist(), across.j.tolist())) == [(0, 4)]  # another set's row 5: (4, 5) is no pair of it


def test_a_pair_through_a_part_needs_agreeing_keypoints_however_close():
    config = VerifyConfig(candidates=0.8, weights=(0.0, 1.0, 0.0, 0.0), bias=0.0, min_inliers=12)
    d = np.array([0.05, 0.05])
    need = required_inliers(config, d, np.array([100, 100]), 0.36, through_part=np.array([False, True]))
    assert need.tolist() == [0, 12]


@pytest.fixture(scope="module")
def pasted_catalog(tmp_path_factory):
    """Ten scenes and a screenshot-like page of the first, indexed with the shipped encoder."""
    from dedup.model import load_model

    root = tmp_path_factory.mktemp("pasted")
    catalog = root / "cat"
    catalog.mkdir()
    for k in range(10):
        scene(100 + k).save(catalog / f"scene{k}.png")
    page_with(scene(100, (256, 192)).resize((224, 168))).save(catalog / "page.png")
    index_catalog(catalog, root / "idx", load_model())
    return catalog, root / "idx"


@pytest.fixture()
def incoming_page(pasted_catalog, tmp_path):
    """An incoming folder holding the catalog's page, indexed: its index folder."""
    from dedup.model import load_model

    incoming = tmp_path / "up"
    incoming.mkdir()
    (incoming / "page.png").write_bytes((pasted_catalog[0] / "page.png").read_bytes())
    index_catalog(incoming, tmp_path / "up_idx", load_model())
    return tmp_path / "up_idx"


@pytest.fixture()
def count_looks(monkeypatch):
    """From when it is called: how many pictures each run looks at for a pasted picture
    (`dedup.parts.part_vectors`), a list a run."""
    import dedup.passes as passes

    return lambda: count_rows(monkeypatch, passes, "part_vectors")


def test_find_duplicates_pairs_a_page_with_the_picture_pasted_into_it(pasted_catalog):
    _, folder = pasted_catalog
    assert {"scene0.png", "page.png"} not in member_sets(find_duplicates(folder, pasted=False, keypoint_search=False))
    assert {"scene0.png", "page.png"} in member_sets(find_duplicates(folder))


def test_the_pictures_pasted_into_others_are_remembered(pasted_catalog, tmp_path, count_looks):
    import shutil

    _, folder = pasted_catalog
    copy = tmp_path / "idx"
    shutil.copytree(folder, copy)
    first = member_sets(find_duplicates(copy))
    looked = count_looks()
    assert member_sets(find_duplicates(copy)) == first
    assert looked == []  # every picture's part (or none) came from the memo: none is looked at


def test_the_memo_of_parts_gives_what_finding_them_gives(pasted_catalog):
    from dedup.index import as_index
    from dedup.model import load_model

    _, folder = pasted_catalog
    index, model = as_index(folder), load_model()
    args = (range(len(index)), model.embed, model.config.image_size, model.config.framing)
    fresh_rows, fresh = parts.part_vectors(index.picture, *args)
    memo = PairChecks(folder, index.rows.content_hash)
    rows, vectors = memo.parts(parts.part_vectors, model.identity, model.config.embedding_dim)(index.picture, *args)
    assert rows.tolist() == fresh_rows.tolist() and np.allclose(vectors, fresh, atol=1e-5)  # torch or numpy: float rounding
    assert index.rows.path[rows].tolist() == ["page.png"]


def test_find_against_matches_an_incoming_page_by_its_pasted_picture(pasted_catalog, incoming_page):
    _, folder = pasted_catalog
    without = find_against(incoming_page, folder, pasted=False, keypoint_search=False)
    found = find_against(incoming_page, folder)
    matches = {n.path for r in found.results for n in r.neighbors}
    assert "scene0.png" in matches and "scene0.png" not in {n.path for r in without.results for n in r.neighbors}
    assert all(n.pasted for r in found.results for n in r.neighbors if n.path == "scene0.png")


def test_query_finds_the_picture_pasted_into_the_query_image(pasted_catalog):
    from dedup.query import query_images
    from dedup.report import render_query

    catalog, folder = pasted_catalog
    (found,) = query_images(folder, [catalog / "page.png"], k=3, verify=True)
    through = [n for n in found.neighbors if n.pasted]
    assert through and through[0].path == "scene0.png" and through[0].same
    assert '"pasted": true' in render_query([found], "json")
    assert "(pasted into the query)" in render_query([found], "table")
    (plain,) = query_images(folder, [catalog / "page.png"], k=3, verify=True, pasted=False)
    assert not any(n.pasted for n in plain.neighbors)
    (unjudged,) = query_images(folder, [catalog / "page.png"], k=3)
    assert not any(n.pasted for n in unjudged.neighbors)  # without the check, nothing could judge such pairs


def test_with_pasted_keeps_the_k_nearest_of_both_and_a_row_at_its_own_distance():
    from dedup.query import with_pasted

    vectors = np.eye(4, dtype=np.float32)
    index = _flat(vectors)
    dist = np.array([[0.5, 1.2, 1.5]], np.float32)
    ids = np.array([[1, 2, 0]])
    inside = np.array([[0.0, 0.0, 0.1, 0.9]], np.float32)  # nearest row 3 (0.14), then row 2 (1.27)
    d, i, through = with_pasted(index, dist, ids, np.array([0]), inside)
    assert i.tolist() == [[3, 1, 2]] and through.tolist() == [[True, False, False]]
    assert d[0].tolist() == pytest.approx([np.linalg.norm(inside[0] - vectors[3]), 0.5, 1.2], abs=1e-5)


def test_a_page_is_not_kept_over_the_picture_pasted_into_it(pasted_catalog):
    (group,) = [g for g in find_duplicates(pasted_catalog[1]).groups if any(m.path == "page.png" for m in g.members)]
    assert group.keep == "scene0.png"  # the page has more pixels, yet it holds the picture


def test_holders_are_the_pages_whose_part_is_nearer_the_other_picture_than_they_are():
    vectors = np.array([[1, 0, 0], [0, 0.6, 0.8], [0, 0, 1]], np.float32)  # row 1 is near row 2 itself
    part_of_2 = np.array([[0.9, 0.1, 0.0]], np.float32)  # row 2's part: row 0's picture
    found = parts.Parts(np.array([2]), part_of_2)
    pages, shown = found.holders(Pairs(np.array([0, 1]), np.array([2, 2]), np.array([0.14, 0.63], np.float32)), vectors)
    assert pages.tolist() == [2] and shown.tolist() == [0]  # not row 1: its part is no nearer row 1 than it is


def test_without_the_model_file_the_sets_are_found_without_pasted_pictures(tiny_model_file, tmp_path, caplog):
    from fakes import checking_model

    from dedup.model import load_model

    catalog = tmp_path / "cat"
    catalog.mkdir()
    for k in range(3):
        scene(k).save(catalog / f"s{k}.png")
    model_file = checking_model(tiny_model_file, tmp_path / "check.pt")
    index_catalog(catalog, tmp_path / "idx", load_model(model_file))
    before = member_sets(find_duplicates(tmp_path / "idx"))
    model_file.unlink()  # the model that built the index is gone: the pictures are still judged
    assert member_sets(find_duplicates(tmp_path / "idx")) == before
    assert "pasted into others not looked for" in caplog.text


def test_the_page_is_marked_as_showing_another_member(pasted_catalog):
    from dedup.report import render_duplicates

    report = find_duplicates(pasted_catalog[1])
    (group,) = [g for g in report.groups if any(m.path == "page.png" for m in g.members)]
    assert [m.path for m in group.members if m.page] == ["page.png"]
    assert '"page": true' in render_duplicates(report, "json")
    assert "page.png  (shows another member pasted into it)" in render_duplicates(report, "table")


def test_the_review_page_says_which_member_is_a_page(pasted_catalog, tmp_path):
    import shutil

    from fakes import page_data

    from dedup.review import review_index

    folder = tmp_path / "idx"
    shutil.copytree(pasted_catalog[1], folder)
    review_index(folder, tmp_path / "review")
    members = [m for s in page_data(tmp_path / "review")["sets"] for m in s["members"]]
    assert [m["path"] for m in members if m["page"]] == ["page.png"]
    assert "shows another member's picture" in (tmp_path / "review" / "index.html").read_text()


def test_against_remembers_the_pictures_pasted_into_incoming_ones(pasted_catalog, incoming_page, count_looks):
    _, folder = pasted_catalog
    first = find_against(incoming_page, folder)
    looked = count_looks()
    for _ in range(2):  # each run keeps what the one before found
        assert find_against(incoming_page, folder).results == first.results
    assert looked == []  # no picture is looked at again


def test_a_pair_through_a_part_whose_picture_cannot_be_had_is_not_kept():
    from dedup.images import ImageSkip
    from dedup.policy import CheckedPolicy

    config = VerifyConfig(candidates=0.8, weights=(0.0, 1.0, 0.0, 0.0), bias=0.0, min_inliers=12)
    policy = CheckedPolicy(config, 0.8, 0.36)

    def gone(_row):
        raise ImageSkip("the file is gone")

    pairs = Pairs(np.array([0, 0]), np.array([1, 2]), np.array([0.1, 0.1], np.float32))
    decision = policy.decide(pairs, gone, workers=1, through_part=np.array([False, True]))
    assert decision.keep.tolist() == [True, False]  # the encoder's verdict on the first; none on the pasted one
