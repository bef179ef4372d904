"""Protocols for the outside world. ``service.py`` knows these, not the
adapters; ``function_app.py`` and ``cli.py`` build adapters and pass them in."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from remediation.findings import Finding, Severity
from remediation.model import Inventory, NetworkSecurityGroup
from remediation.paths import PathInventory
from remediation.plan import RemediationPlan
from remediation.tags import TagModel


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What one NSG write did: ARM's correlation id, rules lost (must be empty).

    ``after`` is the NSG as ARM holds it once the write's long-running
    operation ended (what the lost-rule check and the verify step judge).
    """

    nsg_id: str
    written: bool
    attempts: int = 1
    correlation_id: str | None = None
    lost_rules: tuple[str, ...] = ()
    error: str | None = None
    after: NetworkSecurityGroup | None = None


@dataclass(slots=True)
class Gathered:
    """An event's neighbourhood as read (see ``remediation.azure.neighbourhood``), and what it cost."""

    inventory: Inventory
    #: ARM requests made (a listing counts its pages).
    reads: int = 0
    #: Resources taken from the topology cache instead.
    cached: int = 0
    #: True when nothing named can change a verdict (a NIC with no NSG, not CycleCloud's, before or now).
    settled: bool = False
    #: The VNets (lower-cased ids) read or taken from the cache: remembered subnets elsewhere were not looked at.
    vnet_ids: frozenset[str] = field(default_factory=frozenset)


class NsgSource(Protocol):
    def inventory(self, scope: str, *, extra_subnet_ids: Collection[str] = ()) -> Inventory:
        """Managed NSGs (tagged) under ``scope`` with their subnets and NICs.

        The VNets of ``extra_subnet_ids`` (subnets remembered as managed) are
        read too, with the NSGs their subnets name; such a VNet missing from
        the result does not exist (a failed read raises instead).
        """
        ...

    def neighbourhood(self, affected: Collection[str], *, extra_subnet_ids: Collection[str] = ()) -> Gathered:
        """What events naming ``affected`` (NSG, rule, subnet, VNet, NIC ids) touch: the named
        resources re-read, the VNets of the subnets involved, the NSGs on their subnets, the NICs
        that matter there and what locates CycleCloud. Its cost does not grow with the subscription;
        ``extra_subnet_ids`` (remembered subnets the event concerns) add their VNets."""
        ...

    def get_nsg(self, nsg_id: str) -> NetworkSecurityGroup: ...


@dataclass(frozen=True, slots=True)
class CachedResource:
    """One NSG, VNet or NIC as ARM last answered it, kept in the topology cache.

    ``kind`` is ``nsg``, ``vnet`` or ``nic``; ``vnet_id`` says where a NIC lives (its subnets'
    VNet), so the NICs of a VNet are found without listing them; ``cyclecloud`` marks what locates
    CycleCloud (a NIC tagged ``<LOCKDOWN_TAG>=cyclecloud``, or an NSG with the cyclecloud role).
    """

    id: str
    kind: str
    etag: str
    body: dict[str, Any]
    vnet_id: str = ""
    cyclecloud: bool = False

    @property
    def key(self) -> str:
        return self.id.lower()


class TopologyCache(Protocol):
    """What the last reads of ARM showed, so an event re-reads only what it names.

    The sweep (which lists everything) is the authority: :meth:`rebuild` replaces the whole cache
    with what it read. An event's handler re-reads the resources its event names and stores them
    with :meth:`put`; everything else it needs (the neighbourhood) it takes from here. Resource ids
    are compared case-insensitively.
    """

    def get(self, kind: str, ids: Collection[str]) -> dict[str, CachedResource]:
        """The cached resources of ``kind`` among ``ids``, by lower-cased id (absent ones left out)."""
        ...

    def nics_in(self, vnet_ids: Collection[str]) -> list[CachedResource]:
        """The cached NICs of these VNets (only NICs that matter are cached: with an NSG, or CycleCloud's)."""
        ...

    def cyclecloud(self) -> list[CachedResource]:
        """What locates CycleCloud: its tagged NIC(s) and the NSGs with the cyclecloud role."""
        ...

    def put(self, resources: Sequence[CachedResource], forget: Collection[tuple[str, str]] = ()) -> None:
        """Store fresh reads; drop ``forget`` ((kind, id) pairs: gone from ARM, or no longer worth keeping)."""
        ...

    def rebuild(self, resources: Sequence[CachedResource]) -> int:
        """Make the cache exactly ``resources`` (the sweep's reads); how many entries were written or dropped."""
        ...

    def built_at(self) -> datetime | None:
        """When a sweep last rebuilt the cache (None: never, so absence proves nothing)."""
        ...


@dataclass(frozen=True, slots=True)
class PendingEvent:
    """One accepted event waiting to be handled: what to re-read (``key``, an NSG, VNet or NIC id),
    its kind (``nsg``, ``vnet``, ``nic``), which event said so, who made the change, and when it came."""

    key: str
    kind: str
    event_id: str
    actor: str | None
    at: datetime


