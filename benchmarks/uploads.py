"""Heavy copies looked up in a catalog: `dedup query --verify` and `find-duplicates --against`.

    python -m benchmarks.uploads [--catalog benchmarks/out/neardup] [--out benchmarks/out/uploads]

Takes a catalog that `benchmarks.neardup` (or `benchmarks.details --heavy N`) built, with its
`truth.json`, and splits off its heavy copies (`dedup.augment.HEAVY_FAMILIES`: a crop of a fifth
to under half of a picture, or the picture pasted onto a busier one) as uploads; the rest stays
the catalog. Then runs as a user would: `dedup index` on both; `dedup query UPLOADS --verify`
right after indexing, when no windows or descriptors of the catalog's pictures are kept yet (the
query cuts the windows and finds the keypoints itself when they are at most
`dedup.query.FRESH_WINDOWS` and `FRESH_DESCRIBED`), and again after `dedup find-duplicates` has
kept them, each also with `--no-windows`; and `dedup find-duplicates
--index UPLOADS --against CATALOG`, with neither windows nor the keypoint search, with windows
only, and with both (the default). An upload is found when a
neighbour or match confirmed the same comes from its source (its original or another copy of
it); a confirmed one from another source is wrong.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from dedup.augment import HEAVY_FAMILIES
from dedup.query import FRESH_DESCRIBED, FRESH_WINDOWS

DEDUP = [sys.executable, "-m", "dedup"]


def split(catalog: Path, truth: dict, out: Path) -> tuple[Path, Path]:
    """Copies of the heavy copies in `out/up` and of the rest in `out/cat`."""
    up, cat = out / "up", out / "cat"
    for name, (_, family) in truth.items():
        to = (up if family in HEAVY_FAMILIES else cat) / name
        to.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(catalog / name, to)
    return up, cat


def dedup(*args: str) -> tuple[str, float]:
    start = time.perf_counter()
    done = subprocess.run([*DEDUP, *args], check=True, capture_output=True, text=True)
    return done.stdout, time.perf_counter() - start


def score(found: dict[str, list[str]], truth: dict) -> dict:
    """`found`: per upload (file name), the catalog files confirmed the same."""
    source = {name: src for name, (src, _) in truth.items()}
    uploads = {name: family for name, (_, family) in truth.items() if family in HEAVY_FAMILIES}
    hit, total = Counter(), Counter(uploads.values())
    confirmed = right = 0
    for name, family in uploads.items():
        matches = found.get(name, [])
        confirmed += len(matches)
        mine = sum(source[m] == source[name] for m in matches)
        right += mine
        hit[family] += mine > 0
    return {"found": {f: f"{hit[f]} of {total[f]}" for f in sorted(total)},
            "recall": round(sum(hit.values()) / max(1, sum(total.values())), 4),
            "confirmed": confirmed, "wrong": confirmed - right,
            "precision": round(right / confirmed, 4) if confirmed else None}


def query(up: Path, index: Path, *extra: str) -> tuple[dict[str, list[str]], float]:
    text, seconds = dedup("query", str(up), "--index", str(index), "--verify", "--format", "json", *extra)
    return {Path(r["query"]).name: [Path(n["path"]).name for n in r["neighbors"] if n.get("same")]
            for r in json.loads(text)}, seconds


def against(up_index: Path, index: Path, *extra: str) -> tuple[dict[str, list[str]], float]:
    text, seconds = dedup("find-duplicates", "--index", str(up_index), "--against", str(index), "--format", "json", "-q",
                          *extra)
    return {Path(r["query"]).name: [Path(n["path"]).name for n in r["neighbors"] if n.get("same", True)]
            for r in json.loads(text)}, seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--catalog", type=Path, default=Path("benchmarks/out/neardup"),
                    help="A folder with catalog/ and truth.json (python -m benchmarks.neardup makes one).")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/out/uploads"))
    ap.add_argument("--json", type=Path, default=None, help="Also write the figures here.")
    args = ap.parse_args()
    truth = json.loads((args.catalog / "truth.json").read_text())
    if not any(family in HEAVY_FAMILIES for _, family in truth.values()):
        sys.exit(f"{args.catalog} has no heavy copies: build it with --heavy")
    out = args.out.resolve()
    shutil.rmtree(out, ignore_errors=True)
    up, cat = split(args.catalog / "catalog", truth, out)
    index, up_index = out / "cat_idx", out / "up_idx"
    _, index_s = dedup("index", str(cat), "--index", str(index), "-q")
    dedup("index", str(up), "--index", str(up_index), "-q")
    runs = {}

    def scored(key: str, label: str, found: dict[str, list[str]], seconds: float) -> None:
        runs[key] = {"run": label, "seconds": round(seconds, 1), **score(found, truth)}
        print(f"{label}: {runs[key]}", flush=True)

    scored("query_no_windows", "query --no-windows", *query(up, index, "--no-windows"))
    scored("query_before", "query before find-duplicates (the catalog's windows cut and keypoints found by the query, up to "
                           "FRESH_WINDOWS and FRESH_DESCRIBED pictures)", *query(up, index))
    _, find_s = dedup("find-duplicates", "--index", str(index), "-q", "--format", "json")
    print(f"find-duplicates on the catalog (keeps its windows): {find_s:.1f} s", flush=True)
    scored("query_after", "query after find-duplicates (the catalog's windows and descriptors too)", *query(up, index))
    scored("against_no_windows", "find-duplicates --against --no-windows --no-keypoint-search",
           *against(up_index, index, "--no-windows", "--no-keypoint-search"))
    scored("against_no_keypoint_search", "find-duplicates --against --no-keypoint-search",
           *against(up_index, index, "--no-keypoint-search"))
    scored("against", "find-duplicates --against", *against(up_index, index))
    figures = {"benchmark": "uploads", "command": "python -m benchmarks.uploads " + " ".join(sys.argv[1:]),
               "date": time.strftime("%Y-%m-%d"), "catalog": str(args.catalog), "catalog_images": len(truth) - len(list(up.iterdir())),
               "uploads": len(list(up.iterdir())), "index_seconds": round(index_s, 1), "fresh_windows": FRESH_WINDOWS,
               "fresh_described": FRESH_DESCRIBED,
               "runs": runs}
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
