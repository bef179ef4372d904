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


class AuthenticationFailure(TransientError):
    """The guard could not prove who it is: its identity endpoint failed (503 ...) or ARM refused
    the token (401). Transient for an event: the endpoint recovers, a token is renewed, so the
    trigger raises and Event Grid redelivers; an operator is alerted when it persists."""


class ConflictError(TransientError):
    """The resource changed under us (412, 409 AnotherOperationInProgress)."""


class ScopeError(RemediationError):
    """A request outside the configured subscription."""
