"""Index → candidate pairs → the policy's verdicts → duplicate groups with a keeper and distances."""
from __future__ import annotations

import logging
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING

import numpy as np

from dedup import cpus, judgements
from dedup.checkmemo import ALIKE, TINY, PairChecks
from dedup.cluster import Linkage, group_pairs
from dedup.describe import describe_groups, narrowed, page_members, set_index
from dedup.details import alike, differs_nowhere, framed_maps, tiny_told_apart, told_apart
from dedup.differs import Found, keeper_pairs, pair_spots, spots_between, unchanged_members
from dedup.drawn import drawn_scales, outdrawn
from dedup.errors import UsageError
from dedup.index import Index, IndexLike, as_index
from dedup.keep import KeepPolicy, by_drawing, keep_rank, keep_tiers, path_rank
from dedup.keypoints import KeypointStore, match_pairs
from dedup.pairs import Pairs, among, rows_of, union_pairs
from dedup.passes import TURNED_VIEWS, through_pasted, through_views, through_votes, through_windows, undescribed, windows_against
from dedup.policy import SECOND_SET, CheckedPolicy, Policy, joined, policy_for
from dedup.progress import ProgressFn, silent
from dedup.renditions import marked, reach, rendition_pairs
from dedup.results import AgainstReport, DuplicateReport, Group, Neighbor, QueryResult, Verified
from dedup.seams import NestedMaps, composites, which_composite

if TYPE_CHECKING:
    from dedup.engine import Engine

log = logging.getLogger(__name__)


def index_policy(index: Index, threshold: float | None = None, verify: bool = True,
                 variants_together: bool = False) -> Policy:
    """The duplicate policy of the model that built `index` (`dedup.policy.policy_for`)."""
    return policy_for(index.manifest.threshold, index.manifest.verify, threshold, verify, variants_together)


