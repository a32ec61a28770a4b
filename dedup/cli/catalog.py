"""Catalog commands: index, find-duplicates, query, compare."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from dedup.atomic import atomic_write_text
from dedup.cli.base import FORMATS, INDEX_OPT, MODEL_OPT, PASTED_OPT, QUIET_OPT, WINDOWS_OPT, cli, emit, engine_options, note_recalibrated, render_action
from dedup.cluster import LINKAGES
from dedup.config import ACTIONS
from dedup.keep import KEEP_POLICIES


@cli.command("index")
@click.argument("catalog", type=click.Path(path_type=Path))
@click.option("--index", "index_path", type=click.Path(path_type=Path), help="Index folder to write (default: ./indexes/<catalog folder name>).")
@MODEL_OPT
@click.option("--batch-size", default=64, show_default=True, help="Images embedded per batch.")
@click.option("--workers", type=int, default=None, help="Decoding threads (default: the usable CPUs but the encoder's half, at least 2).")
@click.option("--shard-rows", default=10_000, show_default=True, help="Rows per Parquet shard; a shard is also the unit of work kept after a crash.")
@click.option("--follow-symlinks", is_flag=True, help="Follow symlinks that stay inside the catalog.")
@click.option("--report", type=click.Path(path_type=Path), help="Write a JSON summary (with every skipped file) here.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True, help="Summary format on stdout.")
@engine_options
@QUIET_OPT
def index_cmd(catalog, index_path, model_path, batch_size, workers, shard_rows, follow_symlinks, report, fmt, engine, address, quiet):
    """Embed every image under CATALOG into an index (Parquet shards + FAISS).

    Without --index the index goes to ./indexes/<catalog folder name>.
    """
    from dedup.engine import engine_for
    from dedup.indexer import index_catalog
    from dedup.progress import rich_progress
    from dedup.report import skipped_summary

    with rich_progress(not quiet) as progress:
        summary = index_catalog(catalog, index_path, model_path, batch_size=batch_size, workers=workers,
                                rows_per_shard=shard_rows, follow_symlinks=follow_symlinks,
                                engine=engine_for(engine, address), on_progress=progress)
    doc = summary.as_dict()
    if report:
        atomic_write_text(report, json.dumps(doc, indent=2) + "\n", durable=False)
    if fmt == "json":
        click.echo(json.dumps(doc, indent=2))
        return
    rate = summary.indexed / summary.seconds if summary.seconds else 0.0
    click.echo(
        f"Indexed {summary.indexed} images into {shown(summary.index)} in {summary.seconds:.1f}s ({rate:.0f} images/s); "
        f"{len(summary.skipped)} files skipped; {summary.exact_duplicates} exact byte-duplicates."
    )
    click.echo(
        f"Changes: {summary.added} added, {summary.changed} changed, {summary.removed} removed, "
        f"{summary.unchanged} unchanged; {summary.embedded} images embedded."
    )
    for line in skipped_summary(summary.skipped):
        click.echo(line)


def shown(path: Path) -> str:
    """A path as a user would type it: relative to the working folder when inside it."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


@cli.command("find-duplicates", interrupted=", and the pair checks done are kept for the next run")
@INDEX_OPT
@click.option("--threshold", "-t", default=None, type=float,
    help=("Group images closer than this distance (0..2); with the keypoint check, pairs this close "
          "are candidates. Default: the model's calibrated threshold."))
@click.option("--verify/--no-verify", default=True, show_default=True,
    help=("Check every close pair by matching keypoints in the two files (when the model is "
          "calibrated for it)."))
@click.option("--variants-together", is_flag=True,
    help=("Count items the keypoint check tells apart by a differing detail, colourway or part (one design's "
          "variants: another letter on a badge, another colour) as duplicates."))
@click.option("--nothing-differs", is_flag=True,
    help=("Of each set, only the keeper and the members that do not differ from it: exact copies, or members "
          "that, laid over the keeper by the keypoint check's map, differ nowhere (fewer pairs, at higher "
          "precision); a set with no such member is left out. With --against: only matches that differ nowhere "
          "from the incoming image."))
@PASTED_OPT
@WINDOWS_OPT
@click.option("--keypoint-search/--no-keypoint-search", default=None,
    help=("With the keypoint check, also pair each picture with those it shares the most keypoints with, kept "
          "when one lies inside the other (a heavy crop, a picture pasted onto a busier one; about a fifth more "
          "time on a first run). Default: on; with --against, on unless more than 20,000 catalog pictures "
          "have no stored descriptors yet (finding their keypoints takes ~5 ms a picture, once)."))
