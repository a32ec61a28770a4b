from __future__ import annotations

import numpy as np
import pytest
import torch

from dedup.embed import embed_pixels
from dedup.errors import ModelError
from dedup.model import ModelConfig, load_model, new_model, save_model
from dedup.modelfile import model_ref


def test_shipped_default_is_trained_and_calibrated(default_model):
    meta = default_model.meta
    assert len(meta["history"]) >= 10 and meta["history"][-1]["train_loss"] < meta["history"][0]["train_loss"]
    assert 0 < default_model.threshold < 2 and "calibration" in meta
    assert default_model.identity == load_model("default").identity


@pytest.mark.parametrize("pooling", ["avg", "avg+grid2"])
def test_save_load_round_trip(tmp_path, pooling):
    model = new_model(ModelConfig(channels=(4, 8), embedding_dim=8, image_size=16, pooling=pooling), seed=3)
    model.meta = {"threshold": 0.3, "history": []}
    save_model(model, tmp_path / "m.pt")
    back = load_model(tmp_path / "m.pt")
    assert back.identity == model.identity and back.threshold == 0.3
    x = np.random.default_rng(0).integers(0, 255, (3, 16, 16, 3), dtype=np.uint8)
    out = embed_pixels(back, x)
    np.testing.assert_allclose(out, embed_pixels(model, x), atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    assert torch.load(tmp_path / "m.pt", weights_only=True)["config"]["pooling"] == pooling


def test_model_refs(tmp_path):
    assert model_ref(None) == "default" and model_ref("default") == "default"
    assert model_ref(tmp_path / "x.pt") == str((tmp_path / "x.pt").resolve())
    (tmp_path / "bad.pt").write_bytes(b"not a model")
    with pytest.raises(ModelError):
        load_model(tmp_path / "bad.pt")
    with pytest.raises(ModelError, match="not found"):
        load_model(tmp_path / "missing.pt")
