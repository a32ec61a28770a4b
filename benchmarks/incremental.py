"""Re-indexing an unchanged catalog against the first full run, and after a few changes.

    python -m benchmarks.incremental [--images 10000] [--out benchmarks/out/incremental]

Generates (deterministically) a catalog of 640×480 JPEGs, then times three `dedup index` runs
as a user runs them: the first (everything embedded), a second on the unchanged catalog (only
size/mtime checks), and a third after 1% of files were added, changed or removed.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from dedup.synth import jpeg_bytes, scene


def run(catalog: Path, index: Path) -> tuple[float, dict]:
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "dedup", "index", str(catalog), "--index", str(index), "-q", "--format", "json"],
                         check=True, capture_output=True, text=True)
    return time.perf_counter() - start, json.loads(out.stdout)


PROBE = """import sys
from dedup.cli import cli
try:
    cli(sys.argv[1:], prog_name="dedup")
except SystemExit:
    pass
print("torch" in sys.modules, file=sys.stderr)
"""


def loads_torch(catalog: Path, index: Path) -> bool:
    """Whether a `dedup index` run imports torch (it should not when nothing changed)."""
    out = subprocess.run([sys.executable, "-c", PROBE, "index", str(catalog), "--index", str(index), "-q"],
                         check=True, capture_output=True, text=True)
    return out.stderr.strip().splitlines()[-1] == "True"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=10_000)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/out/incremental"))
    args = ap.parse_args()
    catalog, index = args.out / "catalog", args.out / "index"
    shutil.rmtree(index, ignore_errors=True)
    catalog.mkdir(parents=True, exist_ok=True)
    for k in range(args.images):
        path = catalog / f"{k // 1000:02d}" / f"img_{k:06d}.jpg"
        if not path.exists():
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(jpeg_bytes(scene(k, (640, 480)), 88))
    first, s1 = run(catalog, index)
    second, s2 = run(catalog, index)
    torch_again = loads_torch(catalog, index)
    step = 100
    for k in range(0, args.images, step * 3):
        (catalog / f"{k // 1000:02d}" / f"img_{k:06d}.jpg").write_bytes(jpeg_bytes(scene(10**7 + k, (640, 480)), 88))
    for k in range(step, args.images, step * 3):
        (catalog / f"{k // 1000:02d}" / f"img_{k:06d}.jpg").unlink()
    for k in range(2 * step, args.images, step * 3):
        (catalog / f"{k // 1000:02d}" / f"new_{k:06d}.jpg").write_bytes(jpeg_bytes(scene(2 * 10**7 + k, (640, 480)), 88))
    third, s3 = run(catalog, index)
    print(f"{args.images} JPEGs of 640×480; the unchanged run imports torch: {torch_again}\n")
    print("| run | seconds | ratio to first | embedded | added | changed | removed | unchanged |")
    print("|---|---|---|---|---|---|---|---|")
    for name, t, s in (("first (full)", first, s1), ("second (unchanged)", second, s2), ("third (1% changed)", third, s3)):
        print(f"| {name} | {t:.1f} | {t / first:.3f} | {s['embedded']} | {s['added']} | {s['changed']} | {s['removed']} | {s['unchanged']} |")
    # restore the catalog for the next run of this script
    for k in range(step, args.images, step * 3):
        (catalog / f"{k // 1000:02d}" / f"img_{k:06d}.jpg").write_bytes(jpeg_bytes(scene(k, (640, 480)), 88))
    for k in range(0, args.images, step * 3):
        (catalog / f"{k // 1000:02d}" / f"img_{k:06d}.jpg").write_bytes(jpeg_bytes(scene(k, (640, 480)), 88))
    for p in catalog.glob("*/new_*.jpg"):
        p.unlink()


if __name__ == "__main__":
    main()
