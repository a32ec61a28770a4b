"""The pair check's memo (`dedup.checkmemo`): a later find-duplicates checks only the pairs it has
not seen and finds exactly what a run without the memo finds."""
from __future__ import annotations

import io
import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import dedup.duplicates as duplicates
import dedup.passes as passes
from dedup import checkmemo, memotable
from dedup.duplicates import find_duplicates
from dedup.index import Index
from dedup.indexdir import index_lock, read_claim
from dedup.indexer import index_catalog
from dedup.synth import scene


@pytest.fixture()
def counted(monkeypatch):
    """How many pairs the keypoint matcher and the detail test were asked about, per run."""
    asked = {"matched": 0, "told": 0}
    real_match, real_tell = duplicates.match_pairs, duplicates.told_apart

    def match(pairs, *args, **kwargs):
        asked["matched"] += len(pairs)
        return real_match(pairs, *args, **kwargs)

    def tell(i, *args, **kwargs):
        asked["told"] += len(i)
        return real_tell(i, *args, **kwargs)

    monkeypatch.setattr(duplicates, "match_pairs", match)
    for module in (duplicates, passes):  # the first pass's checks, and the further passes'
        monkeypatch.setattr(module, "told_apart", tell)
    return asked


@pytest.fixture()
def index_copy(built_index, tmp_path) -> Path:
    """A copy of the planted catalog's index (shipped encoder, with its pair check) a test may change."""
    folder = tmp_path / "idx"
    shutil.copytree(built_index, folder)
    shutil.rmtree(folder / checkmemo.FOLDER, ignore_errors=True)
    return folder


@pytest.fixture()
def claimed(tmp_path) -> tuple[Path, list[str]]:
    """An index folder dedup has claimed, with no memo yet, and the content hashes of five rows."""
    from dedup.indexdir import claim

    claim(tmp_path / "idx", tmp_path)
    return tmp_path / "idx", [f"{k:016x}" * 2 for k in range(1, 6)]


FOUR_PAIRS = (np.array([0, 0, 1, 2]), np.array([1, 2, 3, 4]))  # pairs of the five rows of `claimed`


def memo_files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((folder / checkmemo.FOLDER).glob("*.npy"))}


def test_a_second_run_checks_nothing_again_and_finds_the_same_sets(index_copy, counted):
    first = find_duplicates(index_copy)
    assert counted["matched"] > 0 and counted["told"] > 0
    assert checkmemo.FOLDER in read_claim(index_copy).owned
    before = dict(counted)
    second = find_duplicates(index_copy)
    assert counted == before  # every pair answered from the memo
    assert second == first and first.groups


def test_new_files_are_checked_and_the_sets_are_a_fresh_runs(planted, default_model, tmp_path, counted):
    root = Path(shutil.copytree(planted[0], tmp_path / "shop"))
    folder = tmp_path / "idx"
    index_catalog(root, folder, default_model)
    find_duplicates(folder)
    whole = counted["matched"]
    original = min(root.glob("photos/*.jpg"))
    Image.open(original).save(root / "photos" / "resaved.png")  # a new copy of a catalog picture
    scene(1234, (160, 120)).save(root / "photos" / "new.jpg", quality=90)
    index_catalog(root, folder, default_model)
    counted["matched"] = 0
    remembered = find_duplicates(folder)
    assert 0 < counted["matched"] < whole  # only pairs with a new picture (and none seen before)
    assert any("photos/resaved.png" in {m.path for m in g.members} for g in remembered.groups)
    shutil.rmtree(folder / checkmemo.FOLDER)
    assert find_duplicates(folder) == remembered


def test_a_damaged_memo_is_ignored_and_written_again(index_copy, counted, caplog):
    first = find_duplicates(index_copy)
    (index_copy / checkmemo.FOLDER / "matches.npy").write_bytes(b"not an array")
    with caplog.at_level(logging.WARNING):
        again = find_duplicates(index_copy)
    assert again == first
    assert np.load(index_copy / checkmemo.FOLDER / "matches.npy").dtype == checkmemo.TABLES["matches.npy"]


