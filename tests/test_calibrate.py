"""Calibrating the pair check in the library (numpy only) and with `dedup calibrate`."""
from __future__ import annotations

import numpy as np
from click.testing import CliRunner

from dedup.calibrate import calibrate_pairs, fit_check, fit_logistic
from dedup.cli import cli
from dedup.config import NORMALISED_FEATURES, VERIFY_FEATURES, VerifyConfig
from dedup.loading import load_model
from dedup.synth import near_duplicate, scene


def test_logistic_regression_recovers_the_weights_that_made_the_labels():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4000, 3)) * [1.0, 2.0, 0.5] + [0.0, 1.0, -1.0]
    y = rng.random(4000) < 1 / (1 + np.exp(-(x @ np.array([2.0, -1.0, 3.0]) + 0.5)))
    w, b = fit_logistic(x, y, l2=0.0)
    np.testing.assert_allclose(w, [2.0, -1.0, 3.0], atol=0.25)
    assert abs(b - 0.5) < 0.25


def test_the_acceptance_cut_is_chosen_precision_first_on_held_out_folds():
    rng = np.random.default_rng(1)
    y = rng.random(600) < 0.5
    x = np.column_stack([y + rng.normal(0, 0.6, 600), rng.normal(size=600)])
    fold = np.arange(600) % 2
    w, b, accept, held_out = fit_check(x, y, np.ones(600, bool), fold, target=0.9)
    kept = held_out >= accept
    assert (kept & y).sum() / kept.sum() >= 0.9 and w[0] > 0 and 0 < accept < 1


def catalog(root, items: int = 12, copies: int = 3):
    """Class folders of one scene and edited copies of it."""
    for c in range(items):
        folder = root / f"item{c}"
        folder.mkdir(parents=True)
        pic = scene(300 + c)
        pic.save(folder / "original.png")
        for k in range(copies):
            near_duplicate(pic, c * 10 + k).convert("RGB").save(folder / f"copy{k}.jpg", quality=85)
    return root


def test_calibrating_a_model_fits_a_check_from_its_own_pairs(tmp_path, encoder):
    data = catalog(tmp_path / "data")
    files = sorted(p for p in data.rglob("*") if p.is_file())
    labels = np.array([int(p.parent.name[4:]) for p in files])
    gate = VerifyConfig(candidates=0.9, weights=(0.0,) * len(VERIFY_FEATURES), bias=0.0, min_inliers=2)
    found = calibrate_pairs(encoder, files, labels, gate=gate)
    assert found.pairs > 0 and found.true_pairs == 12 * 6
    assert set(found.scores) == {"encoder alone at its threshold", "with the pair check (out of fold)"}
    if found.check is not None:
        assert found.check.candidates == 0.9 and found.check.features == NORMALISED_FEATURES
        assert len(found.check.weights) == len(NORMALISED_FEATURES) and found.check.typical_background > 0
        assert found.scores["with the pair check (out of fold)"]["f1"] > found.scores["encoder alone at its threshold"]["f1"]


def test_the_calibrate_command_keeps_the_identity_and_says_what_it_did(tmp_path, encoder_file):
    data = catalog(tmp_path / "data")
    out = tmp_path / "calibrated.pt"
    result = CliRunner().invoke(cli, ["calibrate", str(encoder_file), str(data), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Pair check of") and ("kept" in result.output)
    before, after = load_model(encoder_file), load_model(out)
    assert after.identity == before.identity and "verify_calibration" in after.meta
    shipped = CliRunner().invoke(cli, ["calibrate", "default", str(data)])
    assert shipped.exit_code == 1 and "(--out)" in shipped.output
