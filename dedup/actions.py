"""Safe actions on duplicate sets: a plan whose dry run checks every step, apply with an undo
manifest written first, and undo.

Rules: every file is reached through `dedup.confine` (inside the real catalog or the `to`
folder, no symlink followed below either); a keeper and its duplicate must be two different
regular files whose content hashes still match the index, read with a size bound, else the step
is left alone and reported (so the last copy is never removed); protected paths are never
touched; nothing replaces an existing file. `symlink`/`hardlink` make the link first, then move
the duplicate into the `to` folder, so a link that cannot be made changes nothing and undo can
restore every file that was replaced. Undo manifests are bound to their index (`dedup.undo`).
"""
from __future__ import annotations

import fnmatch
import os
import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from dedup.config import ACTIONS, ActionName
from dedup.confine import (
    Refused,
    Tree,
    drop_temp,
    finish_link,
    identity,
    link_target,
    move_file,
    parts_of,
    place_hardlink,
    place_symlink,
    unlink_entry,
)
from dedup.errors import UsageError
from dedup.images import HASH_NAME
from dedup.index import IndexLike, as_index
from dedup.indexdir import index_lock
from dedup.results import DuplicateReport
from dedup.steps import Outcome, Plan, Step
from dedup.undo import undo_path, write_manifest


@dataclass(frozen=True)
class ActionRequest:
    """What to do with every non-keeper of a report: `apply` False is the dry run; deleting
    needs `confirmed` too (deleted files cannot be restored). `to`: where `move` puts files, and
    where `symlink`/`hardlink` keep the originals they replace (default: the index's `backup`)."""

    action: ActionName
    to: Path | None = None
    protect: tuple[str, ...] = ()
    apply: bool = False
    confirmed: bool = False

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise UsageError(f"unknown action {self.action!r}; choose one of {', '.join(ACTIONS)}", option="action")
        if self.action == "delete" and self.apply and not self.confirmed:
            raise UsageError("deleting files cannot be undone; confirm it to go ahead", option="yes")
        if self.action == "move" and self.to is None:
            raise UsageError("moving duplicates needs a destination folder", option="to")

    def destination(self, index_dir: Path) -> Path | None:
        if self.to is None and self.action in ("symlink", "hardlink"):
            return Path(index_dir) / "backup"
        return self.to


@dataclass
class ActResult:
    """The plan, one outcome per step ("planned" in a dry run), and the undo manifest once applied."""

    plan: Plan
    outcomes: list[Outcome]
    undo: Path | None = None


def act(index: IndexLike, report: DuplicateReport, request: ActionRequest) -> ActResult:
    """Plan `request` on `report` (found in `index`: an open `Index` is reused, its rows read
    once), then preview it or carry it out."""
    index = as_index(index)
    p = plan_for_index(index, report, request.action, request.destination(index.folder), request.protect)
    if not request.apply:
        return ActResult(p, preview(p))
    outcomes, manifest = apply(p, index.folder)
    return ActResult(p, outcomes, manifest)


def plan_for_index(index: IndexLike, report: DuplicateReport, action: ActionName, to: Path | None,
                   protect: Sequence[str] = ()) -> Plan:
    """The plan for `report` (found in `index`), with the hashes and sizes the index holds."""
    index = as_index(index)
    if index.manifest.hash != HASH_NAME:
        raise UsageError(f"index {str(index.folder)!r} holds {index.manifest.hash} content hashes; "
                         f"run `dedup index` again before acting on it")
    rows = index.rows
    facts = {p: (h, int(s)) for p, h, s in zip(rows.path.tolist(), rows.content_hash.tolist(), rows.size.tolist())}
    return plan(report, facts, action, to, protect)


def plan(report: DuplicateReport, facts: dict[str, tuple[str, int]], action: ActionName, to: Path | None,
         protect: Sequence[str] = ()) -> Plan:
    """Steps for every non-keeper member; members matching a `protect` glob are left alone.

    `facts` maps each indexed path to its (content hash, size). `to` is where `move` puts
    duplicates (mirroring their catalog paths) and where `symlink` and `hardlink` keep the
    originals they replace. A protect pattern may be relative to the catalog (`keep/*`,
    `./keep/*`), absolute inside it, or a folder (`keep/`).
    """
    if action not in ACTIONS:
        raise UsageError(f"unknown action {action!r}; choose one of {', '.join(ACTIONS)}")
    if action != "delete" and to is None:
        raise UsageError(f"the {action} action needs a folder for the files it moves or replaces")
    try:
        root = Tree.exact(report.catalog).root
    except Refused as exc:
        raise UsageError(f"catalog {exc}; index the catalog where it now is before acting") from None
    dest = _check_to(to, root) if action != "delete" else None
    patterns = [_pattern(p, root) for p in protect]
    result = Plan(root, dest, unmatched=[raw for raw, p in zip(protect, patterns) if not any(_matches(f, p) for f in facts)])
    for group in report.groups:
        for m in group.members[1:]:
            if any(_matches(m.path, p) for p in patterns):
                result.left.append((m.path, "protected"))
                continue
            (digest, size), (keeper_digest, keeper_size) = facts[m.path], facts[group.keep]
            result.steps.append(Step(action, m.path, group.keep, digest, keeper_digest, size, keeper_size,
                                     m.path if dest is not None else None))
    return result


