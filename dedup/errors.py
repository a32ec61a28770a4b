"""The one error family: every message says what was expected and what to do."""
from __future__ import annotations


class DedupError(Exception):
    """Base class for errors a user can act on; the CLI prints them as one line.

    `option` names the library parameter the error is about (e.g. "model", "threshold"), so a
    front end can point at its own spelling of it (the CLI adds the flag) while library messages
    stay free of command-line syntax."""

    def __init__(self, message: str, *, option: str | None = None):
        super().__init__(message)
        self.option = option


class CatalogError(DedupError):
    """The catalog folder is missing, empty or not a folder."""


class IndexNotFoundError(DedupError):
    """No index at the given path, or no unique default index."""


class IndexFormatError(DedupError):
    """An index on disk is damaged or of an unknown format version."""


class ModelError(DedupError):
    """A model file cannot be loaded, or does not match the index."""


class UsageError(DedupError):
    """An option value is out of range or inconsistent with another."""


class EngineError(DedupError):
    """The engine asked for cannot run: Ray is not installed, or its cluster cannot be reached."""
