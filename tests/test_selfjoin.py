"""The cell-by-cell pair search (`dedup.selfjoin`) against brute force, and the cells an
index stores for it."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from dedup.ann import CentroidSeparation, build_index_cells, cell_probes, load_cells
from dedup.duplicates import find_duplicates
from dedup.manifest import Manifest
from dedup.pairs import Pairs
from dedup.search import range_pairs
from dedup.selfjoin import Task, nearest_cells, plan, run_task, self_pairs, threads
from tests.test_search import brute_pairs, unit_vectors


def planted(n_centres: int = 1500, copies: int = 2, dim: int = 16, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = unit_vectors(n_centres, dim, seed)
    near = [centres + rng.normal(scale=rng.uniform(0.01, 0.08), size=centres.shape).astype(np.float32) for _ in range(copies)]
    x = np.concatenate([centres, *near])
    return (x / np.linalg.norm(x, axis=1, keepdims=True))[rng.permutation(len(x))]


def as_set(p: Pairs) -> set[tuple[int, int]]:
    return set(zip(p.i.tolist(), p.j.tolist()))


def test_the_cell_search_finds_the_exact_pairs_and_only_true_ones():
    x = planted()
    exact = brute_pairs(x, 0.35)
    _, cells = build_index_cells(x, "IVF32,Flat", {"nprobe": 8}, probes=6)
    found = self_pairs(x, cells, 0.35)
    got = as_set(found)
    assert got <= exact  # nothing farther than the radius
    assert len(got) / len(exact) >= 0.99
    assert np.all(found.i < found.j) and len(got) == len(found)
    np.testing.assert_allclose(found.d, np.linalg.norm(x[found.i] - x[found.j], axis=1), atol=1e-4)


def test_probing_every_cell_is_exact():
    x = planted(n_centres=600)
    _, cells = build_index_cells(x, "IVF16,Flat", {}, probes=16)
    assert as_set(self_pairs(x, cells, 0.5)) == brute_pairs(x, 0.5)


def test_pairs_across_cell_borders_are_kept():
    x = planted(n_centres=800)
    _, cells = build_index_cells(x, "IVF32,Flat", {}, probes=4)
    got = as_set(self_pairs(x, cells, 0.35))
    across = {(i, j) for i, j in brute_pairs(x, 0.35) if cells.near[i, 0] != cells.near[j, 0]}
    assert across, "the catalog should have pairs split by a cell border"
    assert len(across & got) / len(across) >= 0.9


@pytest.mark.parametrize("entries", [50, 1000, 10**9])
def test_the_result_does_not_depend_on_how_the_cells_are_split_into_tasks(entries):
    x = planted(n_centres=500)
    _, cells = build_index_cells(x, "IVF16,Flat", {}, probes=4)
    tasks = plan(cells, 16, entries=entries)
    assert tasks[0].lo == 0 and tasks[-1].hi == 16
    for cell in range(16):  # each cell is searched whole once, or in parts 0..parts-1
        covering = [t for t in tasks if t.lo <= cell < t.hi]
        assert sorted(t.part for t in covering) == list(range(covering[0].parts))
    if entries == 50:
        assert any(t.parts > 1 for t in tasks), "crowded cells should be split into parts"
    parts = list(threads(2)(x, cells, tasks, 0.4))
    joined = set().union(*(as_set(p) for p in parts))
    assert joined == as_set(run_task(x, cells, Task(0, 16), 0.4))


def test_stored_cells_equal_the_ones_found_from_the_centroids():
    x = planted(n_centres=400)
    index, cells = build_index_cells(x, "IVF16,Flat", {}, probes=5)
    import faiss

    centroids = faiss.extract_index_ivf(index).quantizer.reconstruct_n(0, 16)
    again = nearest_cells(x, centroids, 5)
    assert np.mean(again[:, 0] == cells.near[:, 0]) > 0.999  # the same nearest cell (float ties aside)
    for list_no in range(16):  # each row lies in its own (first) cell
        ivf = faiss.extract_index_ivf(index)
        n = ivf.invlists.list_size(list_no)
        ids = faiss.rev_swig_ptr(ivf.invlists.get_ids(list_no), n).copy() if n else np.empty(0, np.int64)
        assert np.all(cells.near[ids, 0] == list_no)


@pytest.fixture()
def ivf_index(tmp_path, monkeypatch) -> tuple[np.ndarray, Path]:
    """Planted 64-d vectors stored as `dedup index` stores them, with an IVF index."""
    from benchmarks.scale import write_index

    monkeypatch.setattr("dedup.ann.FLAT_LIMIT", 1000)
    x = planted(n_centres=1500, dim=64)
    write_index(tmp_path / "ix", x)
    return x, tmp_path / "ix"


def test_a_large_index_stores_its_cells_and_find_duplicates_uses_them(ivf_index):
    x, folder = ivf_index
    manifest = Manifest.load(folder)
    assert manifest.faiss.factory.startswith("IVF") and manifest.faiss.cells
    cells = load_cells(folder, manifest)
    assert len(cells) == len(x)
    with_cells = find_duplicates(folder, 0.3, verify=False)
    # the same index without its cell file: cells are found from the centroids, same sets
    (folder / manifest.faiss.cells).unlink()
    replace(manifest, faiss=replace(manifest.faiss, cells="")).save(folder)
    without = find_duplicates(folder, 0.3, verify=False)
    assert [g.members for g in with_cells.groups] == [g.members for g in without.groups]
    assert len(with_cells.groups) > 1000
    exact = range_pairs(lambda: None, x, 0.3, cells=cells)
    assert with_cells.pairs == len(exact)


def crowded_vectors(n: int = 6000, hubs: int = 12, dim: int = 16, seed: int = 0) -> np.ndarray:
    """Rows packed around a few hubs: many IVF cells fall inside one neighbourhood."""
    rng = np.random.default_rng(seed)
    centres = unit_vectors(hubs, dim, seed)
    x = centres[rng.integers(hubs, size=n)] + rng.normal(scale=0.09, size=(n, dim)).astype(np.float32)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def probe_lists(probes) -> list[list[int]]:
    """Each row's probed cells, own first (padding dropped)."""
    return [[int(c) for c in probes.near[r] if c >= 0] + probes.more[probes.start[r] : probes.start[r + 1]].tolist()
            for r in range(len(probes))]


