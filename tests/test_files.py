from __future__ import annotations

import os

import pytest

from dedup.errors import CatalogError
from dedup.files import FileRecord, Skipped, check_catalog, walk_catalog


def test_walk_is_sorted_recursive_and_relative(tmp_path):
    for rel in ["b/2.jpg", "a/z.png", "a/sub/1.gif", "c.bmp"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    recs = list(walk_catalog(tmp_path))
    assert [r.rel for r in recs] == ["a/sub/1.gif", "a/z.png", "b/2.jpg", "c.bmp"]
    assert all(isinstance(r, FileRecord) and r.size == 1 for r in recs)


def test_symlinks_skipped_with_reason_unless_followed(tmp_path):
    (tmp_path / "real.jpg").write_bytes(b"x")
    os.symlink(tmp_path / "real.jpg", tmp_path / "link.jpg")
    os.symlink(tmp_path / "missing.jpg", tmp_path / "broken.jpg")
    (tmp_path / "loop").mkdir()
    os.symlink(tmp_path / "loop", tmp_path / "loop" / "again")
    outside = tmp_path.parent / f"{tmp_path.name}-outside.jpg"
    outside.write_bytes(b"x")
    os.symlink(outside, tmp_path / "out.jpg")
    items = {r.rel: r for r in walk_catalog(tmp_path)}
    assert isinstance(items["link.jpg"], Skipped) and "symlink" in items["link.jpg"].reason
    followed = {r.rel: r for r in walk_catalog(tmp_path, follow_symlinks=True)}
    assert isinstance(followed["link.jpg"], FileRecord)
    assert followed["broken.jpg"].reason == "broken symlink"
    assert "outside" in followed["out.jpg"].reason
    assert isinstance(followed["loop/again"], Skipped)


def test_excluded_folder_is_not_walked(tmp_path):
    (tmp_path / "idx").mkdir()
    (tmp_path / "idx" / "shard.parquet").write_bytes(b"x")
    (tmp_path / "a.jpg").write_bytes(b"x")
    assert [r.rel for r in walk_catalog(tmp_path, exclude=tmp_path / "idx")] == ["a.jpg"]


def test_check_catalog_errors(tmp_path):
    with pytest.raises(CatalogError, match="does not exist"):
        check_catalog(tmp_path / "nope")
    (tmp_path / "f.jpg").write_bytes(b"x")
    with pytest.raises(CatalogError, match="is a file"):
        check_catalog(tmp_path / "f.jpg")