def find_duplicates(
    index: IndexLike = None,
    threshold: float | None = None,
    *,
    linkage: Linkage | None = None,
    keep: KeepPolicy = "largest",
    verify: bool = True,
    variants_together: bool = False,
    nothing_differs: bool = False,
    pasted: bool = True,
    windows: bool = True,
    turned: bool = False,
    keypoint_search: bool = True,
    renditions: bool = True,
    workers: int | None = None,
    engine: Engine | None = None,
    on_progress: ProgressFn = silent,
) -> DuplicateReport:
    """Group the indexed images that the index's duplicate policy (`index_policy`) judges the
    same into sets (`index`: an `Index`, its folder, or None for the only one under ./indexes).

    With the pair check, `threshold` (default: its candidate distance) bounds the candidates,
    and `linkage` defaults to "complete" (every two members of a set were confirmed); without
    it, `threshold` (default: the model's calibrated one) decides and `linkage` defaults to
    "center" (`dedup.cluster`). Pairs the user judged "not duplicates" (`dedup.judgements`)
    are dropped. With `variants_together`, items the check tells apart by a differing detail or
    colourway (one design's variants) are grouped as duplicates. With `nothing_differs` (needs the
    check), only sets where no member differs from its keeper are kept (`dedup.differs`): exact
    copies, or members that, laid over the keeper, differ nowhere. With `pasted` and the check, a
    picture pasted into a page (a screenshot) is also paired with the pictures near its own vector
    (`dedup.parts`); with `windows` and the check, each picture with the pictures near its windows
    (`dedup.windows`: a heavy crop of it, or a picture pasted onto it); with `keypoint_search` and
    the check, each picture with the pictures it shares the most keypoints with, kept only when one
    lies inside the other (`dedup.votes`: the same two kinds of copy); with `turned` and the
    check, each picture with the pictures near it turned a quarter, half or three quarters of a
    turn (`dedup.turns`: a copy saved turned); with `renditions` and the check, two pictures stored
    at two of the catalog's standard sizes that are each other's nearest (`dedup.renditions`: an
    icon theme's sizes, thumbnails). With the check, a member
    that shows another pasted into it (a page, or a composite: `dedup.seams`) is suggested as the
    keeper only when no other member can be; `keep="largest"` compares the members by how large
    they draw the picture (`dedup.drawn`); among the members `keep` ranks alike, the most central
    one is (`dedup.describe`), before `keep_rank`'s tie-breaks. Groups are sorted largest
    first, then by keeper path; members keeper first, then by distance to the keeper and path. `engine` (e.g. `dedup.onray.RayEngine`) runs the
    pair search's tasks; the sets do not depend on it. The index's vectors and probe cells
    are released once the pairs are found (`Index.release`). The check's work on each pair is
    kept in the index folder and not done again by later runs (`dedup.checkmemo`).
    """
    index = as_index(index)
    policy = index_policy(index, threshold, verify, variants_together)
    threads = workers or cpus.check_threads()
    vectors = index.vectors
    pairs = policy.candidates(lambda: index.faiss, vectors, within=True, cells=index.cells,
                              runner=engine.runner() if engine is not None else None, on_progress=lambda d, t: on_progress("searching", d, t))
    memo = PairChecks(index.folder, index.rows.content_hash)
    # the passes share the keypoints they find: the pasted pictures' neighbours were mostly looked at by the first pass
    match = engine.matcher() if engine is not None else partial(match_pairs, store=KeypointStore())
    looker = engine.looker() if engine is not None else None
    with memo.saving():  # kept also when interrupted
        decision = policy.decide(pairs, index.picture, vectors=vectors, workers=threads,
                                 hashes=(index.rows.content_hash,) * 2, background=policy.backgrounds(vectors, pairs),
                                 match=memo.matcher(match),
                                 tell=memo.teller(told_apart), tiny=memo.teller(tiny_told_apart, TINY),
                                 alike=memo.teller(alike, ALIKE), frame=memo.framer(framed_maps),
                                 confirmed=(nested := NestedMaps()),
                                 on_progress=lambda d, t: on_progress("verifying", d, t))
        candidates, kept, verified = len(pairs), pairs[decision.keep], decision.verified
        frames = (index.rows.height, index.rows.width)
        pages, shown = composites(kept, nested.maps, index.picture, threads, frames, memo.judge(which_composite))  # pasted, or padded
        sizes = Pairs.empty()  # pairs taken as two sizes of one picture, which the keypoints did not confirm
        if renditions and isinstance(policy, CheckedPolicy):
            sizes = rendition_pairs(pairs, index.rows.width, index.rows.height, reach(policy.encoder_threshold, policy.threshold),
                                    vectors, decision.told_apart)
            sizes = sizes[~among(sizes, kept)]
            kept, verified = union_pairs(kept, sizes), replace(verified, renditions=len(sizes))
        memo.checkpoint()
        if pasted and isinstance(policy, CheckedPolicy):
            inside = through_pasted(index, index, policy, pairs, memo, match, threads, on_progress, looker)
            if inside is not None:
                parts, through, checked = inside
                kept = union_pairs(kept, Pairs(np.minimum(through.i, through.j), np.maximum(through.i, through.j), through.d))
                on, of = parts.holders(kept, vectors)
                pages, shown = np.concatenate([pages, on]), np.concatenate([shown, of])
                candidates, verified = candidates + checked.candidates, _sum(verified, checked)
        memo.checkpoint()
        if windows and isinstance(policy, CheckedPolicy):
            through = through_windows(index, policy, pairs, memo, match, threads, on_progress, looker)
            if through is not None:
                found, checked, (onto, pasted_on) = through
                kept = union_pairs(kept, found)
                pages, shown = np.concatenate([pages, onto]), np.concatenate([shown, pasted_on])
                candidates, verified = candidates + checked.candidates, _sum(verified, checked)
        memo.checkpoint()
        if keypoint_search and isinstance(policy, CheckedPolicy):
            found, _, checked, voted_maps = through_votes(index, None, policy, union_pairs(pairs, kept), memo, match, threads,
                                                          on_progress)
            kept = union_pairs(kept, found)
            onto, pasted_on = composites(found, voted_maps.maps, index.picture, threads, frames, memo.judge(which_composite))
            pages, shown = np.concatenate([pages, onto]), np.concatenate([shown, pasted_on])
            candidates, verified = candidates + checked.candidates, _sum(verified, checked)
        memo.checkpoint()
        if turned and isinstance(policy, CheckedPolicy):
            through = through_views(index, policy, pairs, memo, match, threads, on_progress, TURNED_VIEWS, looker)
            if through is not None:
                found, checked, _ = through
                kept = union_pairs(kept, found)
                candidates, verified = candidates + checked.candidates, _sum(verified, checked)
    del pairs, vectors  # from here on memory holds only kept pairs and the rows they involve
    index.release("cells")
    # only the rows of some kept pair are read and ranked (ids → positions in `rows`)
    ids = rows_of(kept, len(index))
    involved = index.vectors[ids]
    index.release("vectors")
    rows = index.rows_of(ids)
    kept = Pairs(np.searchsorted(ids, kept.i), np.searchsorted(ids, kept.j), kept.d)
    kept = judgements.drop(kept, rows.content_hash[kept.i], rows.content_hash[kept.j], judgements.load(index.folder))
    by_path = path_rank(rows)
    last = np.isin(ids, pages)
    rank = keep_rank(rows, keep, by_path, last=last)
    sets = group_pairs(len(ids), kept, rank, linkage or policy.linkage)
    behind = None
    if by_drawing(keep):  # composites and pages (`last`) take no part
        behind = outdrawn(np.where(last, -1, set_index(sets, len(ids))), rows.pixels,
                          drawn_scales(nested.maps, ids, rows.height, rows.width))
    groups = describe_groups(sets, involved, rows, rank, by_path,
                             page_members(sets, len(ids), np.searchsorted(ids, pages), np.searchsorted(ids, shown)),
                             keep_tiers(rows, keep, by_path, last, drawn=True), behind)
    groups = marked(groups, index.rows.path[sizes.i], index.rows.path[sizes.j])
    groups.sort(key=lambda g: (-len(g.members), g.keep))
    found = len(groups)
    members_out = 0
    if nothing_differs:
        if verified is None:
            raise _needs_check()
        on_progress("differences", 0, found)
        row = dict(zip(rows.path.tolist(), ids.tolist()))  # the rows of the sets' members only
        found_spots = spots_between(index, keeper_pairs(groups), row, threads)
        groups, members_out = _unchanged(groups, found_spots, involved, rows.content_hash,
                                         dict(zip(rows.path.tolist(), range(len(ids)))))
        on_progress("differences", found, found)
    return DuplicateReport(index.folder, index.manifest.catalog, policy.threshold, linkage or policy.linkage, keep,
                           len(index), groups, candidates, verified, found - len(groups),
                           members_out)


