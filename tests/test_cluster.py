from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from dedup.ann import build_index
from dedup.cluster import group_pairs
from dedup.pairs import Pairs
from dedup.search import range_pairs


def pairs_of(edges: list[tuple[int, int, float]]) -> Pairs:
    e = sorted((min(a, b), max(a, b), d) for a, b, d in edges)
    return Pairs(np.array([a for a, _, _ in e], np.int64), np.array([b for _, b, _ in e], np.int64), np.array([d for *_, d in e], np.float32))


def chain(n: int, step: float = 0.3) -> np.ndarray:
    """Points on a great circle, each `step` from the next: ends are far apart."""
    ang = np.arange(n) * 2 * np.arcsin(step / 2)
    return np.stack([np.cos(ang), np.sin(ang)], axis=1).astype(np.float32)


def test_chain_is_split_by_default_and_joined_by_single_linkage():
    x = chain(20)
    pairs = range_pairs(build_index(x, "Flat", {}), x, 0.35)
    rank = np.arange(20)
    single = group_pairs(20, pairs, rank, "single")
    assert len(single) == 1 and len(single[0]) == 20
    for linkage in ("center", "complete"):
        groups = group_pairs(20, pairs, rank, linkage)
        assert len(groups) > 1
        for g in groups:
            span = np.linalg.norm(x[g][:, None] - x[g][None], axis=-1).max()
            assert span < 0.35 * (2 if linkage == "center" else 1) + 1e-6


def test_center_groups_are_within_threshold_of_their_centre():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 4)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    t = 0.5
    pairs = range_pairs(build_index(x, "Flat", {}), x, t)
    for g in group_pairs(300, pairs, np.arange(300), "center"):
        d = np.linalg.norm(x[g][:, None] - x[g][None], axis=-1)
        assert (d < t).all(axis=1).any()  # some member (the centre) is close to all


@st.composite
def graphs(draw):
    n = draw(st.integers(2, 25))
    edges = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1), st.floats(0.01, 0.49)), max_size=60))
    uniq = {}
    for a, b, d in edges:
        if a != b:
            uniq[(min(a, b), max(a, b))] = round(d, 3)
    return n, [(a, b, d) for (a, b), d in uniq.items()]


@settings(max_examples=60, deadline=None)
@given(graphs(), st.sampled_from(["center", "complete", "single"]), st.randoms(use_true_random=False))
def test_groups_partition_and_ignore_id_order(graph, linkage, rnd):
    n, edges = graph
    rank = np.arange(n)
    groups = group_pairs(n, pairs_of(edges), rank, linkage)
    members = np.concatenate(groups) if groups else np.array([], int)
    assert len(members) == len(set(members.tolist()))  # disjoint
    touched = {a for a, _, _ in edges} | {b for _, b, _ in edges}
    assert set(members.tolist()) <= touched and all(len(g) >= 2 for g in groups)
    if linkage == "single":
        assert set(members.tolist()) == touched
    if linkage == "complete":  # every two members are a pair
        close = {(min(a, b), max(a, b)) for a, b, _ in edges}
        assert all((int(g[x]), int(g[y])) in close for g in groups for x in range(len(g)) for y in range(x + 1, len(g)))
    # relabel ids with a permutation (rank travels with the item): same groups
    perm = list(range(n))
    rnd.shuffle(perm)
    perm = np.array(perm)
    new_rank = np.empty(n, int)
    new_rank[perm] = rank
    moved = group_pairs(n, pairs_of([(perm[a], perm[b], d) for a, b, d in edges]), new_rank, linkage)
    inv = np.argsort(perm)
    assert sorted(sorted(inv[g].tolist()) for g in moved) == sorted(sorted(g.tolist()) for g in groups)


def test_complete_linkage_keeps_a_copy_with_its_original_before_a_look_alike_takes_one():
    # 0 and 1: a picture and its copy; 2: a look-alike close to 0 and to two others, not to the copy
    edges = [(0, 1, 0.05), (0, 2, 0.1), (2, 3, 0.1), (2, 4, 0.1), (0, 3, 0.2), (3, 4, 0.2)]
    for rank in (np.arange(5), np.arange(5)[::-1].copy()):
        groups = sorted(sorted(g.tolist()) for g in group_pairs(5, pairs_of(edges), rank, "complete"))
        assert groups == [[0, 1], [2, 3, 4]]
