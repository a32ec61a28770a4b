"""The pair check: keypoint matching (`dedup.keypoints`), the checked policy's verdicts and
fallbacks (`dedup.policy`), and find-duplicates, --against, query and compare with and without it."""
from __future__ import annotations

import io
import json
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image, ImageDraw

from dedup import duplicates
from dedup import keypoints as mechanism
from dedup.config import NORMALISED_FEATURES, VerifyConfig
from dedup.duplicates import find_duplicates
from dedup.images import ImageSkip, load_picture
from dedup.indexer import index_catalog
from dedup.keypoints import RULED_OUT, KeypointStore, Matches, keypoints, locality_regions, match_pairs, matched, plausible
from dedup.model import load_model, save_model
from dedup.pairs import Pairs
from dedup.pictures import grey_at, picture_bytes, rgb_of
from dedup.policy import CheckedPolicy, Hopeful, accepted, ceiling, closer_look, probability, required_inliers
from dedup.query import compare_images, query_images
from dedup.synth import scene

# P(same) ≥ 0.5 exactly when log1p(matches) ≥ 3, i.e. at least 20 keypoints agree; distance ignored.
BY_MATCHES = VerifyConfig(candidates=2.0, weights=(0.0, 2.0, 0.0, 0.0), bias=-6.0, accept=0.5, min_inliers=1)
# The same verdicts from a check that also reads each pair's background distance (`dedup.background`).
BY_MATCHES_NORMALISED = replace(BY_MATCHES, features=NORMALISED_FEATURES, weights=(0.0, 2.0, 0.0, 0.0, 0.0),
                                typical_background=0.5)


def judge(pairs: Pairs, config: VerifyConfig, files, encoder_threshold: float = 0.3):
    """The checked policy's decision on pairs (all under its candidate distance 2.0)."""
    return CheckedPolicy(config, 2.0, encoder_threshold).decide(pairs, files)


def pictures_of(files):
    """Row → check picture of `files[row]` (a list or dict of paths)."""
    return lambda row: load_picture(files[row])


def _orientation_exif(value: int) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = value
    return exif


def grey(im: Image.Image) -> np.ndarray:
    return np.asarray(im.convert("L"))


