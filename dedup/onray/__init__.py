"""The Ray engine: `dedup index --engine ray` and `dedup find-duplicates --engine ray` run their
heavy stages on a Ray cluster (or a local Ray instance) and give the local engine's results."""
from __future__ import annotations

from dedup.onray.engine import RayEngine

__all__ = ["RayEngine"]
