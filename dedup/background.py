"""How far a picture's usual neighbours in a catalog are: its background distance (numpy).

A pair's distance judged against the background of its two pictures (score normalisation against
background neighbours, as in the ISC21 copy-detection challenge) means the same in a catalog of
look-alikes, where every picture has close neighbours, and in a sparse one: a copy stands out from
its picture's usual neighbours however crowded the catalog is there.

The neighbours are taken among at most `SAMPLE` of the catalog's rows, spread evenly over it, so
a background measures how crowded the catalog is, not how large: in a catalog ten times larger
every picture's 6th nearest neighbour is closer, and the same copy would otherwise look less
like one.

A picture's own copies are no background. A catalog may hold a picture many times over (stored at
a dozen sizes, reused in many listings, a burst of near-identical photos), and when `RANKS[0]` or
more of the sample lie closer than `OWN_COPIES` of the encoder's threshold to it, its ranks are
counted among the rows beyond them: otherwise its own copies would be its background, and each
of them would look no closer to it than its usual neighbours."""
from __future__ import annotations

import numpy as np

RANKS = (6, 10)  # neighbour ranks (1 = nearest other row) whose mean distance is a row's background
SAMPLE = 1024  # catalog rows a background is measured among
BLOCK = 8192  # query rows compared at once (a BLOCK × SAMPLE distance matrix)
OWN_COPIES = 0.5  # share of the encoder's threshold under which sample rows may be a picture's own copies


def sample_rows(n: int) -> np.ndarray:
    """The ids of the rows, of `n`, that backgrounds are measured among: all, or `SAMPLE` evenly
    spread (the same ones for the same catalog)."""
    return np.unique(np.linspace(0, n - 1, min(n, SAMPLE)).round().astype(np.int64)) if n else np.empty(0, np.int64)


def backgrounds(catalog: np.ndarray, queries: np.ndarray, rows: np.ndarray, *, within: bool, typical: float,
                threshold: float = 0.0) -> np.ndarray:
    """(len(queries),) float32: for the queries `rows`, the mean distance to their `RANKS` nearest
    rows among `sample_rows` of `catalog` (unit vectors); NaN for other rows. `within`: the
    queries are the catalog's rows themselves (row k is catalog row k), so a row is not its own
    neighbour. A row with fewer than `RANKS[0]` neighbours gets `typical`. A row with `RANKS[0]`
    or more closer than `OWN_COPIES` × `threshold` (the encoder's) counts only the rows beyond."""
    out = np.full(len(queries), np.nan, np.float32)
    rows = np.asarray(rows, np.int64)
    ids = sample_rows(len(catalog))
    sample = np.ascontiguousarray(catalog[ids], np.float32)
    for start in range(0, len(rows), BLOCK):
        part = rows[start : start + BLOCK]
        dist = np.sqrt(np.maximum(2.0 - 2.0 * (queries[part].astype(np.float32) @ sample.T), 0.0))
        if within:
            at = np.searchsorted(ids, part)
            mine = np.flatnonzero((at < len(ids)) & (ids[np.minimum(at, len(ids) - 1)] == part))
            dist[mine, at[mine]] = np.inf
        copies = dist < OWN_COPIES * threshold
        dist[copies & (copies.sum(axis=1) >= RANKS[0])[:, None]] = np.inf
        nearest = np.sort(np.partition(dist, RANKS[1] - 1, axis=1)[:, : RANKS[1]] if dist.shape[1] > RANKS[1] else dist,
                          axis=1)
        band = nearest[:, RANKS[0] - 1 : RANKS[1]]
        found = np.isfinite(band)
        count = found.sum(axis=1)
        mean = np.where(found, band, 0.0).sum(axis=1) / np.maximum(count, 1)
        out[part] = np.where(count > 0, mean, typical)
    return out


def catalog_backgrounds(catalog: np.ndarray, threshold: float = 0.0) -> np.ndarray:
    """Every row's background in its own catalog (`backgrounds`, `threshold` the encoder's; NaN
    for a row with too few neighbours), as calibration measures them."""
    return backgrounds(catalog, catalog, np.arange(len(catalog)), within=True, typical=np.nan, threshold=threshold)


def typical_background(rows: np.ndarray) -> float:
    """The background that stands for a picture compared without a catalog: the median of rows'
    backgrounds (`catalog_backgrounds`) in the catalogs a check is calibrated on."""
    return float(np.nanmedian(rows))


def normalised(d: np.ndarray, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Pair distances `d` less the mean background distance of their two rows (`first`, `second`)."""
    return np.asarray(d, np.float64) - (np.asarray(first, np.float64) + np.asarray(second, np.float64)) / 2
