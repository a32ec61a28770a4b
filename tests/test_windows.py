"""Windows of pictures (`dedup.windows`): a heavy crop of a picture, or the picture pasted onto a
busier one, is found through a window and accepted only on agreeing keypoints."""
from __future__ import annotations

import faiss
import numpy as np
import pytest
from fakes import count_rows, member_sets
from PIL import Image, ImageDraw

from dedup import windows
from dedup.augment import busy_backdrop
from dedup.config import Framing
from dedup.duplicates import find_duplicates
from dedup.indexer import index_catalog
from dedup.pairs import Pairs
from dedup.pictures import picture_bytes
from dedup.synth import scene


def textured(seed: int, size: tuple[int, int] = (320, 240)) -> Image.Image:
    """A scene with many small blocks: corners everywhere, so that any third of it has keypoints."""
    rng = np.random.default_rng(seed)
    im = scene(seed, size)
    draw = ImageDraw.Draw(im)
    for _ in range(80):
        x, y = int(rng.integers(0, size[0])), int(rng.integers(0, size[1]))
        w, h = int(rng.integers(4, 20)), int(rng.integers(4, 20))
        draw.rectangle([x, y, x + w, y + h], fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
    return im


def scenes(folder, first: int, count: int) -> None:
    """`count` textured pictures scene0.png, scene1.png ... into `folder` (created)."""
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(count):
        textured(first + k).save(folder / f"scene{k}.png")


def crop_and_paste(folder, first: int, backdrop_seed: int) -> None:
    """Into `folder`: crop.png, a crop of a third of scene `first` (off the windows' grid), and
    pasted.png, scene `first + 1` pasted small onto a busy backdrop."""
    textured(first).crop((50, 40, 240, 175)).save(folder / "crop.png")
    backdrop = busy_backdrop((400, 300), np.random.default_rng(backdrop_seed))
    backdrop.alpha_composite(textured(first + 1).resize((224, 168)).convert("RGBA"), (120, 90))
    backdrop.convert("RGB").save(folder / "pasted.png")


@pytest.fixture(scope="module")
def cropped_catalog(tmp_path_factory):
    """Ten pictures, a crop of a third of the first (off the windows' grid) and the second pasted
    small onto a busy backdrop, indexed with the shipped encoder."""
    from dedup.model import load_model

    root = tmp_path_factory.mktemp("windows")
    catalog = root / "cat"
    scenes(catalog, 200, 10)
    crop_and_paste(catalog, 200, 3)
    index_catalog(catalog, root / "idx", load_model())
    return catalog, root / "idx"


def test_a_heavy_crop_is_found_through_a_window_of_its_picture(cropped_catalog):
    _, folder = cropped_catalog
    assert {"scene0.png", "crop.png"} not in member_sets(find_duplicates(folder, windows=False, keypoint_search=False))
    assert {"scene0.png", "crop.png"} in member_sets(find_duplicates(folder, keypoint_search=False))


def test_a_picture_pasted_onto_a_busy_one_is_found_through_a_window(cropped_catalog):
    _, folder = cropped_catalog
    assert {"scene1.png", "pasted.png"} not in member_sets(find_duplicates(folder, windows=False, keypoint_search=False))
    assert {"scene1.png", "pasted.png"} in member_sets(find_duplicates(folder, keypoint_search=False))


def test_windows_join_no_different_pictures(cropped_catalog):
    _, folder = cropped_catalog
    for search in (False, True):  # with and without the keypoint search (`dedup.votes`)
        joined = [s for s in member_sets(find_duplicates(folder, keypoint_search=search)) if len(s) > 1]
        assert sorted(map(sorted, joined)) == [["crop.png", "scene0.png"], ["pasted.png", "scene1.png"]]


def test_a_picture_has_its_windows_and_a_small_one_none():
    framing = Framing()
    inputs = windows.window_inputs(picture_bytes(scene(1, (256, 192))), 64, framing)
    assert len(inputs) == len(windows.WINDOWS) and all(x.shape == (64, 64, 3) for x in inputs)
    assert len({x.tobytes() for x in inputs}) == len(windows.WINDOWS)  # each window shows another part
    assert windows.window_inputs(picture_bytes(scene(2, (48, 48))), 64, framing) == []  # an icon's size: none


def test_window_pairs_are_each_pair_once_at_the_nearer_window_without_own_rows_or_known_pairs():
    rows = np.eye(4, 8, dtype=np.float32)  # four rows, one axis each
    index = faiss.IndexFlatL2(8)
    index.add(rows)
    owners = np.array([0, 0, 1, 2])
    vectors = np.array([rows[1] * 0.9 + rows[0] * 0.1, rows[1] * 0.7 + rows[0] * 0.3, rows[1], rows[3]], np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    known = Pairs(np.array([2]), np.array([3]), np.array([0.0], np.float32))
    pairs = windows.window_pairs(index, owners, vectors, 0.8, known, k=1)
    assert list(zip(pairs.i.tolist(), pairs.j.tolist())) == [(0, 1)]  # row 1's own window and the known (2, 3) left out
    assert pairs.d[0] == pytest.approx(np.linalg.norm(vectors[0] - rows[1]), abs=1e-5)


def test_the_windows_are_remembered_and_give_what_finding_them_gives(cropped_catalog, tmp_path, monkeypatch):
    import shutil

    from dedup.checkmemo import PairChecks
    from dedup.index import as_index
    from dedup.model import load_model

    _, folder = cropped_catalog
    shutil.copytree(folder, tmp_path / "idx")
    shutil.rmtree(tmp_path / "idx" / "pair-checks", ignore_errors=True)  # what the other tests' runs remembered
    index, model = as_index(tmp_path / "idx"), load_model()
    args = (range(len(index)), model.embed, model.config.image_size, model.config.framing)
    fresh_rows, fresh = windows.window_vectors(index.picture, *args)
    looked = count_rows(monkeypatch, windows, "window_vectors")
    runs = []
    for _ in range(2):
        memo = PairChecks(index.folder, index.rows.content_hash)
        runs.append(memo.parts(windows.window_vectors, model.identity, model.config.embedding_dim, windows.KIND, len(windows.WINDOWS))(
            index.picture, *args))
        memo.save()
    assert looked == [len(index)]  # the second run embeds no window
    for rows, vectors in runs:
        assert rows.tolist() == fresh_rows.tolist() and np.allclose(vectors, fresh, atol=1e-5)


@pytest.fixture(scope="module")
def uploads(tmp_path_factory):
    """A catalog of ten pictures and an incoming folder with a crop of one and another pasted onto
    a busy backdrop, each indexed with the shipped encoder: (incoming index, catalog index)."""
    from dedup.model import load_model

    root = tmp_path_factory.mktemp("uploads")
    scenes(root / "cat", 200, 10)
    (root / "up").mkdir()
    crop_and_paste(root / "up", 200, 3)
    model = load_model()
    index_catalog(root / "cat", root / "cat_idx", model)
    index_catalog(root / "up", root / "up_idx", model)
    return root / "up_idx", root / "cat_idx"


def _matches(found) -> set[tuple[str, str]]:
    return {(r.query, n.path) for r in found.results for n in r.neighbors}


def test_against_matches_incoming_crops_and_pasted_pictures_through_windows(uploads):
    from dedup.duplicates import find_against

    mine, theirs = uploads
    assert not _matches(find_against(mine, theirs, windows=False, keypoint_search=False)) & {("crop.png", "scene0.png"),
                                                                                            ("pasted.png", "scene1.png")}
    found = find_against(mine, theirs, keypoint_search=False)
    assert _matches(found) == {("crop.png", "scene0.png"), ("pasted.png", "scene1.png")}
    assert all(n.window and not n.pasted for r in found.results for n in r.neighbors)  # marked as found through a window


def test_against_embeds_the_catalogs_windows_once(uploads, monkeypatch):
    import dedup.duplicates as duplicates
    import dedup.passes as passes

    mine, theirs = uploads
    duplicates.find_against(mine, theirs)
    looked = count_rows(monkeypatch, passes, "window_vectors")
    duplicates.find_against(mine, theirs)
    assert looked == []  # the first run kept both indexes' windows: no picture is looked at again


def test_windows_looked_at_in_blocks_give_the_samemember_sets(cropped_catalog, uploads, monkeypatch):
    import dedup.duplicates as duplicates
    import dedup.passes as passes

    _, folder = cropped_catalog
    mine, theirs = uploads
    whole = member_sets(duplicates.find_duplicates(folder)), _matches(duplicates.find_against(mine, theirs))
    monkeypatch.setattr(passes, "BLOCK_ROWS", 3)
    assert (member_sets(duplicates.find_duplicates(folder)), _matches(duplicates.find_against(mine, theirs))) == whole


def test_query_finds_the_catalog_picture_pasted_onto_a_busier_query_through_a_window(uploads):
    from dedup.query import query_images
    from dedup.report import neighbor_dict

    _, theirs = uploads
    composite = theirs.parent / "up" / "pasted.png"
    (plain,) = query_images(theirs, [composite], k=3, verify=True, windows=False, keypoint_search=False)
    assert "scene1.png" not in {n.path for n in plain.neighbors if n.same}
    (found,) = query_images(theirs, [composite], k=3, verify=True, keypoint_search=False)
    through = [n for n in found.neighbors if n.window]
    assert [(n.path, n.same) for n in through] == [("scene1.png", True)] and len(found.neighbors) == 4
    assert neighbor_dict(through[0])["window"] is True
    (unchecked,) = query_images(theirs, [composite], k=3)
    assert not any(n.window for n in unchecked.neighbors)  # without the check nothing is found through a window


def test_query_finds_the_catalog_picture_it_is_a_crop_of_through_the_windows_find_duplicates_kept(uploads, tmp_path, caplog,
                                                                                                   monkeypatch):
    import shutil

    import dedup.query as query
    from dedup.checkmemo import FOLDER
    from dedup.query import query_images

    _, theirs = uploads
    folder = shutil.copytree(theirs, tmp_path / "idx")
    crop = theirs.parent / "up" / "crop.png"
    with monkeypatch.context() as m:
        m.setattr(query, "FRESH_WINDOWS", 9)  # fewer than the catalog's ten pictures: no windows of its own making
        (before,) = query_images(folder, [crop], k=3, verify=True, keypoint_search=False)
    assert "scene0.png" not in {n.path for n in before.neighbors if n.same} and not (folder / FOLDER).exists()
    assert "10 of the catalog's pictures have not been looked at through windows" in caplog.text  # says why
    (fresh,) = query_images(folder, [crop], k=3, verify=True)  # cuts the ten pictures' windows itself, writes nothing
    assert [(n.path, n.same) for n in fresh.neighbors if n.window] == [("scene0.png", True)] and not (folder / FOLDER).exists()
    find_duplicates(folder)  # looks at the catalog's pictures through windows and keeps them
    caplog.clear()
    cut = count_rows(monkeypatch, query, "window_vectors")
    (found,) = query_images(folder, [crop], k=3, verify=True)
    assert [(n.path, n.same) for n in found.neighbors if n.window] == [("scene0.png", True)] and not caplog.text
    assert cut == [1]  # the query's own windows only
    (listed,) = query_images(folder, [crop], k=10, verify=True)  # listed by its own vector, beyond the candidate distance
    assert len(listed.neighbors) == 10 and [(n.path, n.same) for n in listed.neighbors if n.window] == [("scene0.png", True)]
    (unchecked,) = query_images(folder, [crop], k=3)
    assert not any(n.window for n in unchecked.neighbors)


def test_serve_finds_a_crop_through_the_kept_windows_read_again_only_when_find_duplicates_kept_others(uploads, tmp_path,
                                                                                                        monkeypatch):
    import shutil

    import dedup.query as query
    import dedup.service as service

    real = service.catalog_windows
    _, theirs = uploads
    folder = shutil.copytree(theirs, tmp_path / "idx")
    read = []
    monkeypatch.setattr(service, "catalog_windows", lambda gen, model: read.append(gen) or real(gen, model))
    monkeypatch.setattr(query, "FRESH_WINDOWS", 0)  # no windows but those find-duplicates kept
    served = service.Service(folder)
    try:
        data = (theirs.parent / "up" / "crop.png").read_bytes()
        assert not any(n.window for n in served.query(data, k=3, verify=True))  # no windows kept yet
        find_duplicates(folder)  # while the service runs
        for _ in range(2):
            assert [(n.path, n.same) for n in served.query(data, k=3, verify=True) if n.window] == [("scene0.png", True)]
        assert not any(n.window for n in served.query(data, k=3))
    finally:
        served.close()
    assert len(read) == 2


def test_owners_near_lists_each_row_once_at_its_nearest_window_and_at_most_k_rows():
    vectors = np.eye(4, dtype=np.float32)[[0, 0, 1, 1, 2, 3]] * np.float32([1, 0.9, 1, 0.95, 1, 1])[:, None]
    owners = np.array([7, 7, 8, 8, 9, 9])
    index = faiss.IndexFlatL2(4)
    index.add(vectors)
    query = np.float32([[0.9, 0.1, 0, 0], [0, 0, 0, 1]])
    near = windows.owners_near(index, owners, query, threshold=1.4, k=2)  # query 0 is also within 1.4 of row 9
    assert list(zip(near.i.tolist(), near.j.tolist())) == [(0, 7), (0, 8), (1, 7), (1, 9)]
    assert np.isclose(near.d[0], np.linalg.norm(query[0] - vectors[1]))  # row 7 at its nearer window
