"""The `dedup` command line: parse options, call one library function, render the result.

Commands live in `catalog.py` (index, find-duplicates, undo, query, compare), `review.py` (review,
apply), `serve.py` and `learn.py` (train, evaluate); this module holds the group, shared options and error handling."""
from __future__ import annotations

import errno
import os
import sys
from pathlib import Path

import click

from dedup.atomic import atomic_write_text
from dedup.errors import DedupError

FORMATS = click.Choice(["table", "json", "csv"])
INDEX_OPT = click.option(
    "--index", "index_path", type=click.Path(path_type=Path),
    help="Index folder (default: the only index under ./indexes).",
)
MODEL_OPT = click.option("--model", "model_path", default=None, help="Model file from `dedup train` (default: the shipped encoder, also named `default`).")
QUIET_OPT = click.option("--quiet", "-q", is_flag=True, help="No progress bar or summary on stderr.")


class DedupGroup(click.Group):
    """Turns library errors into one-line `Error: ...` messages with a non-zero exit."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except DedupError as exc:
            raise click.ClickException(str(exc)) from None
        except OSError as exc:  # a full disk, an unwritable folder: say which, no traceback
            if exc.errno == errno.EPIPE:  # `dedup ... | head`: click leaves quietly
                raise
            where = f": {exc.filename}" if exc.filename else ""
            raise click.ClickException(f"{exc.strerror or exc}{where}") from None
        except KeyboardInterrupt:
            click.echo("Interrupted; the last committed index is intact.", err=True)
            ctx.exit(130)


@click.group(cls=DedupGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="dedup-images", prog_name="dedup")
def cli() -> None:
    """Find duplicate and near-duplicate images with a Siamese encoder and a FAISS index.

    Distances are Euclidean between L2-normalised embeddings: 0 = identical, 2 = opposite.
    """


def _load_model(model_path: str | None):
    from dedup.model import load_model

    return load_model(model_path)


def _emit(text: str, output: Path | None) -> None:
    if output is None:
        click.echo(text, nl=False)
    else:
        atomic_write_text(output, text, durable=False)
        click.echo(f"Wrote {output}", err=True)


def main() -> None:
    """The `dedup` program. Leaves without tearing down torch and FAISS (~0.3 s on two cores):
    whatever a command writes is complete and closed before the command returns."""
    try:
        cli(prog_name="dedup")
        code = 0
    except SystemExit as exc:  # click's standalone mode always ends here
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`dedup ... | head`): nothing left to say
            pass
    os._exit(code)


from dedup.cli import catalog, learn, review, serve  # noqa: E402,F401  (registers the commands)
