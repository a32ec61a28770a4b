"""The Ray engine gives the local engine's results: the same embeddings, rows, skips and
duplicate sets, also when a worker dies mid-run; run on a local Ray instance (2 CPUs)."""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from dedup.cli import cli
from dedup.duplicates import find_duplicates
from dedup.engine import engine_for
from dedup.errors import EngineError, UsageError
from dedup.index import Index
from dedup.indexer import index_catalog
from dedup.keypoints import RULED_OUT
from dedup.model import Model
from dedup.onray import RayEngine
from dedup.policy import CheckedPolicy
from dedup.selfjoin import plan, run_task, self_pairs, threads
from dedup.synth import make_catalog
from tests.fakes import fake_model
from tests.test_selfjoin import as_set
from tests.test_selfjoin import planted as planted_vectors

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the dying test doubles below
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def catalog(tmp_path_factory) -> Path:
    """Scenes with edited and byte-identical copies, a file that is not an image, an empty file."""
    root = tmp_path_factory.mktemp("raycat") / "shop"
    make_catalog(root, originals=24, duplicated=8, seed=5)
    (root / "notes.jpg").write_bytes(b"this is not a picture")
    (root / "empty.png").write_bytes(b"")
    return root


class DiesOnce(torch.nn.Module):
    """The fake encoder's network, whose process exits the first time it runs while `marker`
    does not exist (it creates the marker first, so the retried call goes through)."""

    def __init__(self, net: torch.nn.Module, marker: str):
        super().__init__()
        self.net, self.marker = net, marker

    def forward(self, x):
        if not os.path.exists(self.marker):
            Path(self.marker).touch()
            os._exit(1)
        return self.net(x)


def dying_model(marker: Path) -> Model:
    model = fake_model()
    return Model(DiesOnce(model.net, str(marker)), model.config, model.meta, model.name)


def same_index(a: Path, b: Path) -> None:
    x, y = Index.open(a), Index.open(b)
    np.testing.assert_allclose(x.vectors, y.vectors, atol=1e-5)
    for column in ("path", "size", "mtime_ns", "content_hash", "width", "height"):
        assert list(getattr(x.rows, column)) == list(getattr(y.rows, column)), column
    assert x.manifest.skipped == y.manifest.skipped
    assert x.manifest.model == y.manifest.model and x.manifest.count == y.manifest.count


def sets(folder: Path, engine=None) -> list:
    report = find_duplicates(folder, verify=False, engine=engine)
    return [(g.keep, g.members, g.exact) for g in report.groups]


def test_ray_indexing_gives_the_local_index_and_sets(local_ray, catalog, tmp_path):
    model = fake_model()
    local = index_catalog(catalog, tmp_path / "local", model)
    on_ray = index_catalog(catalog, tmp_path / "ray", model, engine=RayEngine())
    same_index(tmp_path / "local", tmp_path / "ray")
    assert {s.rel for s in on_ray.skipped} == {"notes.jpg", "empty.png"}
    assert (on_ray.indexed, on_ray.embedded, on_ray.exact_duplicates) == (local.indexed, local.embedded, local.exact_duplicates)
    found = sets(tmp_path / "ray", RayEngine())
    assert found == sets(tmp_path / "local") and len(found) >= 8


def test_ray_indexing_is_incremental_like_the_local_engine(local_ray, catalog, tmp_path):
    root = tmp_path / "shop"
    shutil.copytree(catalog, root)
    model = fake_model()
    for folder, engine in (("local", None), ("ray", RayEngine())):
        index_catalog(root, tmp_path / folder, model, engine=engine)
    next(iter(sorted((root / "photos").iterdir()))).unlink()
    shutil.copy(root / "copies" / "img_0001_copy0.jpg", root / "new.jpg")  # new path, known bytes
    summaries = [index_catalog(root, tmp_path / folder, model, engine=engine)
                 for folder, engine in (("local", None), ("ray", RayEngine()))]
    counts = [(s.added, s.removed, s.unchanged, s.embedded) for s in summaries]
    assert counts[0] == counts[1] and counts[0][:2] == (1, 1) and counts[0][3] == 0
    same_index(tmp_path / "local", tmp_path / "ray")


def test_a_worker_killed_while_embedding_changes_nothing(local_ray, catalog, tmp_path):
    marker = tmp_path / "died"
    marker.touch()  # the local run must not die
    index_catalog(catalog, tmp_path / "local", dying_model(marker))
    marker.unlink()
    index_catalog(catalog, tmp_path / "ray", dying_model(marker), engine=RayEngine())
    assert marker.exists(), "a Ray worker should have died (and been replaced)"
    same_index(tmp_path / "local", tmp_path / "ray")


def dies_once(marker: str):
    def search(vectors, probes, task, radius):
        if not os.path.exists(marker):
            Path(marker).touch()
            os._exit(1)
        return run_task(vectors, probes, task, radius)

    return search


