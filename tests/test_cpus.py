"""Thread counts follow the CPUs the process may use, a container's quota included (`dedup.cpus`)."""
from __future__ import annotations

import os

import pytest

from dedup import cpus, indexer


def cgroup(tmp_path, v2: str | None = None, v1: tuple[str, str] | None = None):
    if v2 is not None:
        (tmp_path / "cpu.max").write_text(v2 + "\n")
    if v1 is not None:
        (tmp_path / "cpu").mkdir()
        (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text(v1[0] + "\n")
        (tmp_path / "cpu" / "cpu.cfs_period_us").write_text(v1[1] + "\n")
    return tmp_path


@pytest.mark.parametrize("v2, v1, expected", [
    ("200000 100000", None, 2.0),
    ("150000 100000", None, 1.5),
    ("max 100000", None, None),
    (None, ("50000", "100000"), 0.5),
    (None, ("-1", "100000"), None),
    (None, None, None),
    ("garbage", None, None),
])
def test_quota_from_either_cgroup_version(tmp_path, v2, v1, expected):
    assert cpus.quota(cgroup(tmp_path, v2, v1)) == expected


def test_a_quota_below_the_affinity_bounds_the_count(tmp_path):
    affinity = len(os.sched_getaffinity(0))
    half, many = tmp_path / "half", tmp_path / "many"
    half.mkdir()
    many.mkdir()
    assert cpus.count(cgroup(tmp_path)) == affinity
    assert cpus.count(cgroup(half, v2="50000 100000")) == 1
    assert cpus.count(cgroup(many, v2=f"{100000 * (affinity + 8)} 100000")) == affinity  # a quota above the mask


@pytest.mark.parametrize("usable, encoder, decode", [(1, 1, 2), (2, 1, 2), (3, 1, 2), (4, 2, 2), (16, 8, 8)])
def test_indexing_splits_the_cpus_between_encoder_and_decoding(monkeypatch, usable, encoder, decode):
    monkeypatch.setattr(cpus, "usable", lambda: usable)
    assert (cpus.encoder_threads(), cpus.decode_threads(), cpus.check_threads()) == (encoder, decode, usable)


def test_index_decodes_on_the_default_threads_unless_told(planted, encoder, tmp_path, monkeypatch):
    root, _ = planted
    seen = []
    real = indexer._local_stage
    monkeypatch.setattr(indexer, "_local_stage", lambda workers: seen.append(workers) or real(workers))
    monkeypatch.setattr(cpus, "decode_threads", lambda: 3)
    indexer.index_catalog(root, tmp_path / "a", encoder)
    indexer.index_catalog(root, tmp_path / "b", encoder, workers=1)
    assert seen == [3, 1]
