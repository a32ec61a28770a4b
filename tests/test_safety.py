"""Acting on duplicates under accident and attack: links, swapped folders, edited manifests and
index rows, FIFOs, foreign index folders, odd names, full disks. Each case once lost or touched
a file; each now leaves every file where it was and says why."""
from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import tempfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from dedup import confine
from dedup.cli import cli
from dedup.indexer import index_catalog
from dedup.synth import jpeg_bytes, scene


def tree(root: Path) -> dict[str, str]:
    """Every entry under `root`: file bytes, link text or kind (links not followed)."""
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for name in files + dirs:
            p = os.path.join(dirpath, name)
            rel = os.path.relpath(p, root)
            if os.path.islink(p):
                out[rel] = "link:" + os.readlink(p)
            elif os.path.isfile(p):
                out[rel] = open(p, "rb").read().hex()
            elif name in files:
                out[rel] = "special"
    return out


def find(*args: object) -> object:
    return CliRunner().invoke(cli, ["find-duplicates", "-t", "0.01", "-q", *map(str, args)])


def one_line(result) -> str:
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output and result.exception is None or isinstance(result.exception, SystemExit)
    lines = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert len(lines) == 1, result.output
    return lines[0]


@pytest.fixture()
def no_hang():
    """Fail a test that blocks (a FIFO read) instead of hanging the suite."""
    def alarm(*_):
        raise TimeoutError("blocked")

    old = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(60)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


