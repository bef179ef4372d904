"""One call for the service after each assessment: decide, send, remember.

Loads the alert states (those of the judged resources when the assessment
named resources, as an event's does; every one for a subscription or
resource group, as the sweep's), lets :mod:`~remediation.alerts.policy` decide,
dispatches (which never raises), then stores the settled states and one
history entry per alert. Store errors do raise (``TransientError``): sending
without the stored states would repeat every alert on every sweep; the
caller logs them and remediation carries on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from remediation.alerts.dispatch import Channel, DeliveryReport, dispatch
from remediation.alerts.enrich import enrich
from remediation.alerts.policy import OPEN, Restoration, decide, settle
from remediation.findings import Finding
from remediation.ports import Alert, AlertState, EvidenceSource, StateStore

if TYPE_CHECKING:
    from pydantic import SecretStr

DEFAULT_LOOKBACK = timedelta(hours=6)


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
    secrets: Sequence[SecretStr] = (),
    sleep: Callable[[float], None] = time.sleep,
    attempts: int = 3,
    evidence_source: EvidenceSource | None = None,
    evidence_lookback: timedelta = DEFAULT_LOOKBACK,
) -> Notified:
    """Alert operators about one assessment of ``scopes`` (see :func:`~remediation.alerts.policy.decide`).

    With ``evidence_source``, findings about to be alerted for the first time
    get the actor (where ``actors`` has none) and evidence lines from the
    last ``evidence_lookback``.
    """
    states = store.alert_states(_states_to_read(findings, scopes, restorations))
    if evidence_source is not None:
        fresh = [f for f in findings if _owed(states.get(f.fingerprint))]
        if fresh:
            found = enrich(fresh, evidence_source, since=now - evidence_lookback, known_actors=actors)
            actors = {**found.actors, **(actors or {})}
            evidence = {**found.evidence, **(evidence or {})}
    decision = decide(
        findings,
        states,
        now,
        reminder_hours=reminder_hours,
        scopes=scopes,
        restorations=restorations,
        actors=actors,
        evidence=evidence,
    )
    report = dispatch(decision.alerts, channels, sleep=sleep, secrets=secrets, attempts=attempts)
    settled = settle(decision, report.undelivered())
    if settled:
        store.save_alert_states(settled)
    for entry in report.history(decision.alerts, now):
        store.record_alert(entry)
    return Notified(decision.alerts, report)


def _states_to_read(
    findings: Sequence[Finding], scopes: Sequence[str] | None, restorations: Sequence[Restoration]
) -> list[str] | None:
    """The resources whose stored states this assessment can change; None for every state.

    An assessment of named resources (an event's NSGs and subnets) reads only theirs, plus those
    its findings are about: a state outside them can only be resolved in scope, and an owed
    one-shot alert outside them is sent by the sweep, which reads every state. A scope of a
    whole subscription or resource group (no ``/providers/`` in it) reads everything.
    """
    if scopes is None or not all("/providers/" in scope.lower() for scope in scopes):
        return None
    about = (
        {f.nsg for f in findings} | {r.nsg_id for r in restorations} | {f.nsg for r in restorations for f in r.fixed}
    )
    return sorted({*scopes, *about})


def _owed(state: AlertState | None) -> bool:
    """True when the finding's opening alert has not been sent yet."""
    return state is None or state.status != OPEN or state.last_sent is None
