"""Frozen configuration of the training stage and of an encoder, and option names that the CLI needs without
importing heavy modules."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from dedup.errors import UsageError

LossName = Literal["contrastive", "triplet", "bce", "infonce"]
LOSSES: tuple[str, ...] = ("contrastive", "triplet", "bce", "infonce")
OptimizerName = Literal["adam", "sgd"]
FALLBACK_THRESHOLD = 0.5  # for models without a calibrated threshold
MAX_DISTANCE = 2.0  # between unit vectors
MAX_UPLOAD_BYTES = 32 * 1024 * 1024  # largest image `dedup serve` accepts
MAX_K = 1000  # most neighbours one `dedup serve` query returns
ActionName = Literal["move", "symlink", "hardlink", "delete"]
ACTIONS: tuple[str, ...] = ("move", "symlink", "hardlink", "delete")


def check_threshold(threshold: float) -> float:
    """Validate a distance threshold (0 < t ≤ 2 for unit vectors)."""
    if not (0.0 < threshold <= MAX_DISTANCE):
        raise UsageError(f"threshold must be in (0, 2] (Euclidean distance between unit vectors), got {threshold}",
                         option="threshold")
    return float(threshold)


@dataclass(frozen=True)
class TrainConfig:
    """The training recipe; stored in the model file."""

    loss: LossName = "contrastive"
    margin: float | None = None
    optimizer: OptimizerName = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 0.0
    epochs: int = 10
    batch_size: int = 64  # items per batch; each contributes two views
    steps_per_epoch: int | None = None  # default: one pass over the training images
    seed: int = 0
    augment_strength: float = 1.0
    val_batches: int = 4
    workers: int = 0  # background processes preparing batches
    schedule: Literal["constant", "cosine"] = "constant"
    hard_negatives: float = 0.0  # share of each batch drawn as groups of look-alike classes
    mine_every: int = 5  # epochs between re-mining look-alikes (the first mining after this many)
    mine_k: int = 10  # look-alikes kept per class
    edits: Literal["copies", "labelled"] = "copies"  # the views (`dedup.augment.VIEWS`)

    def __post_init__(self) -> None:
        checks = [("epochs", self.epochs >= 1, "at least 1"), ("batch_size", self.batch_size >= 2, "at least 2"),
                  ("lr", self.lr > 0, "positive"), ("hard_negatives", 0 <= self.hard_negatives <= 1, "in [0, 1]"),
                  ("augment_strength", self.augment_strength >= 0, "at least 0"),
                  ("loss", self.loss in LOSSES, f"one of {', '.join(LOSSES)}"),
                  ("optimizer", self.optimizer in ("adam", "sgd"), "adam or sgd"),
                  ("edits", self.edits in ("copies", "labelled"), "copies or labelled")]
        _refuse_bad(self, checks)


@dataclass(frozen=True)
class Framing:
    """How a picture is framed before it is resized to the encoder's input (`dedup.images.to_input`)."""

    trim: bool = False  # cut uniform borders: margins, letterboxing, a plain backdrop around an object
    backdrop: bool = False  # repaint a plain backdrop white, so an object reads the same on any colour


