"""What the engine's commands return: duplicate sets, query results, comparisons. Plain data,
importable without faiss, OpenCV or torch (`dedup.report` renders them)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Member:
    path: str
    distance: float  # to the keeper
    page: bool = False  # holds another member's picture pasted into it (a screenshot of it; `dedup.parts`)
    more_pixels_only: bool = False  # more pixels than the keeper, no more of the picture (turned onto a larger canvas, stretched)
    rendition: bool = False  # the keeper at another of the catalog's standard sizes, no keypoints confirming (`dedup.renditions`)


@dataclass(frozen=True, slots=True)
class Group:
    """One duplicate set: the keeper is `members[0]`."""

    keep: str
    max_distance: float  # largest distance between any two members
    exact: bool  # every member has the same bytes
    members: tuple[Member, ...]


@dataclass(frozen=True)
class Verified:
    """What the pair check did with the candidate pairs."""

    candidates: int
    confirmed: int
    unreadable: int  # pairs with a file that could not be read, judged on distance alone
    told_apart: int = 0  # pairs the keypoints confirmed that differ in a detail or a colourway (`dedup.details`)
    renditions: int = 0  # pairs the keypoints did not confirm, taken as two sizes of one picture (`dedup.renditions`)


@dataclass
class DuplicateReport:
    """The duplicate sets of one index."""

    index: Path
    catalog: str
    threshold: float
    linkage: str
    keep_policy: str
    images: int
    groups: list[Group] = field(default_factory=list)
    pairs: int = 0  # candidate pairs found by the search
    verified: Verified | None = None  # the pair check, when it ran
    left_out: int = 0  # sets left out because every member differs from its keeper (`nothing_differs`)
    members_left_out: int = 0  # members that differ from their keeper left out of the sets kept (`nothing_differs`)

    @property
    def duplicates(self) -> int:
        """Images that are not their group's keeper."""
        return sum(len(g.members) - 1 for g in self.groups)


@dataclass(frozen=True, slots=True)
class Neighbor:
    """A catalog image found for a query, with its distance."""

    path: str
    distance: float
    same: bool | None = None  # the duplicate policy's verdict, when asked for
    differs: Spots | None = None  # with the verdict "same": where the query differs from this image
    pasted: bool = False  # found through a picture pasted into the query (`dedup.parts`): the distance is that picture's
    told_apart: bool = False  # judged different though the keypoints confirm it: it differs in a detail, colourway or part
    window: bool = False  # found or confirmed through a window of either picture (`dedup.windows`); after the k nearest, at the window's distance
    turned: bool = False  # found or confirmed through the query turned a quarter, half or three quarters of a turn (`dedup.turns`)
    shared: bool = False  # found through the keypoints both pictures share (`dedup.votes`); at most the windows' reach


@dataclass(frozen=True)
class QueryResult:
    """The catalog images found for one query image."""

    query: str
    neighbors: tuple[Neighbor, ...]
    error: str | None = None  # the query image could not be read


@dataclass
class AgainstReport:
    """Images of one index that match images of a reference index."""

    threshold: float
    results: list[QueryResult]
    verified: Verified | None = None  # the pair check, when it ran


@dataclass(frozen=True)
class Spots:
    """Where a picture differs from another laid over it (`dedup.details.differing_spots`)."""

    share: float  # of the area they have in common
    boxes: tuple[tuple[float, float, float, float], ...]  # (x, y, width, height) in shares of the picture's width and height, largest first
    other_boxes: tuple[tuple[float, float, float, float], ...] = ()  # the same regions in the other picture (its shares)
    throughout: bool = False  # too much differs for regions to mean anything (a colour edit, a new backdrop): none given

    def to_dict(self, digits: int = 4) -> dict:
        return {"share": round(self.share, digits), "throughout": self.throughout,
                "boxes": [[round(v, digits) for v in box] for box in self.boxes],
                "other_boxes": [[round(v, digits) for v in box] for box in self.other_boxes]}


@dataclass(frozen=True)
class Comparison:
    """Two images' distance and verdict; with the pair check, what it found."""

    distance: float
    threshold: float  # with the pair check: the candidate distance
    same: bool
    inliers: int | None = None  # agreeing keypoints, when the check ran
    probability: float | None = None  # the check's P(same), when it ran
    needed: int | None = None  # agreeing keypoints the pair needs, when any
    differs: Spots | None = None  # where a differs from b, when their keypoints agree on a map
    told_apart: bool = False  # the keypoints confirm the pair, but the pictures differ in a detail, colourway or part (`dedup.details`)
    same_bytes: bool = False  # the two files are byte for byte alike: the same without a look
    plain_apart: bool = False  # one is a plain picture (one colour, nothing drawn) and the other not plain in its colour (`dedup.plain`)
    framed: bool = False  # no keypoint agrees, but laid over by their subjects' boxes they do (`dedup.details.framed_maps`)

    @property
    def cosine(self) -> float:
        return 1.0 - self.distance**2 / 2.0
