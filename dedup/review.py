"""Duplicate sets → a self-contained static review site: `index.html` (data, script and style
inline; no request leaves `file://`) and one thumbnail per distinct file (≤ 256 px, draft
decoding, made in parallel). A file that cannot be read (moved, offline, damaged) is previewed
from the picture the index stored of it, and the page says so."""
from __future__ import annotations

import html
import io
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps

from dedup import cpus
from dedup.atomic import atomic_write_text
from dedup.cluster import Linkage
from dedup.differs import keeper_pairs, other_pairs, set_differs_nowhere, spots_between
from dedup.errors import IndexFormatError, UsageError
from dedup.images import DECODE_ERRORS, ImageSkip, read_file
from dedup.index import Index, IndexLike, as_index
from dedup.keep import KeepPolicy
from dedup.progress import ProgressFn, silent
from dedup.results import DuplicateReport

THUMB_SIDE = 256
ALL_PAIRS = 6  # in sets up to this size, where every two members differ is known, whichever is kept
THUMBS = "thumbs"
RENDITION = "the keeper at another of the catalog's standard sizes, each the other's nearest there; no keypoints confirm it"


@dataclass(frozen=True)
class ReviewSummary:
    page: Path
    sets: int
    thumbnails: int
    failed: int  # files whose thumbnail could not be made
    seconds: float
    page_bytes: int


def thumbnail(path: Path, out: Path) -> str | None:
    """Write a ≤ 256 px JPEG of the image at `path` to `out`; returns the image's format name,
    or raises `ImageSkip`."""
    data = read_file(path)
    try:
        with Image.open(io.BytesIO(data)) as im:
            fmt = im.format or "?"
            im.draft("RGB", (THUMB_SIDE, THUMB_SIDE))
            im = ImageOps.exif_transpose(im)
            im.thumbnail((THUMB_SIDE, THUMB_SIDE))
            if im.mode not in ("RGB", "L"):
                im = im.convert("RGBA")
                flat = Image.new("RGB", im.size, (255, 255, 255))
                flat.paste(im, mask=im.getchannel("A"))
                im = flat
            im.save(out, "JPEG", quality=82)
        return fmt
    except (Image.DecompressionBombError, *DECODE_ERRORS) as exc:
        raise ImageSkip(f"cannot decode: {exc}") from None


def review_index(index: IndexLike = None, out: Path | None = None, *, threshold: float | None = None,
                 linkage: Linkage | None = None, keep: KeepPolicy = "largest", verify: bool = True,
                 variants_together: bool = False, workers: int | None = None, on_progress: ProgressFn = silent) -> ReviewSummary:
    """Find the duplicate sets of `index` (`dedup.duplicates.find_duplicates`) and write their
    review page into `out` (default: the index's `review` folder)."""
    from dedup.duplicates import find_duplicates

    index = as_index(index)
    report = find_duplicates(index, threshold, linkage=linkage, keep=keep, verify=verify,
                             variants_together=variants_together, workers=workers, on_progress=on_progress)
    return build_review(report, out or index.folder / "review", workers=workers, on_progress=on_progress)


def build_review(report: DuplicateReport, out: Path, *, workers: int | None = None, on_progress: ProgressFn = silent) -> ReviewSummary:
    """Write the review site for `report` into `out` (created; an existing page there is replaced)."""
    start = time.perf_counter()
    out = Path(out)
    root = Path(report.catalog)
    if out.resolve().is_relative_to(root.resolve()):
        raise UsageError(f"review folder {str(out)!r} is inside the catalog; choose a folder outside it")
    (out / THUMBS).mkdir(parents=True, exist_ok=True)
    index = Index.open(report.index)
    rows = index.rows
    facts = {p: k for k, p in enumerate(rows.path.tolist())}
    wanted: dict[str, str] = {}  # content hash → a catalog path with those bytes
    for g in report.groups:
        for m in g.members:
            wanted.setdefault(rows.content_hash[facts[m.path]], m.path)
    formats: dict[str, str | None] = {}
    errors: dict[str, str] = {}

    def make(item: tuple[str, str]) -> None:
        digest, rel = item
        target = out / THUMBS / f"{digest}.jpg"
        try:
            formats[digest] = thumbnail(root / rel, target)
        except ImageSkip as exc:
            errors[digest] = str(exc)
            try:
                target.write_bytes(index.picture(facts[rel]))  # a JPEG ≤ 256 px (`dedup.pictures`)
            except (ImageSkip, IndexFormatError):  # no stored picture either: the page says why
                return
            formats[digest] = None
            errors[digest] = f"{exc} (preview: the picture stored in the index)"

    with ThreadPoolExecutor(max_workers=workers or cpus.check_threads()) as pool:
        for n, _ in enumerate(pool.map(make, wanted.items()), 1):
            on_progress("thumbnails", n, len(wanted))
    checked = report.verified is not None
    pairs = other_pairs(report.groups, ALL_PAIRS)
    on_progress("differences", 0, len(report.groups))  # against the keepers, and within small sets: one pass
    asked = keeper_pairs(report.groups) + [p for among in pairs for p in among] if checked else []
    found = spots_between(index, asked, facts, workers or cpus.check_threads())
    on_progress("differences", len(report.groups), len(report.groups))
    sets = []
    for n, (g, among) in enumerate(zip(report.groups, pairs), 1):
        members = []
        for m in g.members:
            k = facts[m.path]
            digest = rows.content_hash[k]
            members.append({
                "path": m.path, "thumb": f"{THUMBS}/{digest}.jpg" if digest in formats else None,
                "original": (root / m.path).as_uri(), "width": int(rows.width[k]), "height": int(rows.height[k]),
                "size": int(rows.size[k]), "mtime": _iso(int(rows.mtime_ns[k])), "format": formats.get(digest),
                "distance": m.distance, "hash": digest, "error": errors.get(digest), "page": m.page,
                "more_pixels_only": m.more_pixels_only,
                "check": "exact copy" if g.exact else (RENDITION if m.rendition else "confirmed by the keypoint check"
                                                       if checked else "distance only"),
                "differs": s.to_dict() if (s := found.get((m.path, g.keep))) else None,
            })
        sets.append({"id": n, "keep": g.keep, "exact": g.exact, "max_distance": g.max_distance,
                     "nothing_differs": set_differs_nowhere(g, found), "members": members,
                     "pairs": [{"a": a, "b": b, "differs": s.to_dict()} for a, b in among if (s := found.get((a, b)))]})
    data = {"format": "dedup-review", "catalog": str(root), "index": str(report.index), "threshold": report.threshold,
            "generated": datetime.now(timezone.utc).isoformat(timespec="seconds"), "sets": sets}
    page = _page(data)
    atomic_write_text(out / "index.html", page, durable=False)
    return ReviewSummary(out / "index.html", len(sets), len(formats), len(errors), time.perf_counter() - start,
                         len(page.encode()))


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, timezone.utc).isoformat(timespec="seconds")


def _page(data: dict[str, Any]) -> str:
    template = (resources.files("dedup") / "assets" / "review.html").read_text()
    blob = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")  # cannot close the script element
    return template.replace("{{TITLE}}", html.escape(f"dedup review: {os.path.basename(data['catalog'])}")).replace(
        "{{DATA}}", blob)
