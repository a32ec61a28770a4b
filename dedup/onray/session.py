"""Joining a Ray cluster, or starting a local Ray instance, once per process."""
from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from typing import Any, Iterator

from dedup.errors import EngineError


def connect(address: str | None = None) -> Any:
    """The `ray` module, initialised: an already initialised Ray is used as it is; otherwise
    `address` (or `RAY_ADDRESS`) names a running cluster, and with neither a local Ray instance
    is started on this machine's cores."""
    try:
        import ray
    except ImportError:
        raise EngineError("the Ray engine needs Ray: pip install 'dedup-images[ray]'", option="engine") from None
    if ray.is_initialized():
        return ray
    address = address or os.environ.get("RAY_ADDRESS") or None
    try:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING,
                 configure_logging=True)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise EngineError(f"cannot reach the Ray cluster at {address!r} ({exc}); start it with `ray start` on its head node",
                       option="address") from None
    return ray


def cluster_cpus(ray: Any) -> int:
    """CPUs the cluster offers (at least 1)."""
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


@contextmanager
def ordered_data(ray: Any) -> Iterator[Any]:
    """Ray Data's context with results in input order and no progress bars of its own, restored
    afterwards."""
    ctx = ray.data.DataContext.get_current()
    logger = logging.getLogger("ray.data")
    before = ctx.execution_options.preserve_order, ctx.enable_progress_bars, logger.level
    ctx.execution_options.preserve_order = True
    ctx.enable_progress_bars = False
    logger.setLevel(logging.ERROR)  # dedup draws its own progress; Ray Data's plans stay in its logs
    try:
        yield ctx
    finally:
        ctx.execution_options.preserve_order, ctx.enable_progress_bars, level = before
        logger.setLevel(level)
