"""The index's read-decode-embed stage as a Ray Data pipeline: catalog files → `map_batches` on a
pool of actors, each holding the model once → embeddings back to the driver in catalog order,
where `dedup.indexer` writes shards, FAISS index and manifest exactly as the local engine does."""
from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dedup.cache import Embedded, Known, KnownEmbeddings
from dedup.config import ModelConfig
from dedup.files import FileRecord, Skipped

if TYPE_CHECKING:
    from dedup.model import Model

BLOCK_FILES = 256  # files per Ray Data block: the unit an actor takes and a retry repeats


class Embedder:
    """A Ray Data actor: reads, hashes, decodes (draft mode) and embeds a batch of catalog files,
    with the model loaded once per actor."""

    def __init__(self, root: str, spec: ModelConfig, model: list, threads: int = 1):
        import ray
        import torch

        torch.set_num_threads(threads)
        self.root, self.spec, self.model = Path(root), spec, ray.get(model[0])

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        from dedup.embed import embed_pixels
        from dedup.indexer import prepare

        n = len(batch["rel"])
        out = {
            "rel": np.asarray(batch["rel"], dtype=object),
            "content_hash": np.full(n, "", dtype=object),
            "width": np.zeros(n, np.int32),
            "height": np.zeros(n, np.int32),
            "reason": np.full(n, "", dtype=object),
            "embedding": np.zeros((n, self.spec.embedding_dim), np.float32),
            "picture": np.full(n, b"", dtype=object),
        }
        decoded, slots = [], []
        for k in range(n):
            rec = FileRecord(str(batch["rel"][k]), int(batch["size"][k]), int(batch["mtime_ns"][k]))
            result = prepare(self.root, rec, self.spec, KnownEmbeddings())
            if isinstance(result, Skipped):
                out["reason"][k] = result.reason
                continue
            out["content_hash"][k], out["width"][k], out["height"][k] = result.content_hash, result.width, result.height
            out["picture"][k] = result.picture
            decoded.append(result.pixels)
            slots.append(k)
        if decoded:
            out["embedding"][slots] = embed_pixels(self.model, np.stack(decoded))
        return out


def embedded_files(ray: Any, root: Path, records: Sequence[FileRecord], spec: ModelConfig, model: Model,
                   batch_size: int, actors: int) -> Iterator[Embedded | Skipped]:
    """Each of `records`, embedded or skipped with a reason, in the order given."""
    import pyarrow as pa

    from dedup.onray.session import ordered_data

    blocks = [
        pa.table({"rel": pa.array([r.rel for r in part], pa.string()),
                  "size": pa.array([r.size for r in part], pa.int64()),
                  "mtime_ns": pa.array([r.mtime_ns for r in part], pa.int64())})
        for part in (records[s : s + BLOCK_FILES] for s in range(0, len(records), BLOCK_FILES))
    ]
    held = ray.put(model)  # passed inside a list: fetched by each actor, kept alive here for restarts
    with ordered_data(ray):
        # Ray Data restarts a dead actor and retries its batches (max_restarts, max_task_retries: -1)
        ds = ray.data.from_arrow(blocks).map_batches(
            Embedder,
            fn_constructor_kwargs={"root": str(root), "spec": spec, "model": [held]},
            batch_size=batch_size,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(min_size=1, max_size=actors),
            num_cpus=1,
        )
        for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
            for k, rel in enumerate(batch["rel"]):
                reason = str(batch["reason"][k])
                if reason:
                    yield Skipped(str(rel), reason)
                else:
                    yield Embedded(str(batch["content_hash"][k]), int(batch["width"][k]), int(batch["height"][k]),
                                   np.asarray(batch["embedding"][k], np.float32), bytes(batch["picture"][k]))


def ray_batches(ray: Any, actors: int) -> Callable[..., Iterator[list[tuple[FileRecord, Known | Embedded | Skipped]]]]:
    """The index stage on Ray: files whose path, size and mtime the index already holds are not
    read (as locally); the others go through `embedded_files`."""

    def batches(root: Path, records: list[FileRecord], spec: ModelConfig, known: KnownEmbeddings,
                model: Callable[[], Model], batch_size: int) -> Iterator[list[tuple[FileRecord, Known | Embedded | Skipped]]]:
        todo = [r for r in records if known.by_key.get((r.rel, r.size, r.mtime_ns)) is None]
        fresh = embedded_files(ray, root, todo, spec, model(), batch_size, actors) if todo else iter(())
        batch: list[tuple[FileRecord, Known | Embedded | Skipped]] = []
        for rec in records:
            hit = known.by_key.get((rec.rel, rec.size, rec.mtime_ns))
            batch.append((rec, hit if hit is not None else next(fresh)))
            if len(batch) == batch_size:
                yield batch
                batch = []
        if batch:
            yield batch

    return batches
