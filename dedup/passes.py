"""The pair check's further passes over an index, each finding pairs its vectors alone miss and
having the check confirm them: pictures pasted into pages (`dedup.parts`), windows of every picture
(`dedup.windows`), turned views (`dedup.turns`) and the keypoint search (`dedup.votes`)."""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass
from functools import partial

import numpy as np

from dedup.ann import build_index
from dedup.checkmemo import AGAINST, CATALOG, PASTED, TINY, PairChecks
from dedup.config import VerifyConfig
from dedup.details import tiny_told_apart, told_apart
from dedup.errors import ModelError
from dedup.index import Index
from dedup.keypoints import KeypointCache, KeypointStore, Matcher
from dedup.loading import model_for_index
from dedup.pairs import Pairs, among
from dedup.parts import Inputs, Looker, PartFinder, Parts, finder_on, part_inputs, part_pairs, part_pictures, part_vectors
from dedup.policy import CheckedPolicy
from dedup.progress import ProgressFn, silent
from dedup.results import Verified
from dedup.seams import NestedMaps, composites, which_composite
from dedup.turns import KIND as TURNED
from dedup.turns import TURNS, turned_inputs, turned_vectors
from dedup.votes import Describer, held, per_picture, spread, vote_pairs
from dedup.windows import BLOCK_ROWS, KIND, REACH, WINDOWS, each_once, near_windows, window_inputs, window_pairs, window_vectors

log = logging.getLogger(__name__)

PAGES = 4  # at most one picture in this many expected to hold a pasted one: how many to embed (`dedup.loading.encoder_for`)
VOTE_BLOCK = 1024  # pictures whose keypoints are found at a time for the keypoint search


def through_pasted(index: Index, searched: Index, policy: CheckedPolicy, known: Pairs, memo: PairChecks, match: Matcher,
                   workers: int, on_progress: ProgressFn, looker: Looker | None = None
                   ) -> tuple[Parts, Pairs, Verified] | None:
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
    with checks.saving():
        decision = policy.decide(near, part_pictures(index.picture, rows), searched.picture, workers=workers,
                                 background=policy.backgrounds(vectors, near, reference=lambda: searched.vectors),
                                 match=checks.matcher(match), tell=checks.teller(told_apart), tiny=checks.teller(tiny_told_apart, TINY),
                                 through_part=np.ones(len(near), bool))
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


def through_windows(index: Index, policy: CheckedPolicy, known: Pairs, memo: PairChecks, match: Matcher, workers: int,
                    on_progress: ProgressFn, looker: Looker | None = None
                    ) -> tuple[Pairs, Verified, tuple[np.ndarray, np.ndarray]] | None:
    """The pairs of `index`'s pictures found through a window of one of them (`dedup.windows`: a
    heavy crop of a picture, or a picture pasted onto a busier one) that the check confirms
    (`through_views`), with what the check did on them, and of those pairs the composites and
    the rows whose pictures they show (`dedup.seams.composites`). None without the model that
    built the index (logged)."""
    through = through_views(index, policy, known, memo, match, workers, on_progress, WINDOW_VIEWS, looker)
    if through is None:
        return None
    kept, verified, nested = through
    return kept, verified, composites(kept, nested.maps, index.picture, workers, (index.rows.height, index.rows.width),
                                      memo.judge(which_composite))


def through_views(index: Index, policy: CheckedPolicy, known: Pairs, memo: PairChecks, match: Matcher, workers: int,
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
                             match=memo.matcher(match), tell=memo.teller(told_apart), tiny=memo.teller(tiny_told_apart, TINY), confirmed=nested,
                             through_part=np.ones(len(near), bool))
    on_progress(views.stage, len(index), len(index))
    return near[decision.keep], decision.verified, nested


