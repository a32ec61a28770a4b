"""Index → close pairs → duplicate groups with a keeper and distances (`find_duplicates`)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dedup import judgements
from dedup.cluster import Linkage, group_pairs
from dedup.config import FALLBACK_THRESHOLD, VerifyConfig
from dedup.errors import ModelError
from dedup.index import load_index
from dedup.keep import KeepPolicy, keep_rank
from dedup.progress import ProgressFn, silent
from dedup.search import (
    Neighbor,
    Pairs,
    QueryResult,
    check_threshold,
    cross_knn_pairs,
    cross_range_pairs,
    range_pairs,
    union_pairs,
)
from dedup.store import read_embeddings, read_manifest, read_rows
from dedup.verify import candidate_pairs, locality_regions, manifest_check, verify_pairs


@dataclass(frozen=True)
class Member:
    path: str
    distance: float  # to the keeper


@dataclass(frozen=True)
class Group:
    """One duplicate set: the keeper is `members[0]`."""

    keep: str
    max_distance: float  # largest distance between any two members
    exact: bool  # every member has the same bytes
    members: tuple[Member, ...]


@dataclass(frozen=True)
class Verified:
    """What the second look (`dedup.verify`) did with the range search's candidate pairs."""

    candidates: int
    confirmed: int
    unreadable: int  # pairs with a file that could not be read, judged on distance alone


@dataclass
class DuplicateReport:
    index: Path
    catalog: str
    threshold: float
    linkage: str
    keep_policy: str
    images: int
    groups: list[Group] = field(default_factory=list)
    pairs: int = 0  # close pairs found by the range search
    verified: Verified | None = None  # the second look at those pairs, when it ran

    @property
    def duplicates(self) -> int:
        """Images that are not their group's keeper."""
        return sum(len(g.members) - 1 for g in self.groups)


def find_duplicates(
    index_dir: Path,
    threshold: float | None = None,
    *,
    linkage: Linkage | None = None,
    keep: KeepPolicy = "largest",
    verify: bool = True,
    workers: int = 2,
    on_progress: ProgressFn = silent,
) -> DuplicateReport:
    """Group the indexed images closer than `threshold` (Euclidean, unit vectors) into sets.

    When the index's model carries a calibrated second look and `verify` is on, close pairs are
    only candidates: every pair under the model's own threshold, and beyond it each image's
    `VerifyConfig.neighbours` nearest under `threshold` (so the work stays linear in the
    catalog). Each candidate is confirmed or rejected by matching keypoints in the two files
    (`dedup.verify`, files decoded on `workers` threads), and the default threshold is the second
    look's candidate distance. Otherwise the default is the model's calibrated threshold. Both
    are recorded in the manifest.

    `linkage` defaults to "complete" with the keypoint check (every two members of a set were
    confirmed) and to "center" without it (`dedup.cluster`).

    Pairs the user judged "not duplicates" (`dedup.judgements`) are dropped. Groups are sorted
    largest first, then by keeper path; members keeper first, then by distance to the keeper and
    path.
    """
    manifest = read_manifest(index_dir)
    model_threshold = float(manifest.get("threshold", FALLBACK_THRESHOLD))
    second = manifest_check(manifest) if verify else None
    default = second.candidates if second else model_threshold
    threshold = check_threshold(default if threshold is None else threshold)
    linkage = linkage or ("complete" if second else "center")
    embeddings = read_embeddings(index_dir, manifest)
    rows = read_rows(index_dir, manifest)
    index = load_index(index_dir, manifest)

    def searching(done: int, total: int) -> None:
        on_progress("searching", done, total)

    if second is None:
        pairs, verified = range_pairs(index, embeddings, threshold, on_progress=searching), None
        found = len(pairs)
    else:  # every pair the encoder alone would group, and each image's nearest beyond that
        pairs = candidate_pairs(index, embeddings, second.neighbours, model_threshold, threshold,
                                on_progress=searching)
        found = len(pairs)
        root, paths = Path(manifest["catalog"]), rows["path"]
        pairs, verified = _checked(pairs, second, lambda r: root / str(paths[r]), min(model_threshold, threshold),
                                   workers, on_progress, locality_regions(embeddings))
    hashes = rows["content_hash"]
    pairs = judgements.drop(pairs, hashes[pairs.i], hashes[pairs.j], judgements.load(index_dir))
    rank = keep_rank(rows, keep)
    groups = [describe_group(ids, embeddings, rows, rank) for ids in group_pairs(len(embeddings), pairs, rank, linkage)]
    groups.sort(key=lambda g: (-len(g.members), g.keep))
    return DuplicateReport(index_dir, manifest["catalog"], threshold, linkage, keep, len(embeddings), groups, found,
                           verified)


