"""Incremental re-indexing, byte-identical files, and resuming after a SIGKILL."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest

from dedup.duplicates import find_duplicates
from dedup.images import DECODING, HASH_NAME
from dedup.index import Index
from dedup.indexer import index_catalog
from dedup.manifest import Manifest
from dedup.store import read_embeddings, read_rows
from dedup.synth import jpeg_bytes, scene


def contents(folder):
    m = Manifest.load(folder)
    return list(read_rows(folder, m).path), read_embeddings(folder, m)


def pictures(folder):
    index = Index.open(folder)
    return [index.picture(row) for row in range(len(index))]


def test_second_run_embeds_only_what_changed(planted, encoder, tmp_path):
    root, _ = planted
    cat = tmp_path / "cat"
    shutil.copytree(root, cat)
    idx = tmp_path / "idx"
    first = index_catalog(cat, idx, encoder)
    assert (first.added, first.embedded) == (59, 58)  # the byte-identical copy is embedded once
    again = index_catalog(cat, idx, encoder)
    assert (again.unchanged, again.embedded, again.added, again.removed) == (59, 0, 0, 0)
    (cat / "photos/img_0001.jpg").write_bytes(jpeg_bytes(scene(4242)))  # changed content
    (cat / "photos/img_0002.jpg").unlink()
    (cat / "photos/brand_new.jpg").write_bytes(jpeg_bytes(scene(4343)))
    third = index_catalog(cat, idx, encoder)
    assert (third.added, third.changed, third.removed, third.embedded) == (1, 1, 1, 2)
    fresh = tmp_path / "fresh"
    index_catalog(cat, fresh, encoder)
    paths, emb = contents(idx)
    paths2, emb2 = contents(fresh)
    assert paths == paths2
    np.testing.assert_allclose(emb, emb2, atol=1e-6)
    assert pictures(idx) == pictures(fresh)  # reused rows carry their stored check pictures over
    assert len(list(idx.glob("shards-*"))) <= 2 and len(list(idx.glob("index-*.faiss"))) <= 2


def test_byte_identical_files_form_an_exact_set(encoder, tmp_path):
    cat = tmp_path / "cat"
    cat.mkdir()
    data = jpeg_bytes(scene(77))
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        (cat / name).write_bytes(data)
    (cat / "other.jpg").write_bytes(jpeg_bytes(scene(78)))
    summary = index_catalog(cat, tmp_path / "idx", encoder)
    assert summary.embedded == 2 and summary.exact_duplicates == 2
    report = find_duplicates(tmp_path / "idx", 0.01)
    assert [(g.exact, len(g.members)) for g in report.groups] == [(True, 3)]


KILL_AFTER_THIRD_SHARD = """
import os, signal, sys
from dedup import store
flush, flushed = store.ShardWriter._flush, []
def killing(self, n):
    flush(self, n)
    flushed.append(n)
    if len(flushed) == 3:
        os.kill(os.getpid(), signal.SIGKILL)
store.ShardWriter._flush = killing
from dedup.cli import main
sys.argv = ["dedup", *sys.argv[1:]]
main()
"""


@pytest.mark.slow
def test_sigkill_mid_run_then_rerun_gives_the_same_index(tmp_path, encoder_file):
    """Killed (SIGKILL, no clean-up) right after its third shard is on disk, a run leaves no
    manifest; the next run keeps the flushed shards and ends with the index a clean run makes."""
    cat = tmp_path / "cat"
    cat.mkdir()
    for k in range(120):
        scene(k, (160, 120)).save(cat / f"{k:04d}.png")
    args = ["index", str(cat), "--index", str(tmp_path / "idx"), "--model", str(encoder_file), "--shard-rows", "16",
            "--batch-size", "16", "-q"]
    killed = subprocess.run([sys.executable, "-c", KILL_AFTER_THIRD_SHARD, *args], capture_output=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert len(list((tmp_path / "idx").glob("shards-*/*.parquet"))) == 3
    assert not (tmp_path / "idx" / "manifest.json").exists()
    out = subprocess.run([sys.executable, "-m", "dedup", *args[:-1], "--format", "json"], check=True, capture_output=True, text=True)
    summary = json.loads(out.stdout)
    assert summary["indexed"] == 120 and summary["embedded"] == 120 - 3 * 16  # the flushed work was kept
    clean = [*args[:3], str(tmp_path / "clean"), *args[4:]]
    subprocess.run([sys.executable, "-m", "dedup", *clean], check=True)
    paths, emb = contents(tmp_path / "idx")
    paths2, emb2 = contents(tmp_path / "clean")
    assert paths == paths2
    np.testing.assert_allclose(emb, emb2, atol=1e-6)
    assert pictures(tmp_path / "idx") == pictures(tmp_path / "clean")
    assert len(list((tmp_path / "idx").glob("shards-*"))) <= 2  # the interrupted run's shards went once reused
    groups = lambda f: [[m.path for m in g.members] for g in find_duplicates(f, 0.3).groups]  # noqa: E731
    assert groups(tmp_path / "idx") == groups(tmp_path / "clean")


def test_a_second_writer_is_refused(planted, encoder, tmp_path):
    import fcntl

    from dedup.errors import DedupError

    root, _ = planted
    idx = tmp_path / "idx"
    index_catalog(root, idx, encoder)
    with open(idx / "lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        with pytest.raises(DedupError, match="another dedup command"):
            index_catalog(root, idx, encoder)


def test_a_reader_of_the_previous_generation_still_reads_it(planted, encoder, tmp_path):
    """A reader that loaded the manifest before an update finishes reading the same generation."""
    from dedup.ann import load_index

    root, _ = planted
    cat = tmp_path / "cat"
    shutil.copytree(root, cat)
    idx = tmp_path / "idx"
    index_catalog(cat, idx, encoder)
    old = Manifest.load(idx)
    (cat / "photos/extra.jpg").write_bytes(jpeg_bytes(scene(555)))
    index_catalog(cat, idx, encoder)  # commits generation 2 while "reading" generation 1
    assert Manifest.load(idx).generation == old.generation + 1
    assert read_embeddings(idx, old).shape == (59, 16) and load_index(idx, old).ntotal == 59


def _reindexed_after(edit, root, idx, encoder):
    """Index `root` into `idx`, change its manifest by `edit(doc)`, index again: that run's summary."""
    index_catalog(root, idx, encoder)
    manifest_file = idx / "manifest.json"
    doc = json.loads(manifest_file.read_text())
    edit(doc)
    manifest_file.write_text(json.dumps(doc))
    return index_catalog(root, idx, encoder)


