"""Candidate pairs by shared keypoints (`dedup.votes`): a heavy crop of a picture, or a picture
pasted onto a busier one, is paired with it by the descriptors they share, and kept only when
one lies inside the other."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
from fakes import member_sets
from test_windows import cropped_catalog, uploads  # noqa: F401 (fixtures)

from dedup import votes
from dedup.duplicates import find_duplicates
from dedup.pairs import Pairs
from dedup.seams import PairMaps, held_share


def _flipped(desc: np.ndarray, bits: int, rng: np.random.Generator) -> np.ndarray:
    """`desc` with `bits` random bits of each descriptor flipped."""
    out = np.unpackbits(desc, axis=1)
    for row in out:
        row[rng.choice(out.shape[1], bits, replace=False)] ^= 1
    return np.packbits(out, axis=1)


def test_pictures_that_share_descriptors_are_paired_and_others_not():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (200, 32), np.uint8)
    b = np.concatenate([_flipped(a[:60], 10, rng), rng.integers(0, 256, (100, 32), np.uint8)])  # a part of a, re-found
    c = rng.integers(0, 256, (150, 32), np.uint8)  # nothing in common (random descriptors lie ~128 bits apart)
    d = np.concatenate([_flipped(c[:3], 5, rng), rng.integers(0, 256, (100, 32), np.uint8)])  # three corners of c
    pictures = {0: a, 1: c, 2: b, 3: None, 4: d}
    pairs = votes.vote_pairs(range(5), pictures.get)
    assert list(zip(pairs.i.tolist(), pairs.j.tolist())) == [(0, 2), (1, 4)]
    assert pairs.d[0] > pairs.d[1]  # a larger share of shared descriptors scores higher
    assert len(votes.vote_pairs([0, 1], pictures.get)) == 0
    assert len(votes.vote_pairs([0], pictures.get)) == 0


def test_each_picture_keeps_only_its_best_voted_partners():
    rng = np.random.default_rng(1)
    base = rng.integers(0, 256, (120, 32), np.uint8)
    # pictures 1..4 share 40, 30, 20 and 10 descriptors with picture 0, nothing with each other
    pictures = {0: base}
    for k, shared in enumerate((40, 30, 20, 10), start=1):
        start = sum((40, 30, 20, 10)[:k - 1])
        pictures[k] = np.concatenate([_flipped(base[start:start + shared], 8, rng), rng.integers(0, 256, (50, 32), np.uint8)])
    pairs = votes.vote_pairs(range(5), pictures.get, k=2)
    # picture 0's two best (1, 2), and each of 3 and 4 keeps its only partner, 0
    assert list(zip(pairs.i.tolist(), pairs.j.tolist())) == [(0, 1), (0, 2), (0, 3), (0, 4)]
    one = votes.vote_pairs(range(5), pictures.get, k=1)
    assert list(zip(one.i.tolist(), one.j.tolist())) == [(0, 1), (0, 2), (0, 3), (0, 4)]  # 1 is 0's best; 2, 3, 4 each pick 0


def test_the_search_through_inverted_lists_finds_what_the_exact_one_finds(monkeypatch):
    rng = np.random.default_rng(2)
    pictures = {r: rng.integers(0, 256, (300, 32), np.uint8) for r in range(40)}
    for r in range(0, 40, 2):  # each odd picture re-finds a fifth of the even one before it
        pictures[r + 1][:60] = _flipped(pictures[r][100:160], 12, rng)
    exact = votes.vote_pairs(range(40), pictures.get)
    monkeypatch.setattr(votes, "PER_LIST", 100)  # 12,000 descriptors: 120 lists
    listed = votes.vote_pairs(range(40), pictures.get)
    assert list(zip(exact.i.tolist(), exact.j.tolist())) == [(r, r + 1) for r in range(0, 40, 2)]
    assert list(zip(listed.i.tolist(), listed.j.tolist())) == [(r, r + 1) for r in range(0, 40, 2)]
    monkeypatch.setattr(votes, "QUERY_BLOCK", 1000)
    again = votes.vote_pairs(range(40), pictures.get)
    assert np.array_equal(again.i, listed.i) and np.array_equal(again.j, listed.j)


def test_the_votes_through_lists_found_once_are_those_of_a_plain_search(monkeypatch):
    import faiss

    rng = np.random.default_rng(5)
    owner = np.repeat(np.arange(60), 200)
    desc = rng.integers(0, 256, (len(owner), 32), np.uint8)
    desc[200:260] = _flipped(desc[:60], 12, rng)  # picture 1 shares corners with picture 0
    monkeypatch.setattr(votes, "PER_LIST", 100)  # 12,000 descriptors: 64 lists
    monkeypatch.setattr(votes, "QUERY_BLOCK", 5000)
    a, b = votes._votes(owner, desc)
    index, _ = votes._searcher(desc)
    plain = faiss.IndexBinaryIVF(index.quantizer, 256, index.nlist)
    plain.nprobe = votes.PROBE
    plain.add(desc)
    dist, near = plain.search(desc, votes.NEAREST + 1)
    ok = (near >= 0) & (dist <= votes.HAMMING) & (dist < votes.RATIO * dist[:, -1:])
    want_a, want_b = np.broadcast_to(owner[:, None], near.shape)[ok], owner[near[ok]]
    assert np.array_equal(a, want_a[want_a != want_b]) and np.array_equal(b, want_b[want_a != want_b])
    assert {(0, 1), (1, 0)} <= set(zip(a.tolist(), b.tolist()))


def test_the_lists_do_not_depend_on_the_catalog_so_added_pictures_leave_the_others_votes(monkeypatch):
    rng = np.random.default_rng(3)
    pictures = {r: rng.integers(0, 256, (300, 32), np.uint8) for r in range(42)}
    for r in range(0, 40, 2):
        pictures[r + 1][:60] = _flipped(pictures[r][100:160], 12, rng)
    monkeypatch.setattr(votes, "PER_LIST", 100)
    assert votes.lists_for(40 * 300) == votes.lists_for(42 * 300) == 64  # the shipped lists of 64 centroids
    before = votes.vote_pairs(range(40), pictures.get)
    pictures[41][:60] = _flipped(pictures[0][200:260], 12, rng)  # a new picture re-finds another part of picture 0
    after = votes.vote_pairs(range(42), pictures.get)
    old = (after.i < 40) & (after.j < 40)
    assert np.array_equal(after.i[old], before.i) and np.array_equal(after.j[old], before.j)
    assert (0, 41) in set(zip(after.i.tolist(), after.j.tolist()))
    assert votes.list_counts()[0] == votes.MIN_LISTS and votes.list_counts()[-1] == votes.MAX_LISTS
    assert votes.lists_for(votes.MIN_LISTS * votes.PER_LIST - 1) == 0  # an exact search
    assert all(votes.centroids(c).shape == (c, 32) for c in votes.list_counts())


def test_a_search_of_others_descriptors_gives_what_counting_the_votes_by_hand_gives():
    rng = np.random.default_rng(4)
    rows = {r: rng.integers(0, 256, (60, 32), np.uint8) for r in range(12)}
    queries = [_flipped(rows[q][:30], 10, rng) for q in (0, 1, 2)] + [None, rng.integers(0, 256, (40, 32), np.uint8)]
    queries[1][:12] = _flipped(rows[7][:12], 10, rng)  # query 1 shares corners with rows 1 and 7
    found = votes.searched([rows[r] for r in range(12)], keep=60).best(queries, k=2)
    everything = np.concatenate([rows[r] for r in range(12)])
    owners = np.repeat(np.arange(12), 60)
    expected = []
    for q, desc in enumerate(queries):
        if desc is None:
            continue
        tally = np.zeros(12)
        for d in desc:
            bits = np.unpackbits(np.bitwise_xor(everything, d), axis=1).sum(axis=1)
            near = np.argsort(bits, kind="stable")[:votes.NEAREST]
            for n in near[(bits[near] <= votes.HAMMING) & (bits[near] < votes.RATIO * bits[near[-1]])]:
                tally[owners[n]] += 1
        score = np.where(tally >= votes.MIN_VOTES, tally / np.sqrt(len(desc) * 60), 0)
        expected += [(q, int(r)) for r in np.argsort(-score, kind="stable")[:2] if score[r] > 0]
    assert list(zip(found.i.tolist(), found.j.tolist())) == expected
    assert [(q, r) for q, r in expected if q == 1] == [(1, 1), (1, 7)] and not [q for q, _ in expected if q == 4]


def test_descriptors_beyond_the_budget_are_spread_over_the_list():
    assert votes.per_picture(100, 500) == 500 and votes.per_picture(10**9, 500) == 1 and votes.per_picture(100, 300) == 300
    # beyond the budget the count falls by steps: a catalog that grows a little keeps its pictures' descriptors
    most = votes.BUDGET // 500
    assert votes.per_picture(most, 500) == 500 and votes.per_picture(most + 1, 500) == 400
    assert votes.per_picture(votes.BUDGET // 400, 500) == 400 and votes.per_picture(votes.BUDGET // 400 + 1, 500) == 320
    for pictures in (most + 1, 3 * most, 10**5, 10**6):
        keep = votes.per_picture(pictures, 500)
        assert keep * pictures <= votes.BUDGET and keep >= votes.STEP * votes.BUDGET / pictures - 1  # at most a step below
    from dedup.keypoints import Keypoints

    kp = Keypoints(np.zeros((10, 2), np.float32), np.arange(10, dtype=np.uint8)[:, None].repeat(32, 1),
                   np.zeros((0, 2), np.float32), np.zeros((0, 32), np.uint8), 100)
    assert votes.spread(kp, 4)[:, 0].tolist() == [0, 3, 6, 9]
    assert len(votes.spread(kp, 20)) == 10


def _scaled(factor: float, dx: float = 0.0, dy: float = 0.0) -> np.ndarray:
    return np.array([[factor, 0.0, dx], [0.0, factor, dy]])


def test_a_pair_is_held_when_one_picture_lies_inside_the_other_and_covers_at_most_the_share():
    # maps in units of each picture's longer side (`Matches.maps`); frames (h, w)
    assert held_share(_scaled(0.5, 0.2, 0.1), (100, 100), (100, 100)) == pytest.approx(0.25)  # a inside b, a quarter of it
    assert held_share(_scaled(2.0, -0.4, -0.2), (100, 100), (100, 100)) == pytest.approx(0.25)  # b inside a
    assert held_share(_scaled(1.0), (100, 100), (100, 100)) is None  # one frame: each inside the other
    assert held_share(_scaled(0.5, 0.8, 0.8), (100, 100), (100, 100)) is None  # partly outside
    pairs = Pairs(np.array([0, 0, 1]), np.array([1, 2, 2]), np.zeros(3, np.float32))
    maps = PairMaps.of(np.array([0, 0]), np.array([1, 2]), np.stack([_scaled(0.5, 0.2, 0.1), _scaled(0.9, 0.05, 0.05)]))
    frames = (np.full(3, 100), np.full(3, 100))
    assert votes.held(pairs, maps, frames).tolist() == [True, False, False]  # 0.81 of the holder is too much; (1, 2) has no map
    assert votes.held(pairs, maps, frames, share=0.85).tolist() == [True, True, False]


def test_find_duplicates_finds_a_heavy_crop_and_a_pasted_picture_by_shared_keypoints(cropped_catalog):  # noqa: F811
    _, folder = cropped_catalog
    without = member_sets(find_duplicates(folder, windows=False, keypoint_search=False))
    found = member_sets(find_duplicates(folder, windows=False))
    for pair in ({"scene0.png", "crop.png"}, {"scene1.png", "pasted.png"}):
        assert pair not in without and pair in found
    assert [s for s in found if len(s) > 1] == [s for s in found if s in ({"scene0.png", "crop.png"}, {"scene1.png", "pasted.png"})]


def test_the_voted_pairs_are_remembered_until_the_pictures_change(cropped_catalog, tmp_path, monkeypatch):  # noqa: F811
    import dedup.passes as passes
    from dedup.checkmemo import FOLDER, VOTES

    _, folder = cropped_catalog
    shutil.copytree(folder, tmp_path / "idx")
    shutil.rmtree(tmp_path / "idx" / FOLDER, ignore_errors=True)
    calls = []
    real = passes.vote_pairs
    monkeypatch.setattr(passes, "vote_pairs", lambda *a, **k: calls.append(1) or real(*a, **k))
    first = member_sets(find_duplicates(tmp_path / "idx", windows=False))
    assert (tmp_path / "idx" / FOLDER / VOTES).is_file() and calls == [1]
    assert member_sets(find_duplicates(tmp_path / "idx", windows=False)) == first and calls == [1]  # read back, not voted again
    (tmp_path / "idx" / FOLDER / VOTES).write_bytes(b"damaged")
    assert member_sets(find_duplicates(tmp_path / "idx", windows=False)) == first and calls == [1, 1]


def test_each_pictures_descriptors_are_remembered_so_a_new_vote_finds_no_keypoints_again(cropped_catalog, tmp_path,  # noqa: F811
                                                                                        monkeypatch):
    import dedup.keypoints as keypoints
    from dedup.checkmemo import FOLDER, VOTES, descriptors_table

    _, folder = cropped_catalog
    shutil.copytree(folder, tmp_path / "idx")
    shutil.rmtree(tmp_path / "idx" / FOLDER, ignore_errors=True)
    first = member_sets(find_duplicates(tmp_path / "idx", windows=False))
    assert (tmp_path / "idx" / FOLDER / descriptors_table(votes.per_picture(12, 500))[0]).is_file()
    found = []
    real = keypoints.keypoints
    monkeypatch.setattr(keypoints, "keypoints", lambda *a, **k: found.append(1) or real(*a, **k))
    (tmp_path / "idx" / FOLDER / VOTES).unlink()  # as when a picture was added: the pairs are voted for again
    (tmp_path / "idx" / FOLDER / descriptors_table(400)[0]).write_bytes(b"kept when the catalog was larger")
    assert member_sets(find_duplicates(tmp_path / "idx", windows=False)) == first and not found
    assert [p.name for p in (tmp_path / "idx" / FOLDER).glob("descriptors-*")] == [descriptors_table(500)[0]]


def test_descriptors_are_kept_in_pieces_and_read_back_whole(tmp_path):
    from dedup.checkmemo import FOLDER, PairChecks, descriptor_piece, descriptors_table
    from dedup.indexdir import claim

    folder = tmp_path / "idx"
    claim(folder, tmp_path)
    counts = [0, 1, descriptor_piece(500), descriptor_piece(500) + 1, 123, 500]
    rng = np.random.default_rng(0)
    made = [rng.integers(0, 256, (n, 32), dtype=np.uint8) for n in counts] + [None]  # None: no picture
    hashes = [f"{k:016x}" * 2 for k in range(1, len(made) + 1)]
    memo = PairChecks(folder, hashes)
    memo.descriptors(lambda rows: [made[r] for r in rows], 256, 500, 500)(range(len(made)))
    memo.save()
    stored = np.load(folder / FOLDER / descriptors_table(500)[0])
    assert len(stored) == 1 + 1 + 1 + 2 + 3 + 10 + 1  # each picture in pieces, the last padded
    again = PairChecks(folder, hashes)
    assert again.described(256, 500, 500).all()
    read = again.descriptors(lambda rows: pytest.fail("found again"), 256, 500, 500)(range(len(made)))
    for got, want in zip(read, made):
        assert np.array_equal(got, np.zeros((0, 32), np.uint8) if want is None else want)
    kept = stored[np.argsort(stored["count"])[-1:]]  # a piece of the 500-descriptor picture is lost
    np.save(folder / FOLDER / descriptors_table(500)[0], np.setdiff1d(stored, kept))
    lost = PairChecks(folder, hashes)
    assert lost.described(256, 500, 500).tolist() == [True] * 5 + [False, True]
    asked = []
    lost.descriptors(lambda rows: asked.extend(rows) or [made[r] for r in rows], 256, 500, 500)(range(len(made)))
    assert asked == [5]  # found again whole


def test_each_descriptors_list_is_remembered_so_a_new_vote_lists_only_new_pictures(tmp_path, monkeypatch):
    from dedup import checkmemo
    from dedup.checkmemo import FOLDER, PairChecks, lists_table
    from dedup.indexdir import claim

    folder = tmp_path / "idx"
    claim(folder, tmp_path)
    rng = np.random.default_rng(6)
    pictures = {r: rng.integers(0, 256, (300 - r, 32), np.uint8) for r in range(42)}
    for r in range(0, 40, 2):
        pictures[r + 1][:60] = _flipped(pictures[r][100:160], 12, rng)
    hashes = [f"{k + 1:016x}" * 2 for k in range(42)]
    monkeypatch.setattr(votes, "PER_LIST", 100)
    plain = votes.vote_pairs(range(40), pictures.get)
    listed = []
    monkeypatch.setattr(checkmemo, "nearest_lists", lambda desc, lists: listed.append(len(desc)) or votes.nearest_lists(desc, lists))
    memo = PairChecks(folder, hashes[:40])
    remembered = votes.vote_pairs(range(40), pictures.get, assign=memo.assigner(256, 500, 500))
    memo.save()
    assert (folder / FOLDER / lists_table(500, 64)[0]).is_file() and sum(listed) == sum(len(pictures[r]) for r in range(40))
    assert np.array_equal(remembered.i, plain.i) and np.array_equal(remembered.j, plain.j) and np.allclose(remembered.d, plain.d)
    listed.clear()
    more = votes.vote_pairs(range(42), pictures.get, assign=PairChecks(folder, hashes).assigner(256, 500, 500))
    assert listed == [len(pictures[40]) + len(pictures[41])]  # only the new pictures' descriptors were listed
    fresh = votes.vote_pairs(range(42), pictures.get)
    assert np.array_equal(more.i, fresh.i) and np.array_equal(more.j, fresh.j)
    listed.clear()  # a query searches the kept pictures through their kept lists, and keeps nothing
    catalog = [pictures[r] for r in range(40)]
    kept = votes.searched(catalog, 500, PairChecks(folder, hashes[:40], read_only=True).assigner(256, 500, 500))
    query = [_flipped(pictures[r][:80], 10, rng) for r in (4, 9)]
    got, want = kept.best(query), votes.searched(catalog, 500).best(query)
    assert listed == [] and np.array_equal(got.i, want.i) and np.array_equal(got.j, want.j) and len(got)
    assert {(0, 4), (1, 9)} <= set(zip(got.i.tolist(), got.j.tolist()))


def test_against_keeps_the_catalogs_descriptors_in_the_incoming_index_and_never_writes_the_catalog(uploads, tmp_path,  # noqa: F811
                                                                                                   monkeypatch):
    import dedup.keypoints as keypoints
    from dedup.checkmemo import AGAINST, CATALOG, FOLDER, VOTES
    from dedup.duplicates import find_against

    mine, theirs = (shutil.copytree(f, tmp_path / f.name) for f in uploads)
    shutil.rmtree(mine / FOLDER, ignore_errors=True)
    shutil.rmtree(theirs / FOLDER, ignore_errors=True)
    first = {(r.query, n.path) for r in find_against(mine, theirs, windows=False).results for n in r.neighbors}
    assert not (theirs / FOLDER).exists()
    assert any((mine / FOLDER / AGAINST / CATALOG).glob("descriptors-*.npy"))
    found = []
    real = keypoints.keypoints
    monkeypatch.setattr(keypoints, "keypoints", lambda *a, **k: found.append(1) or real(*a, **k))
    (mine / FOLDER / AGAINST / VOTES).unlink()
    again = {(r.query, n.path) for r in find_against(mine, theirs, windows=False).results for n in r.neighbors}
    assert again == first and not found and not (theirs / FOLDER).exists()
    find_against(mine, theirs)  # the windows too are kept in the incoming index's folder only
    assert not (theirs / FOLDER).exists()


def test_find_against_matches_incoming_crops_and_pasted_pictures_by_shared_keypoints(uploads):  # noqa: F811
    from dedup.duplicates import find_against
    from dedup.report import neighbor_dict, render_query

    mine, theirs = uploads
    wanted = {("crop.png", "scene0.png"), ("pasted.png", "scene1.png")}
    assert not {(r.query, n.path) for r in find_against(mine, theirs, windows=False, keypoint_search=False).results
                for n in r.neighbors} & wanted
    found = find_against(mine, theirs, windows=False)
    assert {(r.query, n.path) for r in found.results for n in r.neighbors} == wanted
    assert all(n.shared and not n.window for r in found.results for n in r.neighbors)
    assert neighbor_dict(found.results[0].neighbors[0])["shared_keypoints"] is True
    assert "(by shared keypoints)" in render_query(found.results, "table")
    again = find_against(mine, theirs, windows=False)  # the voted pairs read back from the incoming index's memo
    assert {(r.query, n.path) for r in again.results for n in r.neighbors} == wanted


def test_query_matches_a_crop_and_a_pasted_picture_by_shared_keypoints_and_writes_nothing(uploads, tmp_path,  # noqa: F811
                                                                                           monkeypatch, caplog):
    import dedup.query as query
    from dedup.checkmemo import FOLDER
    from dedup.report import render_query

    mine, theirs = uploads
    folder = shutil.copytree(theirs, tmp_path / "idx")
    shutil.rmtree(folder / FOLDER, ignore_errors=True)
    images = [mine.parent / "up" / name for name in ("crop.png", "pasted.png")]
    wanted = [("crop.png", "scene0.png"), ("pasted.png", "scene1.png")]

    def shared(**options) -> list[tuple[str, str]]:
        found = query.query_images(folder, images, k=3, verify=True, windows=False, **options)
        return [(r.query.rsplit("/", 1)[-1], n.path) for r in found for n in r.neighbors if n.shared and n.same]

    assert shared(keypoint_search=False) == []
    with monkeypatch.context() as m:
        m.setattr(query, "FRESH_DESCRIBED", 9)  # fewer than the catalog's ten pictures: none found here
        assert shared() == [] and "10 of the catalog's pictures have no kept descriptors" in caplog.text
    assert shared() == wanted and not (folder / FOLDER).exists()  # the ten found here, nothing written
    find_duplicates(folder, windows=False)  # keeps the catalog's descriptors
    assert shared() == wanted
    found = query.query_images(folder, images[:1], k=3, verify=True, windows=False)
    assert "(by shared keypoints)" in render_query(found, "table")


def test_serve_matches_by_the_kept_descriptors_read_again_only_when_find_duplicates_kept_others(uploads, tmp_path,  # noqa: F811
                                                                                                 monkeypatch):
    import dedup.query as query
    import dedup.service as service
    from dedup.checkmemo import FOLDER

    mine, theirs = uploads
    folder = shutil.copytree(theirs, tmp_path / "idx")
    shutil.rmtree(folder / FOLDER, ignore_errors=True)
    real, read = service.catalog_votes, []
    monkeypatch.setattr(service, "catalog_votes", lambda gen, check: read.append(gen) or real(gen, check))
    monkeypatch.setattr(query, "FRESH_DESCRIBED", 0)  # no descriptors but those find-duplicates kept
    served = service.Service(folder)
    try:
        data = (mine.parent / "up" / "pasted.png").read_bytes()
        assert not any(n.shared for n in served.query(data, k=3, verify=True, windows=False))
        find_duplicates(folder, windows=False)  # while the service runs
        for _ in range(2):
            found = served.query(data, k=3, verify=True, windows=False)
            assert [(n.path, n.same) for n in found if n.shared] == [("scene1.png", True)]
        assert not any(n.shared for n in served.query(data, k=3, verify=True, windows=False, keypoint_search=False))
    finally:
        served.close()
    assert len(read) == 2


def test_against_keeps_each_incoming_images_best_supported_match_by_shared_keypoints_alone():
    from dedup.duplicates import best_each

    query = np.array([0, 0, 0, 1, 2, 2])
    agreeing = np.array([14, 30, 22, 12, 40, 40])
    eligible = np.array([True, True, True, False, True, True])  # image 1 was matched some other way
    assert best_each(query, agreeing, eligible).tolist() == [False, True, False, False, True, False]
    assert not best_each(query, agreeing, np.zeros(6, bool)).any()


def test_against_searches_a_catalog_without_stored_descriptors_by_shared_keypoints_only_when_told(  # noqa: F811
        uploads, tmp_path, monkeypatch, caplog):  # noqa: F811
    import dedup.duplicates as duplicates
    from dedup.checkmemo import FOLDER

    mine, theirs = (shutil.copytree(f, tmp_path / f.name) for f in uploads)
    for folder in (mine, theirs):
        shutil.rmtree(folder / FOLDER, ignore_errors=True)
    wanted = {("crop.png", "scene0.png"), ("pasted.png", "scene1.png")}
    monkeypatch.setattr(duplicates, "AGAINST_SEARCHED", 5)  # the catalog's 10 pictures have no stored descriptors
    skipped = duplicates.find_against(mine, theirs, windows=False)
    assert not any(n.shared for r in skipped.results for n in r.neighbors)
    assert "keypoint search was skipped: 10 catalog pictures" in caplog.text
    forced = duplicates.find_against(mine, theirs, windows=False, keypoint_search=True)
    assert {(r.query, n.path) for r in forced.results for n in r.neighbors if n.shared} == wanted
    caplog.clear()  # the forced run kept the catalog's descriptors: the next one searches by default
    again = duplicates.find_against(mine, theirs, windows=False)
    assert {(r.query, n.path) for r in again.results for n in r.neighbors if n.shared} == wanted
    assert "skipped" not in caplog.text
