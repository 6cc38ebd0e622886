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