def test_rows_in_crowded_places_probe_every_cell_whose_border_is_within_reach():
    x = crowded_vectors()
    exact = brute_pairs(x, 0.3)
    _, fixed = build_index_cells(x, "IVF64,Flat", {}, probes=2, crowded=0.0)  # no row counts as crowded
    _, border = build_index_cells(x, "IVF64,Flat", {}, probes=2)
    assert fixed.extra == 0 and border.extra > 0
    assert np.array_equal(fixed.near[:, 0], border.near[:, 0])  # same own cells
    near_only = len(as_set(self_pairs(x, fixed, 0.3))) / len(exact)
    within_reach = as_set(self_pairs(x, border, 0.3))
    assert within_reach <= exact
    assert near_only < 0.95 and len(within_reach) / len(exact) >= 0.99


def test_a_cell_is_probed_exactly_when_its_border_is_within_reach():
    x = crowded_vectors(n=1500)
    index, probes = build_index_cells(x, "IVF32,Flat", {}, probes=3, reach=0.05)
    # blocks after one where most rows needed more cells search them for every row: same probes
    wide = dict(probes=2, reach=0.2, crowded=2.0)
    assert probe_lists(cell_probes(index.quantizer, x, block=100, **wide)) == \
        probe_lists(cell_probes(index.quantizer, x, block=len(x), **wide))
    centroids = index.quantizer.reconstruct_n(0, 32)
    d = np.linalg.norm(x[:, None, :] - centroids[None], axis=2)
    own = d.argmin(axis=1)
    sep = np.linalg.norm(centroids[:, None] - centroids[None], axis=2)
    lists = probe_lists(probes)
    for r in range(len(x)):
        assert lists[r][0] == own[r]
        if d[r, own[r]] >= 0.75:
            assert lists[r] == np.argsort(d[r], kind="stable")[:3].tolist()
            continue
        others = [b for b in range(32) if b != own[r]]
        border = {b: (d[r, b] ** 2 - d[r, own[r]] ** 2) / (2 * sep[own[r], b]) for b in others}
        assert sorted(lists[r][1:]) == sorted(b for b in others if border[b] < 0.05 - 1e-5 or
                                              (border[b] < 0.05 + 1e-5 and b in lists[r]))
        assert lists[r][1:] == sorted(lists[r][1:], key=lambda b: d[r, b])  # nearest first


