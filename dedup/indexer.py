"""Catalog folder → decoded images → embeddings → Parquet shards → FAISS index (a full build)."""
from __future__ import annotations

import logging
import os
import time
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import numpy as np

from dedup import __version__, cpus
from dedup import manifest as manifest_file
from dedup.ann import build_index_cells, choose_factory, save_cells, save_index
from dedup.cache import Embedded, Known, KnownEmbeddings, load_known
from dedup.config import ModelConfig
from dedup.encoder_process import EncoderProcess
from dedup.errors import CatalogError, DedupError, IndexFormatError
from dedup.files import FileRecord, Skipped, check_catalog, walk_catalog
from dedup.images import DECODING, HASH_NAME, Decoded, ImageSkip, content_hash, decode, read_file
from dedup.index import default_index_path
from dedup.indexdir import LOCK_FILE, Claim, claim, ensure_claim, index_lock
from dedup.loading import FEW_TO_INDEX, PendingModel, open_model
from dedup.manifest import FaissFile, Manifest, ModelRef
from dedup.modelfile import DEFAULT_MODEL
from dedup.modelfile import model_ref as reference
from dedup.pictures import SIDE as PICTURE_SIDE
from dedup.progress import ProgressFn, silent
from dedup.store import PICTURES_SUFFIX, Row, ShardWriter

if TYPE_CHECKING:
    from dedup.engine import Engine, IndexBatches
    from dedup.model import Model
    from dedup.torchless import NumpyEncoder