@pytest.fixture()
def pair(tmp_path, encoder):
    """A catalog with one byte-identical pair (keeper a/1.jpg, duplicate b/1.jpg), a distinct
    image, and a folder outside it holding the same bytes; indexed."""
    root, outside = tmp_path / "cat", tmp_path / "outside"
    data = jpeg_bytes(scene(900))
    for rel in ("a/1.jpg", "b/1.jpg"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    (root / "solo.jpg").write_bytes(jpeg_bytes(scene(901)))
    outside.mkdir()
    (outside / "1.jpg").write_bytes(data)
    index_catalog(root, tmp_path / "idx", encoder)
    return root, tmp_path / "idx", outside


def test_a_symlink_keeper_never_costs_the_real_file(tmp_path, encoder):
    root = tmp_path / "cat"
    root.mkdir()
    (root / "real.jpg").write_bytes(jpeg_bytes(scene(5)))
    os.symlink("real.jpg", root / "a_link.jpg")  # sorts first: the keeper by path
    (root / "other.jpg").write_bytes(jpeg_bytes(scene(6)))
    index_catalog(root, tmp_path / "idx", encoder, follow_symlinks=True)
    before = tree(root)
    for action in ("delete", "hardlink", "symlink", "move"):
        result = find("--index", tmp_path / "idx", "--keep", "first", "--action", action, "--to", tmp_path / "to",
                      "--apply", "--yes")
        assert result.exit_code == 0, result.output
        assert "not a regular file" in result.output or "symlink" in result.output
        assert tree(root) == before, action


def test_the_index_writer_refuses_a_folder_of_user_files(tmp_path, encoder, pair):
    root, _, _ = pair
    mine = tmp_path / "mine"
    (mine / "shards-0001").mkdir(parents=True)
    (mine / "shards-0001" / "notes.txt").write_text("mine")
    (mine / "index-0001.faiss").write_text("mine")
    (mine / ".draft.tmp").write_text("mine")
    (mine / "manifest.json").write_text('{"my": "own manifest"}')
    before = tree(mine)
    for target in (mine, root, root.parent):
        result = CliRunner().invoke(cli, ["index", str(root), "--index", str(target), "-q"])
        assert "choose" in one_line(result)
    assert tree(mine) == before


def test_the_index_writer_removes_only_its_own_files(tmp_path, encoder, pair):
    root, idx, _ = pair
    (idx / "shards-0007").mkdir()
    (idx / "shards-0007" / "keep.txt").write_text("user")
    (idx / "index-0009.faiss").write_text("user")
    (idx / ".notes.tmp").write_text("user")
    for k in range(3):  # three more generations: the first ones' own files go
        (root / f"new{k}.jpg").write_bytes(jpeg_bytes(scene(950 + k)))
        index_catalog(root, idx, encoder)
    assert (idx / "shards-0007" / "keep.txt").read_text() == "user"
    assert (idx / "index-0009.faiss").read_text() == "user" and (idx / ".notes.tmp").exists()
    assert not (idx / "shards-0001").exists() and not (idx / "index-0001.faiss").exists()


def test_a_folder_swapped_for_a_link_after_indexing_is_not_followed(pair):
    root, idx, outside = pair
    (root / "b" / "1.jpg").unlink()
    (root / "b").rmdir()
    os.symlink(outside, root / "b")
    before = tree(outside)
    result = find("--index", idx, "--action", "delete", "--apply", "--yes")
    assert result.exit_code == 0 and "symlink" in result.output
    assert tree(outside) == before


def _undo_manifest(idx: Path) -> Path:
    (manifest,) = idx.glob("undo-*.json")
    return manifest


@pytest.mark.parametrize("edit", ["absolute", "dotdot", "catalog", "new_folder", "to", "unsigned", "garbage", "wrong_type"])
def test_an_edited_undo_manifest_changes_nothing(pair, tmp_path, edit):
    root, idx, outside = pair
    assert find("--index", idx, "--action", "move", "--to", tmp_path / "moved", "--apply").exit_code == 0
    manifest = _undo_manifest(idx)
    doc = json.loads(manifest.read_text())
    step = doc["steps"][0]
    if edit == "absolute":
        step["path"] = str(outside / "x.jpg")
    elif edit == "dotdot":
        step["path"] = "../outside/new.jpg"
    elif edit == "catalog":
        doc["catalog"] = str(outside)
    elif edit == "new_folder":
        step["path"] = "brand/new/folder.jpg"
    elif edit == "to":
        doc["to"] = str(outside)
    elif edit == "unsigned":
        del doc["signature"]
    elif edit == "wrong_type":
        step["size"] = "big"
    text = "{not json" if edit == "garbage" else json.dumps(doc)
    manifest.write_text(text)
    before = tree(tmp_path)
    assert "undo manifest" in one_line(CliRunner().invoke(cli, ["undo", str(manifest)]))
    assert tree(tmp_path) == before


def test_a_manifest_of_another_index_is_refused(pair, tmp_path, encoder):
    root, idx, _ = pair
    assert find("--index", idx, "--action", "move", "--to", tmp_path / "moved", "--apply").exit_code == 0
    other = tmp_path / "other"
    index_catalog(root, other, encoder)
    foreign = other / "undo-foreign.json"
    foreign.write_text(_undo_manifest(idx).read_text())
    before = tree(tmp_path)
    assert "was not written by the index" in one_line(CliRunner().invoke(cli, ["undo", str(foreign)]))
    assert tree(tmp_path) == before


def test_undo_never_overwrites(pair, tmp_path):
    root, idx, _ = pair
    assert find("--index", idx, "--action", "move", "--to", tmp_path / "moved", "--apply").exit_code == 0
    (root / "b" / "1.jpg").write_bytes(b"new work saved since")
    result = CliRunner().invoke(cli, ["undo", str(_undo_manifest(idx))])
    assert result.exit_code == 0 and "by hand" in result.output
    assert (root / "b" / "1.jpg").read_bytes() == b"new work saved since"
    assert (tmp_path / "moved" / "b" / "1.jpg").exists()


def _rewrite_paths(idx: Path, old: str, new: str) -> None:
    for shard in idx.glob("shards-*/*.parquet"):
        table = pq.read_table(shard)
        paths = [new if p == old else p for p in table.column("path").to_pylist()]
        i = table.schema.get_field_index("path")
        table = table.set_column(i, table.schema.field(i), [paths])
        pq.write_table(table, shard)


def test_an_index_row_pointing_outside_is_never_acted_on(pair):
    root, idx, outside = pair
    _rewrite_paths(idx, "a/1.jpg", "../outside/1.jpg")  # the outside file would be the keeper
    before = tree(root), tree(outside)
    result = find("--index", idx, "--action", "delete", "--apply", "--yes")
    assert result.exit_code == 0, result.output
    assert "'..'" in result.output
    assert (tree(root), tree(outside)) == before


@pytest.mark.parametrize("swap", ["fifo", "dev_zero"])
def test_a_keeper_swapped_for_a_fifo_or_device_does_not_hang(pair, no_hang, swap):
    root, idx, _ = pair
    (root / "a" / "1.jpg").unlink()
    if swap == "fifo":
        os.mkfifo(root / "a" / "1.jpg")
    else:
        os.symlink("/dev/zero", root / "a" / "1.jpg")
    before = tree(root)
    result = find("--index", idx, "--action", "delete", "--apply", "--yes")
    assert result.exit_code == 0 and "keeper missing or changed" in result.output
    assert tree(root) == before


def test_a_duplicate_swapped_for_a_fifo_is_left_alone(pair, no_hang):
    root, idx, _ = pair
    (root / "b" / "1.jpg").unlink()
    os.mkfifo(root / "b" / "1.jpg")
    result = find("--index", idx, "--action", "delete", "--apply", "--yes")
    assert result.exit_code == 0 and "not a regular file" in result.output
    assert (root / "b" / "1.jpg").is_fifo()


def test_hard_links_of_one_file_are_not_a_set_to_act_on(tmp_path, encoder):
    root = tmp_path / "cat"
    root.mkdir()
    (root / "a.jpg").write_bytes(jpeg_bytes(scene(3)))
    os.link(root / "a.jpg", root / "b.jpg")
    (root / "c.jpg").write_bytes(jpeg_bytes(scene(4)))
    index_catalog(root, tmp_path / "idx", encoder)
    result = find("--index", tmp_path / "idx", "--action", "delete", "--apply", "--yes")
    assert result.exit_code == 0 and "same file as its keeper" in result.output
    assert (root / "b.jpg").exists()


def test_a_name_that_is_not_utf8_is_skipped_and_the_run_goes_on(tmp_path, encoder):
    root = tmp_path / "cat"
    root.mkdir()
    (root / "good.jpg").write_bytes(jpeg_bytes(scene(1)))
    with open(os.path.join(os.fsencode(root), b"caf\xe9.jpg"), "wb") as fh:
        fh.write(jpeg_bytes(scene(2)))
    report = tmp_path / "r.json"
    result = CliRunner().invoke(cli, ["index", str(root), "--index", str(tmp_path / "idx"), "-q", "--report", str(report)])
    assert result.exit_code == 0, result.output
    doc = json.loads(report.read_text())
    assert doc["indexed"] == 1
    assert doc["skipped"] == [{"path": "caf\\xe9.jpg", "reason": "name is not valid UTF-8; rename it (e.g. with convmv) to index it"}]


@pytest.mark.parametrize("pattern", ["./b/*", "b/", "b", "{root}/b/*", "{root}/b/", "**/b/*", "*.jpg"])
def test_protect_patterns_as_users_write_them(pair, pattern):
    root, idx, _ = pair
    result = find("--index", idx, "--action", "delete", "--protect", pattern.format(root=root), "--apply", "--yes")
    assert result.exit_code == 0 and "(protected)" in result.output
    assert (root / "b" / "1.jpg").exists()


def test_a_protect_pattern_outside_the_catalog_or_matching_nothing_is_said(pair, tmp_path):
    root, idx, _ = pair
    assert "outside the catalog" in one_line(find("--index", idx, "--action", "delete", "--protect", str(tmp_path / "x")))
    result = find("--index", idx, "--action", "delete", "--protect", "nothing/*")
    assert result.exit_code == 0 and "matches no indexed file" in result.output


def test_a_hardlink_that_cannot_be_made_moves_nothing(pair, tmp_path, monkeypatch):
    root, idx, _ = pair
    real = os.link

    def cross_device(src, dst, *a, **k):
        if str(dst).endswith(".dedup-link"):
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        return real(src, dst, *a, **k)

    monkeypatch.setattr(confine.os, "link", cross_device)
    before = tree(root)
    result = find("--index", idx, "--action", "hardlink", "--to", tmp_path / "backup", "--apply")
    assert result.exit_code == 0 and "cross-device" in result.output
    assert tree(root) == before and not tree(tmp_path / "backup")


def test_a_full_backup_disk_leaves_the_original_and_no_partial_copy(pair, tmp_path, monkeypatch):
    root, idx, _ = pair
    real_write, real_link = os.write, os.link

    def no_links(*a, **k):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    def full(fd, data):
        real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(confine.os, "link", no_links)
    monkeypatch.setattr(confine.os, "write", full)
    before = tree(root)
    result = find("--index", idx, "--action", "move", "--to", tmp_path / "to", "--apply")
    assert result.exit_code == 0 and "No space left" in result.output
    assert tree(root) == before
    assert not [f for f in tree(tmp_path / "to") if not f.endswith("b")]
    monkeypatch.setattr(confine.os, "write", real_write)
    monkeypatch.setattr(confine.os, "link", real_link)


def test_a_move_to_another_filesystem_is_copied_checked_and_undone(pair):
    root, idx, _ = pair
    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(root).st_dev or not os.access(shm, os.W_OK):
        pytest.skip("no second filesystem here")
    with tempfile.TemporaryDirectory(dir=shm) as other:
        before = tree(root)
        stamp = os.stat(root / "b" / "1.jpg").st_mtime_ns
        assert find("--index", idx, "--action", "move", "--to", other, "--apply").exit_code == 0
        moved = Path(other) / "b" / "1.jpg"
        assert moved.read_bytes() == (root / "a" / "1.jpg").read_bytes() and os.stat(moved).st_mtime_ns == stamp
        assert not (root / "b" / "1.jpg").exists()
        assert CliRunner().invoke(cli, ["undo", str(_undo_manifest(idx))]).exit_code == 0
        assert tree(root) == before


@pytest.mark.parametrize("damage", ["missing_keys", "not_a_list", "outside_file", "garbage"])
def test_a_damaged_index_manifest_is_a_one_line_error(pair, damage):
    root, idx, _ = pair
    manifest = idx / "manifest.json"
    doc = json.loads(manifest.read_text())
    if damage == "missing_keys":
        del doc["count"]
    elif damage == "not_a_list":
        doc["shards"] = "all of them"
    elif damage == "outside_file":
        doc["faiss"]["file"] = "../../etc/passwd"
    manifest.write_text("[1, 2" if damage == "garbage" else json.dumps(doc))
    assert "manifest" in one_line(find("--index", idx))


def test_an_unwritable_index_folder_and_a_full_disk_are_one_line_errors(pair, tmp_path, monkeypatch):
    root, _, _ = pair
    (tmp_path / "file").write_text("x")
    assert one_line(CliRunner().invoke(cli, ["index", str(root), "--index", str(tmp_path / "file" / "idx"), "-q"]))
    import dedup.atomic

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device", "somewhere")

    monkeypatch.setattr(dedup.atomic, "atomic_write", full)
    monkeypatch.setattr("dedup.store.atomic_write", full)
    assert "No space left" in one_line(CliRunner().invoke(cli, ["index", str(root), "--index", str(tmp_path / "new"), "-q"]))


def test_csv_cells_are_not_formulas_and_control_characters_are_not_printed(tmp_path, encoder):
    root = tmp_path / "cat"
    root.mkdir()
    data = jpeg_bytes(scene(8))
    for name in ("=HYPERLINK(1).jpg", "\x1b[2Jclear.jpg"):
        (root / name).write_bytes(data)
    index_catalog(root, tmp_path / "idx", encoder)
    csv = find("--index", tmp_path / "idx", "--format", "csv").output
    assert "'=HYPERLINK" in csv and "\n1,=" not in csv
    table = find("--index", tmp_path / "idx").output
    assert "\x1b" not in table and "\\x1b[2Jclear.jpg" in table


def test_apply_and_undo_take_the_index_lock(pair, tmp_path):
    import fcntl

    root, idx, _ = pair
    assert find("--index", idx, "--action", "move", "--to", tmp_path / "m", "--apply").exit_code == 0
    manifest = _undo_manifest(idx)
    with open(idx / "lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        assert "another dedup command" in one_line(CliRunner().invoke(cli, ["undo", str(manifest)]))
        assert "another dedup command" in one_line(find("--index", idx, "--action", "delete", "--apply", "--yes"))
    assert not (root / "b" / "1.jpg").exists()


def test_a_catalog_swapped_for_a_link_is_not_followed(pair, tmp_path):
    root, idx, outside = pair
    assert find("--index", idx, "--action", "move", "--to", tmp_path / "moved", "--apply").exit_code == 0
    manifest = _undo_manifest(idx)
    twin = tmp_path / "twin"
    os.rename(root, twin)
    shutil.copytree(twin, tmp_path / "elsewhere")
    os.symlink(tmp_path / "elsewhere", root)  # same bytes at the same names, behind a link
    before = tree(tmp_path / "elsewhere")
    assert "symlink" in one_line(find("--index", idx, "--action", "delete", "--apply", "--yes"))
    assert "symlink" in one_line(CliRunner().invoke(cli, ["undo", str(manifest)]))
    assert tree(tmp_path / "elsewhere") == before


def test_a_dry_run_into_a_folder_not_made_yet_plans_every_step(pair, tmp_path):
    root, idx, _ = pair
    result = find("--index", idx, "--action", "move", "--to", tmp_path / "not" / "yet")
    assert result.exit_code == 0 and "Dry run: 1 files would be changed (0 left alone)" in result.output
    assert not (tmp_path / "not").exists()