@dataclass(frozen=True)
class ModelConfig:
    """Architecture and input size of an encoder."""

    channels: tuple[int, ...] = (32, 64, 128)
    embedding_dim: int = 64
    image_size: int = 64
    batchnorm: bool = False
    pooling: Literal["avg", "avg+grid2"] = "avg"  # avg: the seed's global average pooling;
    # avg+grid2: global average concatenated with a 2×2 grid of averages (keeps coarse layout)
    trim: bool = False  # `Framing.trim`
    backdrop: bool = False  # `Framing.backdrop`

    def __post_init__(self) -> None:
        widths = self.channels
        checks = [("image_size", self.image_size >= 16, "at least 16"),
                  ("channels", bool(widths) and all(1 <= c <= 1024 for c in widths),
                   "1 or more widths of 1..1024 (e.g. 32,64,128)"),
                  ("channels", self.image_size >> max(len(widths) - 1, 0) >= 2,
                   f"at most {max(self.image_size.bit_length() - 1, 1)} widths for this image size (each block after the first halves it)"),
                  ("embedding_dim", self.embedding_dim >= 2, "at least 2"),
                  ("pooling", self.pooling in ("avg", "avg+grid2"), "avg or avg+grid2")]
        _refuse_bad(self, checks)

    @property
    def framing(self) -> Framing:
        return Framing(self.trim, self.backdrop)

    def fingerprint(self) -> str:
        """What a model's identity hashes of its config. An option added later is left out while it is off, so
        the identity of a model saved before the option existed stays the same."""
        fields = asdict(self)
        if not fields["backdrop"]:
            del fields["backdrop"]
        return repr(fields)

    def to_dict(self) -> dict[str, Any]:
        """JSON- and `weights_only`-safe fields (the inverse of `from_dict`)."""
        return {**asdict(self), "channels": list(self.channels)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        if "channels" in known:
            known["channels"] = tuple(int(c) for c in known["channels"])
        return cls(**known)


def _refuse_bad(config: Any, checks: list[tuple[str, bool, str]]) -> None:
    """A one-line `UsageError` naming the first field whose check fails."""
    for name, ok, expected in checks:
        if not ok:
            raise UsageError(f"{name.replace('_', ' ')} must be {expected}, got {getattr(config, name)!r}", option=name)


VERIFY_FEATURES: tuple[str, ...] = ("distance", "log_inliers", "inlier_share", "log_keypoints")
NORMALISED_FEATURE = "normalised_distance"  # distance − the pair's background distance (`dedup.background`)
NORMALISED_FEATURES: tuple[str, ...] = (*VERIFY_FEATURES, NORMALISED_FEATURE)


@dataclass(frozen=True)
class VerifyConfig:
    """The pair check (`dedup.policy.CheckedPolicy`), calibrated for one encoder.

    A pair closer than the encoder's threshold, or closer than `candidates` and among either
    image's `neighbours` nearest, is a candidate; it is a duplicate when the logistic model over `VERIFY_FEATURES`
    (embedding distance; keypoint matches that agree on one affine map, as a count and as a share
    of the sparser image's keypoints; that image's keypoints), or over `NORMALISED_FEATURES` (also
    the distance less the pair's background distance, `dedup.background`), gives a probability
    ≥ `accept` and enough keypoints agree (`policy.required_inliers`): `min_inliers` beyond the
    encoder's own threshold; at least one between half of it and it when the sparser image has
    `veto_keypoints` or more.
    `typical_background` stands in for the background of pictures compared without a catalog."""

    candidates: float
    weights: tuple[float, ...]
    bias: float
    accept: float = 0.5
    neighbours: int = 20  # per image, the nearest candidates checked beyond the encoder's own threshold
    min_inliers: int = 12  # agreeing keypoints needed to accept a pair beyond the encoder's own threshold
    veto_keypoints: int = 12  # keypoints of the sparser image from which a close pair needs one agreeing (0: never)
    side: int = 256  # longer side of the greyscale image keypoints are found on
    keypoints: int = 500  # at most, per image
    features: tuple[str, ...] = VERIFY_FEATURES  # the logistic model's inputs, in the order of `weights`
    typical_background: float = 0.0  # background distance assumed for a picture compared without a catalog

    def __post_init__(self) -> None:
        if tuple(self.features) not in (VERIFY_FEATURES, NORMALISED_FEATURES):
            raise ValueError(f"VerifyConfig features must be {VERIFY_FEATURES} or {NORMALISED_FEATURES}, got {self.features}")
        if len(self.weights) != len(self.features):
            raise ValueError(f"VerifyConfig needs {len(self.features)} weights, got {len(self.weights)}")

    @property
    def normalised(self) -> bool:
        """Whether the check judges distances against the pair's background (`dedup.background`)."""
        return NORMALISED_FEATURE in self.features

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "weights": list(self.weights), "features": list(self.features)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> VerifyConfig:
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        known["weights"] = tuple(float(w) for w in known["weights"])
        known["features"] = tuple(known.get("features", VERIFY_FEATURES))
        known.setdefault("veto_keypoints", 0)  # checks calibrated before the rule existed keep their verdicts
        known.setdefault("min_inliers", 20)  # a check stored without it keeps the count it has been judged with
        return cls(**known)
