"""Streamed `find-duplicates` output (`iter_duplicates`) against the whole document rendered at once."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from dedup.report import duplicates_dict, iter_duplicates
from dedup.results import DuplicateReport, Group, Member, Verified


def report(groups: int) -> DuplicateReport:
    sets = [Group(f"k{g}.jpg", 0.1 * g, g % 2 == 0, tuple(Member(f"d{g}_{m}.jpg", 0.01 * m) for m in range(3)))
            for g in range(groups)]
    return DuplicateReport(Path("/ix"), "/catalog", 0.4, "center", "largest", 100, sets, 7, Verified(9, 4, 1))


@pytest.mark.parametrize("groups", [0, 1, 7])
@pytest.mark.parametrize("chunk", [1, 3, 1000])
def test_streamed_output_does_not_depend_on_the_chunk_size_and_json_is_the_whole_document(groups, chunk):
    r = report(groups)
    assert "".join(iter_duplicates(r, "json", chunk)) == json.dumps(duplicates_dict(r), indent=2) + "\n"
    for fmt in ("csv", "table"):
        assert "".join(iter_duplicates(r, fmt, chunk)) == "".join(iter_duplicates(r, fmt, 10**6))
