"""Run a `dedup` command in a fresh process and measure its wall time and peak RSS."""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time


def run_dedup(*args: str) -> tuple[float, float, str]:
    """(seconds, peak RSS in MiB, stdout) of `python -m dedup ARGS...` as a user runs it,
    start-up and exit included; the peak RSS is that one process's (`wait4`)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "dedup", *args], stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise subprocess.CalledProcessError(proc.returncode, ["dedup", *args], out.read(), err.read())
        return seconds, usage.ru_maxrss / 1024, out.read().decode()
