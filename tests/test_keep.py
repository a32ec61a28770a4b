from __future__ import annotations

import numpy as np
import pytest

from dedup.errors import UsageError
from dedup.keep import keep_rank
from dedup.store import Rows

ROWS = Rows(
    path=np.array(["b/long/name.jpg", "a.jpg", "c.jpg"], dtype=object),
    size=np.array([500, 100, 300]),
    mtime_ns=np.array([3, 1, 2]),
    content_hash=np.array(["x", "y", "z"], dtype=object),
    width=np.array([100, 200, 200]),
    height=np.array([100, 100, 100]),
)


@pytest.mark.parametrize(
    "policy, best",
    [("largest", "c.jpg"), ("smallest", "b/long/name.jpg"), ("oldest", "a.jpg"), ("newest", "b/long/name.jpg"),
     ("shortest-path", "c.jpg"), ("first", "a.jpg")],
)
def test_policies(policy, best):
    rank = keep_rank(ROWS, policy)
    assert sorted(rank.tolist()) == [0, 1, 2]
    assert ROWS.path[np.argmin(rank)] == best


def test_unknown_policy():
    with pytest.raises(UsageError):
        keep_rank(ROWS, "biggest")


@pytest.mark.parametrize("policy", ["largest", "smallest", "oldest", "newest", "shortest-path", "first"])
def test_rows_marked_last_are_kept_only_when_nothing_else_is(policy):
    unmarked = keep_rank(ROWS, policy)
    best = int(np.argmin(unmarked))
    last = np.zeros(3, bool)
    last[best] = True
    rank = keep_rank(ROWS, policy, last=last)
    assert rank[best] == 2 and sorted(rank.tolist()) == [0, 1, 2]
    others = [k for k in range(3) if k != best]
    assert (rank[others].argsort() == unmarked[others].argsort()).all()  # the others keep their order
