"""Index → candidate pairs → the policy's verdicts → duplicate groups with a keeper and distances."""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

import numpy as np

from dedup import cpus, judgements
from dedup.ann import build_index
from dedup.checkmemo import AGAINST, ALIKE, CATALOG_WINDOWS, PASTED, PairChecks
from dedup.cluster import Linkage, group_pairs
from dedup.describe import describe_groups, page_members, set_index
from dedup.details import alike, differs_nowhere, told_apart
from dedup.differs import keeper_pairs, pair_spots, set_differs_nowhere, spots_between
from dedup.drawn import drawn_scales, outdrawn
from dedup.errors import ModelError, UsageError
from dedup.index import Index, IndexLike, as_index
from dedup.keep import KeepPolicy, by_drawing, keep_rank, keep_tiers, path_rank
from dedup.keypoints import KeypointCache, KeypointStore, Matcher, match_pairs
from dedup.loading import model_for_index
from dedup.pairs import Pairs, among, rows_of, union_pairs
from dedup.parts import Inputs, Looker, PartFinder, Parts, finder_on, part_inputs, part_pairs, part_pictures, part_vectors
from dedup.policy import SECOND_SET, CheckedPolicy, Policy, joined, policy_for
from dedup.progress import ProgressFn, silent
from dedup.results import AgainstReport, DuplicateReport, Neighbor, QueryResult, Verified
from dedup.seams import NestedMaps, composites, which_composite
from dedup.turns import KIND as TURNED
from dedup.turns import TURNS, turned_inputs, turned_vectors
from dedup.votes import held, per_picture, spread, vote_pairs
from dedup.windows import BLOCK_ROWS, KIND, REACH, WINDOWS, each_once, near_windows, window_inputs, window_pairs, window_vectors

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
    turn (`dedup.turns`: a copy saved turned). With the check, a member
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
    decision = policy.decide(pairs, index.picture, vectors=vectors, workers=threads,
                             hashes=(index.rows.content_hash,) * 2, background=policy.backgrounds(vectors, pairs),
                             match=memo.matcher(match),
                             tell=memo.teller(told_apart), alike=memo.teller(alike, ALIKE), confirmed=(nested := NestedMaps()),
                             on_progress=lambda d, t: on_progress("verifying", d, t))
    candidates, kept, verified = len(pairs), pairs[decision.keep], decision.verified
    frames = (index.rows.height, index.rows.width)
    pages, shown = composites(kept, nested.maps, index.picture, threads, frames, memo.judge(which_composite))  # pasted, or padded
    if pasted and isinstance(policy, CheckedPolicy):
        inside = _pasted(index, index, policy, pairs, memo, match, threads, on_progress, looker)
        if inside is not None:
            parts, through, checked = inside
            kept = union_pairs(kept, Pairs(np.minimum(through.i, through.j), np.maximum(through.i, through.j), through.d))
            on, of = parts.holders(kept, vectors)
            pages, shown = np.concatenate([pages, on]), np.concatenate([shown, of])
            candidates, verified = candidates + checked.candidates, _sum(verified, checked)
    if windows and isinstance(policy, CheckedPolicy):
        through = _windows(index, policy, pairs, memo, match, threads, on_progress, looker)
        if through is not None:
            found, checked, (onto, pasted_on) = through
            kept = union_pairs(kept, found)
            pages, shown = np.concatenate([pages, onto]), np.concatenate([shown, pasted_on])
            candidates, verified = candidates + checked.candidates, _sum(verified, checked)
    if keypoint_search and isinstance(policy, CheckedPolicy):
        found, _, checked, voted_maps = _voted(index, None, policy, union_pairs(pairs, kept), memo, match, threads, on_progress)
        kept = union_pairs(kept, found)
        onto, pasted_on = composites(found, voted_maps.maps, index.picture, threads, frames, memo.judge(which_composite))
        pages, shown = np.concatenate([pages, onto]), np.concatenate([shown, pasted_on])
        candidates, verified = candidates + checked.candidates, _sum(verified, checked)
    if turned and isinstance(policy, CheckedPolicy):
        through = _through_views(index, policy, pairs, memo, match, threads, on_progress, TURNED_VIEWS, looker)
        if through is not None:
            found, checked, _ = through
            kept = union_pairs(kept, found)
            candidates, verified = candidates + checked.candidates, _sum(verified, checked)
    memo.save()
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
    groups.sort(key=lambda g: (-len(g.members), g.keep))
    found = len(groups)
    if nothing_differs:
        if verified is None:
            raise _needs_check()
        on_progress("differences", 0, found)
        row = dict(zip(rows.path.tolist(), ids.tolist()))  # the rows of the sets' members only
        found_spots = spots_between(index, keeper_pairs(groups), row, threads)
        groups = [g for g in groups if set_differs_nowhere(g, found_spots)]
        on_progress("differences", found, found)
    return DuplicateReport(index.folder, index.manifest.catalog, policy.threshold, linkage or policy.linkage, keep,
                           len(index), groups, candidates, verified, found - len(groups))


