"""Results → JSON / CSV / plain-text tables; pure (returns strings)."""
from __future__ import annotations

import csv
import io
import json
import textwrap
from collections import Counter
from dataclasses import asdict
from typing import Any, Iterator, Literal, Sequence

from dedup.files import Skipped
from dedup.results import Comparison, DuplicateReport, Group, Member, Neighbor, QueryResult, Spots

Format = Literal["table", "json", "csv"]
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def printable(text: str) -> str:
    """`text` safe for a terminal: control characters and undecodable bytes as escapes."""
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if ch.isprintable() or ch == " ":
            out.append(ch)
        elif 0xDC80 <= ord(ch) <= 0xDCFF:  # an undecodable byte kept by surrogateescape
            out.append(f"\\x{ord(ch) - 0xDC00:02x}")
        else:
            out.append(ch.encode("unicode_escape").decode("ascii"))
    return "".join(out)


def csv_cell(text: str) -> str:
    """A text cell that a spreadsheet will not run as a formula (OWASP's leading quote)."""
    return "'" + text if text.startswith(_FORMULA) else text


def duplicates_dict(report: DuplicateReport) -> dict[str, Any]:
    """The stable JSON document of `find-duplicates`."""
    return {**_duplicates_head(report), "groups": [_group_dict(g) for g in report.groups]}


def _duplicates_head(report: DuplicateReport) -> dict[str, Any]:
    return {
        "index": str(report.index),
        "catalog": report.catalog,
        "threshold": report.threshold,
        "linkage": report.linkage,
        "keep_policy": report.keep_policy,
        "images": report.images,
        "verified": asdict(report.verified) if report.verified else None,
        "sets_left_out": report.left_out,
        "members_left_out": report.members_left_out,
    }


def _group_dict(g: Group) -> dict[str, Any]:
    return {"keep": g.keep, "max_distance": g.max_distance, "exact": g.exact,
            "members": [{"path": m.path, "distance": m.distance, **({"page": True} if m.page else {}),
                         **({"more_pixels_only": True} if m.more_pixels_only else {}),
                         **({"rendition": True} if m.rendition else {})} for m in g.members]}


def render_duplicates(report: DuplicateReport, fmt: Format) -> str:
    """`find-duplicates` output as one string (`iter_duplicates` streams it)."""
    return "".join(iter_duplicates(report, fmt))


def iter_duplicates(report: DuplicateReport, fmt: Format, sets_per_chunk: int = 1000) -> Iterator[str]:
    """`find-duplicates` output in chunks of `sets_per_chunk` sets, so that millions of sets are
    written without holding the whole text (JSON: the same text as `duplicates_dict` dumped
    with indent 2)."""
    groups = report.groups
    chunks = range(0, len(groups), sets_per_chunk)
    if fmt == "json":
        head = json.dumps({**_duplicates_head(report), "groups": []}, indent=2)
        if not groups:
            yield head + "\n"
            return
        yield head[: head.rindex("[]")] + "[\n"
        for s in chunks:
            last = s + sets_per_chunk >= len(groups)
            body = ",\n".join(textwrap.indent(json.dumps(_group_dict(g), indent=2), "    ") for g in groups[s : s + sets_per_chunk])
            yield body + ("\n  ]\n}\n" if last else ",\n")
        return
    if fmt == "csv":
        yield "group,path,keep,distance,max_distance,exact\n"
        for s in chunks:
            buf = io.StringIO()
            w = csv.writer(buf, lineterminator="\n")
            for n, g in enumerate(groups[s : s + sets_per_chunk], s + 1):
                for m in g.members:
                    w.writerow([n, csv_cell(m.path), int(m.path == g.keep), f"{m.distance:.6f}", f"{g.max_distance:.6f}", int(g.exact)])
            yield buf.getvalue()
        return
    for s in chunks:
        lines = []
        for n, g in enumerate(groups[s : s + sets_per_chunk], s + 1):
            kind = "exact duplicates" if g.exact else f"max distance {g.max_distance:.3f}"
            lines.append(f"Set {n}: {len(g.members)} images, {kind}")
            for m in g.members:
                tag = "keep" if m.path == g.keep else f"{m.distance:.3f}"
                lines.append(f"  {tag:>6}  {printable(m.path)}" + _note(m))
        yield "\n".join(lines) + "\n"


def _note(m: Member) -> str:
    """What the table says after a member's path: that it shows another member pasted into it, is
    the keeper at another of the catalog's sizes, or has more pixels than the keeper but no more of
    the picture."""
    if m.page:
        return "  (shows another member pasted into it)"
    if m.rendition:
        return "  (the keeper at another size: each the other's nearest there)"
    return "  (more pixels, no more of the picture)" if m.more_pixels_only else ""


