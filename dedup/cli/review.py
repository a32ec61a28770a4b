"""Review commands: review (a static page of the duplicate sets) and apply (act on its decisions)."""
from __future__ import annotations

from pathlib import Path

import click

from dedup.cli.base import INDEX_OPT, QUIET_OPT, cli, render_action
from dedup.cluster import LINKAGES
from dedup.config import ACTIONS
from dedup.keep import KEEP_POLICIES


@cli.command("review", interrupted=", and the pair checks done are kept for the next run")
@INDEX_OPT
@click.option("--out", "out", type=click.Path(path_type=Path), default=None, help="Folder for the page and thumbnails (default: INDEX/review).")
@click.option("--threshold", "-t", default=None, type=float, help="As for find-duplicates.")
@click.option("--verify/--no-verify", default=True, show_default=True, help="As for find-duplicates.")
@click.option("--variants-together", is_flag=True, help="As for find-duplicates.")
@click.option("--workers", type=int, default=None, help="Threads for the keypoint check and the thumbnails (default: one per usable CPU).")
@click.option("--linkage", type=click.Choice(LINKAGES), default=None, help="As for find-duplicates.")
@click.option("--keep", type=click.Choice(KEEP_POLICIES), default="largest", show_default=True, help="Which member each set suggests keeping.")
@QUIET_OPT
def review_cmd(index_path, out, threshold, verify, variants_together, workers, linkage, keep, quiet):
    """Write a review page of the duplicate sets: look, choose per set, export decisions.json.

    Open OUT/index.html in a browser (no server, no network). Export the decisions and act on
    them with `dedup apply decisions.json --action ...`.
    """
    from dedup.progress import rich_progress
    from dedup.review import review_index

    with rich_progress(not quiet) as progress:
        summary = review_index(index_path, out, threshold=threshold, linkage=linkage, keep=keep, verify=verify,
                               variants_together=variants_together, workers=workers, on_progress=progress)
    failed = f"; {summary.failed} files could not be previewed" if summary.failed else ""
    if not quiet:
        click.echo(f"Wrote {summary.page} ({summary.sets} sets, {summary.thumbnails} thumbnails{failed}) in "
                   f"{summary.seconds:.1f}s; open it in a browser.", err=True)
    click.echo(summary.page.resolve().as_uri())


@cli.command("apply")
@click.argument("decisions", type=click.Path(path_type=Path))
@INDEX_OPT
@click.option("--action", type=click.Choice(ACTIONS), required=True, help="What to do with every file in a set's remove list.")
@click.option("--to", "to_dir", type=click.Path(path_type=Path), default=None,
    help=("move: destination folder; symlink/hardlink: where replaced files are kept (default: "
          "INDEX/backup)."))
@click.option("--apply", "do_apply", is_flag=True, help="Carry out the action (writes an undo manifest first) and record the not-duplicates judgements.")
@click.option("--yes", is_flag=True, help="Required with --apply for --action delete.")
def apply_cmd(decisions, index_path, action, to_dir, do_apply, yes):
    """Act on the decisions exported by `dedup review` (dry run unless --apply).

    Only the files in each set's remove list are acted on, with every safety rule of
    find-duplicates --action. With --apply, members marked "not a duplicate" are remembered, so
    find-duplicates, review and --against do not propose those pairs again.
    """
    from dedup.actions import ActionRequest
    from dedup.decisions import apply_decisions
    from dedup.index import resolve_index

    request = ActionRequest(action, to_dir, (), do_apply, yes)
    result, recorded = apply_decisions(decisions, resolve_index(index_path), request)
    render_action(result)
    if do_apply:
        click.echo(f"{recorded} pairs recorded as not duplicates.", err=True)