def test_a_memo_that_cannot_be_written_does_not_stop_the_run(index_copy, monkeypatch, caplog):
    def refused(*args, **kwargs):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(checkmemo, "atomic_write", refused)
    monkeypatch.setattr(memotable, "atomic_write", refused)
    with caplog.at_level(logging.WARNING, logger="dedup.checkmemo"):
        report = find_duplicates(index_copy)
    assert report.groups and "not kept" in caplog.text
    assert not memo_files(index_copy)


def test_a_busy_index_keeps_its_memo_as_it_was(index_copy, caplog):
    find_duplicates(index_copy)
    before = memo_files(index_copy)
    shutil.rmtree(index_copy / checkmemo.FOLDER)
    (index_copy / checkmemo.FOLDER).mkdir()
    with index_lock(index_copy), caplog.at_level(logging.WARNING, logger="dedup.checkmemo"):
        find_duplicates(index_copy)  # `dedup index` or an action holds the lock meanwhile
    assert before and not memo_files(index_copy) and "another dedup command" in caplog.text


def test_another_check_reuses_nothing(index_copy, counted, monkeypatch):
    find_duplicates(index_copy)
    first = dict(counted)
    monkeypatch.setattr(checkmemo, "_code", lambda: b"the check's code changed")
    find_duplicates(index_copy)
    assert counted == {k: 2 * v for k, v in first.items()}


def test_the_memo_keeps_what_concerns_the_indexed_pictures(index_copy, planted, default_model, tmp_path):
    find_duplicates(index_copy)
    before = memo_files(index_copy)
    find_duplicates(index_copy, verify=False)
    find_duplicates(index_copy, threshold=0.05)  # few candidates: the others' entries stay
    assert memo_files(index_copy) == before
    root = Path(shutil.copytree(planted[0], tmp_path / "shop"))
    removed = sorted(root.glob("copies/*"))
    for p in removed:
        p.unlink()
    index_catalog(root, index_copy, default_model)  # the index now lacks the copies
    find_duplicates(index_copy)
    entries = np.load(index_copy / checkmemo.FOLDER / "matches.npy")
    assert 0 < len(entries) < len(np.load(io.BytesIO(before["matches.npy"])))
    present = set(checkmemo._low(checkmemo.row_keys(Index.open(index_copy).rows.content_hash)).tolist())
    assert set(entries["a"].tolist()) | set(entries["b"].tolist()) <= present


def test_row_keys_take_any_content_hash():
    keys = checkmemo.row_keys(["0123456789abcdef" + "0" * 16, "not hex at all", ""])
    assert keys.dtype == np.uint64 and keys[0] == 0x0123456789ABCDEF and len(set(keys.tolist())) == 3


class Worth:
    """A stand-in for `policy.Hopeful`: worth matching where `keep` says so."""

    def __init__(self, keep):
        self.keep = np.asarray(keep, bool)

    def __call__(self, ks, sparser):
        return self.keep[ks]

    def subset(self, ks):
        return Worth(self.keep[ks])


def test_a_pair_ruled_out_before_is_matched_once_worth_it(tmp_path):
    from dedup.keypoints import RULED_OUT, Matches
    from dedup.pairs import Pairs

    asked = []

    def match(pairs, pictures, side, count, workers, worth=None, **kwargs):
        asked.append(len(pairs))
        out = Matches(np.full(len(pairs), 7, np.int32), np.full(len(pairs), 30, np.int32), np.zeros((len(pairs), 2, 3), np.float32))
        if worth is not None:
            out.inliers[~worth(np.arange(len(pairs)), out.sparser)] = RULED_OUT
        return out

    from dedup.indexdir import claim

    folder = tmp_path / "idx"
    claim(folder, tmp_path)  # a folder dedup owns, as an index's is
    hashes = [f"{k:016x}" * 2 for k in range(1, 4)]
    pairs = Pairs(np.array([0, 0]), np.array([1, 2]), np.array([0.3, 0.4], np.float32))
    for keep, expect_inliers, expect_asked in (([False, True], [RULED_OUT, 7], 2), ([False, True], [RULED_OUT, 7], 0),
                                               ([True, True], [7, 7], 1)):
        asked.clear()
        memo = checkmemo.PairChecks(folder, hashes)
        found = memo.matcher(match)(pairs, None, 256, 500, 1, worth=Worth(keep))
        memo.save()
        assert found.inliers.tolist() == expect_inliers and sum(asked) == expect_asked