def _checked(pairs: Pairs, second: VerifyConfig, files: Callable[[int], Path], encoder_threshold: float,
             workers: int, on_progress: ProgressFn, regions: np.ndarray | None = None) -> tuple[Pairs, Verified]:
    """The candidate pairs the keypoint check confirms (`files(row)`: the file of a row; `regions`:
    the order to check them in, `verify.locality_regions`), and what it did."""
    verdicts = verify_pairs(pairs, second, files, encoder_threshold, workers=workers,
                            on_progress=lambda d, t: on_progress("verifying", d, t), regions=regions)
    kept = Pairs(pairs.i[verdicts.keep], pairs.j[verdicts.keep], pairs.d[verdicts.keep])
    return kept, Verified(len(pairs), len(kept), verdicts.unreadable)


def describe_group(ids: np.ndarray, embeddings: np.ndarray, rows: dict[str, np.ndarray], rank: np.ndarray) -> Group:
    """Keeper (lowest rank), members' distances to it and the group's diameter."""
    ids = np.asarray(ids)
    keeper = ids[np.argmin(rank[ids])]
    emb = embeddings[ids].astype(np.float64)
    to_keeper = np.sqrt(np.maximum(((emb - embeddings[keeper]) ** 2).sum(axis=1), 0.0))
    paths = rows["path"][ids].astype(str)
    order = np.lexsort((paths, to_keeper, ids != keeper))
    hashes = rows["content_hash"][ids]
    members = tuple(Member(str(paths[k]), round(float(to_keeper[k]), 6)) for k in order)
    return Group(
        keep=str(rows["path"][keeper]),
        max_distance=round(diameter(emb), 6),
        exact=bool(np.all(hashes == hashes[0])),
        members=members,
    )


def diameter(emb: np.ndarray, block: int = 2048) -> float:
    """Largest pairwise Euclidean distance among rows, in blocks (no n² matrix at once)."""
    sq = (emb**2).sum(axis=1)
    best = 0.0
    for s in range(0, len(emb), block):
        d2 = sq[s : s + block, None] + sq[None, :] - 2.0 * emb[s : s + block] @ emb.T
        best = max(best, float(d2.max()))
    return float(np.sqrt(max(best, 0.0)))


@dataclass
class AgainstReport:
    """Images of one index that match images of a reference index."""

    threshold: float
    results: list[QueryResult]
    verified: Verified | None = None  # the keypoint check, when it ran


def find_against(
    index_dir: Path,
    against_dir: Path,
    threshold: float | None = None,
    *,
    verify: bool = True,
    workers: int = 2,
    on_progress: ProgressFn = silent,
) -> AgainstReport:
    """Images of `index_dir` (e.g. incoming uploads) that match images of `against_dir` (the
    catalog): only new-vs-catalog pairs, nearest first. Both indexes must share a model.

    Candidates and the keypoint check work as in `find_duplicates`, with the reference index's
    calibration; each image of `index_dir` is checked against its nearest catalog images."""
    mine, theirs = read_manifest(index_dir), read_manifest(against_dir)
    if mine["model"]["identity"] != theirs["model"]["identity"]:
        raise ModelError(
            f"{index_dir} was built by {mine['model']['identity']} but {against_dir} by "
            f"{theirs['model']['identity']}; index both with the same --model"
        )
    model_threshold = float(theirs.get("threshold", FALLBACK_THRESHOLD))
    second = manifest_check(theirs) if verify else None
    threshold = check_threshold((second.candidates if second else model_threshold) if threshold is None else threshold)
    index, queries = load_index(against_dir, theirs), read_embeddings(index_dir, mine)
    new_rows, ref_rows = read_rows(index_dir, mine), read_rows(against_dir, theirs)
    new_paths, ref_paths = new_rows["path"], ref_rows["path"]
    verified = None
    if second is None:
        pairs = cross_range_pairs(index, queries, threshold)
    else:
        pairs = union_pairs(cross_range_pairs(index, queries, min(model_threshold, threshold)),
                            cross_knn_pairs(index, queries, second.neighbours, threshold))
        n, new_root, ref_root = len(queries), Path(mine["catalog"]), Path(theirs["catalog"])

        def files(row: int) -> Path:  # rows of `index_dir`, then rows of `against_dir` shifted by n
            return new_root / str(new_paths[row]) if row < n else ref_root / str(ref_paths[row - n])

        kept, verified = _checked(Pairs(pairs.i, pairs.j + n, pairs.d), second, files,
                                  min(model_threshold, threshold), workers, on_progress)
        pairs = Pairs(kept.i, kept.j - n, kept.d)
    judged = judgements.load(index_dir) | judgements.load(against_dir)
    pairs = judgements.drop(pairs, new_rows["content_hash"][pairs.i], ref_rows["content_hash"][pairs.j], judged)
    found: dict[int, list[Neighbor]] = {}
    for i, j, d in zip(pairs.i.tolist(), pairs.j.tolist(), pairs.d.tolist()):
        found.setdefault(i, []).append(Neighbor(str(ref_paths[j]), round(float(d), 6)))
    results = [QueryResult(str(new_paths[i]), tuple(sorted(m, key=lambda x: (x.distance, x.path)))) for i, m in sorted(found.items())]
    return AgainstReport(threshold, results, verified)