def _check_to(to: Path, root: Path) -> Path:
    dest = Path(os.path.realpath(to))
    if dest == root or dest.is_relative_to(root):
        raise UsageError(f"folder {str(to)!r} is inside the catalog; choose a folder outside it")
    if root.is_relative_to(dest):
        raise UsageError(f"folder {str(to)!r} holds the catalog; choose a folder outside it")
    if dest.exists() and not dest.is_dir():
        raise UsageError(f"{str(to)!r} is a file, not a folder")
    return dest


def _pattern(raw: str, root: Path) -> str:
    """A protect pattern as a glob relative to the catalog."""
    text = raw.strip()
    if os.path.isabs(text):
        norm = posixpath.normpath(text)
        for base in {str(root), os.path.abspath(root)}:
            if norm == base or norm.startswith(base + "/"):
                text = norm[len(base) + 1:] or "*"
                break
        else:
            raise UsageError(f"protect pattern {raw!r} lies outside the catalog {str(root)!r}")
    folder = text.endswith("/")
    text = posixpath.normpath(text) if text not in ("", "/") else "*"
    if text.startswith("../") or text == "..":
        raise UsageError(f"protect pattern {raw!r} lies outside the catalog {str(root)!r}")
    text = "*" if text == "." else text
    return text + "/" if folder else text


def _matches(path: str, pattern: str) -> bool:
    """A pattern matches a path, or a folder the path lies in; a leading `**/` also matches no
    folder at all (as in .gitignore)."""
    base = pattern.rstrip("/")
    if base.startswith("**/") and _matches(path, base[3:]):
        return True
    return fnmatch.fnmatchcase(path, base) or fnmatch.fnmatchcase(path, base + "/*")


def preview(p: Plan) -> list[Outcome]:
    """The dry run: every check `apply` would make, nothing changed."""
    cat, to = _trees(p)
    outcomes = []
    for step in p.steps:
        try:
            _check(step, cat, to)
            outcomes.append(Outcome(step, "planned"))
        except Refused as exc:
            outcomes.append(Outcome(step, "skipped", str(exc)))
    return outcomes


def apply(p: Plan, index_dir: Path) -> tuple[list[Outcome], Path]:
    """Carry out the plan holding the index lock, after writing its undo manifest into the
    index folder; returns one outcome per step and the manifest's path."""
    with index_lock(index_dir):
        if p.to is not None:
            try:
                p.to.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise UsageError(f"cannot create folder {str(p.to)!r}: {exc.strerror}") from None
        manifest = undo_path(index_dir)
        write_manifest(manifest, index_dir, p)
        cat, to = _trees(p)
        return [_apply_one(step, cat, to) for step in p.steps], manifest


def _trees(p: Plan) -> tuple[Tree, Tree | None]:
    """The catalog and `to` folder as recorded in the plan (refused if either became a link)."""
    try:
        return Tree.exact(p.catalog), (Tree.exact(p.to) if p.to is not None else None)
    except Refused as exc:
        raise UsageError(f"nothing was changed: {exc}") from None


def _check(step: Step, cat: Tree, to: Tree | None) -> tuple[os.stat_result, os.stat_result]:
    """The keeper's and the duplicate's status if the step may go ahead, else `Refused`."""
    for rel in (step.path, step.keeper) + ((step.backup,) if step.backup else ()):
        parts_of(rel)
    try:
        digest, keeper_st = cat.hash_regular(step.keeper, step.keeper_size)
    except Refused as exc:
        raise Refused(f"keeper missing or changed since indexing: {step.keeper}: {exc}") from None
    if digest != step.keeper_hash:
        raise Refused(f"keeper missing or changed since indexing: {step.keeper}: other content")
    try:
        digest, st = cat.hash_regular(step.path, step.size)
    except Refused as exc:
        raise Refused(f"file missing or changed since indexing: {exc}") from None
    if digest != step.content_hash:
        raise Refused("file missing or changed since indexing: other content")
    if identity(st) == identity(keeper_st):
        raise Refused("same file as its keeper (a hard link of it)")
    if step.action == "hardlink" and st.st_dev != keeper_st.st_dev:
        raise Refused("on another filesystem than its keeper; cannot hard-link")
    if step.backup is not None:
        if to is None:
            raise Refused("no folder to move the file to")
        if to.lstat(step.backup) is not None:
            raise Refused(f"{str(to.root / step.backup)!r} already exists")
    return keeper_st, st


def _apply_one(step: Step, cat: Tree, to: Tree | None) -> Outcome:
    try:
        keeper_st, st = _check(step, cat, to)
        if step.action == "delete":
            unlink_entry(cat, step.path, st)
            return Outcome(step, "done")
        assert to is not None and step.backup is not None
        if step.action == "move":
            move_file(cat, step.path, to, step.backup, st, step.content_hash)
            return Outcome(step, "done")
        tmp = (place_symlink(cat, step.path, link_target(step.path, step.keeper)) if step.action == "symlink"
               else place_hardlink(cat, step.path, step.keeper, keeper_st))
        try:
            move_file(cat, step.path, to, step.backup, st, step.content_hash)
        except BaseException:
            drop_temp(cat, step.path, tmp)
            raise
        try:
            finish_link(cat, step.path, tmp)
        except (Refused, OSError) as exc:
            drop_temp(cat, step.path, tmp)
            return Outcome(step, "skipped", f"moved to the backup folder, but the link could not be made "
                                            f"({_why(exc)}); `dedup undo` puts the file back")
        return Outcome(step, "done")
    except (Refused, OSError) as exc:
        return Outcome(step, "skipped", _why(exc))


def _why(exc: Exception) -> str:
    return str(exc) if isinstance(exc, Refused) else (exc.strerror or str(exc))
