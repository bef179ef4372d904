"""Alert policy: which alerts to send for the findings of one sweep, and the new alert states.

Pure: findings, stored states and the clock in; alerts and states out. The
rules, so that an alert arrives once and does not turn into noise:

- a finding not yet alerted (or whose opening alert was not delivered) -> ``new``;
- a finding still present ``reminder_hours`` after the last alert -> ``reminder``;
- an open finding that is no longer found, within the assessed scope -> ``resolved``;
- rules the remediator restored -> one informational ``restored`` alert per NSG;
  the findings it fixed close silently (the restored alert says so);
- a one-shot finding (``rule_lost``: an incident of one write, not a state)
  -> one ``new`` alert, and its state is closed at once: no reminders, and
  its absence from later sweeps resolves nothing. Should no channel take the
  alert, it stays owed and the next run sends it from the stored finding.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from remediation.findings import ONE_SHOT_KINDS, Finding, FindingKind, Severity
from remediation.model import resource_id_part
from remediation.ports import Alert, AlertState, AlertStatus
from remediation.scope import within

if TYPE_CHECKING:
    from remediation.settings import Settings

OPEN = "open"
RESOLVED = AlertStatus.RESOLVED.value  # one spelling, shared with the state store's prune

#: The channel names the dispatcher and ``channels_from_settings`` use.
TEAMS = "teams"
EMAIL_ACS = "email-acs"
EMAIL_SMTP = "email-smtp"

_CRITICAL_KINDS = frozenset({FindingKind.PORT_BLOCKED, FindingKind.LOCKDOWN_BREACH})
#: Judged on the path beyond the NSGs (remediation/paths.py), never remediable by design: the
#: finding's own severity says how urgent (critical for CycleCloud's names, info when not judged).
_PATH_KINDS = frozenset({FindingKind.FIREWALL_BLOCKED, FindingKind.ROUTE_DROPPED, FindingKind.PATH_UNJUDGED})


def alert_severity(finding: Finding) -> Severity:
    """Blocked node ports and lockdown breaches are incidents; what we cannot fix needs a human."""
    if finding.kind in _CRITICAL_KINDS:
        return Severity.CRITICAL
    if finding.kind in _PATH_KINDS:
        return finding.severity
    if not finding.remediable:
        return Severity.HIGH
    return Severity.MEDIUM


def portal_url(resource_id: str) -> str:
    """The resource's blade in the Azure portal."""
    return f"https://portal.azure.com/#@/resource{resource_id}"


def channel_minimums(settings: Settings) -> dict[str, Severity]:
    """The configured channels and the lowest severity each receives.

    Teams needs its webhook; email needs recipients and a sender, then goes
    through ACS when its endpoint is set, and through SMTP when a host is set.
    """
    channels: dict[str, Severity] = {}
    if settings.teams_webhook_url:
        channels[TEAMS] = settings.min_severity_teams
    if settings.email_to and settings.email_from:
        if settings.acs_endpoint:
            channels[EMAIL_ACS] = settings.min_severity_email
        if settings.smtp_host:
            channels[EMAIL_SMTP] = settings.min_severity_email
    return channels


@dataclass(frozen=True, slots=True)
class Restoration:
    """Rules the remediator wrote back to one NSG, and the findings that fixed."""

    nsg_id: str
    rules: tuple[str, ...]
    fixed: tuple[Finding, ...] = ()
    actor: str | None = None
    evidence: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Decision:
    """The alerts to send and the states to store (only those that changed).

    ``previous`` holds each changed state's stored value (None when new), so
    :func:`settle` can undo the "sent" mark of an alert nobody received.
    """

    alerts: tuple[Alert, ...]
    states: tuple[AlertState, ...]
    previous: Mapping[str, AlertState | None]


