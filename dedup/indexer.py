"""Catalog folder → decoded images → embeddings → Parquet shards → FAISS index (a full build)."""
from __future__ import annotations

import fcntl
import logging
import os
import shutil
import time
from collections import Counter, deque
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from itertools import chain, islice
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import numpy as np

from dedup import __version__
from dedup.config import ModelConfig
from dedup.errors import CatalogError, DedupError
from dedup.files import FileRecord, Skipped, check_catalog, walk_catalog
from dedup.cache import Known, KnownEmbeddings, load_known
from dedup.images import HASH_NAME, Decoded, ImageSkip, content_hash, decode, read_file
from dedup.index import build_index, choose_factory, save_index
from dedup.modelfile import DEFAULT_MODEL, PendingModel
from dedup.progress import ProgressFn, silent
from dedup.store import (
    INDEX_FORMAT,
    INDEX_VERSION,
    Row,
    ShardWriter,
    read_manifest,
    write_manifest,
)

if TYPE_CHECKING:
    from dedup.model import Model

log = logging.getLogger(__name__)
LOCK_FILE = "lock"


@dataclass
class IndexSummary:
    """What one `index_catalog` run did."""

    index: Path
    catalog: Path
    indexed: int
    skipped: list[Skipped] = field(default_factory=list)
    exact_duplicates: int = 0  # files whose bytes equal an earlier file's
    seconds: float = 0.0
    factory: str = ""
    added: int = 0  # new paths since the committed index
    changed: int = 0  # same path, different size or mtime
    unchanged: int = 0
    removed: int = 0  # indexed before, gone (or unreadable) now
    embedded: int = 0  # images that went through the encoder in this run

    def as_dict(self) -> dict:
        """The JSON summary of `dedup index` (also written by `--report`)."""
        return {
            "index": str(self.index),
            "catalog": str(self.catalog),
            "indexed": self.indexed,
            "exact_duplicates": self.exact_duplicates,
            "added": self.added,
            "changed": self.changed,
            "removed": self.removed,
            "unchanged": self.unchanged,
            "embedded": self.embedded,
            "skipped": [{"path": s.rel, "reason": s.reason} for s in self.skipped],
            "seconds": round(self.seconds, 3),
            "faiss_factory": self.factory,
        }