def duplicates_summary(report: DuplicateReport) -> str:
    exact = sum(1 for g in report.groups if g.exact)
    text = (
        f"{len(report.groups)} duplicate sets ({exact} exact, {len(report.groups) - exact} near) covering "
        f"{report.duplicates + len(report.groups)} of {report.images} images; {report.duplicates} could be "
        f"removed (threshold {report.threshold}, linkage {report.linkage}, keep {report.keep_policy})"
    )
    v = report.verified
    if v is not None:
        text += f"; keypoint check confirmed {v.confirmed} of {v.candidates} close pairs"
        if v.told_apart:
            text += f" ({v.told_apart} more told apart by a differing detail, colourway or part)"
        if v.unreadable:
            text += f" ({v.unreadable} with an unreadable file, judged on distance alone)"
        if v.renditions:
            text += f"; {v.renditions} more taken as two sizes of one picture"
    if report.left_out or report.members_left_out:
        members, sets = report.members_left_out, report.left_out
        text += (f"; left out as differing from their keeper: {members} {'member' if members == 1 else 'members'} of the "
                 f"sets shown, {sets} whole {'set' if sets == 1 else 'sets'}")
    return text


def render_query(results: Sequence[QueryResult], fmt: Format) -> str:
    if fmt == "json":
        doc = []
        for r in results:
            item: dict[str, Any] = {"query": r.query, "neighbors": [neighbor_dict(n) for n in r.neighbors]}
            if r.error:
                item["error"] = r.error
            doc.append(item)
        return json.dumps(doc, indent=2) + "\n"
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        checked = any(n.same is not None for r in results for n in r.neighbors)
        w.writerow(["query", "rank", "path", "distance"] + (["same"] if checked else []))
        for r in results:
            for k, n in enumerate(r.neighbors, 1):
                w.writerow([csv_cell(r.query), k, csv_cell(n.path), f"{n.distance:.6f}"] + ([int(bool(n.same))] if checked else []))
        return buf.getvalue()
    lines = []
    for r in results:
        lines.append(printable(r.query) + (f"  (skipped: {printable(r.error)})" if r.error else ""))
        for k, n in enumerate(r.neighbors, 1):
            verdict = "" if n.same is None else (f"  different{' (told apart)' if n.told_apart else ''}" if not n.same else
                                                 "  same" + (f", differs {where_it_differs(n.differs, boxes=False)}" if n.differs else ""))
            pasted = ("  (pasted into the query)" if n.pasted else "  (turned)" if n.turned else
                      "  (through a window)" if n.window else "  (by shared keypoints)" if n.shared else "")
            lines.append(f"  {k:>3}. {n.distance:.3f}  {printable(n.path)}{verdict}{pasted}")
        if not r.neighbors and not r.error:
            lines.append("  (no neighbours under the threshold)")
    return "\n".join(lines) + "\n"


def neighbor_dict(n: Neighbor) -> dict[str, Any]:
    """A neighbour's JSON: path and distance; when the verdict was asked for, it and where the
    query differs from a neighbour judged the same (null when unknown or not the same); `pasted`
    (true) when it was found through a picture pasted into the query, `window` (true) through a
    window of either picture (a heavy crop, a picture pasted onto a busier one), `shared_keypoints`
    (true) by the keypoints both share (the same two kinds of copy), `turned` (true)
    through the query turned a quarter, half or three quarters of a turn; `told_apart`
    (true) when the keypoints confirm it but the check tells it apart (another item of one design)."""
    doc: dict[str, Any] = {"path": n.path, "distance": n.distance}
    if n.same is not None:
        doc["same"] = n.same
        doc["differs"] = n.differs.to_dict() if n.differs else None
    if n.pasted:
        doc["pasted"] = True
    if n.window:
        doc["window"] = True
    if n.shared:
        doc["shared_keypoints"] = True
    if n.turned:
        doc["turned"] = True
    if n.told_apart:
        doc["told_apart"] = True
    return doc


def comparison_dict(result: Comparison) -> dict[str, Any]:
    """A comparison as `dedup compare --format json` and the service's `/compare` give it."""
    return {"distance": result.distance, "cosine": round(result.cosine, 6), "threshold": result.threshold,
            "same": result.same, "keypoints_agreeing": result.inliers, "probability": result.probability,
            "told_apart": result.told_apart, "plain_apart": result.plain_apart, "framed": result.framed,
            "same_bytes": result.same_bytes,
            "differs": result.differs.to_dict() if result.differs else None}


def where_it_differs(spots: Spots, boxes: bool = True) -> str:
    """Where a picture differs from another, in words (with `boxes`, the regions in percent of its
    width and height)."""
    share = f"{100 * spots.share:.2g}% of the picture"
    if spots.throughout:
        return f"throughout ({share})"
    if not spots.boxes:
        return "nowhere" if spots.share == 0 else f"only in specks ({share})"
    regions = f"in {len(spots.boxes)} {'region' if len(spots.boxes) == 1 else 'regions'} ({share})"
    if not boxes:
        return regions
    return regions + ": " + "; ".join(f"x {100 * x:.0f}–{100 * (x + w):.0f}%, y {100 * y:.0f}–{100 * (y + h):.0f}%"
                                      for x, y, w, h in spots.boxes)


def skipped_summary(skipped: Sequence[Skipped], limit: int = 20) -> list[str]:
    """Lines listing skipped files with reasons (the first `limit`) and counts per reason."""
    if not skipped:
        return []
    lines = [f"Skipped {len(skipped)} files:"]
    lines += [f"  {printable(s.rel) or '.'}: {printable(s.reason)}" for s in skipped[:limit]]
    if len(skipped) > limit:
        counts = Counter(s.reason.split(":")[0] for s in skipped)
        lines.append(f"  ... and {len(skipped) - limit} more (" + ", ".join(f"{c}× {r}" for r, c in counts.most_common()) + ")")
    return lines
