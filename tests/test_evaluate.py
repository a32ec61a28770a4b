"""`dedup evaluate`: pairs from folders or CSV, the seed's table, one-shot trials, plots."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from dedup.cli import cli
from dedup.evaluate import sample_pairs
from dedup.synth import near_duplicate, scene


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    root = tmp_path_factory.mktemp("labelled")
    for c in range(6):
        (root / f"item{c}").mkdir()
        base = scene(7000 + c)
        base.save(root / f"item{c}" / "orig.png")
        for k in range(3):
            near_duplicate(base, k).convert("RGB").save(root / f"item{c}" / f"copy{k}.jpg", quality=80)
    return root


def test_sampled_pairs_are_balanced_and_seeded():
    import numpy as np

    labels = np.array([0, 0, 1, 1, 2, 2, 2])
    a, b, same = sample_pairs(labels, 100, seed=3)
    assert same.sum() == 50
    assert ((labels[a] == labels[b]) == same).all() and (a != b).all()
    a2, b2, _ = sample_pairs(labels, 100, seed=3)
    assert (a == a2).all() and (b == b2).all()


def test_evaluate_json_and_one_shot(labelled, tmp_path):
    result = CliRunner().invoke(cli, ["evaluate", str(labelled), "--num-pairs", "200", "--one-shot", "3", "--trials", "50",
                                      "--target-precision", "0.99", "--plots", str(tmp_path / "ev"), "--format", "json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    for key in ("accuracy", "precision", "recall", "f1", "auc", "far", "frr", "threshold", "eer_threshold", "best_f1_threshold"):
        assert isinstance(doc[key], float)
    c = doc["confusion"]
    assert c["tn"] + c["fp"] + c["fn"] + c["tp"] == 200
    assert doc["one_shot"]["ways"] == 3 and 0 <= doc["one_shot"]["accuracy"] <= 1
    assert (tmp_path / "ev.roc.png").is_file() and (tmp_path / "ev.hist.png").is_file()
    assert doc["threshold_source"] == "model" and doc["plots"] == [str(tmp_path / "ev.roc.png"), str(tmp_path / "ev.hist.png")]
    table = CliRunner().invoke(cli, ["evaluate", str(labelled), "--num-pairs", "40"])
    assert table.exit_code == 0 and "confusion matrix" in table.stdout
    assert "(the model's calibrated threshold)" in table.stdout
    given = CliRunner().invoke(cli, ["evaluate", str(labelled), "--num-pairs", "40", "-t", "0.4"])
    assert "threshold 0.4000 (given)" in given.stdout


def test_evaluate_pairs_csv(labelled, tmp_path):
    csv = labelled / "pairs.csv"
    csv.write_text("path_a,path_b,same\nitem0/orig.png,item0/copy1.jpg,1\nitem0/orig.png,item1/orig.png,0\n"
                   "item2/copy0.jpg,item2/orig.png,true\nitem3/orig.png,item4/copy2.jpg,false\n")
    result = CliRunner().invoke(cli, ["evaluate", str(labelled), "--pairs", str(csv), "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["pairs"] == {"positive": 2, "negative": 2}
    bad = labelled / "bad.csv"
    bad.write_text("a,b\nx,y\n")
    result = CliRunner().invoke(cli, ["evaluate", str(labelled), "--pairs", str(bad)])
    assert result.exit_code != 0 and result.output.startswith("Error: ")
