"""One call for the service after each assessment: decide, send, remember.

Loads the alert states, lets :mod:`~remediation.alerts.policy` decide,
dispatches (which never raises), then stores the settled states and one
history entry per alert. Store errors do raise (``TransientError``): sending
without the stored states would repeat every alert on every sweep; the
caller logs them and remediation carries on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from remediation.alerts.dispatch import Channel, DeliveryReport, dispatch
from remediation.alerts.policy import Restoration, decide, settle
from remediation.findings import Finding
from remediation.ports import Alert, StateStore
from remediation.settings import Secret


@dataclass(frozen=True, slots=True)
class Notified:
    alerts: tuple[Alert, ...]
    report: DeliveryReport

    def to_json(self) -> dict[str, Any]:
        return {
            "alerts": [{"status": a.status.value, "severity": a.severity.value, "title": a.title} for a in self.alerts],
            **self.report.to_json(),
        }


def notify(
    findings: Sequence[Finding],
    *,
    store: StateStore,
    channels: Sequence[Channel],
    now: datetime,
    reminder_hours: float,
    scopes: Sequence[str] | None = None,
    restorations: Sequence[Restoration] = (),
    actors: Mapping[str, str] | None = None,
    evidence: Mapping[str, Sequence[str]] | None = None,
    secrets: Sequence[Secret] = (),
    sleep: Callable[[float], None] = time.sleep,
    attempts: int = 3,
) -> Notified:
    """Alert operators about one assessment of ``scopes`` (see :func:`~remediation.alerts.policy.decide`)."""
    decision = decide(
        findings,
        store.alert_states(),
        now,
        reminder_hours=reminder_hours,
        scopes=scopes,
        restorations=restorations,
        actors=actors,
        evidence=evidence,
    )
    report = dispatch(decision.alerts, channels, sleep=sleep, secrets=secrets, attempts=attempts)
    states = settle(decision, report.undelivered())
    if states:
        store.save_alert_states(states)
    for entry in report.history(decision.alerts, now):
        store.record_alert(entry)
    return Notified(decision.alerts, report)