@contextmanager
def index_lock(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on the index folder; a second writer gets a clear error."""
    fh = open(folder / LOCK_FILE, "a")
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DedupError(f"another `dedup index` is writing {str(folder)!r}; wait for it to finish") from None
        yield
    finally:
        fh.close()


@contextmanager
def _inference_threads(n: int) -> Iterator[None]:
    """Give the encoder half the cores while decoding threads use the rest (on 2 cores,
    1 inference thread + 2 decode threads measured ~15% faster than 2 + 2; benchmarks/RESULTS.md)."""
    import torch  # loaded by now: imported here so that decoding can start before torch is

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def index_catalog(
    catalog: str | os.PathLike,
    index_dir: Path,
    model: Model | PendingModel,
    *,
    model_ref: str | None = None,
    batch_size: int = 64,
    workers: int = 2,
    rows_per_shard: int = 10_000,
    follow_symlinks: bool = False,
    on_progress: ProgressFn = silent,
) -> IndexSummary:
    """Index every image under `catalog` into `index_dir` and return a summary.

    Incremental: files whose path, size and mtime match the committed index (or shards that an
    interrupted run already wrote) are not read again; files whose bytes match an embedded file
    reuse its embedding. Files that cannot be read or decoded are skipped with a reason; the run
    never stops for one file. The manifest is written last, so an interrupted run leaves the
    previous index intact and the next run picks up the work it had flushed.

    With a `PendingModel` (`dedup.modelfile.open_model`), reading and decoding start while the
    weights are still loading.
    """
    start = time.perf_counter()
    root = check_catalog(catalog)
    index_dir = Path(index_dir)
    index_dir.mkdir(parents=True, exist_ok=True)
    spec, identity = model.config, model.identity  # known before the weights have loaded
    with index_lock(index_dir):
        records: list[FileRecord] = []
        skipped: list[Skipped] = []
        for item in walk_catalog(root, follow_symlinks=follow_symlinks, exclude=index_dir):
            (records if isinstance(item, FileRecord) else skipped).append(item)
        if not records:
            raise CatalogError(f"catalog {str(root)!r} holds no files to index; point dedup at a folder of images")
        known = load_known(index_dir, identity)
        previous_generation = _committed_generation(index_dir)
        generation = previous_generation + 1
        shard_dir = index_dir / f"shards-{generation:04d}"
        writer = ShardWriter(shard_dir, spec.embedding_dim, rows_per_shard, metadata={"dedup.model": identity, "dedup.hash": HASH_NAME})
        parts: list[np.ndarray] = []
        counts: Counter[str] = Counter()
        hashes: Counter[str] = Counter()
        done = 0
        batches = _prepared_batches(root, records, spec, batch_size, workers, known)
        try:
            first = next(batches)  # decoding is under way
            model = model.result() if isinstance(model, PendingModel) else model
            with _inference_threads(max(1, (os.cpu_count() or 2) // 2)):
                for batch in chain([first], batches):
                    rows, emb = _embed_batch(batch, model, known, skipped, counts, hashes, batch_size)
                    if rows:
                        writer.add(rows, emb)
                        parts.append(emb)
                    done += len(batch)
                    on_progress("indexing", done, len(records))
        finally:
            batches.close()
        shards = writer.close()
        skipped.sort(key=lambda s: s.rel)
        count = sum(s["rows"] for s in shards)
        if count == 0:
            shutil.rmtree(shard_dir, ignore_errors=True)
            reasons = "; ".join(f"{s.rel}: {s.reason}" for s in skipped[:3])
            raise CatalogError(f"no readable images in {str(root)!r} ({len(skipped)} files skipped: {reasons})")
        embeddings = np.concatenate(parts)
        factory, params = choose_factory(count)
        faiss_file = f"index-{generation:04d}.faiss"
        save_index(build_index(embeddings, factory, params), index_dir, faiss_file)
        manifest = {
            "format": INDEX_FORMAT,
            "version": INDEX_VERSION,
            "dedup_version": __version__,
            "generation": generation,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "catalog": str(root),
            "model": {"identity": identity, "ref": model_ref or DEFAULT_MODEL},
            "image_size": spec.image_size,
            "dim": spec.embedding_dim,
            "metric": "l2",
            "threshold": model.threshold,
            "verify": model.verify,
            "hash": HASH_NAME,
            "count": count,
            "shards": shards,
            "faiss": {"file": faiss_file, "factory": factory, "params": params},
            "skipped": [{"path": s.rel, "reason": s.reason} for s in skipped],
        }
        write_manifest(index_dir, manifest)
        _remove_stale(index_dir, keep={generation, previous_generation})
    indexed = {r.rel for r in records} - {s.rel for s in skipped}
    return IndexSummary(
        index=index_dir,
        catalog=root,
        indexed=count,
        skipped=skipped,
        exact_duplicates=sum(c - 1 for c in hashes.values()),
        seconds=time.perf_counter() - start,
        factory=factory,
        added=counts["added"],
        changed=counts["changed"],
        unchanged=counts["unchanged"],
        removed=len(set(known.previous) - indexed),
        embedded=counts["embedded"],
    )


def _embed_batch(
    batch: list[tuple[FileRecord, Known | Decoded | Skipped]],
    model: Model,
    known: KnownEmbeddings,
    skipped: list[Skipped],
    counts: Counter[str],
    hashes: Counter[str],
    batch_size: int,
) -> tuple[list[Row], np.ndarray]:
    """Rows and (rows, dim) embeddings of one prepared batch: known embeddings are reused, each
    new content hash is embedded once; skipped files, change counts and hashes are recorded."""
    from dedup.embed import embed_pixels  # torch: imported once the model has loaded

    rows, emb = [], np.empty((len(batch), model.config.embedding_dim), np.float32)
    fresh: dict[str, list] = {}  # content hash → [decoded image, its rows in this batch]
    for rec, result in batch:
        if isinstance(result, Skipped):
            skipped.append(result)
            continue
        if isinstance(result, Decoded):  # bytes seen earlier in this run are not embedded again
            result = known.by_hash.get(result.content_hash, result)
        if isinstance(result, Decoded):
            fresh.setdefault(result.content_hash, [result, []])[1].append(len(rows))
        else:
            emb[len(rows)] = result.embedding
        rows.append(Row(rec.rel, rec.size, rec.mtime_ns, result.content_hash, result.width, result.height))
        hashes[result.content_hash] += 1
        counts[_change(known.previous, rec)] += 1
    if fresh:
        new = embed_pixels(model, np.stack([d.pixels for d, _ in fresh.values()]), batch_size)
        for (d, slots), vector in zip(fresh.values(), new):
            emb[slots] = vector
            known.by_hash[d.content_hash] = Known(d.content_hash, d.width, d.height, vector)
        counts["embedded"] += len(fresh)
    return rows, emb[: len(rows)]


def _change(previous: dict[str, tuple[int, int]], rec: FileRecord) -> str:
    if rec.rel not in previous:
        return "added"
    return "unchanged" if previous[rec.rel] == (rec.size, rec.mtime_ns) else "changed"


def _prepare_one(root: Path, rec: FileRecord, spec: ModelConfig, known: KnownEmbeddings) -> Known | Decoded | Skipped:
    """A known embedding (same path, size and mtime, or same bytes), else the decoded image."""
    hit = known.by_key.get((rec.rel, rec.size, rec.mtime_ns))
    if hit is not None:
        return hit
    try:
        data = read_file(root / rec.rel)
        digest = content_hash(data)
        hit = known.by_hash.get(digest)
        return hit if hit is not None else decode(data, spec.image_size, digest, spec.framing)
    except ImageSkip as exc:
        return Skipped(rec.rel, str(exc))


AHEAD = 8


def _prepared_batches(
    root: Path, records: list[FileRecord], spec: ModelConfig, batch_size: int, workers: int, known: KnownEmbeddings
) -> Iterator[list[tuple[FileRecord, Known | Decoded | Skipped]]]:
    """Read and decode in a thread pool (PIL releases the GIL), `AHEAD` batches in flight: enough
    to keep the decoders busy while the encoder's weights load, and a bound on memory."""
    it = iter(records)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        pending: deque[list[tuple[FileRecord, Future]]] = deque()

        def submit() -> None:
            chunk = list(islice(it, batch_size))
            if chunk:
                pending.append([(r, pool.submit(_prepare_one, root, r, spec, known)) for r in chunk])

        for _ in range(AHEAD):
            submit()
        while pending:
            batch = pending.popleft()
            submit()
            yield [(r, f.result()) for r, f in batch]


def _committed_generation(folder: Path) -> int:
    try:
        return int(read_manifest(folder).get("generation", 0))
    except DedupError:
        return 0


def _remove_stale(folder: Path, keep: set[int]) -> None:
    """Delete files of generations other than `keep` (the new one, and the previous one that
    readers which opened the old manifest may still be reading), and temporary files."""
    names = {f"shards-{g:04d}" for g in keep} | {f"index-{g:04d}.faiss" for g in keep}
    for path in folder.iterdir():
        if path.name.startswith("shards-") and path.name not in names:
            shutil.rmtree(path, ignore_errors=True)
        elif path.name.startswith("index-") and path.suffix == ".faiss" and path.name not in names:
            path.unlink(missing_ok=True)
        elif path.name.startswith(".") and path.name.endswith(".tmp"):
            path.unlink(missing_ok=True)