def decide(
    findings: Sequence[Finding],
    states: Mapping[str, AlertState],
    now: datetime,
    *,
    reminder_hours: float,
    scopes: Sequence[str] | None = None,
    restorations: Sequence[Restoration] = (),
    actors: Mapping[str, str] | None = None,
    evidence: Mapping[str, Sequence[str]] | None = None,
) -> Decision:
    """Decide the alerts for one assessment of ``scopes``.

    ``findings`` are the findings of this assessment (restored ones included
    or not: those named by a restoration are treated as fixed). ``scopes``
    are resource-id prefixes (a subscription, a resource group, an NSG) the
    assessment covered; a stored open state outside them is left alone, so
    a single-NSG reconcile never "resolves" another NSG's finding. None
    means every stored state is in scope. ``actors`` and ``evidence`` are
    keyed by resource id (case-insensitive) and enrich the alerts.
    """
    actors_by_key = {k.lower(): v for k, v in (actors or {}).items()}
    evidence_by_key = {k.lower(): tuple(v) for k, v in (evidence or {}).items()}
    fixed = {f.fingerprint for r in restorations for f in r.fixed}
    reminder = timedelta(hours=reminder_hours)

    alerts: list[Alert] = []
    changed: dict[str, AlertState] = {}
    previous: dict[str, AlertState | None] = {}

    def change(state: AlertState) -> None:
        if state.fingerprint not in previous:
            previous[state.fingerprint] = states.get(state.fingerprint)
        changed[state.fingerprint] = state

    current: dict[str, Finding] = {}
    for finding in findings:
        current.setdefault(finding.fingerprint, finding)

    for fp, finding in current.items():
        old = states.get(fp)
        if fp in fixed:
            if old is not None and old.status == OPEN:
                change(replace(old, status=RESOLVED, last_seen=now))
            continue
        severity = alert_severity(finding)
        if finding.kind in ONE_SHOT_KINDS:
            # Sent now and closed: it happened once, so it neither reminds nor resolves.
            first_seen = old.first_seen if old is not None and old.status == OPEN else now
            count = old.count + 1 if old is not None and old.status == OPEN else 1
            state = AlertState(
                fingerprint=fp,
                resource_id=finding.nsg,
                severity=severity,
                first_seen=first_seen,
                last_seen=now,
                last_sent=now,
                status=RESOLVED,
                count=count,
                finding=finding.to_json(),
            )
            change(state)
            alerts.append(_finding_alert(AlertStatus.NEW, finding, state, now, actors_by_key, evidence_by_key))
            continue
        if old is None or old.status != OPEN:
            state = AlertState(
                fingerprint=fp,
                resource_id=finding.nsg,
                severity=severity,
                first_seen=now,
                last_seen=now,
                last_sent=now,
                status=OPEN,
                count=1,
                finding=finding.to_json(),
            )
            change(state)
            alerts.append(_finding_alert(AlertStatus.NEW, finding, state, now, actors_by_key, evidence_by_key))
            continue
        seen = replace(old, last_seen=now, count=old.count + 1, severity=severity, finding=finding.to_json())
        if old.last_sent is None:
            # The opening alert was never delivered: it is still owed.
            seen = replace(seen, last_sent=now)
            alerts.append(_finding_alert(AlertStatus.NEW, finding, seen, now, actors_by_key, evidence_by_key))
        elif now - old.last_sent >= reminder:
            seen = replace(seen, last_sent=now)
            alerts.append(_finding_alert(AlertStatus.REMINDER, finding, seen, now, actors_by_key, evidence_by_key))
        change(seen)

    # Every state read is looked at: the open ones not seen now, sorted (few), with the scopes
    # prepared once. An event reads only its resources' states (notify), the sweep every state.
    in_scope = within(scopes)
    for fp, old in sorted((fp, old) for fp, old in states.items() if old.status == OPEN and fp not in current):
        if _is_one_shot(old):
            # Only open when its alert was never delivered: owed, whatever the scope.
            owed = finding_from_json(old.finding)
            closed = replace(old, status=RESOLVED, last_sent=now)
            change(closed)
            if old.last_sent is None and owed is not None:
                alerts.append(_finding_alert(AlertStatus.NEW, owed, closed, now, actors_by_key, evidence_by_key))
            continue
        if not in_scope(old.resource_id):
            continue
        gone = replace(old, status=RESOLVED, last_seen=now)
        change(gone)
        if old.last_sent is None:
            continue  # operators were never told it opened; do not tell them it closed
        cleared = finding_from_json(old.finding)
        alerts.append(
            Alert(
                status=AlertStatus.RESOLVED,
                severity=old.severity,
                finding=cleared,
                title=f"Resolved: {_describe(cleared, old.resource_id)}",
                nsg_id=old.resource_id,
                portal_url=portal_url(old.resource_id),
                at=now,
                fingerprint=fp,
                first_seen=old.first_seen,
                occurrences=old.count,
            )
        )

    for restoration in restorations:
        if not restoration.rules:
            continue
        name = resource_id_part(restoration.nsg_id, "networkSecurityGroups") or restoration.nsg_id
        key = restoration.nsg_id.lower()
        alerts.append(
            Alert(
                status=AlertStatus.RESTORED,
                severity=Severity.INFO,
                finding=None,
                title=f"Restored {len(restoration.rules)} baseline rule(s) on {name}",
                nsg_id=restoration.nsg_id,
                actor=restoration.actor or actors_by_key.get(key),
                restored_rules=restoration.rules,
                evidence=restoration.evidence or evidence_by_key.get(key, ()),
                portal_url=portal_url(restoration.nsg_id),
                at=now,
            )
        )

    return Decision(alerts=tuple(alerts), states=tuple(changed.values()), previous=previous)