log = logging.getLogger(__name__)


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
def _torch_threads(n: int) -> Iterator[None]:
    import torch  # loaded by now: imported here so that decoding can start before torch is

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def index_catalog(
    catalog: str | os.PathLike,
    index_dir: str | os.PathLike | None = None,
    model: Model | PendingModel | str | Path | None = None,
    *,
    model_ref: str | None = None,
    batch_size: int = 64,
    workers: int | None = None,
    rows_per_shard: int = 10_000,
    follow_symlinks: bool = False,
    engine: Engine | None = None,
    on_progress: ProgressFn = silent,
) -> IndexSummary:
    """Index every image under `catalog` into `index_dir` (default: `dedup.index.default_index_path`)
    and return a summary. `model`: a loaded model, or a model file or shipped model's name
    (default: the shipped encoder), opened with `dedup.loading.open_model`; `model_ref` is how
    the manifest records a loaded one.

    Incremental: files whose path, size and mtime match the committed index (or shards that an
    interrupted run already wrote) are not read again; files whose bytes match an embedded file
    reuse its embedding; a run that finds nothing changed commits nothing and never loads the
    encoder. Files that cannot be read or decoded are skipped with a reason; the run never stops
    for one file. The manifest is written last, so an interrupted run leaves the previous index
    intact and the next run picks up the work it had flushed.

    `index_dir` must be new, empty, or an index dedup wrote (`dedup.indexdir.claim`); only files
    this index created are ever removed. With a `PendingModel` (`dedup.loading.open_model`),
    the weights load while files are read, and only if something needs them: in a child process
    (`dedup.encoder_process`) that embeds for this run, or in a background thread for an engine.
    `engine` (e.g. `dedup.onray.RayEngine`) reads, decodes and embeds the files elsewhere; what is
    written, and the incremental rules, stay the same.
    """
    start = time.perf_counter()
    root = check_catalog(catalog)
    index_dir = Path(index_dir) if index_dir is not None else default_index_path(root)
    if model is None or isinstance(model, (str, Path)):
        model, model_ref = open_model(model), reference(model)  # weights load in the background while decoding starts
    spec, identity = model.config, model.identity  # known before the weights have loaded
    records: list[FileRecord] = []
    skipped: list[Skipped] = []
    for item in walk_catalog(root, follow_symlinks=follow_symlinks, exclude=index_dir):
        (records if isinstance(item, FileRecord) else skipped).append(item)
    if not records:
        raise CatalogError(f"catalog {str(root)!r} holds no files to index; point dedup at a folder of images")
    claim(index_dir, root)
    with index_lock(index_dir), ExitStack() as lifetime:
        owner = ensure_claim(index_dir)
        committed = _committed(index_dir)
        known = load_known(index_dir, committed, identity, owner.owned)
        if committed is not None and committed.catalog != str(root):
            known.by_key.clear()  # another (or a moved) catalog: every file is read and hashed again
        ref = ModelRef(model.identity, model_ref or getattr(model, "source", None) or DEFAULT_MODEL)
        skipped_before = {s.rel for s in committed.skipped} if committed else set()
        child: EncoderProcess | None = None
        light: NumpyEncoder | None = None
        pending = 0  # files that may need embedding (for a model still to load), counted up to the cut
        if isinstance(model, PendingModel):
            unknown = (r for r in records if known.by_key.get(_key(r)) is None and r.rel not in skipped_before)
            pending = sum(1 for _ in islice(unknown, FEW_TO_INDEX + 1))
        if pending:  # something may need embedding: load while the files are read
            if engine is None and pending <= FEW_TO_INDEX:
                light = model.without_torch()
            if light is None:
                child = None if engine is not None else _encoder_process(model)
                if child is None:
                    model.start()
                else:
                    lifetime.enter_context(child)
        if committed is not None and _unchanged(root, records, skipped, spec, known, committed, model, ref):
            return _summary(index_dir, root, committed.count, list(committed.skipped), start,
                            committed.faiss.factory, Counter(unchanged=len(known.committed_keys)),
                            hashes=Counter(known.committed_hashes), removed=0)
        previous_generation = committed.generation if committed else 0
        generation = _next_generation(index_dir, previous_generation)
        shard_name, faiss_file, cells_file = _generation_names(generation)
        owner.own(shard_name, faiss_file, cells_file, manifest_file.FILE, LOCK_FILE)
        writer = ShardWriter(index_dir / shard_name, spec.embedding_dim, rows_per_shard,
                             metadata={"dedup.model": identity, "dedup.hash": HASH_NAME, "dedup.decoding": str(DECODING)},
                             pictures=True)
        parts: list[np.ndarray] = []
        counts: Counter[str] = Counter()
        hashes: Counter[str] = Counter()
        done = 0
        with ExitStack() as stack:

            ready: list[Model] = []

            def encoder() -> Model:  # resolved (and torch configured) the first time it is needed
                if not ready:
                    ready.append(model.result() if isinstance(model, PendingModel) else model)
                    stack.enter_context(_torch_threads(cpus.encoder_threads()))
                return ready[0]

            def embed(pixels: np.ndarray) -> np.ndarray:
                if light is not None:
                    return light.embed(pixels)
                if child is not None:
                    return child.embed(pixels)
                from dedup.embed import embed_pixels  # torch: imported once the model has loaded

                return embed_pixels(encoder(), pixels)

            stage = engine.index_batches() if engine is not None else _local_stage(workers or cpus.decode_threads())
            batches = stack.enter_context(closing(stage(root, records, spec, known, encoder, batch_size)))
            for batch in batches:
                rows, emb, pictures = _embed_batch(batch, embed, spec.embedding_dim, known, skipped, counts, hashes)
                if rows:
                    writer.add(rows, emb, pictures)
                    parts.append(emb)
                done += len(batch)
                on_progress("indexing", done, len(records))
        shards = writer.close()
        skipped.sort(key=lambda s: s.rel)
        count = sum(s.rows for s in shards)
        if count == 0:
            owner.remove_owned(shard_name)
            reasons = "; ".join(f"{s.rel}: {s.reason}" for s in skipped[:3])
            raise CatalogError(f"no readable images in {str(root)!r} ({len(skipped)} files skipped: {reasons})")
        embeddings = np.concatenate(parts)
        factory, params = choose_factory(count)
        built, cells = build_index_cells(embeddings, factory, params)
        save_index(built, index_dir, faiss_file)
        if cells is not None:
            save_cells(cells, index_dir, cells_file)
        Manifest(
            catalog=str(root), model=ref, image_size=spec.image_size, dim=spec.embedding_dim, hash=HASH_NAME,
            shards=tuple(shards), faiss=FaissFile(faiss_file, factory, params, cells_file if cells is not None else ""), threshold=model.threshold,
            verify=model.check, skipped=tuple(skipped), generation=generation, pictures=PICTURE_SIDE, decoding=DECODING,
            created=datetime.now(timezone.utc).isoformat(timespec="seconds"), dedup_version=__version__,
        ).save(index_dir)
        _remove_stale(owner, keep={generation, previous_generation})
    indexed = {r.rel for r in records} - {s.rel for s in skipped}
    return _summary(index_dir, root, count, skipped, start, factory, counts, hashes,
                    removed=len(set(known.previous) - indexed))