@pytest.fixture()
def uploads(planted, default_model, tmp_path) -> Path:
    """An index of incoming files: edited copies of some catalog pictures (one of them twice)
    and a new picture."""
    root = tmp_path / "incoming"
    root.mkdir()
    for k, original in enumerate(sorted(planted[0].glob("photos/*"))[:6]):
        Image.open(original).convert("RGB").rotate(3 * k + 2, fillcolor="white").save(root / f"upload_{k}.png")
    Image.open(root / "upload_0.png").save(root / "upload_0_again.jpg", quality=80)
    scene(4321, (160, 120)).save(root / "new.jpg", quality=90)
    index_catalog(root, tmp_path / "incoming_idx", default_model)
    return tmp_path / "incoming_idx"


def against_files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((folder / checkmemo.FOLDER / checkmemo.AGAINST).glob("*.npy"))}


def test_a_second_run_against_a_catalog_checks_nothing_again(uploads, index_copy, counted):
    first = duplicates.find_against(uploads, index_copy)
    assert counted["matched"] > 0 and counted["told"] > 0 and first.results
    assert against_files(uploads) and not memo_files(uploads) and not (index_copy / checkmemo.FOLDER).exists()
    before = dict(counted)
    assert duplicates.find_against(uploads, index_copy) == first
    assert counted == before
    find_duplicates(uploads)  # the index's own pairs are kept apart from those against the catalog
    assert memo_files(uploads) and duplicates.find_against(uploads, index_copy) == first
    assert counted["matched"] > before["matched"] and counted["told"] >= before["told"]
    after = dict(counted)
    duplicates.find_against(uploads, index_copy)
    assert counted == after


def test_pairs_against_pictures_the_catalog_lost_are_dropped(uploads, index_copy, planted, default_model, tmp_path, counted):
    duplicates.find_against(uploads, index_copy)
    before = np.load(uploads / checkmemo.FOLDER / checkmemo.AGAINST / "matches.npy")
    root = Path(shutil.copytree(planted[0], tmp_path / "shop"))
    for p in sorted(root.glob("photos/*"))[:2]:
        p.unlink()
    index_catalog(root, index_copy, default_model)  # the catalog now lacks two pictures
    counted["matched"] = 0
    remembered = duplicates.find_against(uploads, index_copy)
    asked = counted["matched"]  # only pairs the lost pictures' uploads now have with others
    after = np.load(uploads / checkmemo.FOLDER / checkmemo.AGAINST / "matches.npy")
    catalog = set(checkmemo._low(checkmemo.row_keys(Index.open(index_copy).rows.content_hash)).tolist())
    assert set(after["b"].tolist()) <= catalog and not set(before["b"].tolist()) <= catalog
    shutil.rmtree(uploads / checkmemo.FOLDER)
    counted["matched"] = 0
    assert duplicates.find_against(uploads, index_copy) == remembered
    assert asked < counted["matched"]


