"""Pairs a user judged "not duplicates" (recorded by `dedup apply`), kept in the index folder by
content hash, so they survive renames and re-indexing; find-duplicates, review and `--against`
never propose them again."""
from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from dedup.atomic import atomic_write_text
from dedup.errors import IndexFormatError
from dedup.indexdir import ensure_claim
from dedup.pairs import Pairs

FILE = "judgements.json"
FORMAT = "dedup-judgements"


def load(folder: Path) -> set[tuple[str, str]]:
    """The judged pairs of an index (each as a sorted pair of content hashes)."""
    path = Path(folder) / FILE
    if not path.is_file():
        return set()
    try:
        doc = json.loads(path.read_text())
        if doc.get("format") != FORMAT:
            raise ValueError("not a judgements file")
        return {(str(a), str(b)) for a, b in doc["pairs"]}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise IndexFormatError(f"judgements file {str(path)!r} is damaged ({exc}); forget the judgements to clear it",
                               option="forget_judgements") from None


def record(folder: Path, pairs: Iterable[tuple[str, str]]) -> int:
    """Add judged pairs; returns how many are new."""
    known = load(folder)
    new = {tuple(sorted(p)) for p in pairs} - known
    if new:
        ensure_claim(folder).own(FILE)
        _save(folder, known | new)
    return len(new)


def forget(folder: Path) -> int:
    """Clear every judgement; returns how many there were."""
    known = load(folder)
    if known:
        _save(folder, set())
    return len(known)


def _save(folder: Path, pairs: set[tuple[str, str]]) -> None:
    doc = {"format": FORMAT, "version": 1, "pairs": sorted(list(p) for p in pairs)}
    atomic_write_text(Path(folder) / FILE, json.dumps(doc, indent=1) + "\n")


def drop(pairs: Pairs, hash_i: np.ndarray, hash_j: np.ndarray, judged: set[tuple[str, str]]) -> Pairs:
    """`pairs` without the judged ones (`hash_i[k]`, `hash_j[k]`: the content hashes of pair k)."""
    return pairs[kept(pairs, hash_i, hash_j, judged)]


def kept(pairs: Pairs, hash_i: np.ndarray, hash_j: np.ndarray, judged: set[tuple[str, str]]) -> np.ndarray:
    """Per pair, whether `drop` keeps it."""
    if not judged or not len(pairs):
        return np.ones(len(pairs), bool)
    return np.array([tuple(sorted((a, b))) not in judged for a, b in zip(hash_i.tolist(), hash_j.tolist())], bool)