class PendingEvents(Protocol):
    """Accepted events not yet handled, and the lease that lets one drain run at a time.

    Events for the same resource that arrive close together are handled once: each event adds a
    row; the lease holder takes the due rows, handles each resource once, and removes the rows it
    handled (rows added meanwhile stay for the next round).
    """

    def add(self, event: PendingEvent) -> None:
        """Record one event (adding the same event id twice keeps one row)."""
        ...

    def pending(self) -> list[PendingEvent]:
        """Every row waiting, oldest first."""
        ...

    def remove(self, events: Sequence[PendingEvent]) -> None:
        """Drop handled rows (already gone is fine)."""
        ...

    def claim(self, owner: str, now: datetime, seconds: float) -> bool:
        """Take (or extend) the drain lease until ``now + seconds``; False while another owner holds it."""
        ...

    def release(self, owner: str) -> None:
        """Give the lease up, if ``owner`` holds it."""
        ...


class PathSource(Protocol):
    """What lies on the path beyond the NSGs (route tables, Azure Firewalls, firewall policies with
    their rule collection groups, IP groups, VNets' peerings), read with list pages only."""

    def paths(self, subscription_id: str) -> PathInventory: ...


class NsgWriter(Protocol):
    def apply(self, nsg: NetworkSecurityGroup, plan: RemediationPlan) -> WriteResult:
        """PUT the whole NSG with If-Match on ``nsg.etag`` and follow it to its end.

        Raises ConflictError on 412 or 409 AnotherOperationInProgress (the
        caller re-reads, re-plans and retries), TransientError on throttling,
        5xx or lost connections once bounded retries are spent.
        """
        ...


@dataclass(frozen=True, slots=True)
class SubnetWriteResult:
    """What one subnet write did: the services added, the endpoints before and after.

    ``written`` False with ``error`` set says why nothing was written (the
    subnet is no longer attached to the managed NSG, ...); False without an
    error means nothing was missing any more. ``missing_after`` must be empty,
    as must ``lost_endpoints`` (endpoints present before and gone after).
    """

    subnet_id: str
    written: bool
    added: tuple[str, ...] = ()
    endpoints_before: tuple[str, ...] = ()
    endpoints_after: tuple[str, ...] = ()
    missing_after: tuple[str, ...] = ()
    lost_endpoints: tuple[str, ...] = ()
    correlation_id: str | None = None
    attempts: int = 1
    error: str | None = None


class SubnetWriter(Protocol):
    def add_service_endpoints(self, subnet_id: str, services: Sequence[str], *, nsg_id: str) -> SubnetWriteResult:
        """Read the subnet; if it is still attached to ``nsg_id``, add the missing ``services`` to its
        ``serviceEndpoints``, keeping every other property as read; PUT it with If-Match and follow
        the operation to its end.

        Raises ConflictError on 412 or 409 AnotherOperationInProgress (the caller
        calls again, which re-reads), TransientError on throttling, 5xx or lost
        connections once bounded retries are spent.
        """
        ...


class TagSource(Protocol):
    def current(self) -> TagModel | None:
        """The service-tag model to judge with now (refreshed when due); None: containment."""
        ...


@dataclass(frozen=True, slots=True)
class Restored:
    """Rules one write put back, and the findings it fixed (what the alert policy needs)."""

    nsg_id: str
    rules: tuple[str, ...]
    fixed: tuple[Finding, ...]
    actor: str | None = None


class Notifier(Protocol):
    """Turns one reconcile's outcome into operator alerts (``remediation.wiring.AlertNotifier``).

    ``findings`` are what is still wrong after remediation; ``scopes`` the
    resource-id prefixes this reconcile covered (so nothing outside them is
    "resolved"). Returns one line per alert sent, for the report.
    """

    def notify(
        self,
        findings: Sequence[Finding],
        *,
        restored: Sequence[Restored],
        scopes: Sequence[str],
        actor: str | None,
        at: datetime,
    ) -> Sequence[str]: ...


class AlertStatus(StrEnum):
    """Why an alert is sent: a new finding, a reminder, its resolution, or a restore done."""

    NEW = "new"
    REMINDER = "reminder"
    RESOLVED = "resolved"
    RESTORED = "restored"


@dataclass(frozen=True, slots=True)
class Alert:
    """One message to operators (built by ``remediation.alerts.policy``).

    ``fingerprint`` ties it to the finding's stored alert state ("" for a
    restore); ``needs_human`` says what the remediator could not do;
    ``first_seen`` and ``occurrences`` (sweeps that saw it) make reminders
    readable.
    """

    status: AlertStatus
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
    fingerprint: str = ""
    needs_human: tuple[str, ...] = ()
    first_seen: datetime | None = None
    occurrences: int = 0


