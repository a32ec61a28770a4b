"""Run a `dedup` command in a fresh process and measure its wall time and peak RSS."""
from __future__ import annotations

import subprocess
import sys
import time

_CODE = (
    "import resource, sys; from dedup.cli import cli\n"
    "try:\n    cli(sys.argv[1:], standalone_mode=False)\n"
    "finally:\n    print('PEAK_RSS_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)"
)


def run_dedup(*args: str) -> tuple[float, float, str]:
    """(seconds, peak RSS in MiB, stdout) of `dedup ARGS...`, start-up included."""
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", _CODE, *args], check=True, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    return seconds, int(out.stderr.rsplit("PEAK_RSS_KB", 1)[-1]) / 1024, out.stdout
