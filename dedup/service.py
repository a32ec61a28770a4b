"""The core of `dedup serve`, without any web framework: one model, the index's current
generation (switched when `dedup index` commits a new one, while requests on the old one
finish), and query images embedded and searched in small dynamic batches on one thread."""
from __future__ import annotations

import logging
import os
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Callable

import numpy as np

from dedup import manifest
from dedup.checkmemo import descriptors_version, parts_version
from dedup.config import MAX_K, check_threshold
from dedup.duplicates import index_policy
from dedup.errors import DedupError
from dedup.images import ImageSkip, decode
from dedup.index import Index
from dedup.keypoints import KeypointStore
from dedup.loading import model_for_index
from dedup.manifest import Manifest
from dedup.model import Model
from dedup.policy import CheckedPolicy
from dedup.query import CatalogWindows, catalog_votes, catalog_windows, compare_decoded, neighbours, pasted_in, windows_in
from dedup.results import Comparison, Neighbor
from dedup.votes import Searched

log = logging.getLogger(__name__)
MAX_BATCH = 16  # images embedded together
BATCH_WAIT_S = 0.0  # how long a batch waits for company: none; requests queued meanwhile join it
WATCH_S = 0.5  # how often the manifest is checked for a new generation


class BadImage(DedupError):
    """An uploaded file that is not a decodable image (the message says why)."""


def load_generation(folder: Path, model: Model) -> Index:
    """The index's committed generation, fully in memory (FAISS index and rows)."""
    index = Index.open(folder)
    model_for_index(index.manifest, model)  # refuses an index of another model
    index.faiss, index.rows  # noqa: B018  (read now, not during a request)
    return index


@dataclass
class _Job:
    pixels: np.ndarray  # (size, size, 3) uint8
    k: int
    done: Future


