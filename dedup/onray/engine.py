"""`RayEngine`: the stages `dedup index` and `dedup find-duplicates` hand to Ray."""
from __future__ import annotations

from dataclasses import dataclass

from dedup.onray.session import cluster_cpus, connect


@dataclass(frozen=True)
class RayEngine:
    """Run on the Ray cluster at `address` (None: `RAY_ADDRESS`, an already initialised Ray, or
    a local instance). `actors`: most embedding actors at once (default: the cluster's CPUs)."""

    address: str | None = None
    actors: int | None = None
    name: str = "ray"

    def index_batches(self):
        """The index stage (`dedup.onray.indexing.ray_batches`)."""
        from dedup.onray.indexing import ray_batches

        ray = connect(self.address)
        return ray_batches(ray, self.actors or cluster_cpus(ray))

    def runner(self):
        """The pair search's task runner (`dedup.onray.search.ray_runner`); Ray is joined when it
        first runs (a flat index is searched without it)."""

        def run(*args):
            from dedup.onray.search import ray_runner

            return ray_runner(connect(self.address))(*args)

        return run

    def matcher(self):
        """The pair check's keypoint matching (`dedup.onray.matching.ray_matcher`); Ray is joined
        when it first runs (only when there are pairs to check)."""

        def match(*args, **kwargs):
            from dedup.onray.matching import ray_matcher

            return ray_matcher(connect(self.address))(*args, **kwargs)

        return match

    def looker(self):
        """The encoder's second looks at check pictures (`dedup.onray.looking.ray_looker`); Ray is
        joined when it first runs."""

        def look(*args):
            from dedup.onray.looking import ray_looker

            return ray_looker(connect(self.address))(*args)

        return look
