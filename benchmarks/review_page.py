"""The review page: generation time and thumbnails/s on 2,000 photos, page size, and the
browser's time to the first screen for 5,000 sets; also writes the README's screenshot.

    python -m benchmarks.review_page [--out benchmarks/out/review] [--screenshot docs/review.png]

Generates 1,400 distinct 640×480 JPEG photos and 600 edited copies of some of them, indexes
them with the shipped encoder, then times `find_duplicates` and `build_review` (thumbnails on
4 threads). For the 5,000-set page, sets of three are drawn from the same index (the page and
its script do not depend on the sets being real). Load time: from navigation to every image of
the first screen decoded, in headless chromium (Debian's, through playwright), three loads.
"""
from __future__ import annotations

import argparse
import random
import shutil
import time
from pathlib import Path

from dedup.duplicates import find_duplicates
from dedup.index import Index
from dedup.indexer import index_catalog
from dedup.model import load_model
from dedup.results import DuplicateReport, Group, Member
from dedup.review import build_review
from dedup.synth import jpeg_bytes, near_duplicate, scene

FIRST_SCREEN = """() => [...document.images].filter(i => { const r = i.getBoundingClientRect();
    return r.bottom > 0 && r.top < innerHeight; }).every(i => i.complete && i.naturalWidth > 0)"""


def catalog(root: Path) -> None:
    if (root / "done").exists():
        return
    shutil.rmtree(root, ignore_errors=True)
    (root / "photos").mkdir(parents=True)
    (root / "copies").mkdir()
    for k in range(1400):
        im = scene(50_000 + k, (640, 480))
        (root / "photos" / f"img_{k:05d}.jpg").write_bytes(jpeg_bytes(im, 88))
        if k < 600:
            (root / "copies" / f"img_{k:05d}_copy.jpg").write_bytes(jpeg_bytes(near_duplicate(im, k), 80))
    (root / "done").write_text("")


def synthetic_report(index: Path, sets: int) -> DuplicateReport:
    opened = Index.open(index)
    paths = opened.rows.path.tolist()
    rng = random.Random(0)
    groups = []
    for _ in range(sets):
        a, b, c = rng.sample(paths, 3)
        groups.append(Group(a, 0.3, False, (Member(a, 0.0), Member(b, 0.12), Member(c, 0.25))))
    return DuplicateReport(index, opened.manifest.catalog, 0.5, "complete", "largest", len(paths), groups)


def first_screen_ms(page_file: Path, shot: Path | None) -> list[float]:
    from playwright.sync_api import sync_playwright

    times = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium", args=["--no-sandbox"])
        for k in range(3):
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            start = time.perf_counter()
            page.goto(page_file.as_uri(), wait_until="domcontentloaded")
            page.wait_for_function(FIRST_SCREEN)
            times.append(1000 * (time.perf_counter() - start))
            if shot is not None and k == 0:
                page.screenshot(path=str(shot))
            page.close()
        browser.close()
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("benchmarks/out/review"))
    ap.add_argument("--screenshot", type=Path, default=Path("docs/review.png"))
    args = ap.parse_args()
    root, index = args.out / "catalog", args.out / "index"
    catalog(root)
    index_catalog(root, index, load_model())
    start = time.perf_counter()
    report = find_duplicates(index, workers=2)
    search_s = time.perf_counter() - start
    shutil.rmtree(args.out / "page", ignore_errors=True)
    real = build_review(report, args.out / "page", workers=4)
    shutil.rmtree(args.out / "page5000", ignore_errors=True)
    big = build_review(synthetic_report(index, 5000), args.out / "page5000", workers=4)
    loads = first_screen_ms(big.page, None)
    first_screen_ms(real.page, args.screenshot)
    thumbs_bytes = sum(f.stat().st_size for f in (args.out / "page" / "thumbs").iterdir())
    print("2,000 photos (1,400 originals at 640×480, 600 edited copies), 2-core CPU\n")
    print("| page | sets | thumbnails | find_duplicates s | build_review s | thumbnails/s | index.html | thumbnails |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| found sets | {real.sets} | {real.thumbnails} | {search_s:.1f} | {real.seconds:.1f} | "
          f"{real.thumbnails / real.seconds:.0f} | {real.page_bytes / 1024:.0f} kB | {thumbs_bytes / 1024 / 1024:.1f} MB |")
    print(f"| 5,000 drawn sets | {big.sets} | {big.thumbnails} | – | {big.seconds:.1f} | {big.thumbnails / big.seconds:.0f} | "
          f"{big.page_bytes / 1024:.0f} kB | – |")
    print(f"\nFirst screen of the 5,000-set page in headless chromium: {', '.join(f'{t:.0f}' for t in loads)} ms "
          f"(three loads). Screenshot of the found sets: {args.screenshot}")


if __name__ == "__main__":
    main()
