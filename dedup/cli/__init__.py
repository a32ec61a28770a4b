"""The `dedup` command line: parse options, call one library function, render the result.

Commands live in `catalog.py` (index, find-duplicates, undo, query, compare), `review.py` (review,
apply), `serve.py` and `learn.py` (train, evaluate); `base.py` holds the group, shared options,
error handling and shared rendering."""
from __future__ import annotations

from dedup.cli import catalog, learn, review, serve  # noqa: F401  (registers the commands)
from dedup.cli.base import cli
from dedup.images import quiet_decoders


def main() -> None:
    """The `dedup` program."""
    quiet_decoders()
    cli(prog_name="dedup")


__all__ = ["cli", "main"]
