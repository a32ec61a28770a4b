"""Every command through click's CliRunner: exit codes, JSON shapes, one-line errors, docs."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from dedup.cli import cli

README = Path(__file__).resolve().parent.parent / "README.md"


@pytest.fixture()
def runner():
    return CliRunner()


@pytest.fixture(scope="module")
def cli_index(planted, tmp_path_factory):
    root, _ = planted
    folder = tmp_path_factory.mktemp("cli") / "idx"
    result = CliRunner().invoke(cli, ["index", str(root), "--index", str(folder), "-q", "--format", "json"])
    assert result.exit_code == 0, result.output
    return folder, json.loads(result.stdout)


def test_index_summary(cli_index, planted):
    _, summary = cli_index
    assert summary["indexed"] == 59 and summary["exact_duplicates"] == 1 and summary["skipped"] == []


def test_index_reports_skipped_files(runner, tmp_path):
    from dedup.synth import jpeg_bytes, scene

    cat = tmp_path / "cat"
    cat.mkdir()
    (cat / "good.jpg").write_bytes(jpeg_bytes(scene(1)))
    (cat / "notes.jpg").write_text("not an image")
    (cat / "empty.png").write_bytes(b"")
    report = tmp_path / "report.json"
    result = runner.invoke(cli, ["index", str(cat), "--index", str(tmp_path / "i"), "-q", "--report", str(report)])
    assert result.exit_code == 0, result.output
    assert "Indexed 1 images" in result.stdout and "Skipped 2 files" in result.stdout
    doc = json.loads(report.read_text())
    assert {s["path"]: s["reason"] for s in doc["skipped"]} == {
        "empty.png": "empty file (0 bytes)", "notes.jpg": "not an image (unrecognised content)"}


def test_find_duplicates_json_shape(runner, cli_index, planted):
    folder, _ = cli_index
    root, truth = planted
    result = runner.invoke(cli, ["find-duplicates", "--index", str(folder), "--format", "json", "-q"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["index"] == str(folder) and doc["catalog"] == str(root.resolve())
    assert 0 < doc["threshold"] <= 2
    assert len(doc["groups"]) == sum(1 for v in truth.values() if v)
    for g in doc["groups"]:
        assert set(g) >= {"keep", "max_distance", "members"}
        assert g["members"][0] == {"path": g["keep"], "distance": 0.0}
        assert all(set(m) == {"path", "distance"} for m in g["members"])


def test_find_duplicates_csv_table_and_output_file(runner, cli_index, tmp_path):
    folder, _ = cli_index
    out = tmp_path / "dups.csv"
    result = runner.invoke(cli, ["find-duplicates", "--index", str(folder), "--format", "csv", "-o", str(out), "-q"])
    assert result.exit_code == 0 and out.read_text().startswith("group,path,keep,distance")
    table = runner.invoke(cli, ["find-duplicates", "--index", str(folder), "-q", "--linkage", "single"])
    assert table.exit_code == 0 and "Set 1:" in table.stdout


def test_query_json_shape(runner, cli_index, planted):
    folder, _ = cli_index
    root, _ = planted
    img = root / "photos/img_0003.png"
    result = runner.invoke(cli, ["query", str(img), "--index", str(folder), "-k", "3", "--format", "json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc[0]["query"] == str(img) and len(doc[0]["neighbors"]) == 3
    assert doc[0]["neighbors"][0] == {"path": "photos/img_0003.png", "distance": doc[0]["neighbors"][0]["distance"]}
    assert doc[0]["neighbors"][0]["distance"] < 1e-3


def test_compare(runner, planted):
    root, truth = planted
    same = runner.invoke(cli, ["compare", str(root / "photos/img_0001.jpg"), str(root / truth["photos/img_0001.jpg"][0]), "--format", "json"])
    assert same.exit_code == 0, same.output
    assert json.loads(same.stdout)["same"] is True
    diff = runner.invoke(cli, ["compare", str(root / "photos/img_0001.jpg"), str(root / "photos/img_0030.png")])
    assert diff.exit_code == 0 and "different" in diff.stdout


def test_default_index_location(runner, planted, tmp_path, monkeypatch):
    root, _ = planted
    monkeypatch.chdir(tmp_path)
    assert runner.invoke(cli, ["index", str(root), "-q"]).exit_code == 0
    assert (tmp_path / "indexes" / root.name / "manifest.json").is_file()
    assert runner.invoke(cli, ["find-duplicates", "-q"]).exit_code == 0
    (tmp_path / "indexes" / "other").mkdir()
    (tmp_path / "indexes" / "other" / "manifest.json").write_text("{}")
    result = runner.invoke(cli, ["find-duplicates", "-q"])
    assert result.exit_code != 0 and "choose one (--index)" in result.output


def one_line_error(result) -> str:
    assert result.exit_code != 0
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert "Traceback" not in result.output
    return lines[0]


def test_user_mistakes_are_one_line_errors(runner, tmp_path, cli_index, tiny_model_file, planted):
    folder, _ = cli_index
    root, _ = planted
    (tmp_path / "empty").mkdir()
    assert "does not exist" in one_line_error(runner.invoke(cli, ["index", str(tmp_path / "missing")]))
    assert "no files" in one_line_error(runner.invoke(cli, ["index", str(tmp_path / "empty"), "-q"]))
    (tmp_path / "file.jpg").write_bytes(b"x")
    assert "is a file" in one_line_error(runner.invoke(cli, ["index", str(tmp_path / "file.jpg")]))
    assert "no index" in one_line_error(runner.invoke(cli, ["find-duplicates", "--index", str(tmp_path / "nope")]))
    assert "threshold" in one_line_error(runner.invoke(cli, ["find-duplicates", "--index", str(folder), "-t", "3"]))
    mismatch = runner.invoke(cli, ["query", str(root / "photos/img_0001.jpg"), "--index", str(folder), "--model", str(tiny_model_file)])
    assert "model" in one_line_error(mismatch)
    assert "not found" in one_line_error(runner.invoke(cli, ["compare", "a.jpg", "b.jpg", "--model", str(tmp_path / "x.pt")]))


def test_index_with_another_model_records_it(runner, planted, tmp_path, tiny_model_file):
    root, _ = planted
    folder = tmp_path / "tiny-index"
    assert runner.invoke(cli, ["index", str(root), "--index", str(folder), "--model", str(tiny_model_file), "-q"]).exit_code == 0
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["model"]["identity"].startswith("tiny:") and manifest["dim"] == 16
    result = runner.invoke(cli, ["query", str(root / "photos/img_0001.jpg"), "--index", str(folder), "--format", "json"])
    assert result.exit_code == 0, result.output  # the recorded model is loaded by itself


def commands():
    return sorted(cli.commands)


@pytest.mark.parametrize("name", commands())
def test_every_command_has_help_and_a_readme_section(runner, name):
    result = runner.invoke(cli, [name, "--help"])
    assert result.exit_code == 0
    assert len(cli.commands[name].help or "") > 20
    assert re.search(rf"^###+ `dedup {re.escape(name)}", README.read_text(), re.M), f"README lacks a section for {name}"


def test_incoming_folder_against_the_catalog(runner, cli_index, planted, tmp_path):
    from dedup.synth import jpeg_bytes, scene

    folder, _ = cli_index
    root, _ = planted
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    (incoming / "reupload.jpg").write_bytes((root / "photos/img_0002.jpg").read_bytes())
    (incoming / "brand_new.jpg").write_bytes(jpeg_bytes(scene(31337)))
    q = runner.invoke(cli, ["query", str(incoming), "--index", str(folder), "-k", "1", "--format", "json"])
    assert q.exit_code == 0, q.output
    assert [r["query"] for r in json.loads(q.stdout)] == [str(incoming / "brand_new.jpg"), str(incoming / "reupload.jpg")]
    new_idx = tmp_path / "incoming-index"
    assert runner.invoke(cli, ["index", str(incoming), "--index", str(new_idx), "-q"]).exit_code == 0
    result = runner.invoke(cli, ["find-duplicates", "--index", str(new_idx), "--against", str(folder), "--format", "json", "-q", "-t", "0.05"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert [r["query"] for r in doc] == ["reupload.jpg"]
    assert doc[0]["neighbors"][0]["path"] == "photos/img_0002.jpg"
    for alone in (["--action", "move", "--to", str(tmp_path / "moved"), "--apply"], ["--linkage", "single"]):
        refused = runner.invoke(cli, ["find-duplicates", "--index", str(new_idx), "--against", str(folder), *alone])
        assert refused.exit_code != 0 and refused.output.count("Error:") == 1 and alone[0] in refused.output
    assert sorted(p.name for p in incoming.iterdir()) == ["brand_new.jpg", "reupload.jpg"] and not (tmp_path / "moved").exists()


def test_a_termination_request_is_an_interruption(runner, cli_index, monkeypatch):
    import os
    import signal
    import time

    import dedup.duplicates

    def terminated(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler interrupts this
        raise AssertionError("not interrupted")

    monkeypatch.setattr(dedup.duplicates, "find_duplicates", terminated)
    before = signal.getsignal(signal.SIGTERM)
    result = runner.invoke(cli, ["find-duplicates", "--index", str(cli_index[0]), "-q"])
    assert result.exit_code == 130 and "the pair checks done are kept" in result.stderr
    assert signal.getsignal(signal.SIGTERM) is before  # restored after the command