def test_the_probes_of_a_task_are_every_near_and_further_cell_in_its_range():
    x = crowded_vectors(n=2000)
    _, probes = build_index_cells(x, "IVF32,Flat", {}, probes=3, reach=0.1)
    assert (probes.near == -1).any() and probes.extra > 0  # some rows probe fewer than 3, some more
    listed = [(r, int(c), k == 0) for r in range(len(x)) for k, c in enumerate(probes.near[r]) if c >= 0]
    listed += [(r, int(c), False) for r in range(len(x)) for c in probes.more[probes.start[r] : probes.start[r + 1]]]
    rows, target, own = probes.probing(5, 20, block=30)  # near rows and further cells scanned in several blocks
    assert sorted(zip(rows.tolist(), target.tolist(), own.tolist())) == sorted(t for t in listed if 5 <= t[1] < 20)
    assert np.all(np.diff(target) >= 0)
    assert probes.per_cell(32).sum() == len(listed)


def test_an_index_with_the_older_cell_file_still_searches(ivf_index):
    x, folder = ivf_index
    manifest = Manifest.load(folder)
    stored = load_cells(folder, manifest)
    np.save(folder / "index-0001.cells.npy", np.asarray(stored.near))  # as indexes stored them before
    replace(manifest, faiss=replace(manifest.faiss, cells="index-0001.cells.npy")).save(folder)
    older = load_cells(folder, Manifest.load(folder))
    assert older.extra == 0 and np.array_equal(older.near, stored.near)
    assert as_set(self_pairs(x, older, 0.3)) <= as_set(self_pairs(x, stored, 0.3))
    assert len(find_duplicates(folder, 0.3, verify=False).groups) > 1000


def test_evenly_spread_rows_probe_only_their_nearest_cells():
    x = unit_vectors(20_000, 64, 3)  # every centroid about as far: a margin would take them all
    _, probes = build_index_cells(x, "IVF256,Flat", {})
    assert probes.extra == 0 and probes.near.shape == (len(x), 8)


def test_centroid_separations_from_the_table_and_beyond_it_are_exact():
    centroids = unit_vectors(300, 16, 5)
    separation = CentroidSeparation(centroids, near=10)  # most pairs are not in the table
    rng = np.random.default_rng(0)
    a, b = rng.integers(300, size=5000), rng.integers(300, size=5000)
    direct = np.linalg.norm(centroids[a] - centroids[b], axis=1)
    assert np.allclose(separation(a, b), direct, atol=1e-5)


def test_each_worker_thread_searches_with_one_faiss_thread(monkeypatch):
    """OpenMP's thread count belongs to the calling thread: the runner's workers must set their
    own, or each of them would start a FAISS thread per core (this machine's cores > 1)."""
    import faiss

    import dedup.selfjoin as selfjoin

    seen = []
    monkeypatch.setattr(selfjoin, "run_task", lambda *args: seen.append(faiss.omp_get_max_threads()) or Pairs.empty())
    list(threads(2)(np.zeros((4, 2), np.float32), np.zeros((4, 1), np.int32), [Task(0, 1)] * 4, 1.0))
    assert seen == [1, 1, 1, 1]
