"""One renderer for every channel: an alert becomes an :class:`AlertView`.

The Teams card and both email bodies are drawn from the same view, so they
carry the same facts. Pure: no I/O.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime

from remediation.findings import ONE_SHOT_KINDS, FindingKind, Severity
from remediation.model import resource_id_part
from remediation.ports import Alert, AlertStatus

PRODUCT = "CycleCloud Lockdown Guard"
LINK_TITLE = "Open in the Azure portal"

#: Default caps so that a card stays readable (and under Teams' size limit).
MAX_ITEMS = 15
MAX_LINE = 300

_STATUS_TEXT = {
    AlertStatus.NEW: "New",
    AlertStatus.REMINDER: "Reminder (still present)",
    AlertStatus.RESOLVED: "Resolved",
    AlertStatus.RESTORED: "Restored by the remediator",
}


@dataclass(frozen=True, slots=True)
class Section:
    heading: str
    items: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AlertView:
    """What every channel shows: title, summary, facts, lists and the portal link."""

    title: str
    status: AlertStatus
    severity: Severity
    summary: str
    facts: tuple[tuple[str, str], ...]
    sections: tuple[Section, ...]
    link: str

    @property
    def subject(self) -> str:
        return one_line(f"[{PRODUCT}] {self.severity.value.upper()}: {self.title}")


def one_line(text: str) -> str:
    """``text`` without control, format (bidi overrides such as U+202E) or line-separator characters.

    For an email subject: a name in it (an NSG's, a rule's, an actor's) must not reorder what a
    reader sees, hide text, end the header or reach a terminal that shows it.
    """
    return "".join(c for c in text if not unicodedata.category(c).startswith("C") and c not in "\u2028\u2029")


def render(alert: Alert, *, max_items: int = MAX_ITEMS, max_line: int = MAX_LINE) -> AlertView:
    """The view of ``alert``; lists longer than ``max_items`` end in "and N more"."""
    finding = alert.finding
    nsg_name = resource_id_part(alert.nsg_id, "networkSecurityGroups")
    status = _STATUS_TEXT[alert.status]
    if finding is not None and finding.kind in ONE_SHOT_KINDS and alert.status is AlertStatus.NEW:
        status = "New (sent once: no reminder or resolved alert follows)"
    facts: list[tuple[str, str]] = [
        ("Status", status),
        ("Severity", alert.severity.value),
        ("NSG" if nsg_name else "Resource", nsg_name or alert.nsg_id),
        ("Resource group", resource_id_part(alert.nsg_id, "resourceGroups") or "-"),
        ("Subscription", resource_id_part(alert.nsg_id, "subscriptions") or "-"),
    ]
    if finding is not None:
        facts.append(("Finding", finding.kind.value))
        facts.append(("Requirement", finding.requirement))
        if finding.kind is FindingKind.RULE_LOST:
            facts.append(("Lost rule", finding.rule or finding.requirement))
        else:
            facts.append(("Deciding rule", finding.rule or "none (no rule decides it)"))
        if finding.subnet:
            facts.append(("Subnet", finding.subnet))
        if finding.source:
            facts.append(("From", finding.source))
    facts.append(("Changed by", alert.actor or "unknown"))
    if alert.first_seen is not None:
        facts.append(("First seen", _when(alert.first_seen)))
    if alert.occurrences > 1:
        facts.append(("Seen in sweeps", str(alert.occurrences)))
    if alert.at is not None:
        facts.append(("Alert time", _when(alert.at)))

    if alert.status is AlertStatus.RESTORED:
        summary = "The remediator restored the baseline rules listed below."
    elif finding is None:
        summary = alert.title
    elif alert.status is AlertStatus.RESOLVED:
        summary = f"No longer found: {finding.message}"
    else:
        summary = finding.message

    sections = [
        Section("What was restored", _cap(alert.restored_rules, max_items, max_line)),
        Section("What still needs a human", _cap(alert.needs_human, max_items, max_line)),
        Section("Evidence", _cap(alert.evidence, max_items, max_line)),
    ]
    return AlertView(
        title=_clip(alert.title, max_line),
        status=alert.status,
        severity=alert.severity,
        summary=_clip(summary, max(max_line, 1000)),
        facts=tuple((k, _clip(v, max_line)) for k, v in facts),
        sections=tuple(s for s in sections if s.items),
        link=alert.portal_url,
    )


def _cap(items: tuple[str, ...], max_items: int, max_line: int) -> tuple[str, ...]:
    shown = tuple(_clip(i, max_line) for i in items[:max_items])
    if len(items) > max_items:
        shown += (f"and {len(items) - max_items} more",)
    return shown


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())  # one line: bodies and cards lay lines out themselves
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"


def _when(at: datetime) -> str:
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
