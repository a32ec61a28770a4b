from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dedup.errors import IndexFormatError
from dedup.manifest import FaissFile, Manifest, ModelRef
from dedup.store import Row, ShardWriter, StoredPictures, iter_shards, read_embeddings, read_rows


def committed(shards, dim: int) -> Manifest:
    """A manifest committing `shards` of `dim`-d rows."""
    return Manifest("cat", ModelRef("m:0", "m"), 32, dim, "h", tuple(shards), FaissFile("f", "Flat"), pictures=256)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 60), per_shard=st.integers(1, 25), dim=st.sampled_from([2, 8, 64]))
def test_shards_round_trip(tmp_path_factory, n, per_shard, dim):
    folder = tmp_path_factory.mktemp("store")
    rng = np.random.default_rng(n)
    emb = rng.normal(size=(n, dim)).astype(np.float32)
    rows = [Row(f"dir/ü {k}\n.jpg", k * 10, 1_700_000_000_000_000_000 + k, f"h{k % 3}", 100 + k, 50) for k in range(n)]
    pictures = [rng.bytes(int(rng.integers(0, 40))) for _ in range(n)]  # an empty one too
    w = ShardWriter(folder / "shards", dim, rows_per_shard=per_shard, pictures=True)
    for s in range(0, n, 7):
        w.add(rows[s : s + 7], emb[s : s + 7], pictures[s : s + 7])
    shards = w.close()
    assert [s.rows for s in shards] == [min(per_shard, n - k) for k in range(0, n, per_shard)]
    manifest = committed(shards, dim)
    np.testing.assert_array_equal(read_embeddings(folder, manifest), emb)
    stored = StoredPictures(folder, manifest)
    order = rng.permutation(n)
    assert [stored(int(k)) for k in order] == [pictures[k] for k in order]
    back = read_rows(folder, manifest)
    assert back.path.tolist() == [r.path for r in rows]
    assert back.mtime_ns.tolist() == [r.mtime_ns for r in rows]
    assert back.width.tolist() == [r.width for r in rows]
    some = np.sort(rng.choice(n, size=rng.integers(0, n + 1), replace=False)).astype(np.int64)
    part = read_rows(folder, manifest, some)  # shard by shard, only those rows
    for column in ("path", "size", "mtime_ns", "content_hash", "width", "height"):
        assert getattr(part, column).tolist() == getattr(back.take(some), column).tolist()


def test_a_writer_with_pictures_refuses_rows_without_them_and_a_lost_picture_file_is_a_clear_error(tmp_path):
    import pytest

    from dedup.errors import IndexFormatError

    w = ShardWriter(tmp_path / "shards", 2, pictures=True)
    with pytest.raises(ValueError):
        w.add([Row("a", 1, 1, "h", 1, 1)], np.zeros((1, 2), np.float32))
    w.add([Row("a", 1, 1, "h", 1, 1)], np.zeros((1, 2), np.float32), [b"jpeg"])
    shards = w.close()
    manifest = committed(shards, 2)
    assert StoredPictures(tmp_path, manifest)(0) == b"jpeg"
    next((tmp_path / "shards").glob("*.pictures")).unlink()
    with pytest.raises(IndexFormatError, match="rebuild"):
        StoredPictures(tmp_path, manifest)(0)


def test_writing_and_reading_shards_imports_neither_pandas_nor_the_dataset_layer(tmp_path):
    """Both cost ~0.2 s of start-up on every command where they are installed."""
    script = f"""
import sys
import subprocess
import sys

import numpy as np
import pytest
from dedup.manifest import FaissFile, Manifest, ModelRef
from dedup.errors import IndexFormatError
from dedup.store import Row, ShardWriter, StoredPictures, iter_shards, read_embeddings, read_rows
from pathlib import Path
folder = Path({str(tmp_path)!r})
w = ShardWriter(folder / "shards", 4, pictures=True)
w.add([Row("a.jpg", 1, 2, "h", 3, 4), Row("b.jpg", 1, 2, "h", 3, 4)], np.ones((2, 4), np.float32), [b"x", b"yz"])
manifest = Manifest("cat", ModelRef("m:0", "m"), 32, 4, "h", tuple(w.close()), FaissFile("f", "Flat"), pictures=256)
assert read_embeddings(folder, manifest).shape == (2, 4)
assert read_rows(folder, manifest, np.array([1])).path.tolist() == ["b.jpg"] and StoredPictures(folder, manifest)(1) == b"yz"
print(sorted({{"pandas", "pyarrow.dataset"}} & set(sys.modules)))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_shard_without_the_columns_asked_for_is_a_clear_error(tmp_path):
    w = ShardWriter(tmp_path / "shards", 4)  # no check pictures
    w.add([Row("a.jpg", 1, 2, "h", 3, 4)], np.ones((1, 4), np.float32))
    manifest = committed(w.close(), 4)
    with pytest.raises(IndexFormatError, match="holds no check pictures"):
        StoredPictures(tmp_path, manifest)(0)
    with pytest.raises(IndexFormatError, match="unreadable .*no column nothing"):
        list(iter_shards(tmp_path, manifest, ["nothing"]))
