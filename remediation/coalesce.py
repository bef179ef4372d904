"""Coalesced event handling: events for one resource that arrive close together are handled once.

Why: a cluster scaling up creates a NIC per node, a person's edit in the portal writes several
rules, and each write is an Event Grid event. Handled one by one, each costs ARM reads from the
subscription's budget, which CycleCloud's autoscaler needs at that very moment.

How (docs/architecture.md, "Events: coalesced, then handled"): the Event Grid trigger screens an
event (irrelevant, own write, duplicate: no ARM call), records it as a :class:`PendingEvent` in
Table Storage and returns it ``queued``; then it tries to become the one drainer (a lease in the
same table). The drainer, until nothing is left or ``max_seconds`` have passed:

- handles NSG, rule, subnet and VNet events at once, each resource once however many events
  named it (a restore lands as fast as without coalescing);
- holds NIC events until the oldest has waited ``nic_window`` seconds, then handles all of them
  together, so a scale-up's NICs are read with one listing per resource group;
- removes the rows it handled; a transient failure leaves them for the next round.

Rows a drainer leaves (it stopped, or its instance died) are taken by the next event's drain, by
the drain timer, and at the latest by the sweep, which covers every row older than its start.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from remediation.errors import RemediationError, TransientError
from remediation.events import ResourceEvent, ResourceKind, affected_ids, caller, resource_kind
from remediation.ports import PendingEvent, PendingEvents
from remediation.reports import EventOutcome
from remediation.service import Reconciler

log = logging.getLogger(__name__)

_KINDS = {
    ResourceKind.NSG: "nsg",
    ResourceKind.SECURITY_RULE: "nsg",
    ResourceKind.SUBNET: "vnet",
    ResourceKind.VNET: "vnet",
    ResourceKind.NIC: "nic",
    # A route or firewall change is judged over the subscription: all of them at once, once.
    ResourceKind.ROUTE_TABLE: "path",
    ResourceKind.FIREWALL: "path",
    ResourceKind.FIREWALL_POLICY: "path",
    ResourceKind.IP_GROUP: "path",
}


@dataclass(frozen=True, slots=True)
class CoalesceOptions:
    """``nic_window``: how long NIC events wait for company (EVENT_COALESCE_SECONDS); ``max_seconds``:
    how long one drain runs (Event Grid waits 30 s for the trigger's answer); ``poll``: how often a
    drainer looks for new rows; ``lease_seconds``: how long a drainer's lease outlives it."""

    nic_window: float = 10.0
    max_seconds: float = 20.0
    poll: float = 0.25
    lease_seconds: float = 60.0


class EventCoalescer:
    """Queues screened events in :class:`~remediation.ports.PendingEvents` and drains them in groups."""

    def __init__(
        self,
        reconciler: Reconciler,
        pending: PendingEvents,
        *,
        options: CoalesceOptions | None = None,
        clock: Callable[[], datetime] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.reconciler = reconciler
        self.pending = pending
        self.options = options or CoalesceOptions()
        self._clock = clock or reconciler.clock
        self._sleep = sleep
        self._monotonic = monotonic
        self.owner = uuid.uuid4().hex

    def submit(self, event: ResourceEvent) -> EventOutcome:
        """Screen the event (no ARM call) and, if it needs handling, queue it: ``queued`` or ``ignored``."""
        ignored = self.reconciler.screen(event)
        if ignored is not None:
            return ignored
        kind = resource_kind(event)
        affected = affected_ids(event)
        if kind is None or not affected:  # screen() let only these through; kept for the type checker
            return EventOutcome(event.id, "ignored", "not a network security change")
        row = PendingEvent(affected[0], _KINDS[kind], event.id, caller(event).describe(), self._clock())
        try:
            self.pending.add(row)
        except Exception:
            # Not queued: let Event Grid's redelivery through the duplicate check, then fail.
            state = self.reconciler.state
            if state is not None:
                try:
                    state.forget_event(event.id)
                except Exception:
                    log.exception("could not forget event %s; its redelivery will be taken for a duplicate", event.id)
            raise
        return EventOutcome(event.id, "queued")

    def drain(self) -> list[EventOutcome]:
        """Handle what is due while holding the lease; return at once when another instance holds it."""
        started = self._monotonic()
        outcomes: list[EventOutcome] = []
        skipped: set[str] = set()  # keys that failed transiently in this drain: the next one retries
        # The lease is kept (and renewed) while this drain waits for NIC rows to come due: one
        # invocation waits and takes what arrives meanwhile within a poll, and every other
        # invocation's drain returns at once instead of holding a host slot polling beside it
        # (with the slots full of waiters, a drift's NSG event queued behind them for the window).
        if not self.pending.claim(self.owner, self._clock(), self.options.lease_seconds):
            return outcomes
        try:
            while True:
                rows = [r for r in self.pending.pending() if r.key.lower() not in skipped]
                due = self._due(rows)
                for group in _groups(due):
                    outcome = self._handle(group)
                    if outcome is None:
                        skipped |= {r.key.lower() for r in group}
                    else:
                        outcomes.append(outcome)
                left = [r for r in rows if r not in due]
                if not left or self._monotonic() - started + self.options.poll > self.options.max_seconds:
                    return outcomes
                self._sleep(self.options.poll)
                if not self.pending.claim(self.owner, self._clock(), self.options.lease_seconds):
                    return outcomes  # the lease ran out and another drain holds it now
        finally:
            self.pending.release(self.owner)

    def settled_by_sweep(self, started: datetime) -> int:
        """A sweep that started at ``started`` read everything after the rows older than that: drop them."""
        covered = [r for r in self.pending.pending() if r.at < started]
        self.pending.remove(covered)
        return len(covered)

    def _due(self, rows: Sequence[PendingEvent]) -> list[PendingEvent]:
        """NSG, rule, subnet and VNet rows now; NIC rows all together once the oldest has waited."""
        now = self._clock()
        nics = [r for r in rows if r.kind == "nic"]
        due = [r for r in rows if r.kind != "nic"]
        if nics and now - min(r.at for r in nics) >= timedelta(seconds=self.options.nic_window):
            due += nics
        return due

    def _handle(self, group: Sequence[PendingEvent]) -> EventOutcome | None:
        """One reconcile for a group of rows; None when it failed transiently (the rows stay)."""
        first = group[0]
        actors = sorted({r.actor for r in group if r.actor})
        event_id = first.event_id if len(group) == 1 else f"{first.event_id} (+{len(group) - 1} coalesced)"
        try:
            report = self.reconciler.reconcile(
                f"/subscriptions/{self.reconciler.settings.subscription_id}",
                trigger="event",
                event_id=event_id,
                actor=", ".join(actors[:5]) + (f" and {len(actors) - 5} more" if len(actors) > 5 else "") or None,
                affected=sorted({r.key for r in group}),
            )
        except TransientError as exc:
            log.warning("events %s: transient failure, kept for the next drain: %s", event_id, exc)
            return None
        except RemediationError as exc:
            log.error("events %s: dropped after a non-transient error: %s", event_id, exc)
            self.pending.remove(group)
            return EventOutcome(first.event_id, "failed", str(exc))
        if report.transient_failure:
            log.warning("events %s: an NSG failed transiently; kept for the next drain", event_id)
            return None
        self.pending.remove(group)
        return EventOutcome(first.event_id, "handled", report=report)


def _groups(rows: Sequence[PendingEvent]) -> list[list[PendingEvent]]:
    """One group per NSG, subnet or VNet (its events handled once), one for all the NICs, one for the paths."""
    groups: dict[str, list[PendingEvent]] = {}
    for row in rows:
        groups.setdefault(row.kind if row.kind in ("nic", "path") else row.key.lower(), []).append(row)
    return list(groups.values())
