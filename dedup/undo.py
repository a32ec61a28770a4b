"""Undo manifests: written before an action changes anything, bound to the index that wrote
them (an HMAC with the index's own secret, over the catalog, the `to` folder and every step),
validated whole before `undo` touches a file, and undone without ever replacing a file or
reaching outside the catalog and the `to` folder."""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import stat
from dataclasses import asdict, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from dedup.atomic import atomic_write_text
from dedup.config import ACTIONS
from dedup.confine import (
    Refused,
    Tree,
    identity,
    link_target,
    move_file,
    parts_of,
    read_link,
    unlink_entry,
)
from dedup.errors import UsageError
from dedup.indexdir import ensure_claim, index_lock, read_claim
from dedup.steps import Outcome, Plan, Step

UNDO_FORMAT = "dedup-undo"
UNDO_VERSION = 2


def undo_path(index_dir: Path) -> Path:
    """A new undo manifest's path inside the index folder."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    return Path(index_dir) / f"undo-{stamp}.json"


def write_manifest(path: Path, index_dir: Path, p: Plan) -> None:
    """Record `p` at `path`, signed with the index's secret."""
    claim = ensure_claim(index_dir)
    claim.own(path.name)
    body = {"format": UNDO_FORMAT, "version": UNDO_VERSION, "created": datetime.now(timezone.utc).isoformat(),
            "index": os.path.realpath(index_dir), "catalog": str(p.catalog),
            "to": str(p.to) if p.to is not None else None, "steps": [asdict(s) for s in p.steps]}
    body["signature"] = _sign(claim.key, body)
    atomic_write_text(path, json.dumps(body, indent=2) + "\n")


def _sign(key: str, body: dict[str, Any]) -> str:
    text = json.dumps({k: v for k, v in body.items() if k != "signature"}, sort_keys=True, ensure_ascii=True)
    return hmac.new(bytes.fromhex(key), text.encode(), hashlib.sha256).hexdigest()


def load(manifest: Path, index_dir: Path | None = None) -> tuple[Path, Plan]:
    """The index folder and plan a manifest records, after checking all of it: its signature by
    the index (by default the folder it lies in), and every step's paths and fields. Raises
    `UsageError` with one line for a malformed, edited or foreign manifest."""
    manifest = Path(manifest)
    shown = str(manifest)
    if not manifest.is_file():
        raise UsageError(f"undo manifest {shown!r} is not a file")
    try:
        doc = json.loads(manifest.read_text())
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read undo manifest {shown!r}: {getattr(exc, 'strerror', None) or exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != UNDO_FORMAT:
        raise UsageError(f"{shown!r} is not a dedup undo manifest")
    if doc.get("version") != UNDO_VERSION:
        raise UsageError(f"undo manifest {shown!r} has version {doc.get('version')!r}, not {UNDO_VERSION}; "
                         f"restore its files by hand")
    folder = Path(index_dir) if index_dir is not None else manifest.parent
    claim = read_claim(folder)
    signature = doc.get("signature")
    if claim is None or not isinstance(signature, str) or not hmac.compare_digest(signature, _sign(claim.key, doc)):
        raise UsageError(f"undo manifest {shown!r} was not written by the index at {str(folder)!r}, or was edited; "
                         f"nothing was changed")
    if doc.get("index") != os.path.realpath(folder):
        raise UsageError(f"undo manifest {shown!r} belongs to the index at {doc.get('index')!r}")
    try:
        catalog, to = Path(doc["catalog"]), (Path(doc["to"]) if doc["to"] is not None else None)
        steps = [_step(raw, to is not None) for raw in doc["steps"]]
    except (KeyError, TypeError, ValueError, Refused) as exc:
        raise UsageError(f"undo manifest {shown!r} is malformed ({exc}); nothing was changed") from None
    for name in ("path", "backup"):
        seen = [getattr(s, name) for s in steps if getattr(s, name) is not None]
        if len(seen) != len(set(seen)):
            raise UsageError(f"undo manifest {shown!r} names one {name} in two steps; nothing was changed")
    return folder, Plan(catalog, to, steps)


def _step(raw: Any, has_to: bool) -> Step:
    if not isinstance(raw, dict) or set(raw) != {f.name for f in fields(Step)}:
        raise ValueError("a step has missing or unknown fields")
    step = Step(**raw)
    if step.action not in ACTIONS:
        raise ValueError(f"unknown action {step.action!r}")
    for name in ("path", "keeper", "content_hash", "keeper_hash"):
        if not isinstance(getattr(step, name), str):
            raise ValueError(f"{name} is not text")
    if not all(isinstance(v, int) and v >= 0 for v in (step.size, step.keeper_size)):
        raise ValueError("a size is not a whole number")
    parts_of(step.path)
    parts_of(step.keeper)
    if step.action != "delete":
        if not isinstance(step.backup, str) or not has_to:
            raise ValueError(f"a {step.action} step has no backup")
        parts_of(step.backup)
    return step


def undo(manifest: Path, index_dir: Path | None = None) -> list[Outcome]:
    """Restore every file an apply moved or replaced by a link (deleted files cannot come back),
    holding the index lock."""
    folder, p = load(manifest, index_dir)
    with index_lock(folder):
        try:
            cat = Tree.exact(p.catalog)
            to = Tree.exact(p.to) if p.to is not None else None
        except Refused as exc:
            raise UsageError(f"nothing was restored: {exc}") from None
        return [_undo_one(step, cat, to) for step in reversed(p.steps)]


def _undo_one(step: Step, cat: Tree, to: Tree | None) -> Outcome:
    if step.action == "delete" or to is None or step.backup is None:
        return Outcome(step, "skipped", "deleted files cannot be restored")
    try:
        if to.lstat(step.backup) is None:
            return Outcome(step, "skipped", "nothing to restore (never applied or already undone)")
        try:
            digest, backup_st = to.hash_regular(step.backup, step.size)
        except Refused as exc:
            return Outcome(step, "skipped", f"backup {str(to.root / step.backup)!r} is not the file that was moved ({exc})")
        if digest != step.content_hash:
            return Outcome(step, "skipped", f"backup {str(to.root / step.backup)!r} changed since; left in place")
        current = cat.lstat(step.path)
        if current is not None:
            if not _our_link(step, cat, current):
                return Outcome(step, "skipped", f"{step.path!r} exists; restore {str(to.root / step.backup)!r} by hand")
            unlink_entry(cat, step.path, current)
        move_file(to, step.backup, cat, step.path, backup_st, step.content_hash)
        return Outcome(step, "done")
    except Refused as exc:
        return Outcome(step, "skipped", str(exc))
    except OSError as exc:
        return Outcome(step, "skipped", exc.strerror or str(exc))


def _our_link(step: Step, cat: Tree, current: os.stat_result) -> bool:
    """Whether the entry at the step's path is the link the action put there (removing it
    loses nothing: a symlink holds no data, and a hard link's inode stays under the keeper)."""
    if step.action == "symlink":
        return stat.S_ISLNK(current.st_mode) and read_link(cat, step.path) == link_target(step.path, step.keeper)
    if step.action == "hardlink" and stat.S_ISREG(current.st_mode):
        keeper = cat.lstat(step.keeper)
        return keeper is not None and identity(keeper) == identity(current)
    return False