@pytest.mark.parametrize("seed", range(12))
def test_a_memo_saved_chunk_by_chunk_is_the_whole_merge(tmp_path, monkeypatch, seed):
    """Whether the run's entries stay in memory or go to run files, and however the keys are cut
    into ranges, the table saved is the whole merge: the first entry made of each key, and the
    older ones whose pictures are present and that were not made again."""
    rng = np.random.default_rng(seed)
    dtype = checkmemo.TABLES["matches.npy"]
    monkeypatch.setattr(memotable, "CHUNK_BYTES", dtype.itemsize * int(rng.integers(1, 9)))
    monkeypatch.setattr(memotable, "SPILL_BYTES", dtype.itemsize * int(rng.integers(1, 30)))
    dtype = checkmemo.TABLES["matches.npy"]

    def entries(keys):
        t = np.zeros(len(keys), dtype)
        t["key"], t["a"], t["b"] = keys, rng.integers(0, 12, len(keys)), rng.integers(0, 12, len(keys))
        t["inliers"] = rng.integers(0, 100, len(keys))
        return t

    pool = (rng.choice(1 << 40, 60, replace=False).astype(np.uint64) << np.uint64(24)) | np.uint64(1)  # over all 64 bits
    old = entries(np.sort(rng.choice(pool, int(rng.integers(0, 40)), replace=False)))
    made = entries(rng.choice(pool, int(rng.integers(0, 30))))  # a key may be made twice: the first counts
    present_a, present_b = np.sort(rng.choice(12, 9, replace=False)), np.sort(rng.choice(12, 10, replace=False))
    path = tmp_path / "matches.npy"
    memotable.write_table(path, old)
    table = memotable.Table(path, dtype, usable=True)
    for piece in np.array_split(made, int(rng.integers(1, 5))):
        fields = {name: piece[name] for name in dtype.names if name not in ("key", "a", "b")}
        table.add(piece["key"], piece["a"], piece["b"], **fields)
    spilled = table._spill
    table.save(present_a.astype(np.uint32), present_b.astype(np.uint32))
    first = made[np.unique(made["key"], return_index=True)[1]]
    alive = old[np.isin(old["a"], present_a) & np.isin(old["b"], present_b) & ~np.isin(old["key"], made["key"])]
    whole = np.concatenate([first, alive])
    whole = whole[np.argsort(whole["key"])]
    saved = np.load(path)
    assert saved.dtype == dtype and np.array_equal(saved, whole)
    assert len(memotable.load_table(path, dtype)) == len(whole)  # sorted, one entry a key
    assert spilled is None or not spilled.exists()  # the run files are gone
    assert [p.name for p in tmp_path.iterdir()] == ["matches.npy"]


def test_saving_deletes_the_run_files_of_runs_that_ended_without_saving_only(tmp_path):
    dtype = checkmemo.TABLES["matches.npy"]
    dead, alive = tmp_path / f"{memotable.SPILLED}999999999-x", tmp_path / f"{memotable.SPILLED}{os.getpid()}-y"
    for spill in (dead, alive):
        spill.mkdir()
        (spill / "0.npy").write_bytes(b"")
    table = memotable.Table(tmp_path / "matches.npy", dtype, usable=True)
    table.add(np.array([5], np.uint64), np.array([1], np.uint32), np.array([2], np.uint32))
    table.save(np.array([1, 2], np.uint32), np.array([1, 2], np.uint32))
    assert not dead.exists() and alive.exists()


def test_an_interrupted_run_keeps_the_pairs_it_matched(index_copy, counted, monkeypatch):
    whole = find_duplicates(index_copy)
    fresh = counted["matched"]
    shutil.rmtree(index_copy / checkmemo.FOLDER)
    real, interrupting = duplicates.match_pairs, [True]

    def interrupted(pairs, *args, on_progress=None, **kwargs):
        def stop(done: int, total: int) -> None:
            if done >= 8 and interrupting:
                raise KeyboardInterrupt

        return real(pairs, *args, block=4, on_progress=stop, **kwargs)

    monkeypatch.setattr(duplicates, "match_pairs", interrupted)
    with pytest.raises(KeyboardInterrupt):
        find_duplicates(index_copy)
    interrupting.clear()
    counted["matched"] = 0
    assert find_duplicates(index_copy) == whole
    assert counted["matched"] <= fresh - 8  # the two blocks matched before the interruption were kept


