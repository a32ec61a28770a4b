"""The index manifest: one typed owner, a lossless round trip, damage refused with a reason."""
from __future__ import annotations

import json

import pytest

from dedup.config import VerifyConfig
from dedup.errors import IndexFormatError, IndexNotFoundError
from dedup.files import Skipped
from dedup.manifest import FILE, FaissFile, Manifest, ModelRef, Shard

MANIFEST = Manifest(
    catalog="/photos", model=ModelRef("default:0123", "default"), image_size=64, dim=64, hash="blake3-128",
    shards=(Shard("shards-0001/shard-00000.parquet", 10), Shard("shards-0001/shard-00001.parquet", 5)),
    faiss=FaissFile("index-0001.faiss", "IVF256,Flat", {"nprobe": 16}), threshold=0.35,
    verify=VerifyConfig(candidates=0.8, weights=(1.0, 2.0, 3.0, 4.0), bias=-1.0), skipped=(Skipped("x.txt", "not an image"),),
    generation=1, created="2026-12-02T00:00:00+00:00", dedup_version="0.1.0",
)


def test_a_manifest_round_trips_through_its_file(tmp_path):
    MANIFEST.save(tmp_path)
    assert Manifest.load(tmp_path) == MANIFEST
    doc = json.loads((tmp_path / FILE).read_text())
    assert doc["count"] == 15 and doc["version"] == 1 and doc["format"] == "dedup-index"
    assert MANIFEST.files() == ["index-0001.faiss", "shards-0001"]


@pytest.mark.parametrize("damage, words", [
    (lambda d: d.pop("dim"), "dim"),
    (lambda d: d.update(count=16), "count"),
    (lambda d: d["faiss"].update(file="../elsewhere"), "leaves the index folder"),
    (lambda d: d.update(version=99), "upgrade dedup"),
    (lambda d: d["shards"][0].update(rows="ten"), "wrong type"),
])
def test_damage_is_refused_with_what_is_wrong(tmp_path, damage, words):
    doc = MANIFEST.to_dict()
    damage(doc)
    (tmp_path / FILE).write_text(json.dumps(doc))
    with pytest.raises(IndexFormatError, match=words):
        Manifest.load(tmp_path)


def test_no_manifest_is_no_index(tmp_path):
    with pytest.raises(IndexNotFoundError):
        Manifest.load(tmp_path)
