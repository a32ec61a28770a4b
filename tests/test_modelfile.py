"""Model cards and background loading: the spec is known at once, the weights follow."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fakes import lying_copy

from dedup.errors import ModelError
from dedup.indexer import index_catalog
from dedup.loading import PendingModel, open_model
from dedup.manifest import Manifest
from dedup.model import load_model, save_model
from dedup.modelfile import card_path, read_card, shipped_model_path
from dedup.store import read_embeddings, read_rows


def test_the_shipped_card_describes_the_shipped_weights(default_model):
    card = read_card(shipped_model_path())
    assert card is not None and card["identity"] == default_model.identity
    pending = open_model(None)
    assert isinstance(pending, PendingModel)
    assert pending.config == default_model.config and pending.threshold == default_model.threshold
    assert pending.result().identity == default_model.identity


def test_a_card_is_written_with_every_model_and_goes_stale_with_its_weights(tiny_model_file, tmp_path):
    model = load_model(tiny_model_file)
    out = tmp_path / "m.pt"
    save_model(model, out)
    assert read_card(out)["identity"] == model.identity
    out.write_bytes(out.read_bytes() + b"\0")  # weights replaced, card not
    assert read_card(out) is None
    assert not isinstance(open_model(out), PendingModel)  # falls back to loading at once
    card_path(out).unlink()
    assert read_card(out) is None


def test_a_card_that_lies_about_its_model_is_caught(tiny_model_file, tmp_path):
    with pytest.raises(ModelError, match="does not describe"):
        open_model(lying_copy(tiny_model_file, tmp_path)).result()


@pytest.mark.parametrize("few", [0, 10_000])
def test_indexing_while_the_weights_load_gives_the_same_index(planted, default_model, tmp_path, monkeypatch, few):
    """In a child process (torch, the same vectors) or, with few files to embed, without torch
    (`dedup.torchless`: the same to float rounding)."""
    import dedup.indexer as indexer

    monkeypatch.setattr(indexer, "FEW_TO_INDEX", few)
    root, _ = planted
    index_catalog(root, tmp_path / "a", default_model)
    index_catalog(root, tmp_path / "b", open_model(None))
    for folder in ("a", "b"):
        assert Manifest.load(tmp_path / folder).model.identity == default_model.identity
    assert list(read_rows(tmp_path / "a", Manifest.load(tmp_path / "a")).path) == \
        list(read_rows(tmp_path / "b", Manifest.load(tmp_path / "b")).path)
    torch_made, loaded = (read_embeddings(tmp_path / f, Manifest.load(tmp_path / f)) for f in ("a", "b"))
    np.testing.assert_allclose(loaded, torch_made, atol=0 if few == 0 else 1e-5, rtol=0)


def test_the_program_exits_with_the_commands_status_and_flushed_output(planted, tmp_path):
    root, _ = planted
    ok = subprocess.run([sys.executable, "-m", "dedup", "index", str(root), "--index", str(tmp_path / "i"), "--format", "json", "-q"],
                        capture_output=True, text=True)
    assert ok.returncode == 0 and json.loads(ok.stdout)["indexed"] > 0
    bad = subprocess.run([sys.executable, "-m", "dedup", "find-duplicates", "--index", str(tmp_path / "none")],
                         capture_output=True, text=True)
    assert bad.returncode == 1 and bad.stderr.startswith("Error:") and "Traceback" not in bad.stderr


@pytest.fixture()
def children(monkeypatch):
    """Every encoder process `index_catalog` starts, for a test to check that none is left."""
    import dedup.indexer as indexer
    from dedup.encoder_process import EncoderProcess

    started: list[EncoderProcess] = []

    class Recorded(EncoderProcess):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            started.append(self)

    monkeypatch.setattr(indexer, "EncoderProcess", Recorded)
    monkeypatch.setattr(indexer, "FEW_TO_INDEX", 0)  # the child process even for the few files of a test catalog
    return started


def copied(planted, tmp_path):
    """A copy of the planted catalog that a test may change."""
    return Path(shutil.copytree(planted[0], tmp_path / "shop"))


def test_the_encoder_runs_in_a_child_process_that_ends_with_the_run(planted, encoder_file, tmp_path, children):
    root = copied(planted, tmp_path)
    index_catalog(root, tmp_path / "i", encoder_file)
    assert len(children) == 1 and children[0]._proc.returncode == 0
    first = min(p for p in root.rglob("*") if p.is_file())
    os.utime(first, ns=(first.stat().st_atime_ns, first.stat().st_mtime_ns + 10**9))  # same bytes: nothing to embed
    summary = index_catalog(root, tmp_path / "i", encoder_file)
    assert summary.embedded == 0 and summary.changed == 1
    assert len(children) == 2 and children[1]._proc.returncode is not None  # started, never asked, ended


def test_a_card_that_lies_about_its_model_stops_the_run_before_anything_is_written(planted, tiny_model_file, tmp_path,
                                                                                  children):
    root, _ = planted
    with pytest.raises(ModelError, match="does not describe"):
        index_catalog(root, tmp_path / "i", lying_copy(tiny_model_file, tmp_path))
    assert not (tmp_path / "i" / "manifest.json").exists()
    assert all(c._proc.returncode is not None for c in children)


def test_a_lying_card_stops_a_run_with_few_files_too(planted, tiny_model_file, tmp_path):
    """Few files would be embedded without torch (`PendingModel.without_torch`), which leaves a
    card that does not match to torch's verdict."""
    root, _ = planted
    with pytest.raises(ModelError, match="does not describe"):
        index_catalog(root, tmp_path / "i", lying_copy(tiny_model_file, tmp_path))
    assert not (tmp_path / "i" / "manifest.json").exists()


def test_an_encoder_process_that_dies_fails_the_run_and_keeps_the_index(planted, encoder_file, tmp_path, children,
                                                                       monkeypatch):
    from dedup.encoder_process import EncoderProcess

    root = copied(planted, tmp_path)
    index_catalog(root, tmp_path / "i", encoder_file)
    before = Manifest.load(tmp_path / "i")
    for p in root.rglob("*"):
        if p.is_file():
            p.write_bytes(p.read_bytes() + b"\0")  # every file changed: all embedded again
    real_embed = EncoderProcess.embed

    def dies(self, pixels):
        self._proc.kill()
        self._proc.wait()
        return real_embed(self, pixels)

    monkeypatch.setattr(EncoderProcess, "embed", dies)
    with pytest.raises(ModelError, match="encoder process"):
        index_catalog(root, tmp_path / "i", encoder_file)
    assert Manifest.load(tmp_path / "i") == before


def test_the_encoder_process_runs_this_dedup_whatever_the_working_folder_holds(planted, encoder_file, tmp_path,
                                                                                monkeypatch, children):
    impostor = tmp_path / "cwd" / "dedup"
    impostor.mkdir(parents=True)
    (impostor / "__init__.py").write_text("raise ImportError('another dedup')\n")
    monkeypatch.chdir(impostor.parent)
    summary = index_catalog(planted[0], tmp_path / "i", encoder_file)
    assert summary.embedded > 0 and children[0]._proc.returncode == 0
