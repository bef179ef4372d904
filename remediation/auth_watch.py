"""The guard's own identity failing: transient for one run, alerted once when it persists.

An identity endpoint answering 503, or ARM answering 401, makes every run fail until it
recovers. Each run raises (an event is redelivered, the next sweep tries again); what must not
happen is silence. The first failure is remembered in the state store's status (shared by every
instance); once failures have lasted ``ALERT_AFTER`` (a sweep interval), operators get one alert
(``guard_unauthenticated``, high). A run that authenticates clears the memory, so a later
episode alerts again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from remediation.findings import Finding, FindingKind, incident
from remediation.ports import Notifier, StateStore

log = logging.getLogger(__name__)

#: How long authentication must have failed before operators are told.
ALERT_AFTER = timedelta(minutes=15)
_KEY = "authFailure"


@dataclass
class AuthWatch:
    """Remembers authentication failures in ``state`` and alerts once through ``notifier``."""

    state: StateStore | None
    notifier: Notifier | None
    clock: Callable[[], datetime]
    alert_after: timedelta = ALERT_AFTER
    _failing_here: bool = field(default=False, repr=False)

    def failed(self, error: Exception, subscription_id: str) -> None:
        """Record a failure; alert if failures have lasted ``alert_after`` and nobody was told yet."""
        self._failing_here = True
        if self.state is None:
            return
        now = self.clock()
        try:
            saved: dict[str, Any] = dict(self.state.load_status() or {})
            failing = dict(saved.get(_KEY) or {})
            since = datetime.fromisoformat(failing["since"]) if failing.get("since") else now
            failing.update(since=since.isoformat(), last=now.isoformat(), error=str(error)[:500])
            if not failing.get("alerted") and now - since >= self.alert_after and self.notifier is not None:
                self.notifier.notify(
                    [_finding(error, subscription_id, since)], restored=(), scopes=(), actor=None, at=now
                )
                failing["alerted"] = True
            saved[_KEY] = failing
            self.state.save_status(saved)
        except Exception:  # the run fails anyway; its log says why
            log.exception("could not record or alert the authentication failure")

    def recovered(self) -> None:
        """A run authenticated: forget the failure this process recorded (sweeps overwrite the status anyway)."""
        if not self._failing_here or self.state is None:
            return
        try:
            saved = dict(self.state.load_status() or {})
            if saved.pop(_KEY, None) is not None:
                self.state.save_status(saved)
                log.info("authentication works again")
            self._failing_here = False
        except Exception:
            log.exception("could not clear the recorded authentication failure")


def _finding(error: Exception, subscription_id: str, since: datetime) -> Finding:
    return incident(
        FindingKind.GUARD_UNAUTHENTICATED,
        "the guard's managed identity",
        f"/subscriptions/{subscription_id}",
        f"the guard has failed to authenticate since {since.isoformat()}: nothing is judged or restored "
        f"until it can ({str(error)[:300]})",
        "check the Function's managed identity, its role assignment and the identity endpoint",
    )
