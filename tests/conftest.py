"""Shared fixtures: generated catalogs and models (no downloads)."""
from __future__ import annotations

from pathlib import Path

import pytest

from dedup.model import ModelConfig, load_model, new_model, save_model
from dedup.synth import make_catalog


@pytest.fixture(scope="session")
def default_model():
    return load_model()


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
def built_index(planted, default_model, tmp_path_factory) -> Path:
    from dedup.indexer import index_catalog

    root, _ = planted
    folder = tmp_path_factory.mktemp("idx") / "shop"
    index_catalog(root, folder, default_model)
    return folder
