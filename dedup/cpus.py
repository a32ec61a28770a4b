"""How many threads each stage runs: the CPUs this process may use, which in a container can be
far fewer than the machine has (`os.cpu_count()` counts the host's).

- `usable()`: the CPUs of the process's affinity mask, bounded by a CPU quota (cgroup v2
  `cpu.max`, v1 `cpu.cfs_quota_us`), rounded up.
- `encoder_threads()`: `dedup index`'s encoder, half of them; `decode_threads()`: its decoding
  threads, the rest, at least 2 (on 2 CPUs, 1 inference thread beside 2 decoding threads measured
  ~15% faster than 2 + 2; benchmarks/RESULTS.md).
- `check_threads()`: the pair search and the keypoint check, all of them.
"""
from __future__ import annotations

import math
import os
from functools import cache
from pathlib import Path

CGROUP = Path("/sys/fs/cgroup")


def quota(root: Path = CGROUP) -> float | None:
    """The CPU quota of this process's cgroup in CPUs, None when there is none (or it cannot be read)."""
    for limit, period in ((root / "cpu.max", None), (root / "cpu" / "cpu.cfs_quota_us", root / "cpu" / "cpu.cfs_period_us")):
        try:
            fields = limit.read_text().split()
            if period is not None:
                fields = [fields[0], period.read_text().strip()]
        except (OSError, IndexError):
            continue
        try:
            allowed, per = (float(f) for f in fields[:2])
        except ValueError:  # "max": no quota
            return None
        return allowed / per if allowed > 0 and per > 0 else None  # v1 writes -1 for none
    return None


def count(root: Path = CGROUP) -> int:
    """The CPUs this process may use (`usable`, uncached)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # no affinity masks on this platform
        cpus = os.cpu_count() or 1
    limit = quota(root)
    if limit is not None:
        cpus = min(cpus, math.ceil(limit))
    return max(1, cpus)


@cache
def usable() -> int:
    """The CPUs this process may use, read once."""
    return count()


def encoder_threads() -> int:
    return max(1, usable() // 2)


def decode_threads() -> int:
    return max(2, usable() - encoder_threads())


def check_threads() -> int:
    return usable()
