"""What an action on duplicate sets does: steps, the plan that holds them, outcomes (pure types)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal


@dataclass(frozen=True)
class Step:
    """One planned change to one duplicate file (paths relative to the catalog / `to` folder)."""

    action: str
    path: str  # the duplicate
    keeper: str
    content_hash: str  # the duplicate's hash at indexing time
    keeper_hash: str
    size: int  # the duplicate's size at indexing time (the bound of its hash re-check)
    keeper_size: int
    backup: str | None  # where the file goes under `to` (move target, or backup before linking)


@dataclass(frozen=True)
class Outcome:
    step: Step
    status: Literal["done", "skipped", "planned"]
    reason: str = ""


@dataclass
class Plan:
    """Everything an action would do, before it does anything."""

    catalog: Path
    to: Path | None
    steps: list[Step] = field(default_factory=list)
    left: list[tuple[str, str]] = field(default_factory=list)  # (path, reason) left alone by rule
    unmatched: list[str] = field(default_factory=list)  # protect patterns that match no indexed file
