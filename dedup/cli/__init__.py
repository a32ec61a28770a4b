"""The `dedup` command line: parse options, call one library function, render the result.

Commands live in `catalog.py` (index, find-duplicates, query, compare) and `learn.py`
(train, evaluate); this module holds the group, shared options and error handling."""
from __future__ import annotations

from pathlib import Path

import click

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
        output.write_text(text)
        click.echo(f"Wrote {output}", err=True)


def main() -> None:
    cli(prog_name="dedup")


from dedup.cli import catalog, learn  # noqa: E402,F401  (registers the commands)
