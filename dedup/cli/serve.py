"""The service command: serve."""
from __future__ import annotations

import click

from dedup.cli.base import INDEX_OPT, MODEL_OPT, cli, note_recalibrated
from dedup.config import MAX_UPLOAD_BYTES


@cli.command("serve")
@INDEX_OPT
@MODEL_OPT
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on; any non-local address needs --token.")
@click.option("--port", default=8000, show_default=True, help="TCP port.")
@click.option("--token", envvar="DEDUP_TOKEN", default=None, help="Require `Authorization: Bearer TOKEN` on every request (also $DEDUP_TOKEN).")
@click.option("--workers", default=1, show_default=True, help="Server processes, each with its own model and index in memory.")
@click.option("--max-upload", default=MAX_UPLOAD_BYTES, show_default=True, help="Largest accepted upload, in bytes (larger: 413).")
def serve_cmd(index_path, model_path, host, port, token, workers, max_upload):
    """Serve the index over HTTP: /health, /query, /compare (JSON; API page at /docs).

    Model and index load once; a new generation committed by `dedup index` is picked up
    without a restart.
    """
    from dedup.errors import UsageError
    from dedup.index import resolve_index
    from dedup.manifest import Manifest

    try:
        from dedup.server import serve
    except ImportError:
        raise UsageError("`dedup serve` needs the serve extra: pip install 'dedup-images[serve]'") from None

    folder = resolve_index(index_path)
    note_recalibrated(Manifest.load(folder), folder)
    click.echo(f"Serving {folder} on http://{host}:{port} (API page: /docs); Ctrl-C stops.", err=True)
    serve(folder, host=host, port=port, token=token, workers=workers, model=model_path, max_upload=max_upload)