KILLED_IN_THE_WINDOWS = """
import os, signal, sys
from dedup import checkmemo, duplicates
checkmemo.CHECKPOINT_AFTER = 0.0
duplicates.through_windows = lambda *args, **kwargs: os.kill(os.getpid(), signal.SIGKILL)
duplicates.find_duplicates(sys.argv[1])
"""


def test_a_run_killed_in_a_later_pass_leaves_the_passes_before_it(index_copy, counted):
    import subprocess
    import sys

    whole = find_duplicates(index_copy, keypoint_search=False)
    fresh = counted["matched"]
    shutil.rmtree(index_copy / checkmemo.FOLDER)
    killed = subprocess.run([sys.executable, "-c", KILLED_IN_THE_WINDOWS, str(index_copy)], capture_output=True)
    assert killed.returncode == -9, killed.stderr
    assert (index_copy / checkmemo.FOLDER / "matches.npy").is_file()  # saved between the passes
    counted["matched"] = 0
    assert find_duplicates(index_copy, keypoint_search=False) == whole
    assert counted["matched"] < fresh / 2  # only the windows' pairs are matched again


def test_checkpoints_come_a_minute_apart_and_take_at_most_a_tenth_of_the_time(tmp_path, monkeypatch):
    clock, saves = [0.0], []
    monkeypatch.setattr(checkmemo, "_now", lambda: clock[0])
    memo = checkmemo.PairChecks(tmp_path, ["ab" * 16])
    memo.checked = True

    def save(quiet: bool = False) -> bool:
        saves.append(clock[0])
        clock[0] += 20.0  # a large memo: each save takes 20 s
        return True

    monkeypatch.setattr(memo, "save", save)
    for _ in range(40):
        clock[0] += 15.0  # a pass
        memo.checkpoint()
    assert saves[0] == 60.0 and all(b - a >= 200.0 for a, b in zip(saves, saves[1:]))  # 20 s of every 220 at most


def test_an_interrupted_pass_keeps_the_blocks_it_finished(tmp_path, monkeypatch):
    from dedup.indexdir import claim

    monkeypatch.setattr(checkmemo, "KEPT_EVERY", 2)
    folder = tmp_path / "idx"
    claim(folder, tmp_path)
    hashes = [f"{k:016x}" * 2 for k in range(1, 7)]
    i, j, maps = np.array([0, 0, 1, 2, 3]), np.array([1, 2, 3, 4, 5]), np.zeros((5, 2, 3), np.float32)
    asked, interrupting = [], [True]

    def tell(i, j, maps, pictures, workers):
        asked.append(len(i))
        if len(asked) == 2 and interrupting:
            raise KeyboardInterrupt
        return np.asarray(i) % 2 == 0

    with pytest.raises(KeyboardInterrupt), checkmemo.PairChecks(folder, hashes).saving() as memo:
        memo.teller(tell)(i, j, maps, None)
    assert asked == [2, 2]
    asked.clear()
    interrupting.clear()
    with checkmemo.PairChecks(folder, hashes).saving() as memo:
        told = memo.teller(tell)(i, j, maps, None)
    assert asked == [2, 1]  # the first block's answers were kept
    assert told.tolist() == [True, True, False, True, False]


def test_framed_maps_are_kept_found_or_not(claimed):
    folder, hashes = claimed
    i, j = FOUR_PAIRS
    asked = []

    def frame(i, j, pictures, workers):
        asked.append(len(i))
        out = np.full((len(i), 2, 3), np.nan, np.float32)
        out[np.asarray(j) == 1] = [[1.0, 0.0, 0.5], [0.0, 1.0, 0.25]]
        return out

    with checkmemo.PairChecks(folder, hashes).saving() as memo:
        first = memo.framer(frame)(i, j, None)
    with checkmemo.PairChecks(folder, hashes).saving() as memo:
        again = memo.framer(frame)(i, j, None)
        told = memo.teller(lambda i, *_: np.ones(len(i), bool))(i, j, first, None)  # keyed apart from the framings
    assert asked == [4]  # the second run asked for none, the pairs without a framing included
    np.testing.assert_array_equal(again, first)
    assert np.isfinite(first[0]).all() and np.isnan(first[1:]).all()
    assert told.all()


