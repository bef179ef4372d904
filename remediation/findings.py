"""Findings: what is wrong with an NSG against the baseline.

The ``kind`` values and the JSON keys of :meth:`Finding.to_json` are part of
the public contract (``check --format json``, the reconcile report, alerts).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class FindingKind(StrEnum):
    MISSING_RULE = "missing_rule"
    MODIFIED_RULE = "modified_rule"
    SHADOWED_RULE = "shadowed_rule"
    LOCKDOWN_BREACH = "lockdown_breach"
    PORT_BLOCKED = "port_blocked"
    NSG_DETACHED = "nsg_detached"
    SERVICE_ENDPOINT_MISSING = "service_endpoint_missing"
    #: CycleCloud's host could not be told from the network (a shared NSG, no tagged NIC):
    #: the flows to it are not judged, and the finding says how to tag its NIC.
    CYCLECLOUD_LOCATION_UNKNOWN = "cyclecloud_location_unknown"
    #: A rule present before the remediator's own write and gone after it: an
    #: incident of that write, alerted once (never "resolved" by a later sweep).
    RULE_LOST = "rule_lost"
    #: Beyond the NSGs (remediation/paths.py): a required name or flow the
    #: Azure Firewall on the path denies or no rule of it allows; a route that
    #: drops required traffic; a hop the guard cannot judge. Never remediated.
    FIREWALL_BLOCKED = "firewall_blocked"
    ROUTE_DROPPED = "route_dropped"
    PATH_UNJUDGED = "path_unjudged"
    #: The guard itself: an NSG it managed lost its lockdown tag or changed role (guarding
    #: stopped or changed), and its identity failing to authenticate for longer than a sweep.
    NSG_UNMANAGED = "nsg_unmanaged"
    GUARD_UNAUTHENTICATED = "guard_unauthenticated"
    #: What the guard cannot judge, so never takes as fine: a lockdown tag naming no
    #: role, a rule ARM accepts with an address nobody can read, an NSG that cannot be read.
    UNJUDGEABLE = "unjudgeable"


#: Appended to a default rule's name in a finding's key (no custom rule name can hold a space).
DEFAULT_RULE_MARK = " (default)"

#: Kinds that describe an event, not a state: alerted once when they happen and closed.
ONE_SHOT_KINDS = frozenset({FindingKind.RULE_LOST, FindingKind.NSG_UNMANAGED, FindingKind.GUARD_UNAUTHENTICATED})


class Severity(StrEnum):
    """Ordered from most to least urgent; compare with :attr:`rank`."""

    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"

    @property
    def rank(self) -> int:
        """Higher is more urgent: critical 4 ... info 0."""
        return {"critical": 4, "high": 3, "medium": 2, "low": 1, "info": 0}[self.value]


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing wrong, with the rule that decides it and whether we can fix it.

    ``nsg`` is the NSG's resource id (for ``nsg_detached`` and
    ``service_endpoint_missing`` the subnet's id when no NSG applies);
    ``rule`` the deciding or offending rule's name (for ``rule_lost`` the
    rule that vanished), or ``None``;
    ``reason`` says why a finding is not remediable (empty when it is).
    """

    kind: FindingKind
    requirement: str
    nsg: str
    rule: str | None
    remediable: bool
    severity: Severity
    message: str
    reason: str = ""
    subnet: str | None = None
    #: ``rule`` is one of Azure's default rules, not a person's rule of the same name
    #: (CycleCloud Workspace for Slurm and az-hop both add their own AllowInternetOutBound).
    default_rule: bool = False
    #: For ``port_blocked``: where the blocked flow starts (a node subnet, or a client host's NIC).
    source: str | None = None

    @property
    def key(self) -> tuple[str, str, str, str, str]:
        """What makes two findings "the same problem": kind, requirement, NSG, rule, subnet (and source)."""
        rule = (self.rule or "") + (DEFAULT_RULE_MARK if self.default_rule else "")
        return (self.kind.value, self.requirement, self.nsg.lower(), rule, where_key(self.subnet, self.source))

    @property
    def unmet(self) -> tuple[str, ...]:
        """The requirement this finding says is unmet, whatever rule decides it now (see :func:`unmet_key`)."""
        return unmet_key(self.kind, self.requirement, self.nsg, self.subnet, self.key)

    @property
    def fingerprint(self) -> str:
        """Stable identity of "the same problem" across sweeps, for alert dedup."""
        return hashlib.sha256("|".join(self.key).encode()).hexdigest()[:32]

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": self.kind.value,
            "requirement": self.requirement,
            "nsg": self.nsg,
            "rule": self.rule,
            "remediable": self.remediable,
            "severity": self.severity.value,
            "message": self.message,
        }
        if self.reason:
            body["reason"] = self.reason
        if self.subnet:
            body["subnet"] = self.subnet
        if self.default_rule:
            body["defaultRule"] = True
        if self.source:
            body["source"] = self.source
        return body


def where_key(subnet: str | None, source: str | None) -> str:
    """The subnet part of a finding's key, with the flow's source when there is one."""
    where = (subnet or "").lower()
    return f"{where}|{source}" if source else where


#: Kinds about one baseline rule requirement: missing, drifted or overridden are one unmet requirement.
REQUIREMENT_KINDS = frozenset({FindingKind.MISSING_RULE, FindingKind.MODIFIED_RULE, FindingKind.SHADOWED_RULE})


def unmet_key(
    kind: FindingKind, requirement: str, nsg: str, subnet: str | None, key: tuple[str, ...]
) -> tuple[str, ...]:
    """What stays "the same problem" when a plan changes which rule decides it.

    A rule requirement still unmet after a plan is not fixed by it, however its
    kind now reads (a missing BlockOutbound placed under a person's allow is then
    shadowed); a blocked flow still blocked is not fixed whichever rule now
    blocks it. Other kinds are their ``key``.
    """
    if kind in REQUIREMENT_KINDS:
        return ("rule", requirement.lower(), nsg.lower(), (subnet or "").lower())
    if kind is FindingKind.PORT_BLOCKED:
        return (kind.value, requirement, nsg.lower(), key[4])
    return key


def incident(
    kind: FindingKind, requirement: str, resource_id: str, message: str, reason: str, rule: str | None = None
) -> Finding:
    """A one-shot finding (an incident, not a state): never remediable, high, alerted once."""
    assert kind in ONE_SHOT_KINDS, kind
    return Finding(
        kind=kind,
        requirement=requirement,
        nsg=resource_id,
        rule=rule,
        remediable=False,
        severity=severity_for(kind, False),
        message=message,
        reason=reason,
    )


def severity_for(kind: FindingKind, remediable: bool) -> Severity:
    """Blocked node ports and Internet breaches are incidents; what we cannot fix needs a human."""
    if kind in ONE_SHOT_KINDS:
        return Severity.HIGH  # never remediable: incidents of the guard itself
    if kind in (FindingKind.PORT_BLOCKED, FindingKind.LOCKDOWN_BREACH):
        return Severity.CRITICAL
    if kind is FindingKind.CYCLECLOUD_LOCATION_UNKNOWN:
        return Severity.MEDIUM  # nothing is known to be wrong; something could not be judged
    return Severity.MEDIUM if remediable else Severity.HIGH
