"""One duplicate policy per kind: the threshold each resolves to, the candidates each looks at
(checked against brute force), and the errors a front end turns into its own flags."""
from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from dedup.actions import ActionRequest
from dedup.ann import build_index
from dedup.cli import cli
from dedup.config import VerifyConfig
from dedup.errors import UsageError
from dedup.policy import CheckedPolicy, DistancePolicy, policy_for

CHECK = VerifyConfig(candidates=0.9, weights=(0.0, 2.0, 0.0, 0.0), bias=-6.0, neighbours=3)


def test_the_threshold_resolves_in_one_place():
    assert policy_for(0.35, None) == DistancePolicy(0.35)
    assert policy_for(0.35, CHECK, verify=False) == DistancePolicy(0.35)
    assert policy_for(0.35, None, 0.6) == DistancePolicy(0.6)
    checked = policy_for(0.35, CHECK)
    assert isinstance(checked, CheckedPolicy) and (checked.threshold, checked.encoder_threshold) == (0.9, 0.35)
    assert policy_for(0.35, CHECK, 0.2).encoder_threshold == 0.2  # a stricter threshold bounds both
    assert (DistancePolicy(0.3).linkage, checked.linkage) == ("center", "complete")
    with pytest.raises(UsageError) as err:
        policy_for(0.35, None, 2.5)
    assert err.value.option == "threshold"


def unit(n: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, 8)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def brute(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.linalg.norm(a[:, None] - b[None], axis=2)


@pytest.mark.parametrize("within", [True, False])
def test_candidates_match_brute_force(within):
    base = unit(300, 0)
    queries = base if within else unit(40, 1)
    index = build_index(base, "Flat", {})
    d = brute(queries, base)
    policy = CheckedPolicy(CHECK, 0.9, 0.5)
    got = {(int(i), int(j)) for i, j in zip(*(lambda p: (p.i, p.j))(policy.candidates(index, queries, within=within)))}
    want = set()
    for i in range(len(queries)):
        order = [j for j in np.argsort(d[i]) if not (within and j == i)]
        near = {j for j in order if d[i, j] < 0.5} | {j for j in order[: CHECK.neighbours] if d[i, j] < 0.9}
        want |= {(min(i, j), max(i, j)) if within else (i, int(j)) for j in near}
    assert got == want
    plain = DistancePolicy(0.6).candidates(index, queries, within=within)
    assert len(plain) == (int((np.triu(d < 0.6, 1)).sum()) if within else int((d < 0.6).sum()))


def test_a_distance_policy_decides_by_distance_alone():
    from dedup.pairs import Pairs

    pairs = Pairs(np.array([0, 0]), np.array([1, 2]), np.array([0.2, 0.4], np.float32))
    decision = DistancePolicy(0.3).decide(pairs, lambda row: None)
    assert decision.keep.tolist() == [True, False] and decision.verified is None


def test_of_two_kept_pairs_joining_two_items_told_apart_the_weaker_is_told_apart_too():
    from dedup.pairs import Pairs
    from dedup.policy import through_copies

    # items 0 and 1 of one series, told apart; 2 is an edited copy of 0, kept with both; 3 and 4 unrelated
    pairs = Pairs(np.array([0, 0, 1, 3]), np.array([1, 2, 2, 4]), np.array([0.10, 0.30, 0.25, 0.2], np.float32))
    kept, apart = np.array([False, True, True, True]), np.array([True, False, False, False])
    inliers = np.array([300, 310, 290, 50])  # the copy shares the detail's keypoints with its own original
    assert through_copies(pairs, kept, apart, inliers).tolist() == [False, False, True, False]
    assert through_copies(pairs, kept, apart, np.array([300, 290, 310, 50])).tolist() == [False, True, False, False]
    assert through_copies(pairs, kept, apart, np.full(4, 300)).tolist() == [False, True, False, False]  # as many: the farther
    assert not through_copies(pairs, kept, np.zeros(4, bool), inliers).any()
    assert not through_copies(pairs, np.array([False, True, False, True]), apart, inliers).any()  # 2 joins only one of them
    # counts within `EVEN` of each other (310 and 290): the differing spot decides where it can
    asked = []

    def prefer(x, y, t):
        asked.append((x, y, t))
        return False  # laid over 0, the copy looks like 1 where 0 and 1 differ
    assert through_copies(pairs, kept, apart, inliers, prefer).tolist() == [False, True, False, False] and asked == [(1, 2, 0)]
    assert through_copies(pairs, kept, apart, inliers, lambda x, y, t: None).tolist() == [False, False, True, False]
    assert through_copies(pairs, kept, apart, np.array([300, 310, 100, 50]), prefer).tolist() == [False, False, True, False]


def test_the_checked_policy_applies_it_to_what_the_detail_test_told_apart():
    from dedup.keypoints import Matches
    from dedup.pairs import Pairs

    def many_agreeing(pairs, pictures, side, count, workers, on_progress=None, regions=None, corner=None, worth=None):
        return Matches(np.full(len(pairs), 80, np.int32), np.full(len(pairs), 100, np.int32),
                       np.zeros((len(pairs), 2, 3), np.float32))

    def first_two(i, j, maps, pictures, workers):
        return (i == 0) & (j == 1)

    pairs = Pairs(np.array([0, 0, 1]), np.array([1, 2, 2]), np.array([0.10, 0.15, 0.25], np.float32))
    decision = CheckedPolicy(CHECK, 0.9, 0.5).decide(pairs, lambda row: b"", match=many_agreeing, tell=first_two)
    assert decision.keep.tolist() == [False, True, False] and decision.told_apart.tolist() == [True, False, True]
    together = CheckedPolicy(CHECK, 0.9, 0.5, tell_apart=False).decide(pairs, lambda row: b"", match=many_agreeing,
                                                                       tell=first_two)
    assert together.keep.all()
    # tiny pictures told apart pixel for pixel: their keypoints cannot say which pair is a copy's
    tiny = CheckedPolicy(CHECK, 0.9, 0.5).decide(pairs, lambda row: b"", match=many_agreeing,
                                                 tell=lambda i, j, *_: np.zeros(len(i), bool), tiny=first_two)
    assert tiny.keep.tolist() == [False, True, True] and tiny.told_apart.tolist() == [True, False, False]


@pytest.mark.parametrize("kwargs, option", [
    ({"action": "move"}, "to"),
    ({"action": "delete", "apply": True}, "yes"),
    ({"action": "shred"}, "action"),
])
def test_action_requests_are_validated_in_the_library(kwargs, option):
    with pytest.raises(UsageError) as err:
        ActionRequest(**kwargs)
    assert err.value.option == option and "--" not in str(err.value)


def test_the_cli_names_the_flag_of_a_library_error(tmp_path):
    runner = CliRunner()
    cases = [
        (["find-duplicates", "--index", str(tmp_path), "--action", "move"], "(--to)"),
        (["find-duplicates", "--index", str(tmp_path / "none")], "(--index)"),
        (["train", str(tmp_path), "--out", str(tmp_path / "m.pt"), "--epochs", "0"], "(--epochs)"),
        (["train", str(tmp_path), "--out", str(tmp_path / "m.pt"), "--channels", "8,8,8,8,8,8,8"], "(--channels)"),
    ]
    for args, flag in cases:
        result = runner.invoke(cli, args)
        assert result.exit_code == 1 and result.output.startswith("Error:") and result.output.rstrip().endswith(flag), result.output
