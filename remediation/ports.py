"""Protocols for the outside world. ``service.py`` knows these, not the
adapters; ``function_app.py`` and ``cli.py`` build adapters and pass them in."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from remediation.findings import Finding, Severity
from remediation.model import Inventory, NetworkSecurityGroup
from remediation.plan import RemediationPlan


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What one NSG write did: ARM's correlation id, rules lost (must be empty)."""

    nsg_id: str
    written: bool
    attempts: int = 1
    correlation_id: str | None = None
    lost_rules: tuple[str, ...] = ()
    error: str | None = None


class NsgSource(Protocol):
    def inventory(self, scope: str) -> Inventory:
        """Managed NSGs (tagged) under ``scope`` with their subnets and NICs."""
        ...

    def get_nsg(self, nsg_id: str) -> NetworkSecurityGroup: ...


class NsgWriter(Protocol):
    def apply(self, nsg: NetworkSecurityGroup, plan: RemediationPlan) -> WriteResult:
        """PUT the whole NSG with If-Match on ``nsg.etag``; raise ConflictError on 412."""
        ...


@dataclass(frozen=True, slots=True)
class Alert:
    """One message to operators. ``status`` is new, reminder, resolved or restored."""

    status: str
    severity: Severity
    finding: Finding | None
    title: str
    nsg_id: str
    actor: str | None = None
    restored_rules: tuple[str, ...] = ()
    evidence: tuple[str, ...] = ()
    portal_url: str = ""
    at: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class AlertSink(Protocol):
    name: str

    def send(self, alert: Alert) -> None:
        """Deliver one alert or raise; retries and isolation are the caller's."""
        ...


@dataclass(frozen=True, slots=True)
class AuditRecord:
    at: datetime
    nsg_id: str
    trigger: str
    event_id: str | None
    actor: str | None
    rules_before: Sequence[dict[str, Any]]
    rules_after: Sequence[dict[str, Any]]
    correlation_id: str | None = None


class StateStore(Protocol):
    def seen_event(self, event_id: str) -> bool:
        """Record ``event_id``; True when it was already processed."""
        ...

    def record_audit(self, record: AuditRecord) -> None: ...

    def audit_trail(self, nsg_id: str | None = None, limit: int = 100) -> list[AuditRecord]: ...

    def save_status(self, status: dict[str, Any]) -> None: ...

    def load_status(self) -> dict[str, Any] | None: ...


class EvidenceSource(Protocol):
    def actor_of_change(self, nsg_id: str, since: datetime) -> str | None: ...

    def denied_flows(self, nsg_id: str, ports: Sequence[int], since: datetime) -> list[str]: ...
