"""Which model to use, and loading it: in the background while its card already tells its input
spec (`open_model`), or the one an index was built with (`model_for_index`)."""
from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from dedup.config import FALLBACK_THRESHOLD, ModelConfig, VerifyConfig
from dedup.errors import ModelError
from dedup.manifest import Manifest
from dedup.modelfile import card_of, card_path, model_file, read_card

if TYPE_CHECKING:
    from dedup.model import Model
    from dedup.torchless import NumpyEncoder

log = logging.getLogger(__name__)

M = TypeVar("M", "Model", "NumpyEncoder")

FEW_TO_QUERY = 1024  # embedded without torch up to this many: torch, a second to import, pays off from ~1,200 (benchmarks/RESULTS.md)
FEW_TO_INDEX = 256  # likewise for `dedup index`, whose decoding threads share the CPUs with a numpy pass (~500 measured)


def load_model(path: str | Path | None = None) -> Model:
    """`dedup.model.load_model`, importing torch only when called."""
    from dedup.model import load_model as load

    return load(path)


class PendingModel:
    """A model whose weights load in a background thread while its spec is already known
    (`dedup index` embeds with the same file in a child process instead: `dedup.encoder_process`,
    or without torch when it has few images to embed: `without_torch`).

    `config` and `identity` come from the card; nothing loads until `start()` (a run with no
    image to embed never imports torch); `result()` waits for the loaded `Model` and checks it
    is the model the card describes."""

    def __init__(self, file: Path, card: dict[str, Any]):
        self.file = file
        self.config = ModelConfig.from_dict(card["config"])
        self.identity: str = card["identity"]
        self.threshold = float(card.get("threshold", FALLBACK_THRESHOLD))
        self.check = VerifyConfig.from_dict(card["verify"]) if card.get("verify") else None
        self._future: Future[Model] | None = None

    def start(self) -> None:
        """Begin loading torch and the weights in the background (once)."""
        if self._future is None:
            pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model-load")
            self._future = pool.submit(load_model, self.file)
            pool.shutdown(wait=False)

    def result(self) -> Model:
        self.start()
        return self._described(self._future.result())  # type: ignore[union-attr]  (set by start)

    def without_torch(self) -> NumpyEncoder | None:
        """The model read without torch (`dedup.torchless`), if that reader can read the file and
        finds the model the card describes; else None, and torch (`result`, or the encoder
        process) reads it or says why it cannot."""
        return _without_torch(self.file, self._described)

    def _described(self, model: M) -> M:
        if model.identity != self.identity or model.config != self.config:
            raise ModelError(f"model card {str(card_path(self.file))!r} does not describe its weights; save the model again")
        return model


def open_model(ref: str | Path | None) -> Model | PendingModel:
    """The model of `ref`: loaded on demand, in the background, when its card allows; else now."""
    file = model_file(ref)
    card = read_card(file) if file.is_file() else None
    if card is None:
        return load_model(file)
    return PendingModel(file, card)


def as_model(model: Model | str | Path | None) -> Model:
    """`model` itself, or the model file (or shipped model name) it names; None: the default."""
    return load_model(model) if model is None or isinstance(model, (str, Path)) else model


def encoder_for(model: Model | str | Path | None, images: int | None) -> Model | NumpyEncoder:
    """`as_model(model)`, except that a model file read to embed at most `FEW_TO_QUERY` images is
    read without torch (`dedup.torchless.NumpyEncoder`), when that reader can read it (`images`
    None: as many as may come)."""
    if images is not None and images <= FEW_TO_QUERY and (model is None or isinstance(model, (str, Path))) and model_file(model).is_file():
        light = _without_torch(model)
        if light is not None:
            return light
    return as_model(model)


def _without_torch(ref: str | Path | None, accept: Callable[[NumpyEncoder], NumpyEncoder] = lambda m: m) -> NumpyEncoder | None:
    """The model file `ref` read by `dedup.torchless`, if it can read it and `accept` takes it;
    else None (logged): torch reads it, or says why it cannot."""
    from dedup.torchless import NumpyEncoder

    try:
        return accept(NumpyEncoder(ref))
    except ModelError as exc:
        log.info("model read with torch: %s", exc)
        return None


def recalibrated_since(manifest: Manifest) -> bool:
    """Whether the model that built an index has been calibrated again since (its card, still
    describing the same weights, gives another threshold or pair check than the manifest
    recorded, as when a release refits the check to its own keypoints). The index judges with
    what it recorded until `dedup index` runs on it again, which re-embeds nothing unchanged."""
    card = card_of(manifest.model.ref, manifest.model.identity)
    if card is None:
        return False
    try:
        now = PendingModel(model_file(manifest.model.ref), card)
    except (KeyError, TypeError, ValueError):
        return False
    return (now.threshold, now.check) != (manifest.threshold, manifest.verify)


def model_for_index(manifest: Manifest, model: Model | str | Path | None = None, images: int | None = None
                    ) -> Model | NumpyEncoder:
    """The model that built the index: `model` if given and it matches, else the recorded one.
    With `images`, the number of images it will embed, it may come without torch (`encoder_for`)."""
    wanted = manifest.model.identity
    if model is not None:
        model = encoder_for(model, images)
    else:
        try:
            model = encoder_for(manifest.model.ref, images)
        except ModelError as exc:
            raise ModelError(f"{exc} (the index was built with {wanted}; give that model file)", option="model") from None
    if model.identity != wanted:
        raise ModelError(f"index was built by model {wanted} but the model is {model.identity}; "
                         "use the matching model or rebuild the index with `dedup index`", option="model")
    return model