def _killed_after_first_block(folder: Path, hashes: list[str], run) -> None:
    """`run(memo)` on a fresh memo of `folder`, stopped by an error after its first block and never
    saved at its end, as a SIGKILL leaves it."""
    with pytest.raises(RuntimeError):
        run(checkmemo.PairChecks(folder, hashes))


def test_a_run_killed_while_matching_leaves_the_blocks_matched_before_its_last_checkpoint(claimed, monkeypatch):
    from dedup.keypoints import Matches
    from dedup.pairs import Pairs

    monkeypatch.setattr(checkmemo, "CHECKPOINT_AFTER", 0.0)  # a checkpoint after every block
    folder, hashes = claimed
    pairs = Pairs(*FOUR_PAIRS, np.full(4, 0.2, np.float32))
    asked, dying = [], [True]

    def match(pairs, pictures, side, count, workers, into=None, done=None, **kwargs):
        asked.append(len(pairs))
        for ks in np.array_split(np.arange(len(pairs)), 2):
            into.inliers[ks], into.sparser[ks], into.maps[ks] = 30, 40, [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
            done(ks)
            if dying:
                raise RuntimeError("killed")
        return into

    _killed_after_first_block(folder, hashes, lambda memo: memo.matcher(match)(pairs, None))
    dying.clear()
    asked.clear()
    found = checkmemo.PairChecks(folder, hashes).matcher(match)(pairs, None)
    assert asked == [2]  # the first block was saved while the pass went on
    assert isinstance(found, Matches) and found.inliers.tolist() == [30] * 4 and np.isfinite(found.maps).all()


def test_a_run_killed_while_judging_leaves_the_blocks_judged_before_its_last_checkpoint(claimed, monkeypatch):
    monkeypatch.setattr(checkmemo, "CHECKPOINT_AFTER", 0.0)
    monkeypatch.setattr(checkmemo, "KEPT_EVERY", 2)
    folder, hashes = claimed
    (i, j), maps = FOUR_PAIRS, np.zeros((4, 2, 3), np.float32)
    asked, dying = [], [True]

    def tell(i, j, maps, pictures, workers):
        asked.append(len(i))
        if dying and len(asked) == 2:
            raise RuntimeError("killed")
        return np.ones(len(i), bool)

    _killed_after_first_block(folder, hashes, lambda memo: memo.teller(tell)(i, j, maps, None))
    dying.clear()
    asked.clear()
    assert checkmemo.PairChecks(folder, hashes).teller(tell)(i, j, maps, None).all()
    assert asked == [2]


def test_a_busy_index_warns_once_though_checkpoints_came_due(claimed, monkeypatch, caplog):
    monkeypatch.setattr(checkmemo, "CHECKPOINT_AFTER", 0.0)
    monkeypatch.setattr(checkmemo, "KEPT_EVERY", 1)
    folder, hashes = claimed
    (i, j), maps = FOUR_PAIRS, np.zeros((4, 2, 3), np.float32)
    with index_lock(folder), caplog.at_level(logging.DEBUG, logger="dedup.checkmemo"):
        with checkmemo.PairChecks(folder, hashes).saving() as memo:
            memo.teller(lambda i, *_: np.ones(len(i), bool))(i, j, maps, None)  # a checkpoint due after each pair
    warned = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warned) == 1 and "not kept" in warned[0].getMessage()
    assert any("not kept" in r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG)  # a checkpoint's, quietly
