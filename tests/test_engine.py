"""End to end through the library: planted duplicates come back as the right sets."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from dedup.ann import load_index
from dedup.config import Framing
from dedup.duplicates import find_duplicates
from dedup.indexer import index_catalog
from dedup.manifest import Manifest
from dedup.model import Model
from dedup.query import query_images
from dedup.search import range_pairs
from dedup.store import read_embeddings, read_rows
from dedup.synth import scene


def truth_sets(truth: dict[str, list[str]]) -> set[frozenset[str]]:
    return {frozenset([orig, *copies]) for orig, copies in truth.items() if copies}


@pytest.fixture(scope="module")
def fake_index(planted, encoder_file, tmp_path_factory) -> Path:
    """The planted catalog indexed with the fake encoder."""
    folder = tmp_path_factory.mktemp("idx") / "shop"
    index_catalog(planted[0], folder, encoder_file)
    return folder


def test_planted_duplicates_are_found(planted, fake_index):
    _, truth = planted
    report = find_duplicates(fake_index, verify=False)  # the fake encoder's threshold
    found = {frozenset(m.path for m in g.members) for g in report.groups}
    assert found == truth_sets(truth)
    exact = [g for g in report.groups if g.exact]
    assert exact == []  # the byte-identical copy shares a set with an edited copy
    for g in report.groups:
        assert g.members[0].path == g.keep and g.members[0].distance == 0.0
        assert g.max_distance >= max(m.distance for m in g.members) - 1e-6
    sizes = [len(g.members) for g in report.groups]
    assert sizes == sorted(sizes, reverse=True)


def test_the_shipped_encoder_finds_planted_copies_and_never_merges_two_scenes(planted, built_index):
    """At its defaults (pair check and calibrated distances) the shipped encoder may miss copies
    of flat scenes but never puts two scenes in one set."""
    _, truth = planted
    for verify in (True, False):
        groups = [frozenset(m.path for m in g.members) for g in find_duplicates(built_index, verify=verify).groups]
        assert all(any(g <= t for t in truth_sets(truth)) for g in groups)
        found = sum(len(g) - 1 for g in groups)
        assert found >= 0.5 * sum(len(t) - 1 for t in truth_sets(truth))


def test_keeper_has_the_highest_resolution_then_is_the_most_central_then_size_then_path(fake_index):
    manifest = Manifest.load(fake_index)
    rows, vectors = read_rows(fake_index, manifest), read_embeddings(fake_index, manifest).astype(np.float64)
    row = {p: k for k, p in enumerate(rows.path)}
    report = find_duplicates(fake_index)
    assert report.groups
    for g in report.groups:
        members = [row[m.path] for m in g.members]
        off = {r: round(float(np.linalg.norm(vectors[members] - vectors[r], axis=1).sum()), 4) for r in members}
        key = {r: (-int(rows.width[r]) * int(rows.height[r]), off[r], -int(rows.size[r]), rows.path[r]) for r in members}
        assert key[row[g.keep]] == min(key.values())


def test_of_members_alike_by_the_policy_the_most_central_is_kept_and_a_pair_falls_back_to_file_size():
    from dedup.describe import describe_groups
    from dedup.keep import keep_rank, keep_tiers
    from dedup.store import Rows

    paths = np.array(["z-original.png", "a-noisy.png", "b-blurred.png", "c-smaller.png", "p.png", "q.png"], object)
    rows = Rows(paths, np.array([100, 300, 90, 500, 10, 20]), np.zeros(6, np.int64), np.array(list("abcdef"), object),
                np.array([50, 50, 50, 40, 30, 30], np.int32), np.array([50, 50, 50, 40, 30, 30], np.int32))
    vectors = np.array([[0, 0], [0.3, 0], [-0.25, 0.1], [0.05, 0.02], [0.5, 0.5], [0.6, 0.5]], np.float32)
    rank = keep_rank(rows)
    sets = describe_groups([np.array([0, 1, 2, 3]), np.array([4, 5])], vectors, rows, rank, tiers=keep_tiers(rows))
    assert [g.keep for g in sets] == ["z-original.png", "q.png"]  # the copies' common origin; then the larger file
    assert [g.keep for g in describe_groups([np.array([0, 1, 2, 3])], vectors, rows, rank)] == ["a-noisy.png"]  # by rank alone


def test_manifest_and_shards_agree_with_faiss(fake_index, encoder):
    manifest = Manifest.load(fake_index)
    assert manifest.model.identity == encoder.identity
    assert manifest.dim == 16 and manifest.faiss.factory == "Flat"
    emb = read_embeddings(fake_index, manifest)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    rows = read_rows(fake_index, manifest)
    assert list(rows.path) == sorted(rows.path)
    assert len(range_pairs(load_index(fake_index, manifest), emb, 0.01)) >= 1  # the exact copy


def test_query_finds_the_original_for_an_edited_copy(planted, fake_index, tmp_path):
    from dedup.synth import jpeg_bytes, near_duplicate, scene

    root, truth = planted
    probe = tmp_path / "probe.jpg"
    from PIL import Image

    probe.write_bytes(jpeg_bytes(near_duplicate(Image.open(root / "photos/img_0005.jpg").convert("RGB"), 2), 60))
    (res,) = query_images(fake_index, [probe], k=3)
    assert res.neighbors[0].path in {"photos/img_0005.jpg", *truth["photos/img_0005.jpg"]}
    assert res.neighbors[0].distance < Manifest.load(fake_index).threshold
    new = tmp_path / "new.jpg"
    new.write_bytes(jpeg_bytes(scene(999_999)))
    (res,) = query_images(fake_index, [new], k=3, threshold=Manifest.load(fake_index).threshold)
    assert res.neighbors == ()


def with_margins(pic: Image.Image) -> Image.Image:
    boxed = Image.new("RGB", (300, 200), "white")
    boxed.paste(pic, (120, 10))
    return boxed


def cutout_on(colour):
    """A disc cut out of a picture, placed on a plain backdrop of `colour`."""
    def place(pic: Image.Image) -> Image.Image:
        mask = Image.new("L", pic.size, 0)
        ImageDraw.Draw(mask).ellipse([20, 10, pic.width - 20, pic.height - 10], fill=255)
        out = Image.new("RGB", pic.size, colour)
        out.paste(pic, (0, 0), mask)
        return out
    return place


@pytest.mark.parametrize("plain, edit, off, on, closer", [
    (lambda p: p, with_margins, Framing(), Framing(trim=True), 0.5),
    (cutout_on((255, 255, 255)), cutout_on((40, 70, 190)), Framing(trim=True), Framing(trim=True, backdrop=True), 0.8),
])
def test_indexing_and_query_follow_the_models_framing(encoder, tmp_path, plain, edit, off, on, closer):
    pic = scene(77, (160, 120))
    cat = tmp_path / "cat"
    cat.mkdir()
    plain(pic).save(cat / "plain.png")
    edit(pic).save(cat / "edited.png")
    gaps = {}
    for framing in (off, on):
        config = replace(encoder.config, trim=framing.trim, backdrop=framing.backdrop)
        model = Model(encoder.net, config, dict(encoder.meta), "t")
        idx = tmp_path / f"idx{framing}"
        index_catalog(cat, idx, model)
        emb = read_embeddings(idx, Manifest.load(idx))
        gaps[framing] = float(np.linalg.norm(emb[0] - emb[1]))
        queried = query_images(idx, [str(cat / "edited.png")], k=1, model=model)[0]
        assert queried.neighbors[0].distance < 1e-4  # a query is prepared exactly as the index was
    assert gaps[on] < closer * gaps[off]