def windows_against(mine: Index, theirs: Index, policy: CheckedPolicy, known: Pairs, memo: PairChecks,
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
    own, catalog = _catalog_memos(mine, theirs)
    reach, total = min(policy.threshold, REACH), len(mine) + len(theirs)
    # a window of an incoming picture near a catalog picture, and a window of a catalog picture near an incoming one
    found = [near_windows(theirs.faiss, *block, reach)
             for block in _window_blocks(mine, memo.parts(look, *kind), model, workers, on_progress, 0, total)]
    incoming = build_index(mine.vectors, "Flat", {})
    with catalog.saving():
        for rows, vectors in _window_blocks(theirs, catalog.parts(own.parts(look, *kind), *kind), model, workers,
                                            on_progress, len(mine), total):
            near = near_windows(incoming, rows, vectors, reach)
            found.append(Pairs(near.j, near.i, near.d))
    near = each_once(found, known)
    decision = policy.decide(near, mine.picture, theirs.picture, workers=workers,
                             background=policy.backgrounds(mine.vectors, near, reference=lambda: theirs.vectors),
                             match=memo.matcher(match), tell=memo.teller(told_apart), tiny=memo.teller(tiny_told_apart, TINY),
                             through_part=np.ones(len(near), bool))
    on_progress("windows", len(mine) + len(theirs), len(mine) + len(theirs))
    return near[decision.keep], decision.verified


def through_votes(mine: Index, theirs: Index | None, policy: CheckedPolicy, known: Pairs, memo: PairChecks,
                  match: Matcher, workers: int, on_progress: ProgressFn) -> tuple[Pairs, np.ndarray, Verified, NestedMaps]:
    """The pairs of `mine`'s pictures (with `theirs`: pairs of one of `mine`'s and one of
    `theirs`') that share keypoints (`dedup.votes`: a heavy crop, a picture pasted onto a busier
    one) and that the check confirms with one picture inside the other (`dedup.votes.held`),
    other than the pairs `known`, with their agreeing keypoints, what the check did on them and the maps of the confirmed
    pairs whose frames may nest (a second set's rows at `SECOND_SET + j`). The pairs voted for are
    kept in `memo` while the pictures stay the same, and each picture's descriptors while it stays
    in the index (`theirs`' in `mine`'s folder, unless the catalog's own memo has them); the check's
    answers too, shared with the run's other passes. A pair is judged as a window's pair at the
    windows' reach (`dedup.windows.REACH`)."""
    check = policy.check
    near = memo.voted(check.side, check.keypoints)
    if near is None:
        sets, saved = [(mine, memo.descriptors)], nullcontext()
        if theirs is not None:
            own, catalog = _catalog_memos(mine, theirs)
            sets.append((theirs, lambda *how: own.descriptors(catalog.descriptors(*how), *how[1:])))
            saved = catalog.saving()
        rows = sum(len(s) for s, _ in sets)
        store = match.keywords.get("store") if isinstance(match, partial) else None
        keep = per_picture(rows, check.keypoints)
        with saved:
            near = vote_pairs(range(rows), descriptors_of(sets, check.side, check.keypoints, keep, store, workers, on_progress),
                              across=None if theirs is None else len(mine),
                              assign=memo.assigner(check.side, check.keypoints, keep) if theirs is None else None)
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
                             match=memo.matcher(match), tell=memo.teller(told_apart), tiny=memo.teller(tiny_told_apart, TINY), confirmed=nested,
                             through_part=np.ones(len(near), bool))
    kept, agreeing = near[decision.keep], decision.inliers[decision.keep]
    frames = (mine.rows.height, mine.rows.width)
    inside = held(kept, nested.maps, frames, second=None if theirs is None else (theirs.rows.height, theirs.rows.width))
    total = len(mine) + (0 if theirs is None else len(theirs))
    on_progress("keypoint search", total, total)
    return kept[inside], agreeing[inside], decision.verified, nested


def undescribed(mine: Index, theirs: Index, check: VerifyConfig) -> int:
    """How many of `theirs`' pictures have no descriptors kept for a keypoint search of `mine`
    against it (by `check`'s keypoints), in the catalog's own memo or in `mine`'s folder: a search
    finds their keypoints first."""
    keep = per_picture(len(mine) + len(theirs), check.keypoints)
    own, catalog = _catalog_memos(mine, theirs)
    described = own.described(check.side, check.keypoints, keep) | catalog.described(check.side, check.keypoints, keep)
    return int((~described).sum())


def _catalog_memos(mine: Index, theirs: Index) -> tuple[PairChecks, PairChecks]:
    """The memos of `theirs`' pictures' own entries (windows, descriptors) for a run of `mine`
    against it: the catalog's own memo (read, never written), and the one kept in `mine`'s folder
    (the catalog's index is not written)."""
    return (PairChecks(theirs.folder, theirs.rows.content_hash, read_only=True),
            PairChecks(mine.folder, theirs.rows.content_hash, reference=theirs.rows.content_hash,
                       place=f"{AGAINST}/{CATALOG}"))


def descriptors_of(sets: list[tuple[Index, Callable[..., Describer]]], side: int, count: int, keep: int,
                   store: KeypointStore | None, workers: int, on_progress: ProgressFn = silent
                   ) -> Callable[[int], np.ndarray | None]:
    """The descriptors for `vote_pairs` of the rows of `sets`, numbered one set after another
    (`dedup.votes.spread` to `keep` of the `count` keypoints), each set's through its memo's
    `descriptors` (`dedup.checkmemo.PairChecks.descriptors`'s signature) and, for the pictures it
    has none of, found as the check finds them, in `store` when given (the run's passes share it)."""
    n, kept = sum(len(s) for s, _ in sets), []
    with ThreadPoolExecutor(workers, thread_name_prefix="votes") as pool:
        for index, remembered in sets:
            cache = KeypointCache(index.picture, side, count, store=store)

            def find(rows: np.ndarray) -> list[np.ndarray | None]:
                cache.prefetch(rows.tolist(), pool)
                return [None if (kp := cache(row)) is None else spread(kp, keep) for row in rows.tolist()]

            described = remembered(find, side, count, keep)
            for start in range(0, len(index), VOTE_BLOCK):
                on_progress("keypoint search", len(kept), n)
                kept.extend(described(range(start, min(len(index), start + VOTE_BLOCK))))
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