def _unchanged(groups: list[Group], found: Found, vectors: np.ndarray, hashes: np.ndarray, at: dict[str, int]
               ) -> tuple[list[Group], int]:
    """Of each set, its keeper and the members that differ nowhere from it (`unchanged_members`;
    `found` says where each member differs from its keeper), and how many members were left out
    of the sets kept; the sets where no member is left beside the keeper are left out. `vectors`
    and content `hashes` are the members', at position `at[path]`."""
    out, left_out = [], 0
    for g in groups:
        kept = unchanged_members(g, found)
        if len(kept) == len(g.members):
            out.append(g)
        elif len(kept) > 1:
            k = [at[m.path] for m in kept]
            out.append(narrowed(g, kept, vectors[k], hashes[k]))
            left_out += len(g.members) - len(kept)
    return out, left_out


OWN, PASTED_IN, WINDOW, SHARED = 0, 1, 2, 3  # how an --against match was found: by the pictures' vectors, a pasted
# picture's, a window's, the keypoints both share
AGAINST_SEARCHED = 20_000  # --against searches by shared keypoints only when at most this many catalog pictures
# have no stored descriptors, unless told (finding their keypoints takes ~5 ms a picture)


def _sum(a: Verified | None, b: Verified | None) -> Verified | None:
    if a is None or b is None:
        return a or b
    return Verified(a.candidates + b.candidates, a.confirmed + b.confirmed, a.unreadable + b.unreadable,
                    a.told_apart + b.told_apart, a.renditions + b.renditions)


