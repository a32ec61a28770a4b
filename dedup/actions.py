"""Safe actions on duplicate sets: plan (default, changes nothing), apply with an undo manifest
written first, and undo.

Rules: the keeper and `--protect`ed files are never touched; a set whose keeper is missing or
changed since indexing is left alone (so the last copy is never removed); every file's content
hash is checked again right before acting, and a changed file is left alone and reported.
`symlink`/`hardlink` first move the duplicate into the backup folder, so undo can restore it.
"""
from __future__ import annotations

import fnmatch
import json
import os
import shutil
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal, Sequence

from dedup.config import ACTIONS, ActionName
from dedup.duplicates import DuplicateReport
from dedup.errors import UsageError
from dedup.images import content_hash
from dedup.store import atomic_write_bytes

UNDO_FORMAT = "dedup-undo"


@dataclass(frozen=True)
class Step:
    """One planned change to one duplicate file (absolute paths)."""

    action: str
    path: str  # the duplicate
    keeper: str
    content_hash: str  # the duplicate's hash at indexing time
    keeper_hash: str
    backup: str | None  # where the file goes (move target, or backup before linking)


@dataclass(frozen=True)
class Outcome:
    step: Step
    status: Literal["done", "skipped", "planned"]
    reason: str = ""


def plan(report: DuplicateReport, hashes: dict[str, str], action: ActionName, to: Path | None,
         protect: Sequence[str] = ()) -> tuple[list[Step], list[tuple[str, str]]]:
    """Steps for every non-keeper member, and (path, reason) for members left alone by rule.

    `to` is where `move` puts duplicates (mirroring their catalog paths) and where `symlink` and
    `hardlink` keep the originals they replace; `protect` holds glob patterns of catalog paths.
    """
    if action not in ACTIONS:
        raise UsageError(f"unknown action {action!r}; choose one of {', '.join(ACTIONS)}")
    if action != "delete" and to is None:
        raise UsageError(f"--action {action} needs --to DIR (where duplicates are moved or backed up)")
    root = Path(report.catalog)
    dest = to.resolve() if to is not None else None
    if dest is not None and dest.is_relative_to(root):
        raise UsageError(f"--to {str(to)!r} is inside the catalog; choose a folder outside it")
    steps, left = [], []
    for group in report.groups:
        for m in group.members[1:]:
            if any(fnmatch.fnmatch(m.path, pattern) for pattern in protect):
                left.append((m.path, "protected"))
                continue
            backup = str(dest / m.path) if dest is not None and action != "delete" else None
            steps.append(Step(action, str(root / m.path), str(root / group.keep), hashes[m.path], hashes[group.keep], backup))
    return steps, left


def undo_path(index_dir: Path) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    return index_dir / f"undo-{stamp}.json"


def apply(steps: Sequence[Step], manifest: Path) -> list[Outcome]:
    """Carry out `steps`, writing the undo manifest first; returns one outcome per step."""
    doc = {"format": UNDO_FORMAT, "version": 1, "created": datetime.now(timezone.utc).isoformat(),
           "steps": [asdict(s) for s in steps]}
    atomic_write_bytes(manifest, json.dumps(doc, indent=2).encode())
    return [_apply_one(s) for s in steps]


def _hash_of(path: str) -> str | None:
    try:
        return content_hash(Path(path).read_bytes())
    except OSError:
        return None


def _apply_one(step: Step) -> Outcome:
    if _hash_of(step.keeper) != step.keeper_hash:
        return Outcome(step, "skipped", "keeper missing or changed since indexing")
    if os.path.islink(step.path) or _hash_of(step.path) != step.content_hash:
        return Outcome(step, "skipped", "file missing or changed since indexing")
    try:
        if step.action == "delete":
            os.unlink(step.path)
            return Outcome(step, "done")
        backup = Path(step.backup)
        if backup.exists():
            return Outcome(step, "skipped", f"{backup} already exists")
        backup.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(step.path, backup)
        if step.action == "symlink":
            os.symlink(os.path.relpath(step.keeper, os.path.dirname(step.path)), step.path)
        elif step.action == "hardlink":
            os.link(step.keeper, step.path)
        return Outcome(step, "done")
    except OSError as exc:
        return Outcome(step, "skipped", f"{exc.strerror or exc}")


def undo(manifest: Path) -> list[Outcome]:
    """Restore every file an `apply` moved or replaced by a link (deleted files cannot come back)."""
    try:
        doc = json.loads(Path(manifest).read_text())
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read undo manifest {str(manifest)!r}: {exc}") from None
    if doc.get("format") != UNDO_FORMAT:
        raise UsageError(f"{str(manifest)!r} is not a dedup undo manifest")
    outcomes = []
    for raw in reversed(doc["steps"]):
        step = Step(**raw)
        if step.action == "delete" or step.backup is None:
            outcomes.append(Outcome(step, "skipped", "deleted files cannot be restored"))
            continue
        backup, path = Path(step.backup), Path(step.path)
        if not backup.exists():
            outcomes.append(Outcome(step, "skipped", "nothing to restore (never applied or already undone)"))
            continue
        if path.is_symlink() or (step.action == "hardlink" and path.exists() and _hash_of(str(path)) == step.keeper_hash):
            path.unlink()  # the link that replaced the file
        if path.exists():
            outcomes.append(Outcome(step, "skipped", f"{path} exists; restore {backup} by hand"))
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(backup), path)
        outcomes.append(Outcome(step, "done"))
    return outcomes
