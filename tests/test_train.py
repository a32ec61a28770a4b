"""Training: determinism, resume, every loss/optimiser, and the `dedup train` command."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from dedup.cli import cli
from dedup.config import Framing, TrainConfig
from dedup.data import fitting_size, load_folder, split
from dedup.errors import UsageError
from dedup.model import ModelConfig, load_model, new_model
from dedup.synth import scene
from dedup.train import train

TINY = ModelConfig(channels=(8, 16), embedding_dim=16, image_size=32)


@pytest.fixture(scope="module")
def plain_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("plain")
    for k in range(24):
        scene(500 + k, (96, 72)).save(root / f"s{k:02d}.png")
    return root


def run(ts, cfg, **kw):
    model = new_model(TINY, seed=cfg.seed)
    train(model, ts, None, cfg, **kw)
    return model


def weights(model):
    return torch.cat([p.detach().flatten() for p in model.net.parameters()])


def test_training_is_deterministic_and_learns(plain_folder):
    ts, _ = load_folder(plain_folder, max_side=64)
    cfg = TrainConfig(loss="contrastive", epochs=3, batch_size=8, steps_per_epoch=4, seed=7)
    a, b = run(ts, cfg), run(ts, cfg)
    assert torch.equal(weights(a), weights(b))
    hist = a.meta["history"]
    assert len(hist) == 3 and hist[-1]["train_loss"] < hist[0]["train_loss"]
    c = run(ts, TrainConfig(loss="contrastive", epochs=3, batch_size=8, steps_per_epoch=4, seed=8))
    assert not torch.equal(weights(a), weights(c))


@pytest.mark.parametrize("hard", [0.0, 0.5])
def test_resume_matches_an_uninterrupted_run(plain_folder, tmp_path, hard):
    ts, _ = load_folder(plain_folder, max_side=64)
    recipe = dict(batch_size=8, steps_per_epoch=2, seed=1, hard_negatives=hard, mine_every=2, mine_k=3)
    full = run(ts, TrainConfig(epochs=3, **recipe))
    ckpt = tmp_path / "m.ckpt"
    run(ts, TrainConfig(epochs=2, **recipe), checkpoint=ckpt)  # "interrupted" after 2 (mined at epoch 2)
    resumed = run(ts, TrainConfig(epochs=3, **recipe), checkpoint=ckpt, resume=True)
    assert torch.equal(weights(full), weights(resumed))
    assert [h["epoch"] for h in resumed.meta["history"]] == [1, 2, 3]


def test_resume_refuses_a_checkpoint_of_another_run(plain_folder, tmp_path):
    ts, _ = load_folder(plain_folder, max_side=64)
    recipe = dict(batch_size=8, steps_per_epoch=2, seed=1)
    ckpt = tmp_path / "m.ckpt"
    run(ts, TrainConfig(epochs=1, **recipe), checkpoint=ckpt)
    with pytest.raises(UsageError, match="another model or recipe"):
        run(ts, TrainConfig(epochs=2, lr=0.01, **recipe), checkpoint=ckpt, resume=True)
    wider = new_model(replace(TINY, channels=(8, 8)), seed=1)
    with pytest.raises(UsageError, match="another model or recipe"):
        train(wider, ts, None, TrainConfig(epochs=2, **recipe), checkpoint=ckpt, resume=True)
    assert ckpt.is_file()  # left for the user to remove


@pytest.mark.parametrize("loss", ["contrastive", "triplet", "bce", "infonce"])
@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_every_loss_and_optimizer_trains(plain_folder, loss, optimizer):
    ts, _ = load_folder(plain_folder, max_side=64)
    tr, va, _ = split(ts, 0.25, 0)
    model = new_model(TINY)
    before = weights(model).clone()
    train(model, tr, va, TrainConfig(loss=loss, optimizer=optimizer, lr=0.01, epochs=1, batch_size=6, steps_per_epoch=2))
    assert not torch.equal(before, weights(model))
    assert np.isfinite(model.meta["history"][0]["train_loss"])
    assert 0.0 <= model.meta["val_metrics"]["auc"] <= 1.0


def labelled(root, classes: int, per_class: int, size: int = 40):
    for c in range(classes):
        (root / f"class{c}").mkdir(parents=True)
        for k in range(per_class):
            scene(c * 100 + k, (size, size)).save(root / f"class{c}" / f"{k}.png")
    return root


def test_few_classes_hold_out_pictures_of_every_class(tmp_path):
    ts, _ = load_folder(labelled(tmp_path, 5, 8), "folders", max_side=32)
    tr, va, mode = split(ts, 0.25, 0, "folders")
    assert mode == "per-class" and set(va.labels.tolist()) == set(tr.labels.tolist()) == set(range(5))
    assert all((va.labels == c).sum() >= 2 for c in range(5))  # same pairs in every class, different across
    assert not set(tr.paths) & set(va.paths)


def test_many_classes_hold_out_whole_classes_and_unlabelled_items(tmp_path):
    ts, _ = load_folder(labelled(tmp_path / "many", 12, 3), "folders", max_side=32)
    tr, va, mode = split(ts, 0.1, 0, "folders")
    assert mode == "whole-classes" and len(va.classes) >= 3 and not set(tr.labels.tolist()) & set(va.labels.tolist())
    plain, _ = load_folder(tmp_path / "many", "none", max_side=32)
    _, va, mode = split(plain, 0.1, 0, "none")
    assert mode == "items" and len(va.labels) >= 2


def test_train_command_writes_a_self_describing_model(plain_folder, tmp_path):
    out = tmp_path / "m.pt"
    result = CliRunner().invoke(cli, ["train", str(plain_folder), "--out", str(out), "--epochs", "2", "--batch-size", "6",
                                      "--image-size", "32", "--channels", "8,16,16,32", "--loss", "triplet",
                                      "--val-fraction", "0.25", "-q"])
    assert result.exit_code == 0, result.output
    assert out.with_suffix(".loss.png").is_file() and not out.with_suffix(".ckpt").exists()
    raw = torch.load(out, weights_only=True)  # no pickled code
    assert raw["format"] == "dedup-model"
    model = load_model(out)
    assert model.config.channels == (8, 16, 16, 32)
    assert model.config.image_size == 32 and model.config.framing == Framing(trim=True, backdrop=True)  # the default framing
    assert model.meta["recipe"]["loss"] == "triplet" and len(model.meta["history"]) == 2
    assert {"auc", "f1", "threshold"} <= set(model.meta["val_metrics"])
    idx = tmp_path / "idx"
    assert CliRunner().invoke(cli, ["index", str(plain_folder), "--index", str(idx), "--model", str(out), "-q"]).exit_code == 0
    assert json.loads((idx / "manifest.json").read_text())["model"]["identity"] == model.identity


@pytest.mark.parametrize("channels", ["", "32,,64", "0,8", "8,16,x", "8,8,8,8,8,8"])
def test_train_rejects_bad_channels_in_one_line(plain_folder, tmp_path, channels):
    result = CliRunner().invoke(cli, ["train", str(plain_folder), "--out", str(tmp_path / "m.pt"), "--image-size", "32",
                                      "--channels", channels, "-q"])
    assert result.exit_code != 0 and "--channels" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "m.pt").exists()


def test_labelled_training_defaults_fit_small_pictures(tmp_path):
    data = labelled(tmp_path / "data", 4, 10, size=24)
    out = tmp_path / "m.pt"
    result = CliRunner().invoke(cli, ["train", str(data), "--labels", "folders", "--out", str(out), "--epochs", "3",
                                      "--channels", "8,16", "--no-check", "-q"])
    assert "Traceback" not in result.output
    model = load_model(out)
    assert model.config.image_size == 32 and model.config.framing == Framing()  # no trimming, no backdrop repaint
    assert model.config.pooling == "avg+grid2" and model.meta["recipe"]["edits"] == "labelled"
    assert model.meta["recipe"]["margin"] == 0.5 and model.meta["validation"]["split"] == "per-class"
    assert model.meta["validation"]["threshold_rule"] == "balanced accuracy"
    assert model.threshold == round(model.meta["validation"]["at_threshold"]["threshold"], 4)


def test_a_run_that_learns_nothing_warns_and_fails(tmp_path):
    """Both classes hold the same pictures: nothing tells them apart."""
    data = tmp_path / "data"
    for c in ("a", "b"):
        (data / c).mkdir(parents=True)
        for k in range(10):
            scene(k, (32, 32)).save(data / c / f"{k}.png")
    out = tmp_path / "m.pt"
    result = CliRunner().invoke(cli, ["train", str(data), "--labels", "folders", "--out", str(out), "--epochs", "3",
                                      "--channels", "8,16", "--val-fraction", "0.3", "-q"])
    assert result.exit_code == 1 and "Warning: validation AUC" in result.output and "Traceback" not in result.output
    assert out.is_file()  # kept, to look at


def test_the_input_size_follows_the_pictures():
    from PIL import Image

    from dedup.data import TrainSet

    def sized(side):
        return TrainSet([Image.new("RGBA", (side, side))] * 3, np.arange(3), ["x"] * 3)

    assert [fitting_size(sized(s)) for s in (8, 24, 32, 40, 200)] == [32, 32, 32, 48, 64]


def test_labelled_views_keep_a_light_on_dark_picture_light_on_dark():
    from PIL import Image

    from dedup.augment import label_view

    dark = Image.new("RGB", (32, 32), (0, 0, 0))
    dark.paste((255, 255, 255), (10, 8, 22, 24))
    rng = np.random.default_rng(0)
    for _ in range(20):
        view = np.asarray(label_view(dark, rng, 1.0), np.float32)
        assert view[[0, -1]].mean() < 40 and view[:, [0, -1]].mean() < 40  # borders stay dark
        assert view.max() > 150  # the mark is still there
