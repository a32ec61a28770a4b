"""Query images against an index, and compare two images (the seed's one-shot verification)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from dedup.config import FALLBACK_THRESHOLD, VerifyConfig
from dedup.embed import distance, embed_pixels
from dedup.errors import DedupError, ModelError
from dedup.images import ImageSkip, load
from dedup.index import load_index
from dedup.model import Model, load_model
from dedup.search import Neighbor, Pairs, QueryResult, check_threshold, knn
from dedup.store import read_manifest, read_rows
from dedup.verify import manifest_check, required_inliers, verify_pairs


def model_for_index(manifest: dict[str, Any], model: Model | None = None) -> Model:
    """The model that built the index: `model` if given and it matches, else the recorded one."""
    wanted = manifest["model"]["identity"]
    if model is None:
        try:
            model = load_model(manifest["model"]["ref"])
        except ModelError as exc:
            raise ModelError(f"{exc} (the index was built with {wanted}; pass --model with that file)") from None
    if model.identity != wanted:
        raise ModelError(
            f"index was built by model {wanted} but the model is {model.identity}; "
            "pass the matching --model or rebuild the index with `dedup index`"
        )
    return model


def embed_files(model: Model, paths: Sequence[Path]) -> tuple[np.ndarray, list[str | None]]:
    """Embed image files; rows of unreadable files are NaN and their reason is returned."""
    out = np.full((len(paths), model.config.embedding_dim), np.nan, dtype=np.float32)
    errors: list[str | None] = [None] * len(paths)
    good, pixels = [], []
    for k, path in enumerate(paths):
        try:
            pixels.append(load(Path(path), model.config.image_size, model.config.framing).pixels)
            good.append(k)
        except ImageSkip as exc:
            errors[k] = str(exc)
    if good:
        out[good] = embed_pixels(model, np.stack(pixels))
    return out, errors


def query_images(
    index_dir: Path,
    images: Sequence[Path],
    k: int = 10,
    threshold: float | None = None,
    model: Model | None = None,
    verify: bool = False,
) -> list[QueryResult]:
    """The `k` nearest catalog images of each query image (only those under `threshold` if set).

    With `verify`, each neighbour also gets the verdict `find_duplicates` would give the pair
    (`Neighbor.same`): closer than the keypoint check's candidate distance and confirmed by it,
    or, for a model without a check, closer than the model's threshold."""
    if threshold is not None:
        threshold = check_threshold(threshold)
    manifest = read_manifest(index_dir)
    model = model_for_index(manifest, model)
    index = load_index(index_dir, manifest)
    paths = read_rows(index_dir, manifest)["path"]
    emb, errors = embed_files(model, images)
    return neighbours(manifest, index, paths, images, emb, errors, k, threshold, verify)


def neighbours(manifest: dict[str, Any], index, paths, images: Sequence[Path], emb: np.ndarray,
               errors: Sequence[str | None], k: int, threshold: float | None, verify: bool) -> list[QueryResult]:
    """Query results for embedded images (`errors[q]` set where image q could not be read): the
    `k` nearest rows under `threshold`, with the pair check's verdict when `verify`."""
    ok = [q for q in range(len(images)) if errors[q] is None]
    dist = np.empty((len(images), 0), dtype=np.float32)
    ids = np.empty((len(images), 0), dtype=np.int64)
    if ok:
        d_ok, i_ok = knn(index, emb[ok], k)
        dist = np.full((len(images), d_ok.shape[1]), np.inf, dtype=np.float32)
        ids = np.full((len(images), d_ok.shape[1]), -1, dtype=np.int64)
        dist[ok], ids[ok] = d_ok, i_ok
    same = _verdicts(manifest, images, paths, dist, ids) if verify else None
    results = []
    for q, image in enumerate(images):
        found = tuple(
            Neighbor(str(paths[i]), round(float(d), 6), None if same is None else bool(same[q, r]))
            for r, (d, i) in enumerate(zip(dist[q], ids[q]))
            if i >= 0 and (threshold is None or d < threshold)
        )
        results.append(QueryResult(str(image), found, errors[q]))
    return results


def _verdicts(manifest: dict[str, Any], images: Sequence[Path], paths, dist: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """(queries, k) bool: is each query–neighbour pair a duplicate, as `find_duplicates` judges it."""
    model_threshold = float(manifest.get("threshold", FALLBACK_THRESHOLD))
    second = manifest_check(manifest)
    if second is None:
        return dist < model_threshold
    q, r = np.nonzero((ids >= 0) & (dist < second.candidates))
    nq, root = len(images), Path(manifest["catalog"])

    def files(row: int) -> Path:  # query images, then catalog rows shifted by nq
        return Path(images[row]) if row < nq else root / str(paths[row - nq])

    verdict = verify_pairs(Pairs(q, ids[q, r] + nq, dist[q, r]), second, files, model_threshold, workers=2)
    same = np.zeros(dist.shape, dtype=bool)
    same[q, r] = verdict.keep
    return same


@dataclass(frozen=True)
class Comparison:
    """Two images' distance and verdict; with the keypoint check, what it found."""

    distance: float
    threshold: float  # with the check: the candidate distance
    same: bool
    inliers: int | None = None  # agreeing keypoints, when the check ran
    probability: float | None = None  # the check's P(same), when it ran
    needed: int | None = None  # agreeing keypoints the pair needs (`verify.required_inliers`), when any

    @property
    def cosine(self) -> float:
        return 1.0 - self.distance**2 / 2.0


def compare_images(a: Path, b: Path, model: Model, threshold: float | None = None, verify: bool = True) -> Comparison:
    """Distance between two images and the same/different verdict, as `find_duplicates` would
    judge the pair: with the model's keypoint check when it has one and `verify` is on (then
    `threshold` is the candidate distance), else closer than `threshold` (default: the model's
    calibrated threshold)."""
    second = VerifyConfig.from_dict(model.verify) if verify and model.verify else None
    threshold = check_threshold((second.candidates if second else model.threshold) if threshold is None else threshold)
    emb, errors = embed_files(model, [a, b])
    for path, err in zip((a, b), errors):
        if err:
            raise DedupError(f"cannot read {str(path)!r}: {err}")
    d = round(float(distance(emb[0], emb[1])), 6)
    if second is None:
        return Comparison(d, threshold, d < threshold)
    pair = Pairs(np.array([0]), np.array([1]), np.array([d], np.float32))
    verdict = verify_pairs(pair, second, (a, b).__getitem__, min(model.threshold, threshold), workers=1)
    inliers, prob = int(verdict.inliers[0]), float(verdict.probability[0])
    needed = int(required_inliers(second, pair.d, verdict.sparser, min(model.threshold, threshold))[0])
    return Comparison(d, threshold, bool(d < threshold and verdict.keep[0]), inliers if inliers >= 0 else None,
                      None if np.isnan(prob) else round(prob, 4), needed or None)
