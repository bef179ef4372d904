"""Coalesced events: the pending store contract (in memory and on Azurite) and the drain's rules.

The drain is driven with a fake clock and a stand-in reconciler that records what it was asked to
reconcile (the reconcile itself is tested elsewhere; here only what is grouped, when, and what
stays pending matters).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from pydantic import SecretStr

from remediation.coalesce import CoalesceOptions, EventCoalescer
from remediation.errors import TransientError
from remediation.events import ResourceEvent, parse_event
from remediation.ports import PendingEvent, PendingEvents
from remediation.reports import EventOutcome, ReconcileReport
from remediation.service import Reconciler
from remediation.settings import Settings
from remediation.state import InMemoryPendingEvents, InMemoryStateStore, TablePendingEvents

SUB = "00000000-0000-0000-0000-0000000000c0"
NET = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Network"
T0 = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["memory", "azurite"])
def pending(request: pytest.FixtureRequest) -> Iterator[PendingEvents]:
    if request.param == "memory":
        yield InMemoryPendingEvents()
    else:
        settings = Settings(
            state_connection_string=SecretStr(request.getfixturevalue("azurite")),
            state_table_prefix="p" + uuid.uuid4().hex[:12],
        )
        yield TablePendingEvents.from_settings(settings)


def row(key: str, event_id: str, at: datetime = T0, kind: str = "nsg") -> PendingEvent:
    return PendingEvent(key=key, kind=kind, event_id=event_id, actor="alice@contoso.example", at=at)


# ---------------------------------------------------------------- the store


def test_rows_are_kept_once_per_event_oldest_first_and_removed(pending: PendingEvents) -> None:
    nsg = f"{NET}/networkSecurityGroups/a"
    pending.add(row(nsg, "e2", T0 + timedelta(seconds=1)))
    pending.add(row(nsg, "e1", T0))
    pending.add(row(nsg, "e1", T0))  # a redelivery of e1: still one row
    assert [r.event_id for r in pending.pending()] == ["e1", "e2"]
    assert pending.pending()[0] == row(nsg, "e1", T0)
    pending.remove([row(nsg, "e1", T0), row(nsg, "never", T0)])  # one gone already: no error
    assert [r.event_id for r in pending.pending()] == ["e2"]


def test_one_drainer_at_a_time_until_the_lease_runs_out(pending: PendingEvents) -> None:
    assert pending.claim("a", T0, 60)
    assert not pending.claim("b", T0 + timedelta(seconds=30), 60)  # a holds it
    assert pending.claim("a", T0 + timedelta(seconds=30), 60)  # the holder may extend it
    assert pending.claim("b", T0 + timedelta(seconds=91), 60)  # a's lease ran out (a died)
    pending.release("a")  # not a's any more: nothing happens
    assert not pending.claim("a", T0 + timedelta(seconds=92), 60)
    pending.release("b")
    assert pending.claim("a", T0 + timedelta(seconds=93), 60)


def test_of_many_racing_for_the_lease_one_gets_it(pending: PendingEvents) -> None:
    won: list[str] = []
    barrier = threading.Barrier(6)

    def race(owner: str) -> None:
        barrier.wait()
        if pending.claim(owner, T0, 60):
            won.append(owner)

    threads = [threading.Thread(target=race, args=(f"o{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1


# ---------------------------------------------------------------- the drain


@dataclass
class StandIn:
    """What the coalescer uses of a Reconciler: screen, reconcile, settings, state, clock."""

    now: list[datetime] = field(default_factory=lambda: [T0])
    calls: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    fail: list[Exception] = field(default_factory=list)
    state: InMemoryStateStore = field(default_factory=InMemoryStateStore)
    settings: Settings = field(default_factory=lambda: Settings(subscription_id=SUB))

    def clock(self) -> datetime:
        return self.now[0]

    def screen(self, event: ResourceEvent) -> EventOutcome | None:
        return EventOutcome(event.id, "ignored", "duplicate delivery") if self.state.seen_event(event.id) else None

    def reconcile(self, scope: str | None, **kwargs: Any) -> ReconcileReport:
        if self.fail:
            raise self.fail.pop(0)
        self.calls.append((str(kwargs["event_id"]), tuple(kwargs["affected"])))
        return ReconcileReport(scope=scope or "", trigger="event", mode="enforce", dry_run=False, started=self.now[0])


def event(resource: str, operation: str, event_id: str | None = None) -> ResourceEvent:
    return parse_event(
        {
            "id": event_id or uuid.uuid4().hex,
            "subject": resource,
            "eventType": "Microsoft.Resources.ResourceWriteSuccess",
            "eventTime": T0.isoformat(),
            "dataVersion": "2",
            "data": {"resourceUri": resource, "operationName": operation, "status": "Succeeded", "claims": {}},
        },
        subscription_id=SUB,
    )


def rule_event(nsg: str, rule: str = "r") -> ResourceEvent:
    return event(
        f"{NET}/networkSecurityGroups/{nsg}/securityRules/{rule}",
        "Microsoft.Network/networkSecurityGroups/securityRules/delete",
    )


def nic_event(name: str) -> ResourceEvent:
    return event(f"{NET}/networkInterfaces/{name}", "Microsoft.Network/networkInterfaces/write")


def coalescer(stand_in: StandIn, store: PendingEvents | None = None, **options: Any) -> EventCoalescer:
    def sleep(seconds: float) -> None:
        stand_in.now[0] += timedelta(seconds=seconds)
        clock[0] += seconds

    clock = [0.0]
    return EventCoalescer(
        cast(Reconciler, stand_in),
        store or InMemoryPendingEvents(),
        options=CoalesceOptions(**({"nic_window": 10.0, "max_seconds": 20.0, "poll": 0.5} | options)),
        sleep=sleep,
        monotonic=lambda: clock[0],
    )


def test_three_rule_events_on_one_nsg_are_handled_once_at_once(pending: PendingEvents) -> None:
    s = StandIn()
    c = coalescer(s, pending)
    outcomes = [c.submit(rule_event("a", r)) for r in ("r1", "r2", "r3")]
    assert [o.status for o in outcomes] == ["queued"] * 3
    done = c.drain()
    # One reconcile of the NSG (rule events name their NSG), at once: no waiting for company.
    assert [affected for _, affected in s.calls] == [(f"{NET}/networkSecurityGroups/a",)]
    assert "(+2 coalesced)" in s.calls[0][0]
    assert [o.status for o in done] == ["handled"]
    assert s.now[0] == T0
    assert pending.pending() == []


def test_nic_events_wait_for_company_while_an_nsg_event_does_not(pending: PendingEvents) -> None:
    s = StandIn()
    c = coalescer(s, pending)
    for i in range(3):
        c.submit(nic_event(f"node-{i}"))
    s.now[0] += timedelta(seconds=4)
    c.submit(rule_event("cc"))
    c.submit(nic_event("node-3"))
    done = c.drain()
    # The rule event first, at once; the four NICs together once the oldest had waited 10 s.
    assert [affected for _, affected in s.calls] == [
        (f"{NET}/networkSecurityGroups/cc",),
        tuple(sorted(f"{NET}/networkInterfaces/node-{i}" for i in range(4))),
    ]
    assert [o.status for o in done] == ["handled", "handled"]
    assert s.now[0] == T0 + timedelta(seconds=10)  # 4 s before, 6 s of the drain's polling
    assert pending.pending() == []


def test_route_and_firewall_events_are_handled_together_at_once() -> None:
    s = StandIn()
    c = coalescer(s)
    c.submit(event(f"{NET}/routeTables/rt/routes/all", "Microsoft.Network/routeTables/routes/write"))
    c.submit(
        event(
            f"{NET}/firewallPolicies/p/ruleCollectionGroups/g",
            "Microsoft.Network/firewallPolicies/ruleCollectionGroups/write",
        )
    )
    c.drain()
    # One reconcile for both: each judges the whole subscription's paths, so once is enough; no waiting.
    assert [affected for _, affected in s.calls] == [
        (f"{NET}/firewallPolicies/p/ruleCollectionGroups/g", f"{NET}/routeTables/rt/routes/all")
    ]
    assert s.now[0] == T0


def test_a_drain_stops_after_max_seconds_and_leaves_the_rest_pending() -> None:
    s = StandIn()
    store = InMemoryPendingEvents()
    c = coalescer(s, store, nic_window=30.0, max_seconds=5.0)
    c.submit(nic_event("node"))
    assert c.drain() == []
    assert [r.key.rsplit("/", 1)[-1] for r in store.pending()] == ["node"]
    s.now[0] += timedelta(seconds=30)
    assert [o.status for o in c.drain()] == ["handled"]  # the next drain (the timer's) takes it


def test_while_another_instance_drains_a_submitter_returns_at_once() -> None:
    s = StandIn()
    store = InMemoryPendingEvents()
    c = coalescer(s, store)
    assert store.claim("another instance", T0, 60)
    c.submit(rule_event("a"))
    assert c.drain() == []
    assert s.calls == []
    assert len(store.pending()) == 1  # the holder's next round takes it


def test_one_drain_waits_for_nic_company_and_takes_an_nsg_event_that_arrives_meanwhile() -> None:
    # A scale-up: the first NIC event's drain waits for the NIC window. Every later invocation
    # (here: the NSG event of a drift, 2 s in) must return at once rather than poll beside it
    # (polling invocations fill the host's slots, and the drift's event queues behind them), and
    # the waiting drain handles the NSG event within one poll, long before the NICs are due.
    s = StandIn()
    store = InMemoryPendingEvents()
    waiter = coalescer(s, store)
    late = coalescer(s, store)
    seen: list[tuple[datetime, list[EventOutcome]]] = []
    polls = [0]
    sleep_of_waiter = waiter._sleep

    def sleep(seconds: float) -> None:
        sleep_of_waiter(seconds)
        polls[0] += 1
        if polls[0] == 4:  # 2 s into the wait, the drift's event arrives in another invocation
            late.submit(rule_event("cc"))
            seen.append((s.now[0], late.drain()))

    waiter._sleep = sleep
    waiter.submit(nic_event("node-0"))
    done = waiter.drain()
    assert seen == [(T0 + timedelta(seconds=2), [])]  # the late invocation returned at once
    nsg_at = [affected for _, affected in s.calls].index((f"{NET}/networkSecurityGroups/cc",))
    assert nsg_at == 0  # handled first, by the waiting drain, at its next poll
    assert [o.status for o in done] == ["handled", "handled"]
    assert s.now[0] == T0 + timedelta(seconds=10)  # the NIC still waited its window
    assert store.pending() == []


def test_a_transient_failure_keeps_the_rows_for_the_next_drain() -> None:
    s = StandIn(fail=[TransientError("ARM answered 503")])
    store = InMemoryPendingEvents()
    c = coalescer(s, store)
    c.submit(rule_event("a"))
    assert c.drain() == []  # failed once: skipped for the rest of this drain, not retried in a loop
    assert len(store.pending()) == 1
    assert [o.status for o in c.drain()] == ["handled"]
    assert store.pending() == []


def test_a_duplicate_is_not_queued_and_a_failed_queueing_lets_the_redelivery_through() -> None:
    s = StandIn()

    class Broken(InMemoryPendingEvents):
        def add(self, event: PendingEvent) -> None:
            raise TransientError("state table lockdownpending: add pending event failed")

    first = rule_event("a", "r")
    c = coalescer(s, Broken())
    with pytest.raises(TransientError):
        c.submit(first)
    ok = coalescer(s, InMemoryPendingEvents())
    assert ok.submit(first).status == "queued"  # Event Grid's redelivery is not taken for a duplicate
    assert ok.submit(first).status == "ignored"  # a true duplicate is


def test_a_sweep_covers_the_rows_older_than_its_start() -> None:
    s = StandIn()
    store = InMemoryPendingEvents()
    c = coalescer(s, store)
    c.submit(nic_event("old"))
    s.now[0] += timedelta(seconds=5)
    c.submit(nic_event("new"))
    assert c.settled_by_sweep(T0 + timedelta(seconds=1)) == 1
    assert [r.key.rsplit("/", 1)[-1] for r in store.pending()] == ["new"]