def settle(decision: Decision, undelivered: Iterable[str]) -> tuple[AlertState, ...]:
    """The states to store once delivery is known.

    For each fingerprint in ``undelivered`` (an alert every chosen channel
    failed to take), undo what the alert changed so the next sweep sends it
    again: a new finding stays owed (``last_sent`` None), a reminder keeps the
    old ``last_sent``, a resolution reopens (and resolves again next sweep).
    """
    lost = set(undelivered)
    settled: list[AlertState] = []
    for state in decision.states:
        if state.fingerprint not in lost:
            settled.append(state)
            continue
        before = decision.previous.get(state.fingerprint)
        if _is_one_shot(state):
            settled.append(replace(state, status=OPEN, last_sent=None))  # still owed: sent next run
        elif state.status == RESOLVED:
            if before is not None:
                settled.append(before)
        elif before is None or before.status != OPEN:
            settled.append(replace(state, last_sent=None))
        else:
            settled.append(replace(state, last_sent=before.last_sent))
    return tuple(settled)


def finding_from_json(data: Mapping[str, Any]) -> Finding | None:
    """Rebuild a stored finding (``Finding.to_json``); None when the record is unreadable."""
    try:
        return Finding(
            kind=FindingKind(data["kind"]),
            requirement=str(data["requirement"]),
            nsg=str(data["nsg"]),
            rule=None if data.get("rule") is None else str(data["rule"]),
            remediable=bool(data["remediable"]),
            severity=Severity(data["severity"]),
            message=str(data.get("message", "")),
            reason=str(data.get("reason", "")),
            subnet=None if data.get("subnet") is None else str(data["subnet"]),
            default_rule=bool(data.get("defaultRule", False)),
            source=None if data.get("source") is None else str(data["source"]),
        )
    except (KeyError, ValueError, TypeError):
        return None


def _finding_alert(
    status: AlertStatus,
    finding: Finding,
    state: AlertState,
    now: datetime,
    actors: Mapping[str, str],
    evidence: Mapping[str, tuple[str, ...]],
) -> Alert:
    key = finding.nsg.lower()
    described = _describe(finding, finding.nsg)
    needs_human = () if finding.remediable else (finding.reason or "The remediator cannot restore this safely.",)
    return Alert(
        status=status,
        severity=state.severity,
        finding=finding,
        title=f"Reminder: {described}" if status is AlertStatus.REMINDER else described[:1].upper() + described[1:],
        nsg_id=finding.nsg,
        actor=actors.get(key),
        evidence=evidence.get(key, ()),
        portal_url=portal_url(finding.nsg),
        at=now,
        fingerprint=state.fingerprint,
        needs_human=needs_human,
        first_seen=state.first_seen,
        occurrences=state.count,
    )


_KIND_TEXT = {
    FindingKind.MISSING_RULE: "missing rule",
    FindingKind.MODIFIED_RULE: "modified rule",
    FindingKind.SHADOWED_RULE: "shadowed rule",
    FindingKind.LOCKDOWN_BREACH: "lockdown breach",
    FindingKind.PORT_BLOCKED: "port blocked",
    FindingKind.NSG_DETACHED: "NSG detached",
    FindingKind.SERVICE_ENDPOINT_MISSING: "service endpoint missing",
    FindingKind.RULE_LOST: "rule lost",
    FindingKind.CYCLECLOUD_LOCATION_UNKNOWN: "CycleCloud not located:",
    FindingKind.FIREWALL_BLOCKED: "blocked by the firewall:",
    FindingKind.ROUTE_DROPPED: "dropped by a route:",
    FindingKind.PATH_UNJUDGED: "path not judged:",
    FindingKind.NSG_UNMANAGED: "no longer guarded:",
    FindingKind.GUARD_UNAUTHENTICATED: "the guard cannot authenticate:",
    FindingKind.UNJUDGEABLE: "cannot judge:",
}


def _is_one_shot(state: AlertState) -> bool:
    return str(state.finding.get("kind", "")) in ONE_SHOT_KINDS


def _describe(finding: Finding | None, resource_id: str) -> str:
    name = resource_id.rstrip("/").rsplit("/", 1)[-1] or resource_id
    if finding is None:
        return f"finding on {name}"
    if finding.kind is FindingKind.RULE_LOST:
        return f"rule {finding.rule or finding.requirement} lost in the remediator's write to {name}"
    return f"{_KIND_TEXT.get(finding.kind, finding.kind.value)} {finding.requirement} on {name}"
