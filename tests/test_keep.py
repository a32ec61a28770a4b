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
