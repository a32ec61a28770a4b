"""False duplicates on a catalog with none, and what the keypoint check costs.

    python -m benchmarks.negative_control [--images 1000] [--seed 1] [--out benchmarks/out/negative_control]

Generates photo-sized JPEGs of distinct pictures (`throughput.make_photos`: flat shapes on a
gradient with sensor noise; the throughput benchmark's catalog is seed 0). Texture-poor pictures
like these have few keypoints, and among a few similar corners (two rectangles) keypoint
matches agree on one affine map by chance, so they are the hard case for the pair check (`dedup.policy`). Runs
`dedup index` and `dedup find-duplicates` with and without the keypoint check as a user would,
and prints the false sets (every set is false here), the candidate pairs checked, and the time of
each `find-duplicates` as a ratio to the index time measured in the same run.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from benchmarks.measure import run_dedup
from benchmarks.throughput import make_photos


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--model", default="default")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/out/negative_control"))
    args = ap.parse_args()
    catalog, index = args.out / f"catalog_seed{args.seed}_{args.images}", args.out / "index"
    make_photos(catalog, args.images, seed=args.seed)
    index_s, index_rss, _ = run_dedup("index", str(catalog), "--index", str(index), "--model", args.model, "-q")
    print(f"catalog: {args.images} distinct generated photos (seed {args.seed}); dedup index {index_s:.1f} s, "
          f"peak RSS {index_rss:.0f} MiB")
    print("\n| find-duplicates | false sets | images flagged removable | candidates checked | confirmed | "
          "time s | time / index time | peak RSS MiB |")
    print("|---|---|---|---|---|---|---|---|")
    for label, extra in (("default (keypoint check)", []), ("--no-verify", ["--no-verify"])):
        seconds, rss, out = run_dedup("find-duplicates", "--index", str(index), "--format", "json", "-q", *extra)
        doc = json.loads(out)
        v = doc["verified"] or {}
        removable = sum(len(g["members"]) - 1 for g in doc["groups"])
        print(f"| {label} | {len(doc['groups'])} | {removable} | {v.get('candidates', '—')} | {v.get('confirmed', '—')} | "
              f"{seconds:.1f} | {seconds / index_s:.2f} | {rss:.0f} |")


if __name__ == "__main__":
    main()
