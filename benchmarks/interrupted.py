"""What an interrupted find-duplicates keeps: a fresh run as the baseline, then runs stopped by a
signal after some seconds and run again to the end, each on its own copy of an index with no
pair checks kept.

    python -m benchmarks.interrupted --index PATH [--after 25 40] [--signal SIGINT|SIGTERM|SIGKILL]
                                     [--checkpoint-after SECONDS]

For each stop it prints the exit status, how long the command took to exit, the pair checks it
kept, the time of the run after it, and whether that run gave the fresh run's sets. Without
kept checks the run after a stop takes as long as the fresh one. A SIGKILL leaves only what the
run saved after a block of a pass, which it does once the memo was last saved more than
`--checkpoint-after` seconds before (`dedup.checkmemo.CHECKPOINT_AFTER`, 60 s by default).
"""
from __future__ import annotations

import argparse
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dedup import checkmemo

COMMAND = [sys.executable, "-m", "dedup", "find-duplicates", "-q", "--format", "json", "--index"]
CHECKPOINTING = ("import sys; from dedup import checkmemo; checkmemo.CHECKPOINT_AFTER = float(sys.argv.pop(1)); "
                 "from dedup.cli import cli; cli(prog_name='dedup')")


def fresh_copy(index: Path, to: Path) -> Path:
    shutil.copytree(index, to)
    shutil.rmtree(to / checkmemo.FOLDER, ignore_errors=True)
    return to


def timed_run(index: Path) -> tuple[float, list]:
    start = time.perf_counter()
    out = subprocess.run([*COMMAND, str(index)], capture_output=True, text=True, check=True)
    return time.perf_counter() - start, [g["members"] for g in json.loads(out.stdout)["groups"]]


def kept_bytes(index: Path) -> int:
    return sum(p.stat().st_size for p in (index / checkmemo.FOLDER).rglob("*") if p.is_file())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--after", type=float, nargs="+", default=[25.0, 40.0])
    parser.add_argument("--signal", choices=["SIGINT", "SIGTERM", "SIGKILL"], default="SIGINT")
    parser.add_argument("--checkpoint-after", type=float, default=None)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        fresh, sets = timed_run(fresh_copy(args.index, Path(tmp) / "fresh"))
        print(f"fresh run: {fresh:.1f} s, {len(sets)} sets")
        for after in args.after:
            index = fresh_copy(args.index, Path(tmp) / f"stopped-{after:g}")
            command = [*COMMAND, str(index)]
            if args.checkpoint_after is not None:
                command[1:3] = ["-c", CHECKPOINTING, str(args.checkpoint_after)]
            process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            time.sleep(after)
            sent = time.perf_counter()
            process.send_signal(getattr(signal, args.signal))
            process.communicate()
            exited = time.perf_counter() - sent
            kept = kept_bytes(index)
            again, again_sets = timed_run(index)
            print(f"{args.signal} after {after:g} s: exit {process.returncode} {exited:.1f} s later, "
                  f"{kept / 1e6:.1f} MB of pair checks kept; run again {again:.1f} s "
                  f"({again / fresh:.2f} × fresh; stop + run again {(after + exited + again) / fresh:.2f} × fresh); "
                  f"same sets: {again_sets == sets}")


if __name__ == "__main__":
    main()