def _summary(index_dir: Path, root: Path, count: int, skipped: list[Skipped], start: float, factory: str,
             counts: Counter[str], hashes: Counter[str], removed: int) -> IndexSummary:
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
        removed=removed,
        embedded=counts["embedded"],
    )


def _key(rec: FileRecord) -> tuple[str, int, int]:
    return rec.rel, rec.size, rec.mtime_ns


def _committed(folder: Path) -> Manifest | None:
    try:
        return Manifest.load(folder)
    except DedupError:
        return None


def _unchanged(root: Path, records: list[FileRecord], walk_skips: list[Skipped], spec: ModelConfig,
               known: KnownEmbeddings, committed: Manifest, model: Model | PendingModel, ref: ModelRef) -> bool:
    """Whether the committed index already says everything this run would: the same model,
    calibration and content hashes, the same rows in the same order, and the same skipped files
    (a file skipped before is tried again, without the encoder)."""
    if (committed.hash, committed.model, committed.threshold, committed.verify) != (HASH_NAME, ref, model.threshold, model.check):
        return False
    if (committed.pictures, committed.decoding) != (PICTURE_SIDE, DECODING):
        return False
    if committed.image_size != spec.image_size or committed.dim != spec.embedding_dim:
        return False
    before = {s.rel: s.reason for s in committed.skipped}
    rows, skips = [], {s.rel: s.reason for s in walk_skips}
    for rec in records:
        if rec.rel in before:
            result = prepare(root, rec, spec, KnownEmbeddings())
            if not isinstance(result, Skipped):
                return False
            skips[rec.rel] = result.reason
        elif known.by_key.get(_key(rec)) is None:
            return False
        else:
            rows.append(_key(rec))
    return skips == before and rows == known.committed_keys


def _embed_batch(
    batch: list[tuple[FileRecord, Known | Decoded | Skipped]],
    embed: Callable[[np.ndarray], np.ndarray],
    dim: int,
    known: KnownEmbeddings,
    skipped: list[Skipped],
    counts: Counter[str],
    hashes: Counter[str],
) -> tuple[list[Row], np.ndarray, list[bytes]]:
    """Rows, (rows, dim) embeddings and check pictures of one prepared batch: known embeddings
    are reused, each new content hash is embedded once (`embed`, which loads the model on first
    use); skipped files, change counts and hashes are recorded."""
    rows, emb, pictures = [], np.empty((len(batch), dim), np.float32), []
    fresh: dict[str, list] = {}  # content hash → [decoded image, its rows in this batch]
    for rec, result in batch:
        if isinstance(result, Skipped):
            skipped.append(result)
            continue
        picture = result.picture if isinstance(result, Decoded) else _stored_picture(result)
        if isinstance(result, (Decoded, Embedded)):  # bytes seen earlier in this run are not embedded again
            result = known.by_hash.get(result.content_hash, result)
        if isinstance(result, Decoded):
            fresh.setdefault(result.content_hash, [result, []])[1].append(len(rows))
        else:
            emb[len(rows)] = result.embedding
        if isinstance(result, Embedded):  # embedded by the engine: known from now on, as a local embedding is
            known.by_hash[result.content_hash] = Known(result.content_hash, result.width, result.height, result.embedding)
            counts["embedded"] += 1
        pictures.append(picture)
        rows.append(Row(rec.rel, rec.size, rec.mtime_ns, result.content_hash, result.width, result.height))
        hashes[result.content_hash] += 1
        counts[_change(known.previous, rec)] += 1
    if fresh:
        new = embed(np.stack([d.pixels for d, _ in fresh.values()]))
        for (d, slots), vector in zip(fresh.values(), new):
            emb[slots] = vector
            known.by_hash[d.content_hash] = Known(d.content_hash, d.width, d.height, vector)
        counts["embedded"] += len(fresh)
    return rows, emb[: len(rows)], pictures


