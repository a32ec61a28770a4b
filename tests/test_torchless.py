"""The encoder without torch (`dedup.torchless`): the same vectors and identity as the torch
model, a model file read without running anything but its arrays, and `dedup query` /
`dedup compare` that embed a few images without importing torch."""
from __future__ import annotations

import io
import json
import pickle
import subprocess
import sys
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
from fakes import fake_model, lying_copy

from dedup.errors import ModelError
from dedup.loading import FEW_TO_QUERY, encoder_for, model_for_index
from dedup.manifest import Manifest
from dedup.model import Model, ModelConfig, load_model, new_model, save_model
from dedup.torchless import NumpyEncoder, read_model_file

ROOT = Path(__file__).resolve().parent.parent


def pixels(n: int, side: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, side, side, 3), dtype=np.uint8)


def odd_model() -> Model:
    """Batch norm with running statistics, the grid pooling, three blocks and an input whose
    feature maps have odd sizes: every branch of the forward pass."""
    model = new_model(ModelConfig(channels=(5, 7, 9), embedding_dim=12, image_size=44, batchnorm=True, pooling="avg+grid2"),
                      seed=3, name="odd")
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for module in model.net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.copy_(torch.randn(module.num_features, generator=gen) * 0.1)
                module.running_var.copy_(torch.rand(module.num_features, generator=gen) + 0.5)
                module.weight.copy_(torch.rand(module.num_features, generator=gen) + 0.5)
                module.bias.copy_(torch.randn(module.num_features, generator=gen) * 0.1)
    model.net.eval()
    return model


@pytest.mark.parametrize("which", ["default", "fake", "odd"])
def test_same_vectors_and_identity_as_the_torch_model(which, tmp_path):
    if which == "default":
        model, ref = load_model(), None
    else:
        model = fake_model() if which == "fake" else odd_model()
        ref = tmp_path / f"{which}.pt"
        save_model(model, ref)
    numpy_model = NumpyEncoder(ref)
    x = pixels(19, model.config.image_size)  # not a multiple of the numpy batch
    assert np.abs(numpy_model.embed(x) - model.embed(x)).max() < 1e-5
    assert numpy_model.identity == model.identity
    assert (numpy_model.config, numpy_model.threshold, numpy_model.check) == (model.config, model.threshold, model.check)
    assert numpy_model.source == load_model(ref).source


def test_a_model_file_that_would_run_code_is_refused(tmp_path):
    class Payload:
        def __reduce__(self):
            return (print, ("ran",))

    bad = tmp_path / "bad.pt"
    torch.save({"format": "dedup-model", "x": Payload()}, bad)
    with pytest.raises(ModelError, match="not allowed"):
        NumpyEncoder(bad)
    plain = tmp_path / "plain.pt"
    plain.write_bytes(pickle.dumps({"format": "dedup-model"}))
    with pytest.raises(ModelError, match="cannot load"):
        NumpyEncoder(plain)


def test_newer_format_and_foreign_files_get_the_torch_loaders_errors(tmp_path):
    newer = tmp_path / "newer.pt"
    torch.save({"format": "dedup-model", "version": 99}, newer)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, other)
    for file, message in ((newer, "upgrade dedup"), (other, "not a dedup model file")):
        with pytest.raises(ModelError, match=message):
            NumpyEncoder(file)
        with pytest.raises(ModelError, match=message):
            encoder_for(file, 1)  # the torch loader, asked after the numpy reader fails, says the same


def test_the_encoder_is_chosen_by_the_number_of_images(tmp_path, monkeypatch):
    assert isinstance(encoder_for(None, 1), NumpyEncoder)
    assert isinstance(encoder_for("default", FEW_TO_QUERY), NumpyEncoder)
    assert isinstance(encoder_for(None, FEW_TO_QUERY + 1), Model)
    loaded = fake_model()
    assert encoder_for(loaded, 1) is loaded  # a model given loaded is used as it is

    def unreadable(_file):
        raise ModelError("cannot load model")

    monkeypatch.setattr("dedup.torchless.read_model_file", unreadable)
    assert isinstance(encoder_for(None, 1), Model)  # torch reads what the numpy reader cannot