class _Latest:
    """A value made for a version, made again (by one thread at a time) once the version changes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kept: tuple[Any, Any] | None = None

    def get(self, version: Any, make: Callable[[], Any]) -> Any:
        with self._lock:
            if self._kept is None or self._kept[0] != version:
                self._kept = version, make()
            return self._kept[1]


class Service:
    """Queries against one index; safe to call from many threads."""

    def __init__(self, index_dir: Path, model: Model | None = None, *, max_batch: int = MAX_BATCH,
                 batch_wait_s: float = BATCH_WAIT_S, watch_s: float = WATCH_S):
        self.folder = Path(index_dir)
        self.model = model_for_index(Manifest.load(self.folder), model)
        self.current = load_generation(self.folder, self.model)
        self._stamp = self._manifest_stamp()
        self._keypoints = KeypointStore()  # by picture content: later queries' neighbours, whatever the generation
        self._windows = _Latest()  # the kept windows (`CatalogWindows`), by generation and memo version
        self._votes = _Latest()  # the kept descriptors (`dedup.votes.Searched`), likewise
        self._max_batch, self._wait = max_batch, batch_wait_s
        self._jobs: queue.Queue[_Job | None] = queue.Queue()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._embed_loop, name="dedup-embed", daemon=True),
                         threading.Thread(target=self._watch_loop, args=(watch_s,), name="dedup-watch", daemon=True)]
        for t in self._threads:
            t.start()

    def close(self) -> None:
        self._stop.set()
        self._jobs.put(None)
        for t in self._threads:
            t.join(timeout=5)

    def health(self) -> dict[str, Any]:
        gen = self.current
        return {"status": "ok", "rows": len(gen), "generation": gen.manifest.generation, "model": self.model.identity}

    def decode(self, data: bytes):
        try:
            return decode(data, self.model.config.image_size, framing=self.model.config.framing)
        except ImageSkip as exc:
            raise BadImage(f"not a decodable image: {exc}") from None

    def query(self, data: bytes, k: int = 10, threshold: float | None = None, verify: bool = False,
              pasted: bool = True, windows: bool = True, keypoint_search: bool = True) -> list[Neighbor]:
        """The neighbours `dedup query` reports for an image with these bytes."""
        if not 1 <= k <= MAX_K:
            raise DedupError(f"k must be between 1 and {MAX_K}, got {k}", option="k")
        if threshold is not None:
            threshold = check_threshold(threshold)
        decoded = self.decode(data)
        job = _Job(decoded.pixels, k, Future())
        self._jobs.put(job)
        gen, emb = job.done.result()
        policy = index_policy(gen) if verify else None
        picture = lambda _: decoded.picture  # noqa: E731
        (result,) = neighbours(gen, [Path("upload")], emb[None], [None], k, threshold, policy, picture,
                               pasted_in(policy, picture, [0], self.model) if pasted else None, self._keypoints,
                               hashes=[decoded.content_hash],
                               windows=windows_in(policy, picture, [0], self.model) if windows else None,
                               catalog=self._catalog_windows(gen) if windows and isinstance(policy, CheckedPolicy) else None,
                               voted=partial(self._catalog_votes, gen, policy)
                               if keypoint_search and isinstance(policy, CheckedPolicy) else None,
                               sizes=[(decoded.height, decoded.width)])
        return list(result.neighbors)

    def _catalog_windows(self, gen: Index) -> CatalogWindows | None:
        """The windows of generation `gen`'s pictures (`catalog_windows`: those find-duplicates
        kept, and those the service cuts for up to `dedup.query.FRESH_WINDOWS` pictures it has not looked at),
        made again only for another generation or once find-duplicates has kept others."""
        version = (gen.manifest.generation, parts_version(gen.folder, self.model.config.embedding_dim))
        return self._windows.get(version, lambda: catalog_windows(gen, self.model))

    def _catalog_votes(self, gen: Index, policy: CheckedPolicy) -> Searched | None:
        """The descriptors of generation `gen`'s pictures, searchable (`catalog_votes`: those
        find-duplicates kept, and those the service finds for up to `dedup.query.FRESH_DESCRIBED`
        pictures it has none of), made again only for another generation or once find-duplicates has kept others."""
        version = (gen.manifest.generation, descriptors_version(gen.folder))
        return self._votes.get(version, lambda: catalog_votes(gen, policy.check))

    def compare(self, a: bytes, b: bytes) -> Comparison:
        """Distance and verdict of two images, as `dedup compare` gives them."""
        return compare_decoded(self.decode(a), self.decode(b), self.model)

    def _embed_loop(self) -> None:
        import faiss
        import torch

        from dedup.embed import embed_pixels

        torch.set_num_threads(1)  # one encoder thread; the others decode and answer requests
        faiss.omp_set_num_threads(1)

        while not self._stop.is_set():
            first = self._jobs.get()
            if first is None:
                return
            batch = [first]
            deadline = time.perf_counter() + self._wait
            while len(batch) < self._max_batch:
                try:
                    left = deadline - time.perf_counter()
                    job = self._jobs.get(timeout=left) if left > 0 else self._jobs.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    self._stop.set()
                    break
                batch.append(job)
            try:
                emb = embed_pixels(self.model, np.stack([j.pixels for j in batch]))
                gen = self.current
                for j, vector in zip(batch, emb):
                    j.done.set_result((gen, vector))
            except Exception as exc:  # reported to each waiting request, the loop goes on
                for j in batch:
                    j.done.set_exception(exc)

    def _manifest_stamp(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.folder / manifest.FILE)
        except OSError:
            return None
        return st.st_ino, st.st_mtime_ns, st.st_size

    def _watch_loop(self, every: float) -> None:
        while not self._stop.wait(every):
            stamp = self._manifest_stamp()
            if stamp is None or stamp == self._stamp:
                continue
            try:
                new = load_generation(self.folder, self.model)
            except DedupError as exc:
                log.warning("keeping generation %d: %s", self.current.manifest.generation, exc)
                self._stamp = stamp
                continue
            self._stamp = stamp
            if new.manifest.generation != self.current.manifest.generation:
                log.info("switched to generation %d (%d rows)", new.manifest.generation, len(new))
                self.current = new
