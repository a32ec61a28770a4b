"""Run a `dedup` command in a fresh process and measure its wall time and peak RSS."""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

SAMPLE_S = 0.01  # how often the process tree's memory is sampled


def run_dedup(*args: str) -> tuple[float, float, str]:
    """(seconds, peak RSS in MiB, stdout) of `python -m dedup ARGS...` as a user runs it,
    start-up and exit included. The peak RSS is the larger of the process's own peak (`wait4`)
    and the peak, sampled every `SAMPLE_S`, of the RSS summed over it and its child processes
    (`dedup index` runs its encoder in one)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "dedup", *args], stdout=out, stderr=err)
        tree = _TreeRss(proc.pid)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        tree.stop()
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise subprocess.CalledProcessError(proc.returncode, ["dedup", *args], out.read(), err.read())
        return seconds, max(usage.ru_maxrss / 1024, tree.peak / 2**20), out.read().decode()


class _TreeRss:
    """Samples the RSS of a process and its descendants in a thread; `peak` in bytes."""

    def __init__(self, pid: int):
        self.pid, self.peak = pid, 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._done.set()
        self._thread.join()

    def _run(self) -> None:
        page = os.sysconf("SC_PAGE_SIZE")
        while not self._done.wait(SAMPLE_S):
            self.peak = max(self.peak, sum(_rss_pages(p) for p in _tree(self.pid)) * page)


def _tree(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        for task in Path(f"/proc/{p}/task").glob("*/children"):
            try:
                todo.extend(int(c) for c in task.read_text().split())
            except OSError:
                pass
    return found


def _rss_pages(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0