OWN, PASTED_IN, WINDOW, SHARED = 0, 1, 2, 3  # how an --against match was found: by the pictures' vectors, a pasted
# picture's, a window's, the keypoints both share
VOTE_BLOCK = 1024  # pictures whose keypoints are found at a time for the votes
AGAINST_SEARCHED = 20_000  # --against searches a catalog this large by shared keypoints unless told (~5 ms a picture a run)
PAGES = 4  # at most one picture in this many expected to hold a pasted one: how many to embed (`dedup.loading.encoder_for`)


def _pasted(index: Index, searched: Index, policy: CheckedPolicy, known: Pairs, memo: PairChecks, match: Matcher,
            workers: int, on_progress: ProgressFn, looker: Looker | None = None) -> tuple[Parts, Pairs, Verified] | None:
    """The pictures pasted into `index`'s pictures (`dedup.parts`, found on the stored check
    pictures; `memo` keeps them), and the pairs (page row, row of `searched`, the part's distance)
    the check confirms between such a picture and `searched`'s pictures, which may be `index`'s
    own, other than the pairs `known` (with what the check did on them). The check compares the
    pasted picture, cut out of the page, and needs agreeing keypoints whatever the distance; what
    it finds is kept in `index`'s folder; `match` finds the keypoints (sharing the run's first
    pass's), `looker` (another engine's, else this machine's threads) embeds the pasted pictures.
    None without the model that built the index (logged)."""
    try:
        model = model_for_index(index.manifest, images=max(1, len(index) // PAGES))
    except ModelError as exc:
        log.warning("pictures pasted into others not looked for: %s", exc)
        return None
    on_progress("pasted", 0, len(index))
    find = memo.parts(part_vectors if looker is None else finder_on(looker, part_inputs, model), model.identity,
                      model.config.embedding_dim)
    rows, vectors = find(index.picture, range(len(index)), model.embed, model.config.image_size, model.config.framing, workers)
    within = searched is index
    near = part_pairs(searched.faiss, rows, vectors, policy.threshold, known, within=within)
    checks = PairChecks(index.folder, np.asarray(index.rows.content_hash)[rows], reference=searched.rows.content_hash,
                        place=PASTED if within else f"{AGAINST}/{PASTED}")
    decision = policy.decide(near, part_pictures(index.picture, rows), searched.picture, workers=workers,
                             background=policy.backgrounds(vectors, near, reference=lambda: searched.vectors),
                             match=checks.matcher(match), tell=checks.teller(told_apart),
                             through_part=np.ones(len(near), bool))
    checks.save()
    kept = near[decision.keep]
    on_progress("pasted", len(index), len(index))
    return Parts(rows, vectors), Pairs(rows[kept.i], kept.j, kept.d), decision.verified


@dataclass(frozen=True)
class Views:
    """More views of every picture, each embedded and paired with the pictures nearest it: the
    windows (`dedup.windows`), the turned views (`dedup.turns`)."""

    stage: str  # the progress stage
    vectors: PartFinder  # the views' rows and vectors (`window_vectors`' signature)
    inputs: Inputs  # a check picture's views as encoder inputs (for another engine's looker)
    kind: str  # their name in the pair-check memo
    count: int  # views a picture


WINDOW_VIEWS = Views("windows", window_vectors, window_inputs, KIND, len(WINDOWS))
TURNED_VIEWS = Views("turned", turned_vectors, turned_inputs, TURNED, len(TURNS))


def _windows(index: Index, policy: CheckedPolicy, known: Pairs, memo: PairChecks, match: Matcher, workers: int,
             on_progress: ProgressFn, looker: Looker | None = None) -> tuple[Pairs, Verified, tuple[np.ndarray, np.ndarray]] | None:
    """The pairs of `index`'s pictures found through a window of one of them (`dedup.windows`: a
    heavy crop of a picture, or a picture pasted onto a busier one) that the check confirms
    (`_through_views`), with what the check did on them, and of those pairs the composites and
    the rows whose pictures they show (`dedup.seams.composites`). None without the model that
    built the index (logged)."""
    through = _through_views(index, policy, known, memo, match, workers, on_progress, WINDOW_VIEWS, looker)
    if through is None:
        return None
    kept, verified, nested = through
    return kept, verified, composites(kept, nested.maps, index.picture, workers, (index.rows.height, index.rows.width),
                                      memo.judge(which_composite))


def _through_views(index: Index, policy: CheckedPolicy, known: Pairs, memo: PairChecks, match: Matcher, workers: int,
                   on_progress: ProgressFn, views: Views, looker: Looker | None = None
                   ) -> tuple[Pairs, Verified, NestedMaps] | None:
    """The pairs of `index`'s pictures found through one of `views` of one of them that the check
    confirms, other than the pairs `known`, with what the check did on them and the maps of the
    pairs whose frames may nest. The check compares the two whole pictures and needs agreeing
    keypoints (`match`) whatever the distance; its answers are kept in `memo`, shared with the
    run's other passes. `looker` (another engine's, else this machine's threads) embeds the views.
    None without the model that built the index (logged)."""
    model = _window_model(index, len(index), views.count)
    if model is None:
        return None
    find = memo.parts(views.vectors if looker is None else finder_on(looker, views.inputs, model), model.identity,
                      model.config.embedding_dim, views.kind, views.count)
    reach = min(policy.threshold, REACH)
    near = each_once([window_pairs(index.faiss, *block, reach, known)
                      for block in _window_blocks(index, find, model, workers, on_progress, stage=views.stage)], known)
    nested = NestedMaps()
    decision = policy.decide(near, index.picture, vectors=index.vectors, workers=workers,
                             background=policy.backgrounds(index.vectors, near),
                             match=memo.matcher(match), tell=memo.teller(told_apart), confirmed=nested,
                             through_part=np.ones(len(near), bool))
    on_progress(views.stage, len(index), len(index))
    return near[decision.keep], decision.verified, nested


def _windows_against(mine: Index, theirs: Index, policy: CheckedPolicy, known: Pairs, memo: PairChecks,
                     match: Matcher, workers: int, on_progress: ProgressFn, looker: Looker | None = None
                     ) -> tuple[Pairs, Verified] | None:
    """The pairs (row of `mine`, row of `theirs`) found through a window of either picture
    (`dedup.windows`) that the check confirms (keypoints by `match`), other than the pairs `known`,
    with what the check did on them. `memo` (`mine`'s, of pairs with `theirs`) keeps the answers and `mine`'s windows.
    `theirs`' windows are also kept in `mine`'s folder (the catalog's index is not written), taken
    from the catalog's own memo where its find-duplicates kept them, so they are embedded at most
    once, by `looker` (another engine's, else this machine's threads). None without the model that
    built the indexes (logged)."""
    model = _window_model(mine, len(mine) + len(theirs))
    if model is None:
        return None
    kind = (model.identity, model.config.embedding_dim, KIND, len(WINDOWS))
    look = window_vectors if looker is None else finder_on(looker, window_inputs, model)
    own = PairChecks(theirs.folder, theirs.rows.content_hash)  # read, never written
    catalog = PairChecks(mine.folder, theirs.rows.content_hash, reference=theirs.rows.content_hash,
                         place=f"{AGAINST}/{CATALOG_WINDOWS}")
    reach, total = min(policy.threshold, REACH), len(mine) + len(theirs)
    # a window of an incoming picture near a catalog picture, and a window of a catalog picture near an incoming one
    found = [near_windows(theirs.faiss, *block, reach)
             for block in _window_blocks(mine, memo.parts(look, *kind), model, workers, on_progress, 0, total)]
    incoming = build_index(mine.vectors, "Flat", {})
    for rows, vectors in _window_blocks(theirs, catalog.parts(own.parts(look, *kind), *kind), model, workers,
                                        on_progress, len(mine), total):
        near = near_windows(incoming, rows, vectors, reach)
        found.append(Pairs(near.j, near.i, near.d))
    catalog.save()
    near = each_once(found, known)
    decision = policy.decide(near, mine.picture, theirs.picture, workers=workers,
                             background=policy.backgrounds(mine.vectors, near, reference=lambda: theirs.vectors),
                             match=memo.matcher(match), tell=memo.teller(told_apart),
                             through_part=np.ones(len(near), bool))
    on_progress("windows", len(mine) + len(theirs), len(mine) + len(theirs))
    return near[decision.keep], decision.verified


def _voted(mine: Index, theirs: Index | None, policy: CheckedPolicy, known: Pairs, memo: PairChecks, match: Matcher,
           workers: int, on_progress: ProgressFn) -> tuple[Pairs, np.ndarray, Verified, NestedMaps]:
    """The pairs of `mine`'s pictures (with `theirs`: pairs of one of `mine`'s and one of
    `theirs`') that share keypoints (`dedup.votes`: a heavy crop, a picture pasted onto a busier
    one) and that the check confirms with one picture inside the other (`dedup.votes.held`),
    other than the pairs `known`, with their agreeing keypoints, what the check did on them and the maps of the confirmed
    pairs whose frames may nest (a second set's rows at `SECOND_SET + j`). The pairs voted for are
    kept in `memo` while the pictures stay the same; the check's answers too, shared with the
    run's other passes. A pair is judged as a window's pair at the windows' reach
    (`dedup.windows.REACH`)."""
    check = policy.check
    near = memo.voted(check.side, check.keypoints)
    if near is None:
        sets = [mine] if theirs is None else [mine, theirs]
        rows = sum(len(s) for s in sets)
        near = vote_pairs(range(rows), _descriptors(sets, check.side, check.keypoints, match, workers, on_progress),
                          across=None if theirs is None else len(mine))
        if theirs is not None:
            near = Pairs(near.i, near.j - len(mine), near.d)
        memo.keep_voted(near, check.side, check.keypoints)
    near = near[~among(near, known)]
    vectors = mine.vectors
    other = vectors if theirs is None else theirs.vectors
    apart = np.sqrt(((vectors[near.i] - other[near.j]) ** 2).sum(axis=1))
    near = Pairs(near.i, near.j, np.minimum(apart, min(policy.threshold, REACH)).astype(np.float32))
    nested = NestedMaps()
    decision = policy.decide(near, mine.picture, None if theirs is None else theirs.picture,
                             vectors=vectors if theirs is None else None, workers=workers,
                             background=policy.backgrounds(vectors, near, reference=None if theirs is None else lambda: other),
                             match=memo.matcher(match), tell=memo.teller(told_apart), confirmed=nested,
                             through_part=np.ones(len(near), bool))
    kept, agreeing = near[decision.keep], decision.inliers[decision.keep]
    frames = (mine.rows.height, mine.rows.width)
    inside = held(kept, nested.maps, frames, second=None if theirs is None else (theirs.rows.height, theirs.rows.width))
    total = len(mine) + (0 if theirs is None else len(theirs))
    on_progress("keypoint search", total, total)
    return kept[inside], agreeing[inside], decision.verified, nested


def _descriptors(sets: list[Index], side: int, count: int, match: Matcher, workers: int,
                 on_progress: ProgressFn) -> Callable[[int], np.ndarray | None]:
    """The descriptors for `vote_pairs` of the rows of `sets`, numbered one set after another
    (`dedup.votes.spread`, as many as the budget allows), found as the check finds them, in the
    keypoint store of `match` when it has one (`match_pairs` with a store: the run's passes share it)."""
    store = match.keywords.get("store") if isinstance(match, partial) else None
    n = sum(len(s) for s in sets)
    keep, kept = per_picture(n, count), []
    with ThreadPoolExecutor(workers, thread_name_prefix="votes") as pool:
        for index in sets:
            cache = KeypointCache(index.picture, side, count, store=store)
            for start in range(0, len(index), VOTE_BLOCK):
                on_progress("keypoint search", len(kept), n)
                rows = range(start, min(len(index), start + VOTE_BLOCK))
                cache.prefetch(rows, pool)
                for row in rows:
                    kp = cache(row)
                    kept.append(None if kp is None else spread(kp, keep))
    return kept.__getitem__


def _window_model(index: Index, pictures: int, views: int = len(WINDOWS)):
    """The model that built `index`, to embed `views` views (windows) of `pictures` pictures;
    None without it (logged)."""
    try:
        return model_for_index(index.manifest, images=pictures * views)
    except ModelError as exc:
        log.warning("crops, pasted and turned pictures not looked for through more views: %s", exc)
        return None


def _window_blocks(index: Index, find: Callable[..., tuple[np.ndarray, np.ndarray]], model, workers: int,
                   on_progress: ProgressFn, done: int = 0, total: int | None = None, stage: str = "windows"
                   ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The views of `index`'s pictures (their rows and vectors, by `find`: `window_vectors`
    through the memo, or another `Views.vectors`), `BLOCK_ROWS` pictures at a time so that their
    vectors stay bounded; progress of `stage` counts from `done` of `total`."""
    total = len(index) if total is None else total
    for start in range(0, len(index), BLOCK_ROWS):
        on_progress(stage, done + start, total)
        yield find(index.picture, range(start, min(start + BLOCK_ROWS, len(index))), model.embed, model.config.image_size,
                   model.config.framing, workers)


def _sum(a: Verified | None, b: Verified | None) -> Verified | None:
    if a is None or b is None:
        return a or b
    return Verified(a.candidates + b.candidates, a.confirmed + b.confirmed, a.unreadable + b.unreadable,
                    a.told_apart + b.told_apart)


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
    one match with the most agreeing keypoints). Every run finds the catalog's keypoints again, so
    `keypoint_search=None` (the default) searches only a catalog of at most `AGAINST_SEARCHED`
    pictures (logged otherwise). `engine` (e.g.
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
    decision = policy.decide(pairs, mine.picture, theirs.picture, workers=threads,
                             hashes=(mine.rows.content_hash, theirs.rows.content_hash),
                             background=policy.backgrounds(mine.vectors, pairs, reference=lambda: theirs.vectors),
                             match=memo.matcher(match), tell=memo.teller(told_apart), alike=memo.teller(alike, ALIKE),
                             on_progress=lambda d, t: on_progress("verifying", d, t))
    verified, known, pairs = decision.verified, pairs, pairs[decision.keep]
    inside = np.full(len(pairs), OWN)
    if pasted and isinstance(policy, CheckedPolicy):
        found = _pasted(mine, theirs, policy, known, memo, match, threads, on_progress, looker)
        if found is not None:
            _, through, checked = found
            pairs = Pairs(np.concatenate([pairs.i, through.i]), np.concatenate([pairs.j, through.j]),
                          np.concatenate([pairs.d, through.d]))
            inside = np.concatenate([inside, np.full(len(through), PASTED_IN)])
            verified = _sum(verified, checked)
    if windows and isinstance(policy, CheckedPolicy):
        found = _windows_against(mine, theirs, policy, known, memo, match, threads, on_progress, looker)
        if found is not None:
            through, checked = found
            new = ~among(through, Pairs(pairs.i, pairs.j, pairs.d)[np.lexsort((pairs.j, pairs.i))])  # not found by the pasted look
            pairs = Pairs(np.concatenate([pairs.i, through.i[new]]), np.concatenate([pairs.j, through.j[new]]),
                          np.concatenate([pairs.d, through.d[new]]))
            inside = np.concatenate([inside, np.full(int(new.sum()), WINDOW)])
            verified = _sum(verified, checked)
    if keypoint_search is None and len(theirs) > AGAINST_SEARCHED:
        log.warning("the keypoint search was skipped: the catalog has more than %d pictures (--keypoint-search forces it)",
                    AGAINST_SEARCHED)
    search = len(theirs) <= AGAINST_SEARCHED if keypoint_search is None else keypoint_search
    if search and isinstance(policy, CheckedPolicy):
        through, agreeing, checked, _ = _voted(mine, theirs, policy, known, memo, match, threads, on_progress)
        new = _best_each(through.i, agreeing, ~np.isin(through.i, pairs.i))  # only images nothing else matched
        pairs = Pairs(np.concatenate([pairs.i, through.i[new]]), np.concatenate([pairs.j, through.j[new]]),
                      np.concatenate([pairs.d, through.d[new]]))
        inside = np.concatenate([inside, np.full(int(new.sum()), SHARED)])
        verified = _sum(verified, checked)
    memo.save()
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


def _best_each(query: np.ndarray, agreeing: np.ndarray, eligible: np.ndarray) -> np.ndarray:
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
