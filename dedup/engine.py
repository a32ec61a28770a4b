"""What an engine gives `dedup index` and `dedup find-duplicates`: the stage that turns catalog
files into embeddings, and the runner of the pair search's tasks. Without one, both run on this
machine's threads; `dedup.onray.RayEngine` runs them on Ray."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

from dedup.cache import Embedded, Known, KnownEmbeddings
from dedup.config import ModelConfig
from dedup.errors import UsageError
from dedup.files import FileRecord, Skipped
from dedup.selfjoin import Runner

if TYPE_CHECKING:
    from dedup.keypoints import Matcher
    from dedup.model import Model
    from dedup.parts import Looker

ENGINES = ("local", "ray")
EngineName = Literal["local", "ray"]
Prepared = list[tuple[FileRecord, "Known | Embedded | Skipped"]]
IndexBatches = Callable[[Path, list[FileRecord], ModelConfig, KnownEmbeddings, Callable[[], "Model"], int], Iterator[Prepared]]


class Engine(Protocol):
    name: str

    def index_batches(self) -> IndexBatches:
        """(root, records, model config, known embeddings, model getter, batch size) → batches of
        each record with its known or new embedding, or why it was skipped, in record order."""

    def runner(self) -> Runner:
        """Runs the pair search's tasks (`dedup.selfjoin.Runner`)."""

    def matcher(self) -> Matcher:
        """Counts the pair check's agreeing keypoints (`dedup.keypoints.match_pairs`' signature)."""

    def looker(self) -> Looker:
        """Embeds what the encoder looks at again in check pictures: their windows, a picture pasted
        into them (`dedup.parts.Looker`)."""


def engine_for(name: EngineName = "local", address: str | None = None) -> Engine | None:
    """The engine called `name` (None for "local": this machine's threads); `address` is a
    Ray cluster's."""
    if name == "local":
        if address is not None:
            raise UsageError("a cluster address is for the Ray engine; choose it, or leave the address out", option="address")
        return None
    from dedup.onray import RayEngine

    return RayEngine(address)