def edited(im: Image.Image) -> Image.Image:
    """Cropped to 80% of each side, rotated 12°, resized: a near-duplicate a hash misses."""
    w, h = im.size
    crop = im.crop((w // 10, h // 10, w - w // 10, h - h // 10)).rotate(12, expand=True, fillcolor="white")
    return crop.resize((crop.width * 3 // 4, crop.height * 3 // 4))


@pytest.mark.parametrize("edit", [edited, lambda im: im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)])
@pytest.mark.parametrize("seed", [5, 8])
def test_an_edited_or_mirrored_copy_matches_far_more_keypoints_than_another_picture(edit, seed):
    original = keypoints(grey(scene(seed)))
    copy = keypoints(grey(edit(scene(seed))))
    other = keypoints(grey(scene(4)))
    assert len(original) > 50
    assert matched(copy, original)[0] >= 25
    assert matched(other, original)[0] < 10


def test_a_blank_picture_has_no_keypoints_and_matches_nothing():
    blank = keypoints(np.full((64, 64), 255, np.uint8))
    assert len(blank) == 0
    assert matched(blank, keypoints(grey(scene(1))))[0] == 0


@pytest.mark.parametrize("mirror", [False, True])
def test_the_map_the_keypoints_agree_on_takes_each_point_of_one_picture_to_the_same_point_of_the_other(mirror):
    original = scene(5, (256, 256))
    copy = original.resize((192, 192)).crop((16, 8, 176, 184))  # 3/4 size, shifted
    if mirror:
        copy = copy.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    count, to_copy = mechanism.pair_map(keypoints(grey_at(_png(original), 256)), keypoints(grey_at(_png(copy), 256)), 256)
    assert count >= 25
    side = 256 / max(copy.size)  # the copy's picture is enlarged to 256 px
    for x, y in [(64.0, 64.0), (128.0, 200.0)]:
        u, v = to_copy @ (x / 256, y / 256, 1.0)
        expected = (0.75 * x - 16, 0.75 * y - 8)
        if mirror:
            expected = (copy.width - 1 - expected[0], expected[1])
        assert abs(u * 256 / side - expected[0]) < 3 and abs(v * 256 / side - expected[1]) < 3


def test_a_drawing_cut_out_onto_a_darker_backdrop_keeps_its_keypoints():
    """On white the drawing's outline goes dark → light outwards; on a backdrop darker than the
    drawing the other way, which flips the descriptors' comparisons unless the backdrop is
    repainted white first (`grey_at`)."""
    rng = np.random.default_rng(3)
    mask = Image.new("L", (256, 256), 0)
    angles = np.sort(rng.uniform(0, 2 * np.pi, 60))
    radius = rng.uniform(60, 110, 60)
    ImageDraw.Draw(mask).polygon([(128 + r * np.cos(a), 128 + r * np.sin(a)) for a, r in zip(angles, radius)], fill=255)
    shading = scene(7, (256, 256)).convert("L").point(lambda v: 150 + v // 6)  # a light, textured drawing
    drawing = Image.merge("RGB", [shading] * 3)
    on_white = Image.composite(drawing, Image.new("RGB", (256, 256), "white"), mask)
    on_colour = Image.composite(drawing, Image.new("RGB", (256, 256), (90, 60, 120)), mask)
    count, _ = mechanism.pair_map(keypoints(grey_at(_png(on_white), 256)), keypoints(grey_at(_png(on_colour), 256)), 256)
    assert count >= 100  # 20 when the backdrop keeps its colour


def _png(im: Image.Image) -> bytes:
    out = io.BytesIO()
    im.save(out, format="PNG")
    return out.getvalue()


def test_probability_rises_with_matches_and_falls_with_distance():
    cfg = VerifyConfig(candidates=0.8, weights=(-5.0, 1.5, 1.0, -1.0), bias=3.0)
    more = probability(cfg, [0.5, 0.5], Matches(np.array([5, 50]), np.array([200, 200])))
    closer = probability(cfg, [0.2, 0.7], Matches(np.array([20, 20]), np.array([200, 200])))
    assert more[1] > more[0] and closer[0] > closer[1]


def test_beyond_the_encoders_threshold_only_pairs_with_enough_agreeing_keypoints_are_accepted():
    lenient = VerifyConfig(candidates=0.8, weights=(0.0, 0.0, 0.0, 0.0), bias=5.0, min_inliers=20)  # P ≈ 0.99
    m = Matches(np.array([0, 0, 19, 20]), np.array([30, 30, 30, 30]))
    d = np.array([0.1, 0.5, 0.5, 0.5])
    assert accepted(lenient, d, m, encoder_threshold=0.3).tolist() == [True, False, False, True]


def test_a_close_pair_with_keypoints_to_spare_and_none_agreeing_is_rejected_unless_very_close():
    lenient = VerifyConfig(candidates=0.8, weights=(0.0, 0.0, 0.0, 0.0), bias=5.0, veto_keypoints=12)
    m = Matches(np.array([0, 0, 1, 0]), np.array([30, 30, 30, 5]))
    d = np.array([0.1, 0.2, 0.2, 0.2])  # encoder threshold 0.3: within half of it, then beyond
    assert accepted(lenient, d, m, encoder_threshold=0.3).tolist() == [True, False, True, True]
    assert required_inliers(lenient, d, m.sparser, 0.3).tolist() == [0, 1, 1, 0]
    assert accepted(replace(lenient, veto_keypoints=0), d, m, encoder_threshold=0.3).all()


def test_a_close_pair_no_keypoint_agrees_on_is_kept_when_its_framing_lays_it_over():
    lenient = VerifyConfig(candidates=0.8, weights=(0.0, 0.0, 0.0, 0.0), bias=5.0, veto_keypoints=12)
    pairs = Pairs(np.array([0, 0, 0]), np.array([1, 2, 3]), np.array([0.2, 0.2, 0.5], np.float32))  # encoder threshold 0.3
    framing = np.array([[1.0, 0.0, 0.1], [0.0, 1.0, 0.0]], np.float32)
    asked, told = [], []

    def match(pairs, *args, **kwargs):  # no keypoint agrees, with keypoints to spare
        n = len(pairs)
        return Matches(np.zeros(n, np.int32), np.full(n, 30, np.int32), np.full((n, 2, 3), np.nan, np.float32))

    def frame(i, j, pictures, workers):
        asked.extend(zip(i.tolist(), j.tolist()))
        return np.stack([framing if b == 1 else np.full((2, 3), np.nan, np.float32) for b in j.tolist()])

    def tell(i, j, maps, pictures, workers):
        told.append(maps.copy())
        return np.zeros(len(i), bool)

    v = CheckedPolicy(lenient, 0.8, 0.3).decide(pairs, None, match=match, frame=frame, tell=tell,
                                                tiny=lambda i, *_: np.zeros(len(i), bool))
    assert v.keep.tolist() == [True, False, False]
    assert v.framed.tolist() == [True, False, False] and v.inliers.tolist() == [0, 0, 0]
    assert asked == [(0, 1), (0, 2)]  # the far pair needs agreeing keypoints whatever its framing
    np.testing.assert_array_equal(told[0][0], framing)  # the framed pair is looked at for a differing detail


def flat_photo(seed: int, w: int = 1200, h: int = 900) -> Image.Image:
    """Two flat shapes on a gradient with sensor noise: a handful of keypoints at 256 px."""
    rng = np.random.default_rng(seed)
    top, bottom = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    g = np.linspace(0, 1, h)[:, None, None]
    im = Image.fromarray(((top * (1 - g) + bottom * g) * np.ones((1, w, 1))).astype(np.uint8))
    draw = ImageDraw.Draw(im)
    for _ in range(2):
        x, y, side = int(rng.integers(0, w - 300)), int(rng.integers(0, h - 300)), int(rng.integers(120, 300))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        shape = draw.rectangle if rng.random() < 0.5 else draw.ellipse
        shape([x, y, x + side, y + int(side * rng.uniform(0.5, 1))], fill=colour)
    noisy = np.asarray(im, np.float32) + rng.normal(0, 6, (h, w, 3))
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


def test_too_few_keypoints_for_the_close_pair_rule_get_a_closer_look(tmp_path):
    flat_photo(3).save(tmp_path / "a.jpg", quality=88)
    flat_photo(53).save(tmp_path / "b.jpg", quality=88)
    flat_photo(3).crop((40, 30, 1160, 870)).save(tmp_path / "a_crop.jpg", quality=80)
    files = [tmp_path / n for n in ("a.jpg", "b.jpg", "a_crop.jpg")]
    pairs = Pairs(np.array([0, 0]), np.array([1, 2]), np.array([0.2, 0.2], np.float32))  # both close
    assert (match_pairs(pairs, pictures_of(files)).sparser < 12).all()  # too few to judge at 256 px
    lenient = VerifyConfig(candidates=0.8, weights=(0.0, 0.0, 0.0, 0.0), bias=5.0, veto_keypoints=12)
    v = judge(pairs, lenient, pictures_of(files))
    assert v.keep.tolist() == [False, True]  # the other picture agrees on none of its keypoints, the crop on some
    assert v.inliers[0] == 0 and v.inliers[1] >= 1
    finer = closer_look(pairs, match_pairs(pairs, pictures_of(files)), lenient, pictures_of(files), 0.3)
    assert (finer.sparser >= 12).all()
    assert judge(pairs, replace(lenient, veto_keypoints=0), pictures_of(files)).keep.all()


def test_a_check_calibrated_before_the_close_pair_rule_keeps_its_verdicts():
    old = {"candidates": 0.8, "weights": [0.0, 0.0, 0.0, 0.0], "bias": 5.0, "accept": 0.5}
    assert VerifyConfig.from_dict(old).veto_keypoints == 0
    # and one stored without its count of agreeing keypoints keeps the count it was judged with
    assert VerifyConfig.from_dict(old).min_inliers == 20
    assert VerifyConfig.from_dict({**old, "min_inliers": 12}).min_inliers == 12


def test_verify_config_round_trips_and_refuses_a_wrong_number_of_weights():
    cfg = VerifyConfig(candidates=0.8, weights=(-5.0, 1.5, 1.0, -1.0), bias=3.0, accept=0.55)
    assert VerifyConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert VerifyConfig.from_dict(json.loads(json.dumps(BY_MATCHES_NORMALISED.to_dict()))) == BY_MATCHES_NORMALISED
    assert not cfg.normalised and BY_MATCHES_NORMALISED.normalised
    with pytest.raises(ValueError):
        VerifyConfig(candidates=0.8, weights=(1.0, 2.0), bias=0.0)
    with pytest.raises(ValueError):
        VerifyConfig(candidates=0.8, weights=(1.0,) * 5, bias=0.0)  # five weights for four features
    with pytest.raises(ValueError):
        VerifyConfig(candidates=0.8, weights=(1.0,) * 5, bias=0.0, features=("distance",) * 5)


def test_check_pictures_are_upright_at_most_the_stored_side_and_seen_at_the_side_asked_for(tmp_path):
    scene(2, (400, 100)).save(tmp_path / "wide.png")
    assert Image.open(io.BytesIO(load_picture(tmp_path / "wide.png"))).size == (256, 64)
    assert grey_at(load_picture(tmp_path / "wide.png"), 512).shape == (128, 512)
    scene(2, (50, 100)).save(tmp_path / "small.png")
    assert Image.open(io.BytesIO(load_picture(tmp_path / "small.png"))).size == (50, 100)  # never enlarged when stored
    assert grey_at(load_picture(tmp_path / "small.png"), 256).shape == (256, 128)
    scene(2, (60, 100)).save(tmp_path / "turned.jpg", exif=_orientation_exif(6))  # stored sideways
    assert grey_at(load_picture(tmp_path / "turned.jpg"), 256).shape == (154, 256)
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(ImageSkip):
        load_picture(tmp_path / "broken.jpg")


def test_pairs_with_an_unreadable_file_fall_back_on_the_distance(tmp_path):
    scene(4).save(tmp_path / "a.png")
    edited(scene(4)).save(tmp_path / "b.png")
    files = {0: tmp_path / "a.png", 1: tmp_path / "b.png", 2: tmp_path / "gone.png", 3: tmp_path / "gone2.png"}
    pairs = Pairs(np.array([0, 0, 2]), np.array([1, 2, 3]), np.array([0.6, 0.2, 0.5], np.float32))
    v = judge(pairs, BY_MATCHES, pictures_of(files))
    assert v.keep.tolist() == [True, True, False]  # matched; gone but close; gone and far
    assert v.verified.unreadable == 2 and v.inliers[0] >= 20 and np.isnan(v.probability[1:]).all()


def test_regions_keep_near_neighbours_together_and_are_skipped_when_the_catalog_fits_the_cache(monkeypatch):
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(8, 16))
    x = np.repeat(centres, 40, axis=0) + 0.02 * rng.normal(size=(320, 16))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    assert locality_regions(x) is None  # 320 rows fit in the cache
    monkeypatch.setattr(mechanism, "CACHE_IMAGES", 100)
    labels = locality_regions(x, size=40)
    truth = np.repeat(np.arange(8), 40)
    same = truth[:, None] == truth[None, :]
    assert (labels[:, None] == labels[None, :])[same].mean() > 0.8
    assert len(np.unique(labels)) >= 6


def test_pairs_checked_region_by_region_match_the_same_and_decode_each_file_once(tmp_path, monkeypatch):
    for k in range(12):
        scene(k).resize((96, 96)).save(tmp_path / f"{k}.png")
    regions = np.arange(12) % 3  # rows of one region are scattered through the catalog
    pairs = [(a, b) for a in range(12) for b in range(a + 1, 12) if regions[a] == regions[b]]
    pairs = Pairs(np.array([a for a, _ in pairs]), np.array([b for _, b in pairs]), np.full(len(pairs), 0.5, np.float32))
    loads = []

    def files(row: int):
        loads.append(row)
        return load_picture(tmp_path / f"{row}.png")

    monkeypatch.setattr(mechanism, "CACHE_IMAGES", 4)
    in_order = match_pairs(pairs, files, block=2)
    order_loads, loads[:] = len(loads), []
    by_region = match_pairs(pairs, files, block=2, regions=regions)
    assert np.array_equal(in_order.inliers, by_region.inliers) and np.array_equal(in_order.sparser, by_region.sparser)
    assert sorted(loads) == list(range(12)) and order_loads > 12


def test_a_shared_store_finds_each_pictures_keypoints_once_whatever_its_row(tmp_path, monkeypatch):
    files = []
    for k in (4, 5, 8):
        scene(k).save(tmp_path / f"{k}.png")
        files.append(tmp_path / f"{k}.png")
    found = []
    real = mechanism.keypoints
    monkeypatch.setattr(mechanism, "keypoints", lambda *a, **kw: found.append(1) or real(*a, **kw))
    store = KeypointStore()
    pairs = Pairs(np.array([0, 0]), np.array([1, 2]), np.full(2, 0.5, np.float32))
    first = match_pairs(pairs, pictures_of(files), store=store)
    assert len(found) == 3 and len(store) == 3
    # the same pictures under other rows (a second set's numbering), and one more, the picture at another side
    renumbered = {10: files[2], 11: files[0], 12: files[1]}
    again = match_pairs(Pairs(np.array([11, 11]), np.array([12, 10]), pairs.d), pictures_of(renumbered), store=store)
    assert len(found) == 3 and np.array_equal(first.inliers, again.inliers)
    match_pairs(pairs[:1], pictures_of(files), side=128, store=store)
    assert len(found) == 5  # keypoints at another side are other keypoints
    alone = match_pairs(pairs, pictures_of(files))
    assert len(found) == 8 and np.array_equal(first.inliers, alone.inliers)


def test_the_store_holds_the_most_recent_pictures_and_a_row_is_read_again_once_let_go(tmp_path, monkeypatch):
    files = []
    for k in range(5):
        scene(k).resize((96, 96)).save(tmp_path / f"{k}.png")
        files.append(tmp_path / f"{k}.png")
    loads = []
    store = KeypointStore(size=2)
    cache = mechanism.KeypointCache(lambda row: loads.append(row) or load_picture(files[row]), 256, 500, store=store)
    for row in (0, 1, 0, 2, 0, 1):
        cache(row)
    assert len(store) == 2 and loads == [0, 1, 2, 1]  # 0 stayed recent; 1 was let go for 2


@pytest.fixture(params=[BY_MATCHES, BY_MATCHES_NORMALISED], ids=["raw", "normalised"])
def look_alike_index(request, tmp_path, tiny_model_file):
    """Two pictures and an edited copy of the first, indexed by a tiny model given `BY_MATCHES`
    (or the same check judging distances against the background)."""
    catalog = tmp_path / "cat"
    catalog.mkdir()
    scene(4).save(catalog / "a.png")  # scenes 4, 5 and 8 have over 100 keypoints; most have fewer
    edited(scene(4)).save(catalog / "a_copy.png")
    scene(8).save(catalog / "b.png")
    model = load_model(tiny_model_file)
    model.meta["verify"] = request.param.to_dict()
    save_model(model, tmp_path / "tiny_verify.pt")
    index_catalog(catalog, tmp_path / "idx", load_model(tmp_path / "tiny_verify.pt"))
    return tmp_path / "idx"


def test_find_duplicates_keeps_only_the_candidates_the_keypoints_confirm(look_alike_index):
    every_pair = find_duplicates(look_alike_index, 2.0, linkage="single", verify=False)
    assert [sorted(m.path for m in g.members) for g in every_pair.groups] == [["a.png", "a_copy.png", "b.png"]]
    checked = find_duplicates(look_alike_index, linkage="single")
    assert checked.threshold == 2.0  # the second look's candidate distance is the default
    assert [sorted(m.path for m in g.members) for g in checked.groups] == [["a.png", "a_copy.png"]]
    assert (checked.verified.candidates, checked.verified.confirmed, checked.verified.unreadable) == (3, 1, 0)


def test_files_with_the_same_bytes_are_one_picture_without_a_look(tmp_path, tiny_model_file, monkeypatch):
    catalog = tmp_path / "cat"
    catalog.mkdir()
    Image.new("RGB", (96, 96), "white").save(catalog / "blank.png")  # no keypoints: the check could never confirm it
    (catalog / "blank_again.png").write_bytes((catalog / "blank.png").read_bytes())
    scene(4).save(catalog / "a.png")
    model = load_model(tiny_model_file)
    model.meta["verify"] = BY_MATCHES.to_dict()
    save_model(model, tmp_path / "tiny_verify.pt")
    index_catalog(catalog, tmp_path / "idx", load_model(tmp_path / "tiny_verify.pt"))
    matched = []
    real = duplicates.match_pairs
    monkeypatch.setattr(duplicates, "match_pairs", lambda pairs, *a, **kw: matched.append(len(pairs)) or real(pairs, *a, **kw))
    report = find_duplicates(tmp_path / "idx", linkage="single")
    assert [sorted(m.path for m in g.members) for g in report.groups] == [["blank.png", "blank_again.png"]]
    assert report.groups[0].exact and (report.verified.candidates, report.verified.confirmed) == (3, 1)
    assert sum(matched) == 2  # the blank pictures' pairs with a.png only
    (found,) = query_images(tmp_path / "idx", [catalog / "blank.png"], k=3, verify=True)
    alike = [n for n in found.neighbors if n.path.startswith("blank")]
    assert len(alike) == 2 and all(n.same and n.differs is not None and not n.differs.boxes for n in alike)
    same = compare_images(catalog / "blank.png", catalog / "blank_again.png", tmp_path / "tiny_verify.pt")
    assert same.same and same.same_bytes


def test_the_check_works_from_the_index_when_the_catalog_has_moved_or_is_gone(look_alike_index, tmp_path):
    before = find_duplicates(look_alike_index, linkage="single")
    (tmp_path / "cat").rename(tmp_path / "elsewhere")
    after = find_duplicates(look_alike_index, linkage="single")
    assert [sorted(m.path for m in g.members) for g in after.groups] == [["a.png", "a_copy.png"]]
    assert after.groups == before.groups and after.verified == before.verified
    assert after.verified.unreadable == 0


def test_an_index_without_stored_pictures_checks_catalog_files_and_a_moved_one_on_distance_alone(
        look_alike_index, tmp_path):
    from dedup.manifest import FILE, Manifest

    doc = Manifest.load(look_alike_index).to_dict()
    (look_alike_index / FILE).write_text(json.dumps({k: v for k, v in doc.items() if k != "pictures"}))
    assert Manifest.load(look_alike_index).pictures == 0
    (tmp_path / "cat" / "a_copy.png").rename(tmp_path / "moved.png")
    report = find_duplicates(look_alike_index, linkage="single")
    assert (report.verified.unreadable, report.verified.confirmed) == (2, 2)
    # the untrained model puts everything within its threshold (0.5), so both pairs with the moved
    # file are kept on distance alone; the readable pair a–b is still rejected by its keypoints
    assert [sorted(m.path for m in g.members) for g in report.groups] == [["a.png", "a_copy.png", "b.png"]]


def test_cli_no_verify_and_the_json_record_of_the_check(look_alike_index):
    from click.testing import CliRunner

    from dedup.cli import cli

    runner = CliRunner()
    on = runner.invoke(cli, ["find-duplicates", "--index", str(look_alike_index), "--format", "json", "-q"])
    off = runner.invoke(cli, ["find-duplicates", "--index", str(look_alike_index), "--format", "json", "-q",
                              "--no-verify", "-t", "2.0", "--linkage", "single"])
    assert on.exit_code == 0 and off.exit_code == 0, on.output + off.output
    assert json.loads(on.output)["verified"]["candidates"] == 3
    doc = json.loads(off.output)
    assert doc["verified"] is None and len(doc["groups"][0]["members"]) == 3


def test_an_index_written_before_manifests_recorded_the_check_takes_it_from_the_models_card(look_alike_index):
    from dedup.manifest import FILE, Manifest

    doc = Manifest.load(look_alike_index).to_dict()
    doc["model"]["ref"] = str(look_alike_index.parent / "tiny_verify.pt")
    (look_alike_index / FILE).write_text(json.dumps({k: v for k, v in doc.items() if k != "verify"}))
    assert find_duplicates(look_alike_index, linkage="single").verified.confirmed == 1
    (look_alike_index / FILE).write_text(json.dumps({**doc, "verify": None}))  # a model without a check
    assert find_duplicates(look_alike_index, linkage="single").verified is None


@pytest.mark.parametrize("affine, ok", [
    ([[0.9, 0.1, 5], [-0.1, 0.9, 3]], True),  # small rotation and scale
    ([[1.6, 0.0, 0], [0.0, 1.0, 0]], True),  # aspect-ratio change
    ([[-1.0, 0.0, 0], [0.0, 1.0, 0]], False),  # a mirror (matched against the mirror image instead)
    ([[4.0, 0.0, 0], [0.0, 1.0, 0]], False),  # one axis stretched 4x
    ([[0.05, 0.0, 0], [0.0, 0.05, 0]], False),  # shrunk 20x
])
def test_only_maps_an_edit_could_make_count_as_agreement(affine, ok):
    assert plausible(np.array(affine, np.float64)) is ok


def test_sets_default_to_complete_linkage_with_the_check_and_center_without(look_alike_index):
    assert find_duplicates(look_alike_index).linkage == "complete"
    assert find_duplicates(look_alike_index, verify=False).linkage == "center"
    assert find_duplicates(look_alike_index, linkage="single").linkage == "single"


def test_incoming_images_against_a_catalog_are_checked_by_keypoints_too(look_alike_index, tmp_path):
    from dedup.duplicates import find_against

    incoming = tmp_path / "incoming"
    incoming.mkdir()
    edited(scene(4)).rotate(-8, expand=True, fillcolor="white").save(incoming / "upload_of_a.png")
    scene(5).save(incoming / "new_picture.png")
    index_catalog(incoming, tmp_path / "incoming_idx", load_model(tmp_path / "tiny_verify.pt"))
    checked = find_against(tmp_path / "incoming_idx", look_alike_index)
    assert [(r.query, sorted(n.path for n in r.neighbors)) for r in checked.results] == [
        ("upload_of_a.png", ["a.png", "a_copy.png"])]
    assert checked.verified.candidates == 6 and checked.verified.confirmed == 2
    every = find_against(tmp_path / "incoming_idx", look_alike_index, 2.0, verify=False)
    assert every.verified is None and sum(len(r.neighbors) for r in every.results) == 6


def test_compare_judges_a_pair_as_find_duplicates_does(look_alike_index, tmp_path):
    from dedup.query import compare_images

    model, cat = load_model(tmp_path / "tiny_verify.pt"), tmp_path / "cat"
    copy = compare_images(cat / "a.png", cat / "a_copy.png", model)
    other = compare_images(cat / "a.png", cat / "b.png", model)
    assert copy.same and copy.inliers >= 20 and copy.threshold == 2.0
    assert not other.same and other.inliers < 20
    plain = compare_images(cat / "a.png", cat / "b.png", model, verify=False)
    assert plain.same and plain.inliers is None and plain.threshold == 0.5  # the untrained model's distances are tiny


def test_tiny_and_degenerate_pictures_never_stop_the_check(tmp_path):
    Image.new("RGB", (1, 1), "red").save(tmp_path / "dot.png")
    Image.new("L", (3, 200), 0).save(tmp_path / "sliver.png")
    scene(4).save(tmp_path / "a.png")
    (tmp_path / "text.png").write_text("not an image")
    files = [tmp_path / n for n in ("dot.png", "sliver.png", "a.png", "text.png")]
    pairs = Pairs(np.array([0, 0, 1, 2]), np.array([1, 2, 2, 3]), np.array([0.1, 0.1, 0.1, 0.1], np.float32))
    v = judge(pairs, BY_MATCHES, pictures_of(files))
    assert set(v.inliers[:3].tolist()) <= {0, RULED_OUT} and v.inliers[3] == -1 and v.verified.unreadable == 1


@pytest.mark.parametrize("weights", [(0.78, 1.31, -4.89, -2.51, -10.6), (0.5, -1.0, 3.0, 0.2, 1.0),
                                     (-2.0, 0.7, 0.0, -0.3, 4.0), (1.0, -0.5, -2.0, 0.0, 0.0)])
def test_the_ceiling_is_the_best_probability_any_count_of_agreeing_keypoints_gives(weights):
    config = VerifyConfig(2.0, weights, 1.0, features=NORMALISED_FEATURES, typical_background=0.5)
    rng = np.random.default_rng(0)
    m = 400
    d, norm = rng.uniform(0, 1.5, m), rng.uniform(-0.5, 0.5, m)
    sparser, fewest = rng.integers(0, 120, m), rng.choice([0, 1, 12], m)
    top = ceiling(config, d, sparser, fewest, norm)
    for k in range(m):
        counts = np.arange(fewest[k], sparser[k] + 1)
        if len(counts) == 0:
            assert top[k] == 0.0
            continue
        every = probability(config, np.full(len(counts), d[k]), Matches(counts, np.full(len(counts), sparser[k])),
                            np.full(len(counts), norm[k]))
        assert top[k] == pytest.approx(every.max(), abs=1e-12)


def test_pairs_no_count_of_agreeing_keypoints_could_accept_are_not_matched_and_keep_their_verdict(tmp_path):
    files = []
    for s in range(4):
        scene(s).save(tmp_path / f"{s}.png")
        edited(scene(s)).save(tmp_path / f"{s}_copy.png")
        files += [tmp_path / f"{s}.png", tmp_path / f"{s}_copy.png"]
    # P(same) = σ(−8·distance + 2·log(1 + agreeing)): far pairs need more keypoints than a picture has
    config = VerifyConfig(candidates=2.0, weights=(-8.0, 2.0, 0.0, 0.0), bias=0.0, accept=0.5, min_inliers=1)
    i, j = np.triu_indices(len(files), 1)
    rng = np.random.default_rng(1)
    d = np.where(i // 2 == j // 2, rng.choice([0.25, 0.6, 1.0], len(i)), rng.choice([0.25, 1.2, 1.9], len(i)))
    pairs = Pairs(i, j, d.astype(np.float32))
    policy = CheckedPolicy(config, 2.0, 0.3)
    quick = policy.decide(pairs, pictures_of(files))
    full = policy.decide(pairs, pictures_of(files), thorough=True)
    out = quick.inliers == RULED_OUT
    assert 0 < out.sum() < len(pairs) and (full.inliers >= 0).all()
    assert quick.keep.tolist() == full.keep.tolist() and quick.keep.any()
    assert not full.keep[out].any() and np.isnan(quick.probability[out]).all()
    assert (quick.inliers[~out] == full.inliers[~out]).all()
    assert quick.verified == full.verified
    # a ruled-out pair could not have been accepted with every keypoint of its sparser picture agreeing
    worth = Hopeful.of(config, pairs.d, None, 0.3)
    assert not worth(np.flatnonzero(out), full.inliers[out]).any()


def test_query_verify_judges_each_neighbour_and_plain_query_output_is_unchanged(look_alike_index, tmp_path):
    from click.testing import CliRunner

    from dedup.cli import cli
    from dedup.query import query_images

    upload = tmp_path / "upload.png"
    edited(scene(4)).rotate(-8, expand=True, fillcolor="white").save(upload)
    model = load_model(tmp_path / "tiny_verify.pt")
    [result] = query_images(look_alike_index, [upload], k=3, model=model, verify=True)
    assert {n.path: n.same for n in result.neighbors} == {"a.png": True, "a_copy.png": True, "b.png": False}
    runner = CliRunner()
    base = ["query", str(upload), "--index", str(look_alike_index), "--model", str(tmp_path / "tiny_verify.pt"),
            "--format", "json"]
    plain = json.loads(runner.invoke(cli, base).output)
    checked = json.loads(runner.invoke(cli, [*base, "--verify"]).output)
    assert all(set(n) == {"path", "distance"} for n in plain[0]["neighbors"])
    assert sorted(n["same"] for n in checked[0]["neighbors"]) == [False, True, True]


def test_the_closed_form_map_check_agrees_with_numpys_singular_values():
    rng = np.random.default_rng(0)
    for _ in range(2000):
        affine = rng.normal(size=(2, 3)) * rng.choice([0.1, 1.0, 3.0])
        a = affine[:, :2]
        big, small = np.linalg.svd(a, compute_uv=False)
        slow = np.linalg.det(a) > 0 and small > 1 / mechanism.MAX_SCALE and big < mechanism.MAX_SCALE \
            and big / small <= mechanism.MAX_STRETCH
        assert plausible(affine) is bool(slow)


def _bit_noise(rng, n: int) -> np.ndarray:
    """`n` descriptors with about one bit in sixteen set."""
    return (rng.random((n, 256)) < 1 / 16).reshape(n, 32, 8).dot(1 << np.arange(7, -1, -1)).astype(np.uint8)


def test_ratio_matches_are_exactly_the_brute_force_ratio_test():
    """Every descriptor whose nearest (Hamming) is closer than RATIO times its second nearest, and
    only those; descriptors drawn from few values so that ties for the nearest are common."""
    rng = np.random.default_rng(1)
    for trial in range(50):
        base = rng.integers(0, 256, size=(8, 32), dtype=np.uint8)
        d1 = base[rng.integers(0, 8, 40)] ^ _bit_noise(rng, 40)
        d2 = base[rng.integers(0, 8, int(rng.integers(2, 60)))]
        d2 = d2 ^ _bit_noise(rng, len(d2)) if trial % 2 else d2  # even trials: exact copies, many ties
        dist = np.unpackbits(d1[:, None, :] ^ d2[None, :, :], axis=2).sum(axis=2)
        two = np.sort(dist, axis=1)[:, :2]
        want = np.flatnonzero(two[:, 0] < mechanism.RATIO * two[:, 1])
        query, train = mechanism.ratio_matches(d1, d2)
        assert query.tolist() == want.tolist()
        assert (dist[query, train] == two[query, 0]).all()
    assert len(mechanism.ratio_matches(d1, d2[:1])[0]) == 0  # no second nearest: no match


def test_an_index_notes_its_models_later_calibration_until_indexed_again(look_alike_index, tmp_path):
    from click.testing import CliRunner

    from dedup.cli import cli
    from dedup.loading import recalibrated_since
    from dedup.manifest import Manifest

    def note() -> str:
        result = CliRunner().invoke(cli, ["find-duplicates", "--index", str(look_alike_index), "--format", "json"])
        assert result.exit_code == 0, result.output
        return "\n".join(line for line in result.stderr.splitlines() if line.startswith("note:"))

    file = tmp_path / "tiny_verify.pt"
    assert Manifest.load(look_alike_index).model.ref == str(file.resolve())
    assert not recalibrated_since(Manifest.load(look_alike_index)) and note() == ""
    model = load_model(file)
    model.meta["verify"] = replace(model.check, accept=0.99).to_dict()  # the same weights, calibrated again
    save_model(model, file)
    assert recalibrated_since(Manifest.load(look_alike_index))
    assert f"dedup index {tmp_path / 'cat'} --index {look_alike_index}" in note()
    query = CliRunner().invoke(cli, ["query", str(tmp_path / "cat" / "a.png"), "--index", str(look_alike_index), "--verify"])
    assert query.exit_code == 0 and "note: this index judges with its model's earlier calibration" in query.stderr
    index_catalog(tmp_path / "cat", look_alike_index, load_model(file))
    assert Manifest.load(look_alike_index).verify.accept == 0.99 and note() == ""
    file.write_bytes(file.read_bytes() + b"\0")  # other weights: the card no longer speaks for the index's model
    assert not recalibrated_since(Manifest.load(look_alike_index))


@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_check_pictures_decode_to_pils_pixels(mode):
    out = io.BytesIO()
    scene(7, (250, 200)).convert(mode).save(out, format="JPEG", quality=90)
    picture = out.getvalue()
    assert np.array_equal(rgb_of(picture), np.asarray(Image.open(io.BytesIO(picture)).convert("RGB")))
    assert np.array_equal(rgb_of(picture_bytes(scene(7))), np.asarray(Image.open(io.BytesIO(picture_bytes(scene(7))))))
    out = io.BytesIO()
    scene(7, (600, 200)).save(out, format="JPEG", quality=90)  # larger than a check picture: decoded by PIL
    assert np.array_equal(rgb_of(out.getvalue()), np.asarray(Image.open(out).convert("RGB")))


def test_check_pictures_that_are_no_whole_jpeg_decode_as_pil_would():
    png = io.BytesIO()
    scene(7, (30, 20)).save(png, format="PNG")
    assert np.array_equal(rgb_of(png.getvalue()), np.asarray(scene(7, (30, 20)).convert("RGB")))
    with pytest.raises(OSError):
        rgb_of(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(OSError):
        rgb_of(picture_bytes(scene(7))[:-400])  # cut short: PIL refuses it, OpenCV would fill it in
