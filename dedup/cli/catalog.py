"""Catalog commands: index, find-duplicates, query, compare."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from dedup.cli import FORMATS, INDEX_OPT, MODEL_OPT, QUIET_OPT, _emit, _load_model, cli
from dedup.cluster import LINKAGES
from dedup.keep import KEEP_POLICIES


@cli.command("index")
@click.argument("catalog", type=click.Path(path_type=Path))
@click.option("--index", "index_path", type=click.Path(path_type=Path), help="Index folder to write (default: ./indexes/<catalog folder name>).")
@MODEL_OPT
@click.option("--batch-size", default=256, show_default=True, help="Images embedded per batch.")
@click.option("--workers", default=2, show_default=True, help="Decoding threads.")
@click.option("--shard-rows", default=10_000, show_default=True, help="Rows per Parquet shard; a shard is also the unit of work kept after a crash.")
@click.option("--follow-symlinks", is_flag=True, help="Follow symlinks that stay inside the catalog.")
@click.option("--report", type=click.Path(path_type=Path), help="Write a JSON summary (with every skipped file) here.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True, help="Summary format on stdout.")
@QUIET_OPT
def index_cmd(catalog, index_path, model_path, batch_size, workers, shard_rows, follow_symlinks, report, fmt, quiet):
    """Embed every image under CATALOG into an index (Parquet shards + FAISS).

    Without --index the index goes to ./indexes/<catalog folder name>.
    """
    from dedup.files import check_catalog
    from dedup.index import default_index_path
    from dedup.indexer import index_catalog
    from dedup.progress import rich_progress
    from dedup.report import skipped_summary

    root = check_catalog(catalog)
    model = _load_model(model_path)
    target = index_path or default_index_path(root)
    ref = str(Path(model_path).resolve()) if model_path and model_path != "default" else None
    with rich_progress(not quiet) as progress:
        summary = index_catalog(
            root, target, model, model_ref=ref, batch_size=batch_size, workers=workers, rows_per_shard=shard_rows,
            follow_symlinks=follow_symlinks, on_progress=progress,
        )
    doc = {
        "index": str(summary.index),
        "catalog": str(summary.catalog),
        "indexed": summary.indexed,
        "exact_duplicates": summary.exact_duplicates,
        "added": summary.added,
        "changed": summary.changed,
        "removed": summary.removed,
        "unchanged": summary.unchanged,
        "embedded": summary.embedded,
        "skipped": [{"path": s.rel, "reason": s.reason} for s in summary.skipped],
        "seconds": round(summary.seconds, 3),
        "faiss_factory": summary.factory,
    }
    if report:
        report.write_text(json.dumps(doc, indent=2) + "\n")
    if fmt == "json":
        click.echo(json.dumps(doc, indent=2))
        return
    rate = summary.indexed / summary.seconds if summary.seconds else 0.0
    click.echo(
        f"Indexed {summary.indexed} images into {summary.index} in {summary.seconds:.1f}s ({rate:.0f} images/s); "
        f"{len(summary.skipped)} files skipped; {summary.exact_duplicates} exact byte-duplicates."
    )
    click.echo(
        f"Changes: {summary.added} added, {summary.changed} changed, {summary.removed} removed, "
        f"{summary.unchanged} unchanged; {summary.embedded} images embedded."
    )
    for line in skipped_summary(summary.skipped):
        click.echo(line)


@cli.command("find-duplicates")
@INDEX_OPT
@click.option("--threshold", "-t", default=None, type=float, help="Group images closer than this distance (0..2); default: the model's calibrated threshold.")
@click.option("--linkage", type=click.Choice(LINKAGES), default="center", show_default=True, help="center: every member close to the set's centre; complete: all members close to each other; single: connected components (chains).")
@click.option("--keep", type=click.Choice(KEEP_POLICIES), default="largest", show_default=True, help="Which member each set suggests keeping.")
@click.option("--format", "fmt", type=FORMATS, default="table", show_default=True)
@click.option("--output", "-o", type=click.Path(path_type=Path), help="Write the result to a file instead of stdout.")
@QUIET_OPT
def find_duplicates_cmd(index_path, threshold, linkage, keep, fmt, output, quiet):
    """List sets of duplicate images in an index, largest first, each with a suggested keeper."""
    from dedup.duplicates import find_duplicates
    from dedup.index import resolve_index
    from dedup.progress import rich_progress
    from dedup.report import duplicates_summary, render_duplicates
    from dedup.search import check_threshold

    if threshold is not None:
        check_threshold(threshold)
    folder = resolve_index(index_path)
    with rich_progress(not quiet) as progress:
        report = find_duplicates(folder, threshold, linkage=linkage, keep=keep, on_progress=progress)
    _emit(render_duplicates(report, fmt), output)
    if not quiet:
        click.echo(duplicates_summary(report), err=True)


@cli.command("query")
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
@INDEX_OPT
@MODEL_OPT
@click.option("-k", default=10, show_default=True, help="Neighbours per query image.")
@click.option("--threshold", "-t", type=float, default=None, help="Only neighbours closer than this distance.")
@click.option("--format", "fmt", type=FORMATS, default="table", show_default=True)
def query_cmd(images, index_path, model_path, k, threshold, fmt):
    """Find the catalog images nearest to each IMAGE (which need not be in the catalog)."""
    from dedup.index import resolve_index
    from dedup.query import query_images
    from dedup.report import render_query

    folder = resolve_index(index_path)
    model = _load_model(model_path) if model_path else None
    results = query_images(folder, list(images), k=k, threshold=threshold, model=model)
    click.echo(render_query(results, fmt), nl=False)
    if all(r.error for r in results):
        sys.exit(1)


@cli.command("compare")
@click.argument("image_a", type=click.Path(path_type=Path))
@click.argument("image_b", type=click.Path(path_type=Path))
@MODEL_OPT
@click.option("--threshold", "-t", default=None, type=float, help="Same if closer than this distance; default: the model's calibrated threshold.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def compare_cmd(image_a, image_b, model_path, threshold, fmt):
    """Distance between two images and the verdict: same or different."""
    from dedup.query import compare_images

    result = compare_images(image_a, image_b, _load_model(model_path), threshold)
    verdict = "same" if result.same else "different"
    if fmt == "json":
        doc = {"a": str(image_a), "b": str(image_b), "distance": result.distance,
               "cosine": round(result.cosine, 6), "threshold": result.threshold, "same": result.same}
        click.echo(json.dumps(doc, indent=2))
    else:
        click.echo(f"distance {result.distance:.4f} (cosine {result.cosine:.4f}) → {verdict} at threshold {result.threshold:g}")
