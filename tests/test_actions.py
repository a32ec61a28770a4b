"""Acting on duplicates: dry run by default, undo manifest first, every safety rule."""
from __future__ import annotations

import hashlib
import os

import pytest
from click.testing import CliRunner

from dedup.actions import apply, plan_for_index
from dedup.cli import cli
from dedup.duplicates import find_duplicates
from dedup.images import HASH_NAME
from dedup.indexer import index_catalog
from dedup.synth import jpeg_bytes, scene


def tree(root):
    out = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            p = os.path.join(dirpath, f)
            out[os.path.relpath(p, root)] = ("link:" + os.readlink(p)) if os.path.islink(p) else hashlib.sha1(open(p, "rb").read()).hexdigest()
    return out


@pytest.fixture()
def cat(tmp_path, encoder):
    root = tmp_path / "cat"
    for k, names in enumerate([["a/1.jpg", "b/1.jpg", "c/1.jpg"], ["a/2.jpg", "keep/2.jpg"]]):
        data = jpeg_bytes(scene(900 + k))
        for n in names:
            (root / n).parent.mkdir(parents=True, exist_ok=True)
            (root / n).write_bytes(data)
    (root / "a/solo.jpg").write_bytes(jpeg_bytes(scene(950)))
    index_catalog(root, tmp_path / "idx", encoder)
    return root, tmp_path / "idx"


def run(*args):
    return CliRunner().invoke(cli, ["find-duplicates", "-t", "0.01", "-q", *map(str, args)])


def test_dry_run_is_the_default_and_changes_nothing(cat, tmp_path):
    root, idx = cat
    before = tree(root)
    result = run("--index", idx, "--action", "delete")
    assert result.exit_code == 0, result.output
    assert "Dry run: 3 files would be changed" in result.output
    assert tree(root) == before and not list(idx.glob("undo-*.json"))


def test_delete_needs_apply_and_yes(cat):
    root, idx = cat
    result = run("--index", idx, "--action", "delete", "--apply")
    assert result.exit_code != 0 and "--yes" in result.output
    assert run("--index", idx, "--action", "delete", "--apply", "--yes").exit_code == 0
    assert sorted(tree(root)) == ["a/1.jpg", "a/2.jpg", "a/solo.jpg"]  # keepers (first path) stay


def test_move_protect_and_undo(cat, tmp_path):
    root, idx = cat
    before = tree(root)
    dest = tmp_path / "moved"
    result = run("--index", idx, "--action", "move", "--to", dest, "--protect", "keep/*", "--apply")
    assert result.exit_code == 0, result.output
    assert "leave    keep/2.jpg  (protected)" in result.output
    assert sorted(tree(root)) == ["a/1.jpg", "a/2.jpg", "a/solo.jpg", "keep/2.jpg"]
    assert sorted(tree(dest)) == ["b/1.jpg", "c/1.jpg"]
    (manifest,) = idx.glob("undo-*.json")
    assert CliRunner().invoke(cli, ["undo", str(manifest)]).exit_code == 0
    assert tree(root) == before


@pytest.mark.parametrize("action", ["symlink", "hardlink"])
def test_links_replace_duplicates_and_undo_restores(cat, action):
    root, idx = cat
    before = tree(root)
    assert run("--index", idx, "--action", action, "--apply").exit_code == 0
    if action == "symlink":
        assert os.path.islink(root / "b/1.jpg") and os.path.realpath(root / "b/1.jpg") == str(root / "a/1.jpg")
    else:
        assert os.stat(root / "b/1.jpg").st_ino == os.stat(root / "a/1.jpg").st_ino
    (manifest,) = idx.glob("undo-*.json")
    assert CliRunner().invoke(cli, ["undo", str(manifest)]).exit_code == 0
    assert tree(root) == before
    assert os.stat(root / "b/1.jpg").st_ino != os.stat(root / "a/1.jpg").st_ino


def test_changed_files_and_missing_keepers_are_left_alone(cat, tmp_path):
    root, idx = cat
    (root / "b/1.jpg").write_bytes(jpeg_bytes(scene(1234)))  # changed since indexing
    (root / "a/2.jpg").unlink()  # keeper of the second set is gone
    result = run("--index", idx, "--action", "move", "--to", tmp_path / "m", "--apply")
    assert result.exit_code == 0
    assert "changed since indexing" in result.output and "keeper missing" in result.output
    assert sorted(tree(tmp_path / "m")) == ["c/1.jpg"]
    assert (root / "keep/2.jpg").exists()  # the last copy of its set


def test_interrupted_apply_can_be_undone(cat, tmp_path, monkeypatch):
    from dedup import actions

    root, idx = cat
    before = tree(root)
    p = plan_for_index(idx, find_duplicates(idx, 0.01), "move", tmp_path / "m")
    real, calls = actions._apply_one, []

    def crash_after_two(*args):
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(args)
        return real(*args)

    monkeypatch.setattr(actions, "_apply_one", crash_after_two)
    with pytest.raises(KeyboardInterrupt):
        apply(p, idx)
    assert tree(root) != before
    monkeypatch.undo()
    (manifest,) = idx.glob("undo-*.json")
    assert CliRunner().invoke(cli, ["undo", str(manifest)]).exit_code == 0
    assert tree(root) == before


def test_to_inside_catalog_is_refused(cat):
    root, idx = cat
    result = run("--index", idx, "--action", "move", "--to", root / "dups")
    assert result.exit_code != 0 and "inside the catalog" in result.output


def test_an_index_with_older_content_hashes_is_not_acted_on(cat):
    root, idx = cat
    manifest = idx / "manifest.json"
    manifest.write_text(manifest.read_text().replace(HASH_NAME, "blake2b-128"))
    before = tree(root)
    result = run("--index", idx, "--action", "delete", "--apply", "--yes")
    assert result.exit_code != 0 and "dedup index" in result.output and "Traceback" not in result.output
    assert tree(root) == before