def test_rows_hashed_with_another_algorithm_are_not_reused(planted, encoder, tmp_path):
    root, _ = planted
    idx = tmp_path / "idx"
    again = _reindexed_after(lambda doc: doc.update(hash="blake2b-128"), root, idx, encoder)  # as an older version wrote it
    assert again.embedded == 58 and again.unchanged == 59
    assert Manifest.load(idx).hash == HASH_NAME


def test_rows_decoded_otherwise_are_embedded_again(planted, encoder, tmp_path):
    root, _ = planted
    idx = tmp_path / "idx"
    # as written before the decoding was recorded: its pixels may differ from today's
    again = _reindexed_after(lambda doc: doc.pop("decoding"), root, idx, encoder)
    assert again.embedded == 58 and again.unchanged == 59
    assert Manifest.load(idx).decoding == DECODING
    assert index_catalog(root, idx, encoder).embedded == 0


def probed(args: list[str], few: int | None = None) -> list[str]:
    """The output lines of the CLI run with `args` in a fresh interpreter, then a last line
    "<torch imported> <encoder processes started>" (`few`: `dedup.loading.FEW_TO_INDEX` for the run)."""
    probe = ("import sys\nimport dedup.indexer as ix\n" + ("" if few is None else f"ix.FEW_TO_INDEX = {few}\n")
             + "started = []\n"
             "class Counted(ix.EncoderProcess):\n    def __init__(self, *a):\n        started.append(a)\n"
             "        super().__init__(*a)\nix.EncoderProcess = Counted\n"
             "from dedup.cli import cli\ntry:\n    cli(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
             "print('torch' in sys.modules, len(started))")
    return subprocess.run([sys.executable, "-c", probe, *args], check=True, capture_output=True, text=True).stdout.splitlines()


def test_an_unchanged_catalog_is_reindexed_without_the_encoder(planted, tmp_path):
    """No encoder process, no torch import, no new generation: the run only compares path, size,
    mtime. (The first run embeds in a child process and never imports torch itself.)"""
    root, _ = planted
    idx = tmp_path / "idx"
    cmd = ["index", str(root), "--index", str(idx), "-q"]
    assert probed(cmd, few=0)[-1] == "False 1"
    before = Manifest.load(idx)
    assert probed(cmd, few=0)[-1] == "False 0"
    assert Manifest.load(idx) == before  # nothing committed


def test_a_few_files_are_embedded_without_torch_or_a_child_process(planted, tmp_path):
    """`dedup.loading.FEW_TO_INDEX`: importing torch would cost more than the numpy pass."""
    root, _ = planted
    idx = tmp_path / "idx"
    out = probed(["index", str(root), "--index", str(idx), "-q", "--format", "json"])
    assert out[-1] == "False 0"
    assert json.loads("\n".join(out[:-1]))["embedded"] > 0


def test_an_index_reused_for_another_catalog_reads_every_file_again(encoder, tmp_path):
    """Same relative path, size and mtime in another catalog say nothing about its bytes."""
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    first, second = jpeg_bytes(scene(31)), jpeg_bytes(scene(32))
    (a / "x.jpg").write_bytes(first)
    (b / "x.jpg").write_bytes(second[: len(first)].ljust(len(first), b"\0"))
    st = os.stat(a / "x.jpg")
    os.utime(b / "x.jpg", ns=(st.st_atime_ns, st.st_mtime_ns))
    idx = tmp_path / "idx"
    index_catalog(a, idx, encoder)
    index_catalog(b, idx, encoder)
    rows = read_rows(idx, Manifest.load(idx))
    from dedup.images import content_hash

    assert list(rows.content_hash) == [content_hash((b / "x.jpg").read_bytes())]