def test_the_pair_search_on_ray_equals_threads_also_when_a_worker_dies(local_ray, tmp_path):
    from dedup.ann import build_index_cells
    from dedup.onray.search import ray_runner

    x = planted_vectors(n_centres=1500)
    _, cells = build_index_cells(x, "IVF32,Flat", {}, probes=6)
    assert len(plan(cells, 32, entries=2000)) > 4
    expected = self_pairs(x, cells, 0.35, runner=threads(2))
    marker = tmp_path / "died"
    found = self_pairs(x, cells, 0.35, runner=ray_runner(local_ray, search=dies_once(str(marker))))
    assert marker.exists(), "a Ray worker should have died (and its task been retried)"
    assert as_set(found) == as_set(expected) and len(found) == len(expected)
    np.testing.assert_array_equal(found.d, expected.d)


def test_find_duplicates_on_ray_through_the_cli_prints_the_local_sets(local_ray, tmp_path, monkeypatch):
    from benchmarks.scale import write_index

    monkeypatch.setattr("dedup.ann.FLAT_LIMIT", 1000)  # an IVF index, searched cell by cell
    write_index(tmp_path / "ix", planted_vectors(n_centres=1500, dim=64))
    assert Index.open(tmp_path / "ix").manifest.faiss.cells
    runner = CliRunner()
    out = {}
    for engine in ("local", "ray"):
        result = runner.invoke(cli, ["find-duplicates", "--index", str(tmp_path / "ix"), "--no-verify", "--format", "json",
                                     "-t", "0.3", "-q", "--engine", engine])
        assert result.exit_code == 0, result.output
        out[engine] = result.stdout
    assert out["ray"] == out["local"] and '"members"' in out["ray"]


def test_the_engine_is_chosen_in_one_place_and_mistakes_are_one_line(monkeypatch, tmp_path):
    assert engine_for("local") is None and isinstance(engine_for("ray", "10.0.0.1:6379"), RayEngine)
    with pytest.raises(UsageError):
        engine_for("local", "10.0.0.1:6379")
    result = CliRunner().invoke(cli, ["index", str(tmp_path), "--address", "x:1"])
    assert result.exit_code != 0 and "(--address)" in result.output and "Traceback" not in result.output
    monkeypatch.setitem(sys.modules, "ray", None)  # Ray not installed
    with pytest.raises(EngineError, match="dedup-images\\[ray\\]"):
        RayEngine().index_batches()


def test_the_pair_check_on_ray_gives_the_local_verdicts(local_ray, built_index, monkeypatch):
    monkeypatch.setattr("dedup.onray.matching.CHUNK_PAIRS", 8)  # several Ray tasks
    decisions = []
    decide = CheckedPolicy.decide

    def recorded(self, pairs, pictures, other=None, **kwargs):
        decision = decide(self, pairs, pictures, other, **kwargs)
        if other is None and kwargs.get("through_part") is None:  # the first pass, not pairs found through a part or window
            decisions.append(decision)
        return decision

    monkeypatch.setattr(CheckedPolicy, "decide", recorded)
    local = find_duplicates(built_index)
    on_ray = find_duplicates(built_index, engine=RayEngine())
    assert local.verified is not None and local.verified.candidates > 8
    assert on_ray.verified == local.verified
    # each task is given its chunk's share of the test for pairs not worth matching
    assert (decisions[0].inliers == RULED_OUT).any() and decisions[1].inliers.tolist() == decisions[0].inliers.tolist()
    assert [(g.keep, g.members) for g in on_ray.groups] == [(g.keep, g.members) for g in local.groups]


def test_windows_and_pasted_pictures_looked_at_on_ray_give_the_local_sets(local_ray, tmp_path, monkeypatch):
    from dedup.model import load_model
    from tests.test_windows import crop_and_paste, scenes, textured

    monkeypatch.setattr("dedup.onray.looking.CHUNK_ROWS", 4)  # several Ray tasks
    catalog = tmp_path / "cat"
    scenes(catalog, 300, 8)
    crop_and_paste(catalog, 300, 4)
    index_catalog(catalog, tmp_path / "local", load_model())
    shutil.copytree(tmp_path / "local", tmp_path / "ray")
    looked = []
    from dedup.onray import looking

    real = looking.ray_looker
    monkeypatch.setattr(looking, "ray_looker", lambda ray, chunk=None: (lambda *a: looked.append(len(a[2])) or real(ray, chunk)(*a)))
    local = find_duplicates(tmp_path / "local")
    on_ray = find_duplicates(tmp_path / "ray", engine=RayEngine())
    assert looked and sum(looked) == 2 * 10  # every picture looked at for a pasted picture and through windows, on Ray
    assert {frozenset(m.path for m in g.members) for g in local.groups} >= {frozenset({"scene0.png", "crop.png"}),
                                                                             frozenset({"scene1.png", "pasted.png"})}
    assert [(g.keep, g.members) for g in on_ray.groups] == [(g.keep, g.members) for g in local.groups]

    from dedup.duplicates import find_against  # uploads against the catalog: the same matches on Ray

    (tmp_path / "up").mkdir()
    textured(302).crop((60, 30, 250, 170)).save(tmp_path / "up" / "crop2.png")
    index_catalog(tmp_path / "up", tmp_path / "up_local", load_model())
    shutil.copytree(tmp_path / "up_local", tmp_path / "up_ray")
    looked.clear()
    expected = find_against(tmp_path / "up_local", tmp_path / "local")
    assert [n.path for r in expected.results for n in r.neighbors] == ["scene2.png"]
    assert find_against(tmp_path / "up_ray", tmp_path / "ray", engine=RayEngine()) == expected and looked