def _encoder_process(model: PendingModel) -> EncoderProcess | None:
    """The model's encoder in a child process, started now; None where no child can start."""
    try:
        return EncoderProcess(model.file, (model.identity, model.config), cpus.encoder_threads())
    except OSError as exc:
        log.info("encoder process not started (%s): loading the model in this process", exc)
        return None


def _change(previous: dict[str, tuple[int, int]], rec: FileRecord) -> str:
    if rec.rel not in previous:
        return "added"
    return "unchanged" if previous[rec.rel] == (rec.size, rec.mtime_ns) else "changed"


def prepare(root: Path, rec: FileRecord, spec: ModelConfig, known: KnownEmbeddings) -> Known | Decoded | Skipped:
    """A known embedding (same path, size and mtime, or same bytes), else the decoded image, or
    why the file is skipped."""
    hit = _with_picture(known.by_key.get((rec.rel, rec.size, rec.mtime_ns)))
    if hit is not None:
        return hit
    try:
        data = read_file(root / rec.rel)
        digest = content_hash(data)
        hit = _with_picture(known.by_hash.get(digest))
        return hit if hit is not None else decode(data, spec.image_size, digest, spec.framing)
    except ImageSkip as exc:
        return Skipped(rec.rel, str(exc))


def _with_picture(hit: Known | None) -> Known | None:
    """`hit` with its check picture's bytes at hand; None when it has none (embedded earlier in
    this run) or its stored picture is gone, so that the file is decoded again."""
    if hit is None:
        return None
    try:
        picture = hit.picture_bytes()
    except OSError:
        return None
    return None if picture is None else replace(hit, picture=picture)


def _stored_picture(hit: Known) -> bytes:
    """The check picture of a row an engine reused without reading its file."""
    try:
        picture = hit.picture_bytes()
    except OSError as exc:
        raise IndexFormatError(f"a stored check picture is unreadable ({exc}); move the index folder aside and "
                               "index again") from None
    if picture is None:
        raise IndexFormatError("a reused row has no check picture; move the index folder aside and index again")
    return picture


AHEAD = 8


def _local_stage(workers: int) -> IndexBatches:
    """The index stage on this machine: `_prepared_batches` on `workers` threads (the model is
    applied by `_embed_batch`)."""

    def stage(root, records, spec, known, model, batch_size):
        return _prepared_batches(root, records, spec, batch_size, workers, known)

    return stage


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
                pending.append([(r, pool.submit(prepare, root, r, spec, known)) for r in chunk])

        for _ in range(AHEAD):
            submit()
        while pending:
            batch = pending.popleft()
            submit()
            yield [(r, f.result()) for r, f in batch]


def _generation_names(generation: int) -> tuple[str, str, str]:
    """The shard folder, FAISS file and cell file of a generation."""
    return f"shards-{generation:04d}", f"index-{generation:04d}.faiss", f"index-{generation:04d}.cells.npz"


def _next_generation(folder: Path, committed: int) -> int:
    """The next generation number whose names are all free: an interrupted run's shards stay
    where they are while this run reuses their embeddings and check pictures (`dedup.cache`),
    and go with the stale generations once it commits."""
    generation = committed + 1
    while any((folder / n).exists() for n in _generation_names(generation)):
        generation += 1
    return generation


def _remove_stale(owner: Claim, keep: set[int]) -> None:
    """Delete this index's own files of generations other than `keep` (the new one, and the
    previous one that readers which opened the old manifest may still be reading)."""
    names = {n for g in keep for n in _generation_names(g)}
    for name in list(owner.owned):
        if (name.startswith("shards-") or name.startswith("index-")) and name not in names:
            owner.remove_owned(name, files=_shard_files(owner.folder / name))


def _shard_files(folder: Path) -> tuple[str, ...]:
    """The shard files the writer names inside one of its shard folders."""
    if not folder.is_dir():
        return ()
    return tuple(p.name for p in folder.glob("shard-*") if p.suffix in (".parquet", PICTURES_SUFFIX))