def test_a_pending_model_is_read_without_torch_only_as_its_card_describes_it(tiny_model_file, tmp_path, monkeypatch):
    from dedup.loading import open_model

    assert isinstance(open_model(tiny_model_file).without_torch(), NumpyEncoder)
    assert open_model(lying_copy(tiny_model_file, tmp_path)).without_torch() is None  # torch then says why

    def unreadable(_file):
        raise ModelError("cannot load model")

    monkeypatch.setattr("dedup.torchless.read_model_file", unreadable)
    assert open_model(tiny_model_file).without_torch() is None


def test_an_index_of_another_model_is_refused_without_torch_too(built_index, tiny_model_file):
    manifest = Manifest.load(built_index)
    assert isinstance(model_for_index(manifest, images=1), NumpyEncoder)
    with pytest.raises(ModelError, match="index was built by model"):
        model_for_index(manifest, tiny_model_file, images=1)


def test_query_and_compare_of_a_few_images_do_not_import_torch(built_index, planted):
    root, truth = planted
    original = root / "photos/img_0001.jpg"
    copy = root / truth["photos/img_0001.jpg"][0]
    script = f"""
import json, sys
from dedup.query import compare_images, query_images
found = query_images({str(built_index)!r}, [{str(copy)!r}], k=3, verify=True)
same = compare_images({str(original)!r}, {str(copy)!r})
print(json.dumps({{"torch": "torch" in sys.modules, "found": [n.path for n in found[0].neighbors if n.same], "same": same.same}}))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    doc = json.loads(out)
    assert doc["torch"] is False and doc["same"] is True and "photos/img_0001.jpg" in doc["found"]



class _Storage:
    pass


class _Tensor:
    def __init__(self, size: tuple, stride: tuple, offset: int = 0):
        self.args = (_Storage(), offset, size, stride, False, OrderedDict())


class _Crafting(pickle.Pickler):
    """Writes `_Tensor`s as torch's rebuild calls over a 4-float storage, with any size and stride."""

    def persistent_id(self, obj):
        return ("storage", torch.FloatStorage, "0", "cpu", 4) if isinstance(obj, _Storage) else None

    def reducer_override(self, obj):
        return (torch._utils._rebuild_tensor_v2, obj.args) if isinstance(obj, _Tensor) else NotImplemented


def crafted(file: Path, payload: dict) -> Path:
    """A model file in torch's zip layout whose tensors are `_Tensor`s over the storage 0, 1, 2, 3."""
    buffer = io.BytesIO()
    _Crafting(buffer, protocol=2).dump(payload)
    with zipfile.ZipFile(file, "w") as archive:
        archive.writestr("m/data.pkl", buffer.getvalue())
        archive.writestr("m/data/0", np.arange(4, dtype=np.float32).tobytes())
        archive.writestr("m/byteorder", "little")
        archive.writestr("m/version", "3\n")
    return file


@pytest.mark.parametrize("size, stride, offset", [((100_000,), (1,), 0), ((2, 2), (4, 1), 0), ((4,), (1,), 1), ((3,), (-1,), 3)])
def test_a_tensor_outside_its_storage_is_refused(tmp_path, size, stride, offset):
    file = crafted(tmp_path / "crafted.pt", {"format": "dedup-model", "version": 1, "config": ModelConfig().to_dict(),
                                             "state_dict": {"head.bias": _Tensor(size, stride, offset)}})
    with pytest.raises(ModelError, match="negative|outside its storage"):
        NumpyEncoder(file)


def test_a_tensor_inside_its_storage_reads_as_torch_reads_it(tmp_path):
    file = crafted(tmp_path / "ok.pt", {"format": "dedup-model", "x": _Tensor((2, 2), (1, 2), 0), "y": _Tensor((0,), (1,), 4)})
    ours = read_model_file(file)
    theirs = torch.load(file, weights_only=True)
    np.testing.assert_array_equal(ours["x"], theirs["x"].numpy())
    assert ours["y"].shape == (0,)