class AlertSink(Protocol):
    name: str

    def send(self, alert: Alert) -> None:
        """Deliver one alert or raise; retries and isolation are the caller's."""
        ...


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One remediation: what the NSG's custom rules were before and after (ARM JSON).

    ``changes`` names writes that are not rule changes, such as a service
    endpoint added to a subnet of the NSG (the rules then stay empty).
    """

    at: datetime
    nsg_id: str
    trigger: str
    event_id: str | None
    actor: str | None
    rules_before: Sequence[dict[str, Any]]
    rules_after: Sequence[dict[str, Any]]
    correlation_id: str | None = None
    changes: Sequence[str] = ()


@dataclass(frozen=True, slots=True)
class AlertState:
    """What operators were told about one finding (keyed by its fingerprint).

    ``status`` is ``open`` or ``resolved``; ``last_sent`` None means the
    opening alert is still owed (never sent, or its delivery failed);
    ``count`` is the number of sweeps that saw the finding; ``finding`` its
    JSON (so a resolved message can say what cleared).
    """

    fingerprint: str
    resource_id: str
    severity: Severity
    first_seen: datetime
    last_seen: datetime
    last_sent: datetime | None
    status: str
    count: int
    finding: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AlertHistoryEntry:
    """One alert decided for a fingerprint, and where it was (not) delivered."""

    at: datetime
    fingerprint: str
    status: str
    severity: Severity
    title: str
    delivered: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()


class StateStore(Protocol):
    def seen_event(self, event_id: str) -> bool:
        """Record ``event_id``; True when it was already processed (atomic insert-if-absent)."""
        ...

    def forget_event(self, event_id: str) -> None:
        """Undo :meth:`seen_event` after a transient failure, so Event Grid's redelivery is handled."""
        ...

    def record_audit(self, record: AuditRecord) -> None: ...

    def audit_trail(self, nsg_id: str | None = None, limit: int = 100) -> list[AuditRecord]:
        """Newest first, optionally for one NSG (resource ids compared case-insensitively)."""
        ...

    def save_status(self, status: dict[str, Any]) -> None: ...

    def load_status(self) -> dict[str, Any] | None: ...

    def alert_states(self, scopes: Collection[str] | None = None) -> dict[str, AlertState]:
        """The stored alert states by fingerprint: every one, or those of resources in or under ``scopes``.

        Resource ids compare case-insensitively; a scoped read costs what the scopes hold, not the store.
        """
        ...

    def save_alert_states(self, states: Sequence[AlertState]) -> None:
        """Insert or replace these states (others are left as they are)."""
        ...

    def record_alert(self, entry: AlertHistoryEntry) -> None: ...

    def alert_history(self, fingerprint: str, limit: int = 100) -> list[AlertHistoryEntry]:
        """Newest first."""
        ...

    def attachments(self, *, near: Collection[str] | None = None) -> dict[str, str]:
        """Subnet id -> the managed NSG id it was last seen attached to (what detachments are judged by).

        All of them, or with ``near`` (VNet and NSG ids, compared case-insensitively) only the pairs
        whose subnet lies in one of those VNets or whose NSG is one of those NSGs: what an event needs,
        without loading the memory of the whole subscription.
        """
        ...

    def save_attachments(self, current: Mapping[str, str], forget: Collection[str] = ()) -> None:
        """Insert or replace the ``current`` pairs; delete the subnets in ``forget`` (ids case-insensitive)."""
        ...

    def managed_nsgs(self, ids: Collection[str] | None = None) -> dict[str, str]:
        """NSG id -> its roles (``cyclecloud``, ``node,cyclecloud`` ...) when last seen managed.

        All of them (the sweep), or with ``ids`` (compared case-insensitively) only those NSGs':
        what an event that re-read them needs, without loading the memory of the whole subscription.
        """
        ...

    def save_managed_nsgs(self, current: Mapping[str, str], forget: Collection[str] = ()) -> None:
        """Insert or replace the ``current`` NSGs' roles; delete the NSGs in ``forget`` (ids case-insensitive)."""
        ...

    def prune(self, older_than: datetime) -> int:
        """Delete processed event ids recorded before ``older_than`` and resolved alert states last seen
        before it; open alert states, alert history and the audit trail are kept. Returns how many went."""
        ...


@dataclass(frozen=True, slots=True)
class Evidence:
    """What Azure Monitor showed: the actor of a change, or lines such as denied flows.

    ``notes`` say why there may be less than there could be (no workspace,
    throttled, partial result); a failed query gives notes, never an exception.
    """

    actor: str | None = None
    lines: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


class EvidenceSource(Protocol):
    def actor_of_change(self, nsg_id: str, since: datetime) -> Evidence:
        """Who last changed the NSG (or its rules) since ``since``, not counting the remediator."""
        ...

    def denied_flows(self, nsg_id: str, ports: Sequence[int], since: datetime) -> Evidence:
        """Flows to ``ports`` the NSG denied since ``since``, one line each."""
        ...
