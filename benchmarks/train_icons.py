"""Training on labelled renditions, measured on an icon theme never trained on.

    python -m benchmarks.train_icons [--out benchmarks/out/train_icons]

A class is one icon of a Debian icon theme (its context and name; `recipes.icons.renditions`: no
aliases); its pictures are the theme's own renditions of it at 16 to 256 px, each drawn for its size. 80% of `gnome-icon-theme`'s icon
names (by hash) train `dedup train DIR --labels folders --out M` with nothing else given; the
other 20%, and a quarter of `oxygen-icon-theme`'s icons (held out: never trained, tuned or
calibrated on), are scored by `dedup evaluate --one-shot 3` for the trained model; oxygen also for
the shipped encoder. Installs both themes with apt when missing.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from recipes import icons


def write(classes: dict, dest: Path, keep) -> int:
    n = 0
    for name, sizes in sorted(classes.items()):
        if keep(name):
            (dest / name).mkdir(parents=True, exist_ok=True)
            for size, path in sizes.items():
                target = dest / name / f"{size}.png"
                if not target.exists():
                    os.link(path, target)
            n += 1
    return n


def bucket(name: str) -> int:
    return int(hashlib.sha256(name.encode()).hexdigest(), 16) % 100


def dedup(*args: str) -> str:
    return subprocess.run([sys.executable, "-m", "dedup", *args], check=True, capture_output=True, text=True).stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("benchmarks/out/train_icons"))
    args = ap.parse_args()
    icons.ensure(("gnome", "oxygen"))
    gnome, oxygen = (icons.renditions(t, min_size=16, min_count=3) for t in ("gnome", "oxygen"))
    counts = {"train": write(gnome, args.out / "gnome_train", lambda k: bucket(k) >= 20),
              "gnome_test": write(gnome, args.out / "gnome_test", lambda k: bucket(k) < 20),
              "oxygen": write(oxygen, args.out / "oxygen", lambda k: bucket(k) < 25)}
    print(f"icons: {counts}", file=sys.stderr)
    model = args.out / "icons.pt"
    start = time.perf_counter()
    dedup("train", str(args.out / "gnome_train"), "--labels", "folders", "--out", str(model), "-q")
    print(f"dedup train: {time.perf_counter() - start:.0f} s", file=sys.stderr)
    print("| model | data | pair accuracy (stored threshold) | AUC | threshold | 3-way one-shot |")
    print("|---|---|---|---|---|---|")
    # the shipped default trains on every gnome icon (`recipes.train_default`): it is scored on oxygen only
    for name, ref, sets in (("trained here", str(model), ("gnome_test", "oxygen")), ("shipped default", "default", ("oxygen",))):
        for data in sets:
            r = json.loads(dedup("evaluate", str(args.out / data), "--model", ref, "--one-shot", "3", "--trials", "1000",
                                 "--format", "json"))
            print(f"| {name} | {data} | {r['accuracy']:.4f} | {r['auc']:.4f} | {r['threshold']:.4f} | "
                  f"{r['one_shot']['accuracy']:.3f} |", flush=True)


if __name__ == "__main__":
    main()
