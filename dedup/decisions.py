"""Decisions exported by the review page (`decisions.json`): read, checked against the index,
and turned into the duplicate sets an action acts on and the pairs judged "not duplicates"."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dedup import judgements
from dedup.actions import ActionRequest, ActResult, act
from dedup.errors import UsageError
from dedup.index import IndexLike, as_index
from dedup.results import DuplicateReport, Group, Member

FORMAT = "dedup-decisions"
VERSION = 1


@dataclass(frozen=True)
class Decision:
    keep: str
    remove: tuple[str, ...]
    not_duplicates: tuple[str, ...]


def load(path: Path, index_dir: IndexLike) -> tuple[DuplicateReport, list[Decision], dict[str, str]]:
    """The decisions in `path`, checked against `index_dir`: (the sets to act on as a report,
    the decisions, each indexed path's content hash). One-line `UsageError` when the file is
    malformed, names another catalog or unknown paths, or puts a path in two sets."""
    shown = str(path)
    if not Path(path).is_file():
        raise UsageError(f"decisions file {shown!r} does not exist or is not a file")
    try:
        doc = json.loads(Path(path).read_text())
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} file")
        if doc.get("version") != VERSION:
            raise ValueError(f"version {doc.get('version')!r}, expected {VERSION}")
        decisions = [_decision(raw) for raw in doc["sets"]]
        catalog = doc["catalog"]
        if not isinstance(catalog, str):
            raise ValueError("catalog is not text")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"decisions file {shown!r} is malformed: {exc}") from None
    index = as_index(index_dir)
    if os.path.realpath(catalog) != os.path.realpath(index.manifest.catalog):
        raise UsageError(f"decisions file {shown!r} is for the catalog {catalog!r}, but the index "
                         f"{str(index.folder)!r} holds {index.manifest.catalog!r}")
    hashes = dict(zip(index.rows.path.tolist(), index.rows.content_hash.tolist()))
    seen: set[str] = set()
    for p in (p for d in decisions for p in (d.keep, *d.remove, *d.not_duplicates)):
        if p not in hashes:
            raise UsageError(f"decisions file {shown!r} names {p!r}, which the index does not hold; review the index again")
        if p in seen:
            raise UsageError(f"decisions file {shown!r} puts {p!r} in two places; nothing was changed")
        seen.add(p)
    groups = [Group(d.keep, 0.0, False, (Member(d.keep, 0.0), *(Member(p, 0.0) for p in d.remove)))
              for d in decisions if d.remove]
    report = DuplicateReport(index.folder, index.manifest.catalog, 0.0, "decisions", "decisions", len(hashes), groups)
    return report, decisions, hashes


def _decision(raw: Any) -> Decision:
    if not isinstance(raw, dict):
        raise ValueError("a set is not an object")
    keep, remove, nots = raw["keep"], raw.get("remove", []), raw.get("not_duplicates", [])
    if not isinstance(keep, str) or not all(isinstance(p, str) for p in (*remove, *nots)):
        raise ValueError("a set holds a path that is not text")
    return Decision(keep, tuple(remove), tuple(nots))


def judged_pairs(decisions: list[Decision], hashes: dict[str, str]) -> set[tuple[str, str]]:
    """Content-hash pairs judged "not duplicates": each such member with every other member of
    its set."""
    pairs = set()
    for d in decisions:
        members = (d.keep, *d.remove, *d.not_duplicates)
        for m in d.not_duplicates:
            for other in members:
                if other != m and hashes[other] != hashes[m]:
                    pairs.add(tuple(sorted((hashes[m], hashes[other]))))
    return pairs


def apply_decisions(path: Path, index_dir: IndexLike, request: ActionRequest) -> tuple[ActResult, int]:
    """Act on the remove lists of the decisions in `path` (`dedup.actions.act`); once applied,
    record the pairs judged "not duplicates" so no search proposes them again. Returns the
    action's result and how many pairs were newly recorded."""
    index = as_index(index_dir)  # opened once: its rows serve the check and the plan
    report, decisions, hashes = load(path, index)
    result = act(index, report, request)
    recorded = judgements.record(index.folder, judged_pairs(decisions, hashes)) if request.apply else 0
    return result, recorded
