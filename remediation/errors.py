"""The one small error hierarchy. Triggers decide from the class whether to
retry (``TransientError``) or drop (everything else)."""

from __future__ import annotations


class RemediationError(Exception):
    """Base of every error this package raises on purpose."""


class InputError(RemediationError):
    """Bad input: names what was wrong and where (file, field, event id)."""

    def __init__(self, message: str, *, where: str = "") -> None:
        self.where = where
        super().__init__(f"{where}: {message}" if where else message)


class BaselineError(InputError):
    """A baseline file that does not validate."""


class SettingsError(InputError):
    """An app setting that is missing or malformed."""


class TransientError(RemediationError):
    """A failure worth retrying later (throttling, 5xx, lost connection)."""


class ConflictError(TransientError):
    """The resource changed under us (412, 409 AnotherOperationInProgress)."""


class ScopeError(RemediationError):
    """A request outside the configured subscription."""
