"""Query images against an index, and compare two images (the seed's one-shot verification)."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

from dedup import cpus
from dedup.ann import build_index
from dedup.checkmemo import PairChecks
from dedup.config import VerifyConfig, check_threshold
from dedup.differs import SeenMaps
from dedup.duplicates import best_each, index_policy
from dedup.embed import distance, embed_loaded, load_files
from dedup.errors import DedupError
from dedup.files import expand_folders
from dedup.images import Decoded
from dedup.index import Index, IndexLike, as_index
from dedup.keypoints import KeypointCache, KeypointStore, Pictures, match_pairs
from dedup.loading import FEW_TO_QUERY, encoder_for, model_for_index
from dedup.pairs import Pairs, among
from dedup.parts import part_pictures, part_vectors
from dedup.passes import descriptors_of
from dedup.policy import SECOND_SET, CheckedPolicy, Decision, Policy, policy_for, same_files
from dedup.results import Comparison, Neighbor, QueryResult, Spots
from dedup.seams import NestedMaps
from dedup.search import knn
from dedup.torchless import NumpyEncoder
from dedup.turns import turned_vectors
from dedup.votes import Searched, held, per_picture, searched, spread
from dedup.windows import KIND, REACH, WINDOWS, each_once, near_windows, owners_near, window_vectors

if TYPE_CHECKING:
    from dedup.model import Model

log = logging.getLogger(__name__)
NOWHERE = Spots(0.0, ())  # where two files with the same bytes differ
WINDOWS_INDEX = "SQfp16"  # the catalog's windows, searched exhaustively at half the memory (an IVF takes minutes to build at 5M windows)
FRESH_WINDOWS = 2_000  # pictures without kept windows that a query cuts windows of itself (~5 ms each on 2 cores); beyond, none
FRESH_DESCRIBED = 2_000  # pictures without kept descriptors whose keypoints a query finds itself (~5 ms each); beyond, none


def query_images(
    index: IndexLike,
    images: Sequence[Path],
    k: int = 10,
    threshold: float | None = None,
    model: Model | str | Path | None = None,
    verify: bool = False,
    pasted: bool = True,
    windows: bool = True,
    turned: bool = False,
    keypoint_search: bool = True,
) -> list[QueryResult]:
    """The `k` nearest catalog images of each query image (only those under `threshold` if set).
    An image that is a folder stands for every file under it (`dedup.files.expand_folders`);
    `model` defaults to the one that built the index.

    With `verify`, each neighbour also gets the verdict `find_duplicates` gives the pair at its
    defaults (`Neighbor.same`, from the index's duplicate policy); with `pasted` and the pair
    check, the nearest rows to a picture pasted into a query image (`dedup.parts`) are among its
    neighbours too. With `windows` and the check, so are the rows it confirms through a window
    (`dedup.windows`), after them: a window of the query image (it shows a catalog picture pasted
    onto a busier one), or one of a catalog picture that find-duplicates kept in the index (the
    query is a crop of it). With `turned` and the check, so are the rows it confirms through the
    query image turned a quarter, half or three quarters of a turn (`dedup.turns`). With
    `keypoint_search` and the check, a query image nothing else matched is matched with the catalog
    picture it shares the most keypoints with, when one lies inside the other (`dedup.votes`: a
    heavy crop, a picture pasted onto a busier one), as `find-duplicates --against` matches it."""
    if threshold is not None:
        threshold = check_threshold(threshold)
    index = as_index(index)
    images = expand_folders(images)
    model = model_for_index(index.manifest, model, images=len(images))
    decoded, errors = load_files(model, images)
    policy = index_policy(index) if verify else None
    pictures = lambda q: decoded[q].picture  # noqa: E731
    readable = [q for q, err in enumerate(errors) if err is None]
    inside = pasted_in(policy, pictures, readable, model) if pasted else None
    outside = windows_in(policy, pictures, readable, model) if windows else None
    kept = catalog_windows(index, model, cpus.check_threads()) if windows and isinstance(policy, CheckedPolicy) else None
    turns = turned_in(policy, pictures, readable, model) if turned else None
    voted = partial(catalog_votes, index, policy.check, cpus.check_threads()) \
        if keypoint_search and isinstance(policy, CheckedPolicy) else None
    return neighbours(index, images, embed_loaded(model, decoded), errors, k, threshold, policy, pictures, inside,
                      hashes=[None if d is None else d.content_hash for d in decoded], windows=outside,
                      catalog=kept, turned=turns, voted=voted,
                      sizes=[(0, 0) if d is None else (d.height, d.width) for d in decoded])


@dataclass(frozen=True)
class CatalogWindows:
    """The windows of an index's pictures (`dedup.windows`), searchable: window w is of row `owners[w]`."""

    owners: np.ndarray
    index: object  # a FAISS index over the windows' vectors

    def near(self, vectors: np.ndarray) -> Pairs:
        """Pairs (m, row) of `vectors[m]` with the rows one of whose windows is near it (`owners_near`)."""
        return owners_near(self.index, self.owners, vectors, REACH)


def catalog_windows(index: Index, model: Model | NumpyEncoder, workers: int = 2) -> CatalogWindows | None:
    """The windows of `index`'s pictures, for `model` (the index's): those find-duplicates kept in
    its pair-check memo (`dedup.checkmemo`), and, when at most `FRESH_WINDOWS` pictures have none
    kept (added since, or find-duplicates never ran), those pictures' windows cut and embedded
    here on `workers` threads; None when there are none. Nothing is written."""
    memo = PairChecks(index.folder, index.rows.content_hash)
    found, owners = build_index(np.zeros((0, model.config.embedding_dim), np.float32), WINDOWS_INDEX, {}), []
    spec = (model.identity, model.config.embedding_dim, model.config.image_size, model.config.framing, KIND, len(WINDOWS))
    for rows, vectors in memo.stored_parts(*spec):
        found.add(vectors)  # a window slot at a time
        owners.append(rows)
    missing = memo.unlooked_parts(*spec)
    if 0 < len(missing) <= FRESH_WINDOWS:
        if isinstance(model, NumpyEncoder) and len(missing) * len(WINDOWS) > FEW_TO_QUERY:
            model = model_for_index(index.manifest, model.source)  # torch's encoder pays off for many windows
        rows, vectors = window_vectors(index.picture, missing.tolist(), model.embed, model.config.image_size,
                                       model.config.framing, workers)
        found.add(vectors)
        owners.append(rows)
    elif len(missing):
        log.warning(f"{len(missing):,} of the catalog's pictures have not been looked at through windows yet: until "
                    "find-duplicates has, a query that is a heavy crop of one of them is not found through them")
    if not found.ntotal:
        return None
    return CatalogWindows(np.concatenate(owners), found)


def catalog_votes(index: Index, check: VerifyConfig, workers: int = 2) -> Searched | None:
    """The descriptors of `index`'s pictures for the keypoint search (`dedup.votes`, by `check`'s
    keypoints), searchable: those find-duplicates kept in its pair-check memo, and, when at most
    `FRESH_DESCRIBED` pictures have none kept, theirs found here on `workers` threads; None when
    there are none. Nothing is written."""
    memo = PairChecks(index.folder, index.rows.content_hash, read_only=True)
    keep = per_picture(len(index), check.keypoints)
    missing = int((~memo.described(check.side, check.keypoints, keep)).sum())
    remembered = memo.descriptors
    if missing > FRESH_DESCRIBED:
        log.warning(f"{missing:,} of the catalog's pictures have no kept descriptors yet: until find-duplicates has "
                    "run, a query is not matched with them by shared keypoints")
        remembered = lambda find, *how: memo.descriptors(lambda rows: [None] * len(rows), *how)  # noqa: E731
    described = descriptors_of([(index, remembered)], check.side, check.keypoints, keep, None, workers)
    return searched([described(row) for row in range(len(index))], keep, memo.assigner(check.side, check.keypoints, keep))


def pasted_in(policy: Policy | None, pictures: Pictures, queries: Sequence[int], model: Model | NumpyEncoder
              ) -> tuple[np.ndarray, np.ndarray] | None:
    """The queries among `queries` with a picture pasted into them (`pictures(q)`: their check
    pictures) and its vectors (`dedup.parts.part_vectors`), when `policy` has the pair check,
    which alone judges pairs found through such a picture; else None."""
    if not isinstance(policy, CheckedPolicy):
        return None
    return part_vectors(pictures, queries, model.embed, model.config.image_size, model.config.framing, workers=1)


def turned_in(policy: Policy | None, pictures: Pictures, queries: Sequence[int], model: Model | NumpyEncoder
              ) -> tuple[np.ndarray, np.ndarray] | None:
    """The turned views of the queries among `queries` (`dedup.turns.turned_vectors`: their rows
    and vectors), when `policy` has the pair check, which alone judges pairs found through them;
    else None."""
    if not isinstance(policy, CheckedPolicy):
        return None
    return turned_vectors(pictures, queries, model.embed, model.config.image_size, model.config.framing, workers=1)


def windows_in(policy: Policy | None, pictures: Pictures, queries: Sequence[int], model: Model | NumpyEncoder
               ) -> tuple[np.ndarray, np.ndarray] | None:
    """The windows of the queries among `queries` (`dedup.windows.window_vectors`: their rows and
    vectors), when `policy` has the pair check, which alone judges pairs found through them; else None."""
    if not isinstance(policy, CheckedPolicy):
        return None
    return window_vectors(pictures, queries, model.embed, model.config.image_size, model.config.framing, workers=1)


def neighbours(index: Index, images: Sequence[Path], emb: np.ndarray, errors: Sequence[str | None], k: int,
               threshold: float | None, policy: Policy | None, pictures: Pictures,
               inside: tuple[np.ndarray, np.ndarray] | None = None, store: KeypointStore | None = None,
               hashes: Sequence[str | None] | None = None,
               windows: tuple[np.ndarray, np.ndarray] | None = None,
               catalog: CatalogWindows | None = None,
               turned: tuple[np.ndarray, np.ndarray] | None = None,
               voted: Callable[[], Searched | None] | None = None, sizes: Sequence[tuple[int, int]] | None = None
               ) -> list[QueryResult]:
    """Query results for embedded images (`errors[q]` set where image q could not be read): the
    `k` nearest rows under `threshold`, with `policy`'s verdict on each when given. The check
    compares the rows' stored pictures (`Index.picture`) with the images' `pictures(q)`. `inside`:
    the images with a picture pasted into them and its vectors (`dedup.parts.part_vectors`),
    whose nearest rows join the image's own (`with_pasted`). `store` keeps the keypoints the check
    finds (a long-lived one serves later queries too; by default one for this call). `hashes`: the
    images' content hashes; a row with the same bytes is the same without a look. `windows`: the
    images' windows (`windows_in`); `catalog`: the rows' windows (`catalog_windows`); `turned`:
    the images' turned views (`turned_in`). The rows the check confirms through any of them, not
    found otherwise, follow the image's neighbours, at the window's or view's distance. `voted`
    gives the rows' descriptors (`catalog_votes`; asked only when some image is left), by which an
    image nothing else matched is matched (`_through_votes`; `sizes`: each image's (height, width))."""
    ok = [q for q in range(len(images)) if errors[q] is None]
    dist = np.empty((len(images), 0), dtype=np.float32)
    ids = np.empty((len(images), 0), dtype=np.int64)
    if ok:
        d_ok, i_ok = knn(index.faiss, emb[ok], k)
        dist = np.full((len(images), d_ok.shape[1]), np.inf, dtype=np.float32)
        ids = np.full((len(images), d_ok.shape[1]), -1, dtype=np.int64)
        dist[ok], ids[ok] = d_ok, i_ok
    through = np.zeros(dist.shape, bool)
    if inside is not None and len(inside[0]):
        dist, ids, through = with_pasted(index.faiss, dist, ids, *inside)
    same, differs, apart = None, np.full(dist.shape, None, object), np.zeros(dist.shape, bool)
    if policy is not None:
        same = np.zeros(dist.shape, dtype=bool)
        store = KeypointStore() if store is None else store  # a pasted picture's neighbours are mostly the query's own
        q, r = np.nonzero((ids >= 0) & ~through)
        same[q, r], apart[q, r], differs[q, r] = _verdicts(policy, Pairs(q, ids[q, r], dist[q, r]), pictures, emb, index, store,
                                                           hashes=None if hashes is None else np.asarray(hashes, object))
        if through.any():  # the pasted picture, cut out of the query's check picture, against the neighbour's
            queries, vectors = inside
            q, r = np.nonzero(through)
            part = np.searchsorted(queries, q)  # `part_vectors` lists the queries in order
            same[q, r], apart[q, r], differs[q, r] = _verdicts(policy, Pairs(part, ids[q, r], dist[q, r]),
                                                               part_pictures(pictures, queries), vectors, index, store, pasted=True)
    paths = index.rows.path
    window, turn = np.zeros(dist.shape, bool), np.zeros(dist.shape, bool)
    extra: dict[int, list[Neighbor]] = {}
    if same is not None:
        judged = (ids >= 0) & (through | (dist < policy.threshold))  # on keypoints, as find-duplicates judges them
        for q, i, d, spots, by_turn in _through_windows(policy, windows, catalog, ok, ids, judged, pictures, emb, index,
                                                        store, turned):
            listed = np.flatnonzero(ids[q] == i)
            if len(listed):  # a listed neighbour beyond the candidate distance
                same[q, listed[0]], differs[q, listed[0]] = True, spots
                (turn if by_turn else window)[q, listed[0]] = True
            else:
                extra.setdefault(q, []).append(Neighbor(str(paths[i]), round(d, 6), True, spots, window=not by_turn,
                                                        turned=by_turn))
    shared = np.zeros(dist.shape, bool)
    if same is not None and voted is not None and isinstance(policy, CheckedPolicy):
        alone = [q for q in ok if not same[q].any() and q not in extra]
        for q, i, d, spots in _through_votes(policy, voted() if alone else None, alone, pictures, emb, index, store, sizes):
            listed = np.flatnonzero(ids[q] == i)
            if len(listed):
                same[q, listed[0]], differs[q, listed[0]], shared[q, listed[0]] = True, spots, True
            else:
                extra.setdefault(q, []).append(Neighbor(str(paths[i]), round(d, 6), True, spots, shared=True))
    results = []
    for q, image in enumerate(images):
        found = tuple(
            Neighbor(str(paths[i]), round(float(d), 6), None if same is None else bool(same[q, r]), differs[q, r],
                     bool(through[q, r]), bool(apart[q, r]), bool(window[q, r]), bool(turn[q, r]), bool(shared[q, r]))
            for r, (d, i) in enumerate(zip(dist[q], ids[q]))
            if i >= 0 and (threshold is None or d < threshold)
        ) + tuple(n for n in extra.get(q, ()) if threshold is None or n.distance < threshold)
        results.append(QueryResult(str(image), found, errors[q]))
    return results


def _through_windows(policy: Policy, windows: tuple[np.ndarray, np.ndarray] | None, catalog: CatalogWindows | None,
                     ok: list[int], ids: np.ndarray, judged: np.ndarray, pictures: Pictures, emb: np.ndarray,
                     index: Index, store: KeypointStore, turned: tuple[np.ndarray, np.ndarray] | None = None
                     ) -> list[tuple[int, int, float, Spots | None, bool]]:
    """The pairs (query, row, window distance, where the query differs from the row, found only
    through a turned view) the check confirms through a window of the query (`windows`: rows and
    vectors) or of the row (`catalog`; the queries `ok` were embedded), or through a turned view
    of the query (`turned`), nearest first, other than the listed neighbours `ids` already
    `judged` on keypoints: the whole query picture against the row's, on agreeing keypoints alone."""
    found = [] if windows is None else [near_windows(index.faiss, *windows, REACH)]
    if catalog is not None and ok:
        near = catalog.near(emb[ok])
        found.append(Pairs(np.asarray(ok, np.int64)[near.i], near.j, near.d))
    through = each_once(found, Pairs.empty())
    by_turn = Pairs.empty() if turned is None else each_once([near_windows(index.faiss, *turned, REACH)], Pairs.empty())
    pairs = each_once([through, by_turn], Pairs.empty())
    pairs = pairs[~((ids[pairs.i] == pairs.j[:, None]) & judged[pairs.i]).any(axis=1)]
    if not len(pairs):
        return []
    keep, _, differs = _verdicts(policy, pairs, pictures, emb, index, store, pasted=True)
    only_turned = among(pairs, by_turn) & ~among(pairs, through)
    return [(int(pairs.i[k]), int(pairs.j[k]), float(pairs.d[k]), differs[k], bool(only_turned[k]))
            for k in np.flatnonzero(keep)[np.argsort(pairs.d[keep], kind="stable")].tolist()]


def _through_votes(policy: CheckedPolicy, voted: Searched | None, alone: list[int], pictures: Pictures, emb: np.ndarray,
                   index: Index, store: KeypointStore, sizes: Sequence[tuple[int, int]] | None
                   ) -> list[tuple[int, int, float, Spots | None]]:
    """For each query of `alone` (nothing else matched it): the row among its best-voted (`voted`,
    `dedup.votes`) that the check confirms, one picture lying inside the other (`dedup.votes.held`;
    `sizes`: the queries' (height, width)), with the most agreeing keypoints, judged as a window's
    pair at the windows' reach: (query, row, distance, where the query differs from the row)."""
    if voted is None or not alone or sizes is None:
        return []
    check = policy.check
    cache = KeypointCache(pictures, check.side, check.keypoints, store=store)
    near = voted.best([None if (kp := cache(q)) is None else spread(kp, voted.keep) for q in alone])
    if not len(near):
        return []
    queries = np.asarray(alone, np.int64)[near.i]
    apart = np.sqrt(((emb[queries] - index.vectors[near.j]) ** 2).sum(axis=1))
    pairs = Pairs(queries, near.j, np.minimum(apart, min(policy.threshold, REACH)).astype(np.float32))
    nested = NestedMaps()
    decision, spots = _decided(policy, pairs, pictures, emb, index, store, pasted=True, confirmed=nested)
    inside = np.zeros(len(pairs), bool)
    kept = np.flatnonzero(decision.keep)
    heights, widths = (np.array([s[axis] for s in sizes], np.int64) for axis in (0, 1))
    inside[kept] = held(pairs[kept], nested.maps, (heights, widths), second=(index.rows.height, index.rows.width))
    return [(int(pairs.i[k]), int(pairs.j[k]), float(pairs.d[k]), spots[k])
            for k in np.flatnonzero(best_each(pairs.i, decision.inliers, inside)).tolist()]


def _verdicts(policy: Policy, pairs: Pairs, pictures: Pictures, vectors: np.ndarray, index: Index,
              store: KeypointStore, pasted: bool = False, hashes: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, list]:
    """`policy`'s verdict on each pair (query `pictures(i)` and `vectors[i]` against `index`'s row
    j), whether the check told the pair apart (`dedup.details`), and for a pair judged the same
    where the query differs from the row (None otherwise).
    `pasted`: the queries are pictures pasted into the query images, judged on agreeing keypoints
    alone, as find-duplicates judges them. `store` holds the keypoints found; `hashes`: the
    queries' content hashes (a row with the same bytes is the same without a look)."""
    decision, spots = _decided(policy, pairs, pictures, vectors, index, store, pasted, hashes)
    apart = np.zeros(len(pairs), bool) if decision.told_apart is None else decision.told_apart
    return decision.keep, apart, spots


def _decided(policy: Policy, pairs: Pairs, pictures: Pictures, vectors: np.ndarray, index: Index, store: KeypointStore,
             pasted: bool = False, hashes: np.ndarray | None = None, confirmed: NestedMaps | None = None
             ) -> tuple[Decision, list]:
    """`policy`'s decision on the pairs as `_verdicts` takes it (`confirmed` keeps the maps of the
    confirmed pairs whose frames may nest), and for a pair judged the same where the query differs from the row."""
    seen = SeenMaps()
    both = None if hashes is None else (hashes, index.rows.content_hash)
    decision = policy.decide(pairs, pictures, index.picture, tell=seen, match=partial(match_pairs, store=store), hashes=both,
                             background=policy.backgrounds(vectors, pairs, reference=lambda: index.vectors),
                             through_part=np.ones(len(pairs), bool) if pasted else None, confirmed=confirmed)
    spots = [seen.spots(a, b + SECOND_SET) if same else None
             for a, b, same in zip(pairs.i.tolist(), pairs.j.tolist(), decision.keep.tolist())]
    if both is not None:
        for k in np.flatnonzero(same_files(pairs, both)).tolist():
            spots[k] = NOWHERE
    return decision, spots


def with_pasted(index, dist: np.ndarray, ids: np.ndarray, rows: np.ndarray, vectors: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each query's nearest rows (`dist`, `ids`: (queries, k), -1 for none) merged with the
    nearest rows of FAISS `index` to the picture pasted into query `rows[m]` (`vectors[m]`): the k
    nearest of both, a row found both ways at the query's own distance; and per entry whether it
    was found through the pasted picture."""
    dist, ids, through = dist.copy(), ids.copy(), np.zeros(dist.shape, bool)
    width = dist.shape[1]
    d_in, i_in = knn(index, vectors, width)
    for q, d_q, i_q in zip(rows.tolist(), d_in, i_in):
        own = [(float(d), int(i), False) for d, i in zip(dist[q], ids[q]) if i >= 0]
        have = {i for _, i, _ in own}
        entries = sorted(own + [(float(d), int(i), True) for d, i in zip(d_q, i_q) if i >= 0 and i not in have],
                         key=lambda e: e[0])[:width]
        dist[q], ids[q], through[q] = np.inf, -1, False
        for r, (d, i, inside) in enumerate(entries):
            dist[q, r], ids[q, r], through[q, r] = d, i, inside
    return dist, ids, through


def compare_images(a: Path, b: Path, model: Model | str | Path | None = None, threshold: float | None = None,
                   verify: bool = True) -> Comparison:
    """Distance between two images and the verdict `find_duplicates` would give the pair, under
    the model's duplicate policy (`dedup.policy.policy_for`); `model` defaults to the shipped one."""
    model = encoder_for(model, 2)
    decoded, errors = load_files(model, [a, b])
    for path, err in zip((a, b), errors):
        if err:
            raise DedupError(f"cannot read {str(path)!r}: {err}")
    return compare_decoded(decoded[0], decoded[1], model, threshold, verify)


def compare_decoded(a: Decoded, b: Decoded, model: Model | NumpyEncoder, threshold: float | None = None,
                    verify: bool = True) -> Comparison:
    """`compare_images` on two images already decoded for `model`. When the keypoints confirm
    the pair, the comparison also says where a differs from b (`dedup.details.differing_spots`);
    two files with the same bytes are the same, differing nowhere, without a look."""
    policy = policy_for(model.threshold, model.check, threshold, verify)
    if a.content_hash == b.content_hash:
        return Comparison(0.0, policy.threshold, True, differs=NOWHERE, same_bytes=True)
    emb = embed_loaded(model, [a, b])
    d = round(float(distance(emb[0], emb[1])), 6)
    pair = Pairs(np.array([0]), np.array([0]), np.array([d], np.float32))
    seen = SeenMaps()
    decision = policy.decide(pair, lambda _: a.picture, lambda _: b.picture, workers=1, thorough=True,  # counts reported
                             tell=seen)
    if decision.inliers is None or decision.inliers[0] < 0:
        return Comparison(d, policy.threshold, bool(decision.keep[0]))
    return Comparison(d, policy.threshold, bool(decision.keep[0]), int(decision.inliers[0]),
                      round(float(decision.probability[0]), 4), int(decision.needed[0]) or None, seen.spots(0, SECOND_SET),
                      bool(decision.told_apart[0]), plain_apart=bool(decision.plain_apart[0]), framed=bool(decision.framed[0]))
