"""The command group, options shared by several commands, error handling and shared rendering."""
from __future__ import annotations

import errno
import signal
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from dedup.atomic import atomic_write
from dedup.errors import DedupError

if TYPE_CHECKING:
    from dedup.manifest import Manifest

FORMATS = click.Choice(["table", "json", "csv"])
INDEX_OPT = click.option(
    "--index", "index_path", type=click.Path(path_type=Path),
    help="Index folder (default: the only index under ./indexes).",
)
MODEL_OPT = click.option("--model", "model_path", default=None, help="Model file from `dedup train` (default: the shipped encoder, also named `default`).")
QUIET_OPT = click.option("--quiet", "-q", is_flag=True, help="No progress bar or summary on stderr.")
PASTED_OPT = click.option("--pasted/--no-pasted", default=True, show_default=True,
    help=("With the keypoint check, also look for the duplicates of a picture pasted into a larger one "
          "(a screenshot, a photo on a web page)."))
WINDOWS_OPT = click.option("--windows/--no-windows", default=True, show_default=True,
    help=("With the keypoint check, also look through windows: five of every catalog picture (for a heavy crop of "
          "it, or a picture pasted onto a busier one; a first run takes about half as long again), and of each "
          "query image."))


def engine_options(command):
    """`--engine` and `--address`: where the heavy stages run (docs/cluster.md)."""
    from dedup.engine import ENGINES

    command = click.option("--address", default=None,
                           help="Ray cluster to join (default: RAY_ADDRESS, else a local Ray instance).")(command)
    return click.option("--engine", type=click.Choice(ENGINES), default="local", show_default=True,
                        help="local: this machine's threads; ray: a Ray cluster (pip install 'dedup-images[ray]').")(command)


def flag_for(command: click.Command, option: str | None) -> str | None:
    """The command's flag for a library parameter name (`model` → `--model`), if it has one."""
    if option is None:
        return None
    for param in command.params:
        if isinstance(param, click.Option) and param.name in (option, f"{option}_path", f"{option}_dir",
                                                              option.rsplit("_", 1)[0]):
            return max(param.opts, key=len)
    return None


class DedupCommand(click.Command):
    """Turns library errors into one-line `Error: ...` messages (naming the flag the error is
    about) with a non-zero exit, and a termination request (SIGTERM) into an interruption, so
    that a command stopped either way keeps what it has finished (`dedup.checkmemo.PairChecks.saving`)."""

    def __init__(self, *args, interrupted: str = "", **kwargs):
        """`interrupted`: what the command keeps when it is interrupted, said after the index is intact."""
        super().__init__(*args, **kwargs)
        self.interrupted = interrupted

    def invoke(self, ctx: click.Context):
        main = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGTERM, _interrupt) if main else None
        try:
            return super().invoke(ctx)
        except DedupError as exc:
            flag = flag_for(self, exc.option)
            raise click.ClickException(f"{exc} ({flag})" if flag else str(exc)) from None
        except OSError as exc:  # a full disk, an unwritable folder: say which, no traceback
            if exc.errno == errno.EPIPE:  # `dedup ... | head`: click leaves quietly
                raise
            where = f": {exc.filename}" if exc.filename else ""
            raise click.ClickException(f"{exc.strerror or exc}{where}") from None
        except KeyboardInterrupt:
            click.echo(f"Interrupted; the last committed index is intact{self.interrupted}.", err=True)
            ctx.exit(130)
        finally:
            if main:
                signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


class DedupGroup(click.Group):
    command_class = DedupCommand


@click.group(cls=DedupGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="dedup-images", prog_name="dedup")
def cli() -> None:
    """Find duplicate and near-duplicate images with a Siamese encoder and a FAISS index.

    Distances are Euclidean between L2-normalised embeddings: 0 = identical, 2 = opposite.
    """


def emit(text: str | Iterable[str], output: Path | None) -> None:
    """Write a result (a string, or its chunks) to stdout, or to `output` (saying so on stderr)."""
    chunks = [text] if isinstance(text, str) else text
    if output is None:
        for chunk in chunks:
            click.echo(chunk, nl=False)
        return

    def write(tmp: Path) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            for chunk in chunks:
                f.write(chunk)

    atomic_write(output, write, durable=False)
    click.echo(f"Wrote {output}", err=True)


def render_action(result) -> None:
    """Print an action's plan and its outcomes (`dedup.actions.ActResult`)."""
    from dedup.report import printable

    p = result.plan
    for pattern in p.unmatched:
        click.echo(f"warning: --protect {printable(pattern)!s} matches no indexed file", err=True)
    for path, reason in p.left:
        click.echo(f"leave    {printable(path)}  ({reason})")
    if result.undo is None:
        for o in result.outcomes:
            target = f"  →  {printable(str(p.to / o.step.backup))}" if o.step.action == "move" and o.status == "planned" else ""
            word = o.step.action if o.status == "planned" else "leave"
            click.echo(f"{word:<8} {printable(o.step.path)}{target}" + (f"  ({printable(o.reason)})" if o.reason else ""))
        ready = sum(o.status == "planned" for o in result.outcomes)
        click.echo(f"Dry run: {ready} files would be changed ({len(result.outcomes) - ready} left alone); add --apply to do it.",
                   err=True)
        return
    for o in result.outcomes:
        click.echo(f"{o.status:<8} {o.step.action} {printable(o.step.path)}" + (f"  ({printable(o.reason)})" if o.reason else ""))
    done = sum(o.status == "done" for o in result.outcomes)
    click.echo(f"{done} of {len(result.outcomes)} files changed; undo with: dedup undo {printable(str(result.undo))}", err=True)


def note_recalibrated(manifest: Manifest, folder: Path) -> None:
    """One line on stderr when the model of the index in `folder` was calibrated again since the
    index recorded its threshold and pair check (`dedup.loading.recalibrated_since`)."""
    from dedup.index import default_index_path
    from dedup.loading import recalibrated_since
    from dedup.report import printable

    if recalibrated_since(manifest):
        catalog = Path(manifest.catalog)
        elsewhere = Path(folder).resolve() != default_index_path(catalog).resolve()
        command = f"dedup index {printable(str(catalog))}" + (f" --index {printable(str(folder))}" if elsewhere else "")
        click.echo(f"note: this index judges with its model's earlier calibration; `{command}` brings it up to date "
                   "(nothing is re-embedded)", err=True)