@click.option("--renditions/--no-renditions", default=True, show_default=True,
    help=("With the keypoint check, also take two pictures stored at two of the catalog's standard sizes (each "
          "shared by 20 pictures or more: an icon theme's sizes, thumbnails), in one proportion, as one picture "
          "when each is the other's nearest among the pictures of its size. Not with --against."))
@click.option("--turned", is_flag=True,
    help=("With the keypoint check, also find copies saved turned a quarter, half or three quarters of a turn "
          "(every picture is embedded three more times: about a third more time on a first run)."))
@click.option("--workers", type=int, default=None, help="Threads of the keypoint check (default: one per usable CPU).")
@click.option("--linkage", type=click.Choice(LINKAGES), default=None,
    help=("center: every member close to the set's centre; complete: all members close to each other; "
          "single: connected components (chains). Default: complete with the keypoint check, else "
          "center."))
@click.option("--keep", type=click.Choice(KEEP_POLICIES), default="largest", show_default=True, help="Which member each set suggests keeping.")
@click.option("--format", "fmt", type=FORMATS, default="table", show_default=True)
@click.option("--output", "-o", type=click.Path(path_type=Path), help="Write the result to a file instead of stdout.")
@click.option("--against", "against", type=click.Path(path_type=Path), default=None,
    help=("Reference index: report only images of --index that match it (e.g. new uploads vs the "
          "catalog)."))
@click.option("--action", type=click.Choice(ACTIONS), default=None, help="Plan an action on every non-keeper (dry run unless --apply).")
@click.option("--to", "to_dir", type=click.Path(path_type=Path), default=None,
    help=("move: destination folder; symlink/hardlink: where replaced files are kept (default: "
          "INDEX/backup)."))
@click.option("--protect", multiple=True, help="Glob of catalog paths never acted on (repeatable).")
@click.option("--apply", "do_apply", is_flag=True, help="Carry out the action (writes an undo manifest first).")
@click.option("--yes", is_flag=True, help="Required with --apply for --action delete.")
@click.option("--forget-judgements", is_flag=True, help="Forget the pairs `dedup apply` recorded as not duplicates, then search.")
@engine_options
@QUIET_OPT
def find_duplicates_cmd(index_path, threshold, verify, variants_together, nothing_differs, pasted, windows, keypoint_search,
                        renditions, turned, workers,
                        linkage, keep, fmt, output,
                        against, action, to_dir, protect, do_apply, yes, forget_judgements, engine, address, quiet):
    """List sets of duplicate images in an index, largest first, each with a suggested keeper.

    With --action, prints what would be done to every non-keeper; nothing changes without --apply.
    """
    from dedup.actions import ActionRequest
    from dedup.duplicates import find_against, find_duplicates
    from dedup.engine import engine_for
    from dedup.index import as_index
    from dedup.progress import rich_progress
    from dedup.report import duplicates_summary, iter_duplicates, render_query

    if against is not None:
        from dedup.errors import UsageError

        alone = [flag for flag, given in (("--action", action), ("--linkage", linkage), ("--turned", turned)) if given]
        if alone:
            raise UsageError(f"{' and '.join(alone)} {'applies' if len(alone) == 1 else 'apply'} to the sets of one index, "
                             "not to the matches of --against")
    request = ActionRequest(action, to_dir, tuple(protect), do_apply, yes) if action else None
    index = as_index(index_path)
    if not quiet:
        note_recalibrated(index.manifest, index.folder)
    if forget_judgements:
        from dedup import judgements

        click.echo(f"Forgot {judgements.forget(index.folder)} pairs judged not duplicates.", err=True)
    with rich_progress(not quiet) as progress:
        if against is not None:
            found = find_against(index, as_index(against), threshold, verify=verify, variants_together=variants_together,
                                 nothing_differs=nothing_differs, pasted=pasted, windows=windows,
                                 keypoint_search=keypoint_search, workers=workers,
                                 engine=engine_for(engine, address), on_progress=progress)
        else:
            report = find_duplicates(index, threshold, linkage=linkage, keep=keep, verify=verify,
                                     variants_together=variants_together, nothing_differs=nothing_differs, pasted=pasted,
                                     windows=windows, keypoint_search=keypoint_search is not False, renditions=renditions,
                                     turned=turned, workers=workers, engine=engine_for(engine, address), on_progress=progress)
    if against is not None:
        emit(render_query(found.results, fmt) if found.results or fmt != "table" else "", output)
        if not quiet:
            v = found.verified
            check = f"; pair check confirmed {v.confirmed} of {v.candidates} close pairs" if v else ""
            click.echo(f"{len(found.results)} images of {index.folder} match {against} (threshold {found.threshold:g}{check})",
                       err=True)
    elif request is None:
        emit(iter_duplicates(report, fmt), output)
        if not quiet:
            click.echo(duplicates_summary(report), err=True)
    else:
        from dedup.actions import act

        render_action(act(index, report, request))


