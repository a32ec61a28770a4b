"""Shared fixtures: generated catalogs and models (no downloads).

`encoder` (a fresh deterministic fake, `fakes.fake_model`) serves every test whose subject is
not the shipped weights; `default_model` (a fresh copy of the shipped encoder) only those that
are about it."""
from __future__ import annotations

from pathlib import Path

import pytest
from fakes import checking_model, fake_model, series_items

from dedup.model import ModelConfig, load_model, new_model, save_model
from dedup.synth import make_catalog


@pytest.fixture()
def default_model():
    """The shipped encoder, loaded afresh for each test (no test can change another's model)."""
    return load_model()


@pytest.fixture()
def encoder():
    """The fake encoder, built afresh for each test."""
    return fake_model()


@pytest.fixture(scope="session")
def encoder_file(tmp_path_factory) -> Path:
    """The fake encoder saved as a model file (with its card), for CLI tests and subprocesses."""
    path = tmp_path_factory.mktemp("models") / "fake.pt"
    save_model(fake_model(), path)
    return path


@pytest.fixture(scope="session")
def tiny_model_file(tmp_path_factory) -> Path:
    """A small untrained model file (a different identity from the default)."""
    path = tmp_path_factory.mktemp("models") / "tiny.pt"
    save_model(new_model(ModelConfig(channels=(4, 8), embedding_dim=16, image_size=32), seed=1, name="tiny"), path)
    return path


@pytest.fixture(scope="session")
def planted(tmp_path_factory) -> tuple[Path, dict[str, list[str]]]:
    """A catalog of 40 generated scenes with edited and byte-identical copies of 12."""
    root = tmp_path_factory.mktemp("catalog") / "shop"
    truth = make_catalog(root, originals=40, duplicated=12, seed=3)
    return root, truth


@pytest.fixture(scope="session")
def built_index(planted, tmp_path_factory) -> Path:
    """The planted catalog indexed with the shipped encoder (for tests about it)."""
    from dedup.indexer import index_catalog

    root, _ = planted
    folder = tmp_path_factory.mktemp("idx") / "shop"
    index_catalog(root, folder, load_model())
    return folder


@pytest.fixture()
def series_index(tmp_path, tiny_model_file):
    """The three items of a letter series (`item0.png`..`item2.png`) and a smaller JPEG copy of the
    first (`item0_copy.jpg`), indexed with a model whose pair check takes every pair as a
    candidate: (catalog, index folder, the items)."""
    from dedup.indexer import index_catalog

    catalog = tmp_path / "cat"
    catalog.mkdir()
    items = series_items("letter")
    for k, item in enumerate(items):
        item.save(catalog / f"item{k}.png")
    items[0].resize((200, 200)).save(catalog / "item0_copy.jpg", quality=90)
    index_catalog(catalog, tmp_path / "idx", load_model(checking_model(tiny_model_file, tmp_path / "checking.pt")))
    return catalog, tmp_path / "idx", items
