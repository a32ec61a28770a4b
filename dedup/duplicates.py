"""Index → candidate pairs → the policy's verdicts → duplicate groups with a keeper and distances."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from dedup import judgements
from dedup.cluster import Linkage, group_pairs
from dedup.index import Index, IndexLike, as_index
from dedup.keep import KeepPolicy, keep_rank
from dedup.keypoints import match_pairs
from dedup.pairs import Pairs, rows_of
from dedup.policy import Policy, policy_for
from dedup.progress import ProgressFn, silent
from dedup.results import AgainstReport, DuplicateReport, Group, Member, Neighbor, QueryResult
from dedup.store import Rows

if TYPE_CHECKING:
    from dedup.engine import Engine


def index_policy(index: Index, threshold: float | None = None, verify: bool = True) -> Policy:
    """The duplicate policy of the model that built `index` (`dedup.policy.policy_for`)."""
    return policy_for(index.manifest.threshold, index.manifest.verify, threshold, verify)


def find_duplicates(
    index: IndexLike = None,
    threshold: float | None = None,
    *,
    linkage: Linkage | None = None,
    keep: KeepPolicy = "largest",
    verify: bool = True,
    workers: int = 2,
    engine: Engine | None = None,
    on_progress: ProgressFn = silent,
) -> DuplicateReport:
    """Group the indexed images that the index's duplicate policy (`index_policy`) judges the
    same into sets (`index`: an `Index`, its folder, or None for the only one under ./indexes).

    With the pair check, `threshold` (default: its candidate distance) bounds the candidates,
    and `linkage` defaults to "complete" (every two members of a set were confirmed); without
    it, `threshold` (default: the model's calibrated one) decides and `linkage` defaults to
    "center" (`dedup.cluster`). Pairs the user judged "not duplicates" (`dedup.judgements`)
    are dropped. Groups are sorted largest first, then by keeper path; members keeper first,
    then by distance to the keeper and path. `engine` (e.g. `dedup.onray.RayEngine`) runs the
    pair search's tasks; the sets do not depend on it. The index's vectors and probe cells
    are released once the pairs are found (`Index.release`).
    """
    index = as_index(index)
    policy = index_policy(index, threshold, verify)
    vectors = index.vectors
    pairs = policy.candidates(lambda: index.faiss, vectors, within=True, cells=index.cells,
                              runner=engine.runner() if engine is not None else None, on_progress=lambda d, t: on_progress("searching", d, t))
    decision = policy.decide(pairs, index.file, vectors=vectors, workers=workers,
                             match=engine.matcher() if engine is not None else match_pairs,
                             on_progress=lambda d, t: on_progress("verifying", d, t))
    candidates, kept = len(pairs), pairs[decision.keep]
    del pairs, vectors  # from here on memory holds only kept pairs and the rows they involve
    index.release("cells")
    # only the rows of some kept pair are read and ranked (ids → positions in `rows`)
    ids = rows_of(kept, len(index))
    involved = index.vectors[ids]
    index.release("vectors")
    rows = index.rows_of(ids)
    kept = Pairs(np.searchsorted(ids, kept.i), np.searchsorted(ids, kept.j), kept.d)
    kept = judgements.drop(kept, rows.content_hash[kept.i], rows.content_hash[kept.j], judgements.load(index.folder))
    rank = keep_rank(rows, keep)
    groups = [describe_group(members, involved[members], rows, rank)
              for members in group_pairs(len(ids), kept, rank, linkage or policy.linkage)]
    groups.sort(key=lambda g: (-len(g.members), g.keep))
    return DuplicateReport(index.folder, index.manifest.catalog, policy.threshold, linkage or policy.linkage, keep,
                           len(index), groups, candidates, decision.verified)


def describe_group(ids: np.ndarray, embeddings: np.ndarray, rows: Rows, rank: np.ndarray) -> Group:
    """Keeper (lowest rank), members' distances to it and the group's diameter (`embeddings`:
    the members' vectors, row k being member `ids[k]`)."""
    ids = np.asarray(ids)
    at = int(np.argmin(rank[ids]))
    keeper = ids[at]
    emb = np.asarray(embeddings, dtype=np.float64)
    to_keeper = np.sqrt(np.maximum(((emb - emb[at]) ** 2).sum(axis=1), 0.0))
    paths = rows.path[ids]  # the rows' own str objects, shared by the report
    order = sorted(range(len(ids)), key=lambda k: (ids[k] != keeper, to_keeper[k], paths[k]))
    hashes = rows.content_hash[ids]
    members = tuple(Member(paths[k], round(float(to_keeper[k]), 6)) for k in order)
    return Group(
        keep=str(rows.path[keeper]),
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


def find_against(
    index: IndexLike,
    against: IndexLike,
    threshold: float | None = None,
    *,
    verify: bool = True,
    workers: int = 2,
    on_progress: ProgressFn = silent,
) -> AgainstReport:
    """Images of `index` (e.g. incoming uploads) that match images of `against` (the catalog):
    only new-vs-catalog pairs, nearest first, judged by the reference index's policy. Both
    indexes must share a model."""
    mine, theirs = as_index(index), as_index(against)
    mine.same_model(theirs)
    policy = index_policy(theirs, threshold, verify)
    pairs = policy.candidates(lambda: theirs.faiss, mine.vectors, within=False)
    decision = policy.decide(pairs, mine.file, theirs.file, workers=workers,
                             on_progress=lambda d, t: on_progress("verifying", d, t))
    pairs = pairs[decision.keep]
    judged = judgements.load(mine.folder) | judgements.load(theirs.folder)
    pairs = judgements.drop(pairs, mine.rows.content_hash[pairs.i], theirs.rows.content_hash[pairs.j], judged)
    return AgainstReport(policy.threshold, _by_query(pairs, mine.rows.path, theirs.rows.path), decision.verified)


def _by_query(pairs: Pairs, query_paths: np.ndarray, found_paths: np.ndarray) -> list[QueryResult]:
    found: dict[int, list[Neighbor]] = {}
    for i, j, d in zip(pairs.i.tolist(), pairs.j.tolist(), pairs.d.tolist()):
        found.setdefault(i, []).append(Neighbor(str(found_paths[j]), round(float(d), 6)))
    return [QueryResult(str(query_paths[i]), tuple(sorted(m, key=lambda x: (x.distance, x.path))))
            for i, m in sorted(found.items())]