@cli.command("undo")
@click.argument("manifest", type=click.Path(path_type=Path))
@click.option("--index", "index_path", type=click.Path(path_type=Path), default=None,
              help="Index folder that wrote MANIFEST (default: the folder MANIFEST lies in).")
def undo_cmd(manifest, index_path):
    """Restore the files that `find-duplicates --action ... --apply` moved or replaced by links.

    The whole manifest is checked first (written and signed by this index, every path inside the
    catalog or the backup folder); nothing is ever overwritten.
    """
    from dedup.report import printable
    from dedup.undo import undo

    outcomes = undo(manifest, index_path)
    for o in outcomes:
        click.echo(f"{o.status:<8} {printable(o.step.path)}" + (f"  ({printable(o.reason)})" if o.reason else ""))
    click.echo(f"{sum(o.status == 'done' for o in outcomes)} files restored.", err=True)


@cli.command("query")
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
@INDEX_OPT
@MODEL_OPT
@click.option("-k", default=10, show_default=True, help="Neighbours per query image.")
@click.option("--threshold", "-t", type=float, default=None, help="Only neighbours closer than this distance.")
@click.option("--verify", is_flag=True, help="Judge each neighbour as find-duplicates would (keypoint check): same or different.")
@PASTED_OPT
@WINDOWS_OPT
@click.option("--turned", is_flag=True,
    help="With --verify, also find catalog images that are the query turned a quarter, half or three quarters of a turn.")
@click.option("--keypoint-search/--no-keypoint-search", default=True, show_default=True,
    help=("With --verify, match a query image nothing else matched with the catalog image it shares the most "
          "keypoints with, when one lies inside the other (a heavy crop, a picture pasted onto a busier one); "
          "uses the descriptors find-duplicates kept."))
@click.option("--format", "fmt", type=FORMATS, default="table", show_default=True)
def query_cmd(images, index_path, model_path, k, threshold, verify, pasted, windows, turned, keypoint_search, fmt):
    """Find the catalog images nearest to each IMAGE (which need not be in the catalog).

    An IMAGE that is a folder stands for every file under it (e.g. a folder of new uploads).
    """
    from dedup.index import as_index
    from dedup.query import query_images
    from dedup.report import render_query

    index = as_index(index_path)
    if verify:
        note_recalibrated(index.manifest, index.folder)
    results = query_images(index, list(images), k=k, threshold=threshold, model=model_path, verify=verify, pasted=pasted,
                           windows=windows, turned=turned, keypoint_search=keypoint_search)
    click.echo(render_query(results, fmt), nl=False)
    if all(r.error for r in results):
        sys.exit(1)


@cli.command("compare")
@click.argument("image_a", type=click.Path(path_type=Path))
@click.argument("image_b", type=click.Path(path_type=Path))
@MODEL_OPT
@click.option("--threshold", "-t", default=None, type=float,
    help=("Same if closer than this distance (with the keypoint check: compared if closer). Default: "
          "the model's calibrated threshold."))
@click.option("--verify/--no-verify", default=True, show_default=True,
    help=("Also match keypoints in the two files, as find-duplicates does (when the model is "
          "calibrated for it)."))
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def compare_cmd(image_a, image_b, model_path, threshold, verify, fmt):
    """Distance between two images and the verdict: same or different."""
    from dedup.query import compare_images
    from dedup.report import comparison_dict, where_it_differs

    result = compare_images(image_a, image_b, model_path, threshold, verify=verify)
    verdict = "same" if result.same else "different"
    if result.told_apart:
        verdict += " (told apart: laid over each other, they differ in a detail, a colourway or a part)"
    if result.plain_apart:
        verdict += " (one is a plain colour, nothing drawn on it, and the other is not that plain colour)"
    if fmt == "json":
        click.echo(json.dumps({"a": str(image_a), "b": str(image_b), **comparison_dict(result)}, indent=2))
    elif result.same_bytes:
        click.echo(f"distance {result.distance:.4f}; the two files have the same bytes → same")
    elif result.probability is not None:
        needed = f" ({result.needed} needed this far apart)" if result.needed else ""
        if result.framed:
            needed += ", but laid over by their outlines the pictures agree"
        click.echo(f"distance {result.distance:.4f} (cosine {result.cosine:.4f}); keypoint check: {result.inliers} "
                   f"keypoints agree{needed}, P(same) {result.probability:.2f} → {verdict}")
        if result.differs:
            click.echo(f"A differs from B {where_it_differs(result.differs)}")
    else:
        click.echo(f"distance {result.distance:.4f} (cosine {result.cosine:.4f}) → {verdict} at threshold {result.threshold:g}")