def find_against(
    index: IndexLike,
    against: IndexLike,
    threshold: float | None = None,
    *,
    verify: bool = True,
    variants_together: bool = False,
    nothing_differs: bool = False,
    pasted: bool = True,
    windows: bool = True,
    keypoint_search: bool | None = None,
    workers: int | None = None,
    engine: Engine | None = None,
    on_progress: ProgressFn = silent,
) -> AgainstReport:
    """Images of `index` (e.g. incoming uploads) that match images of `against` (the catalog):
    only new-vs-catalog pairs, nearest first, judged by the reference index's policy. Both
    indexes must share a model. With `nothing_differs` (needs the check), only the matches that,
    laid over the incoming image, differ from it nowhere (`dedup.differs`). With `pasted` and the
    check, a picture pasted into an incoming one (a screenshot) is also matched by its own vector
    (`dedup.parts`); with `windows` and the check, an incoming image is matched through windows of
    it and of the catalog's pictures (`dedup.windows`: a heavy crop, a picture pasted onto a busier
    one); with `keypoint_search` and the check, an incoming image nothing else matched, by the
    keypoints it shares with a catalog picture when one lies inside the other (`dedup.votes`; its
    one match with the most agreeing keypoints). The catalog's pictures' descriptors are kept (in
    the catalog's memo by its find-duplicates, else in `index`'s folder), so `keypoint_search=None`
    (the default) searches only when at most `AGAINST_SEARCHED` catalog pictures have none yet
    (logged otherwise). `engine` (e.g.
    `dedup.onray.RayEngine`) matches keypoints and embeds the pasted pictures
    and windows; the matches do not depend on it. The check's work on
    each pair is kept in `index`'s folder and not done again by later runs against the same
    pictures (`dedup.checkmemo`)."""
    mine, theirs = as_index(index), as_index(against)
    mine.same_model(theirs)
    threads = workers or cpus.check_threads()
    policy = index_policy(theirs, threshold, verify, variants_together)
    pairs = policy.candidates(lambda: theirs.faiss, mine.vectors, within=False)
    memo = PairChecks(mine.folder, mine.rows.content_hash, reference=theirs.rows.content_hash)
    match = engine.matcher() if engine is not None else partial(match_pairs, store=KeypointStore())  # shared by the passes
    looker = engine.looker() if engine is not None else None
    with memo.saving():  # kept also when interrupted
        decision = policy.decide(pairs, mine.picture, theirs.picture, workers=threads,
                                 hashes=(mine.rows.content_hash, theirs.rows.content_hash),
                                 background=policy.backgrounds(mine.vectors, pairs, reference=lambda: theirs.vectors),
                                 match=memo.matcher(match), tell=memo.teller(told_apart), tiny=memo.teller(tiny_told_apart, TINY),
                                 alike=memo.teller(alike, ALIKE),
                                 frame=memo.framer(framed_maps),
                                 on_progress=lambda d, t: on_progress("verifying", d, t))
        verified, known, pairs = decision.verified, pairs, pairs[decision.keep]
        inside = np.full(len(pairs), OWN)
        memo.checkpoint()
        if pasted and isinstance(policy, CheckedPolicy):
            found = through_pasted(mine, theirs, policy, known, memo, match, threads, on_progress, looker)
            if found is not None:
                _, through, checked = found
                pairs = Pairs(np.concatenate([pairs.i, through.i]), np.concatenate([pairs.j, through.j]),
                              np.concatenate([pairs.d, through.d]))
                inside = np.concatenate([inside, np.full(len(through), PASTED_IN)])
                verified = _sum(verified, checked)
        memo.checkpoint()
        if windows and isinstance(policy, CheckedPolicy):
            found = windows_against(mine, theirs, policy, known, memo, match, threads, on_progress, looker)
            if found is not None:
                through, checked = found
                new = ~among(through, Pairs(pairs.i, pairs.j, pairs.d)[np.lexsort((pairs.j, pairs.i))])  # not found by the pasted look
                pairs = Pairs(np.concatenate([pairs.i, through.i[new]]), np.concatenate([pairs.j, through.j[new]]),
                              np.concatenate([pairs.d, through.d[new]]))
                inside = np.concatenate([inside, np.full(int(new.sum()), WINDOW)])
                verified = _sum(verified, checked)
        memo.checkpoint()
        search = bool(keypoint_search) and isinstance(policy, CheckedPolicy)
        if keypoint_search is None and isinstance(policy, CheckedPolicy):
            search = (missing := undescribed(mine, theirs, policy.check)) <= AGAINST_SEARCHED
            if not search:
                log.warning("the keypoint search was skipped: %d catalog pictures have no stored descriptors, more than %d "
                            "(--keypoint-search finds their keypoints once, ~5 ms a picture, and keeps them)", missing,
                            AGAINST_SEARCHED)
        if search:
            through, agreeing, checked, _ = through_votes(mine, theirs, policy, known, memo, match, threads, on_progress)
            new = best_each(through.i, agreeing, ~np.isin(through.i, pairs.i))  # only images nothing else matched
            pairs = Pairs(np.concatenate([pairs.i, through.i[new]]), np.concatenate([pairs.j, through.j[new]]),
                          np.concatenate([pairs.d, through.d[new]]))
            inside = np.concatenate([inside, np.full(int(new.sum()), SHARED)])
            verified = _sum(verified, checked)
    judged = judgements.load(mine.folder) | judgements.load(theirs.folder)
    left = judgements.kept(pairs, mine.rows.content_hash[pairs.i], theirs.rows.content_hash[pairs.j], judged)
    pairs, inside = pairs[left], inside[left]
    if nothing_differs:
        if verified is None:
            raise _needs_check()
        spots = pair_spots(Pairs(pairs.i, pairs.j + SECOND_SET, pairs.d), joined(mine.picture, theirs.picture),
                           memo.matcher(match_pairs), policy.check, threads)
        nowhere = np.array([differs_nowhere(s) for s in spots], bool)
        pairs, inside = pairs[nowhere], inside[nowhere]
    return AgainstReport(policy.threshold, _by_query(pairs, inside, mine.rows.path, theirs.rows.path), verified)


