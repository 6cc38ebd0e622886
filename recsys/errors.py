"""The domain's errors: each says what was wrong and, where it can, what to do."""

from __future__ import annotations


class BookclubError(Exception):
    """Base of every error a user is meant to read."""


class ConfigurationError(BookclubError):
    pass


class DatabaseNotReadyError(BookclubError):
    pass


class ImportRejectedError(BookclubError):
    """A file had bad rows and was rejected whole; nothing was written."""


class UnknownMemberError(BookclubError):
    pass


class UnknownTitleError(BookclubError):
    pass


class UnknownCategoryError(BookclubError):
    pass


class ModelNotFoundError(BookclubError):
    pass


class TrainingError(BookclubError):
    pass


class DiskFullError(BookclubError):
    """A file could not be written for lack of space; nothing half-written was left behind."""

    def __init__(self, path: object, reason: str = "No space left on device") -> None:
        name = getattr(path, "name", str(path))
        super().__init__(
            f"no space left to write {path} ({reason}): nothing was kept; free some space and run again"
        )
        self.name = name
        # what a client may be told: the file's name, never the server's folders
        self.public_message = f"the server's disk is full: {name} could not be written; try again later"


class LockTimeoutError(BookclubError):
    """Another process held a file's lock for longer than the caller would wait."""


class FontUnavailableError(ConfigurationError):
    """A configured font is not installed, or lacks a glyph for text about to be set."""