def best_each(query: np.ndarray, agreeing: np.ndarray, eligible: np.ndarray) -> np.ndarray:
    """Of the `eligible` matches, each query's one with the most agreeing keypoints (the first
    on a tie): an incoming image is a copy of one item, and a look-alike of its source shares
    almost as many keypoints with it as the source does, so matches by shared keypoints alone
    keep only the best-supported one."""
    out = np.zeros(len(query), bool)
    at = np.flatnonzero(eligible)
    if len(at):
        order = at[np.lexsort((np.arange(len(at)), -np.asarray(agreeing)[at], np.asarray(query)[at]))]
        first = np.ones(len(order), bool)
        first[1:] = query[order][1:] != query[order][:-1]
        out[order[first]] = True
    return out


def _by_query(pairs: Pairs, inside: np.ndarray, query_paths: np.ndarray, found_paths: np.ndarray) -> list[QueryResult]:
    """Matches by incoming image; `inside[k]`: how pair k was found (`OWN`, through a picture
    pasted into it, `PASTED`, through a window, `WINDOW`, or by shared keypoints, `SHARED`)."""
    found: dict[int, list[Neighbor]] = {}
    for i, j, d, how in zip(pairs.i.tolist(), pairs.j.tolist(), pairs.d.tolist(), inside.tolist()):
        found.setdefault(i, []).append(Neighbor(str(found_paths[j]), round(float(d), 6), pasted=how == PASTED_IN,
                                                window=how == WINDOW, shared=how == SHARED))
    return [QueryResult(str(query_paths[i]), tuple(sorted(m, key=lambda x: (x.distance, x.path))))
            for i, m in sorted(found.items())]


def _needs_check() -> UsageError:
    return UsageError("keeping only what differs nowhere needs the pair check (a model calibrated for it, with the check on)",
                      option="nothing_differs")
