"""Concurrency: the same event delivered many times at once, events out of order, a sweep and an
event on one NSG at once, and a person's edit landing between the remediator's read and write.

Every case ends with the NSG holding the baseline and every rule people added (no lost update),
and with exactly the writes needed (one restore), whatever the interleaving. The Function app's
own ``on_nsg_change`` is called from threads with real ``azure.functions.EventGridEvent`` objects.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError

import function_app
from devtools.demo import TAG, host_event
from devtools.functions_host import user_function
from remediation.azure.arm import ArmOptions
from tests.reliability.harness import (
    CC,
    FAST,
    HUMAN_RULE,
    RESOURCE_GROUP,
    World,
    duplicated,
    human_client,
    make_world,
    network,
)

pytestmark = pytest.mark.integration

NSG = "nsg-cyclecloud"


def rule(name: str, priority: int, port: str, direction: str = "Inbound") -> dict[str, Any]:
    return {
        "properties": {
            "protocol": "Tcp",
            "access": "Allow",
            "priority": priority,
            "direction": direction,
            "sourceAddressPrefix": "10.10.8.0/24",
            "destinationAddressPrefix": "*",
            "sourcePortRange": "*",
            "destinationPortRange": port,
            "description": f"{name}, added by a person",
        }
    }


def on_nsg_change() -> Callable[[Any], None]:
    handler: Callable[[Any], None] = user_function(function_app.app, "on_nsg_change")
    return handler


def run_together(*calls: Callable[[], object]) -> list[BaseException]:
    """Start every call at the same instant (a barrier); the exceptions they raised."""
    barrier = threading.Barrier(len(calls))
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run(call: Callable[[], object]) -> None:
        barrier.wait()
        try:
            call()
        except BaseException as exc:
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=run, args=(c,)) for c in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a handler hung"
    return errors


def human_events(world: World, change: Callable[[Any], None]) -> list[dict[str, Any]]:
    """The Event Grid events a person's change produces (delivered nowhere yet)."""
    captured: list[dict[str, Any]] = []
    world.em.set_event_subscriber(captured.extend)
    people = human_client(world.em)
    try:
        change(people)
    finally:
        people.close()
    assert world.em.events.wait_idle(timeout=10)
    world.em.set_event_subscriber(None)
    return captured


def settled(poller: Any) -> None:
    """Wait for a person's write. Live, the remediator's write may land while the person's operation
    still runs; NRP then ends the person's operation Canceled (CanceledAndSupersededDueToAnotherOperation)
    and the later write, made from a read that already showed the person's change, carries it."""
    try:
        poller.result()
    except HttpResponseError as exc:
        if getattr(exc.error, "code", None) != "CanceledAndSupersededDueToAnotherOperation":
            raise


def delete_storage(people: Any) -> None:
    people.security_rules.begin_delete(RESOURCE_GROUP, NSG, "AllowAzureStorage").result()


def assert_converged(world: World, *human: str) -> None:
    names = world.rule_names()
    assert world.remaining_remediable() == [], names
    for name in (HUMAN_RULE["name"], *human):
        assert name in names, f"the person's rule {name} was lost: {names}"
    assert duplicated(world.rules()) == []


def remediator_puts(world: World) -> int:
    return len(world.writes())


def test_one_event_delivered_many_times_at_once(emulator: Any) -> None:
    world = make_world(emulator, network(drop=()))
    function_app.runtime.use(world.rt)
    try:
        (event,) = human_events(world, delete_storage)
        emulator.clear_requests()
        handler = on_nsg_change()
        errors = run_together(*[lambda: handler(host_event(event)) for _ in range(16)])
        assert errors == []
        assert_converged(world)
        assert remediator_puts(world) == 1
        nsg_reads = world.arm_requests(method="GET", caller="remediator")
        lists = [r for r in nsg_reads if r["path"].endswith("/networkSecurityGroups")]
        assert len(lists) == 1, "15 duplicates were dropped before any ARM call"
    finally:
        function_app.runtime.use(None)
        world.rt.close()


def test_many_events_for_one_nsg_at_once(emulator: Any) -> None:
    """Different events (a person's burst of edits) handled concurrently: one write restores all."""
    world = make_world(emulator, network(drop=()))
    function_app.runtime.use(world.rt)
    try:

        def burst(people: Any) -> None:
            delete_storage(people)
            people.security_rules.begin_delete(RESOURCE_GROUP, NSG, "AllowAzureMonitor").result()
            for i in range(6):
                people.security_rules.begin_create_or_update(
                    RESOURCE_GROUP, NSG, f"Burst{i}", rule(f"Burst{i}", 400 + i, str(8000 + i))
                ).result()

        events = human_events(world, burst)
        assert len(events) == 8
        emulator.clear_requests()
        handler = on_nsg_change()
        errors = run_together(*[lambda e=e: handler(host_event(e)) for e in events])
        assert errors == []
        assert_converged(world, *(f"Burst{i}" for i in range(6)))
        assert remediator_puts(world) == 1, [r["status"] for r in world.arm_requests(method="PUT")]
    finally:
        function_app.runtime.use(None)
        world.rt.close()


def test_events_out_of_order(emulator: Any) -> None:
    """Events arriving newest first (and shuffled by the emulator's window) never undo a later
    edit: the handler re-reads ARM instead of trusting the event."""
    world = make_world(emulator, network(drop=()))
    function_app.runtime.use(world.rt)
    try:

        def edits(people: Any) -> None:
            rules = people.security_rules
            settled(rules.begin_create_or_update(RESOURCE_GROUP, NSG, "Late1", rule("Late1", 500, "81")))
            settled(rules.begin_delete(RESOURCE_GROUP, NSG, "AllowAzureStorage"))
            settled(rules.begin_delete(RESOURCE_GROUP, NSG, "Late1"))
            settled(rules.begin_create_or_update(RESOURCE_GROUP, NSG, "Late2", rule("Late2", 501, "82")))
            settled(rules.begin_delete(RESOURCE_GROUP, NSG, "AllowAzureRM"))

        events = human_events(world, edits)
        emulator.clear_requests()
        handler = on_nsg_change()
        for event in reversed(events):
            handler(host_event(event))
        assert_converged(world, "Late2")
        assert "Late1" not in world.rule_names(), "a rule the person deleted came back from an old event"
        assert remediator_puts(world) == 1

        # And through the emulator's own delivery: duplicates and a shuffling window, live.
        emulator.set_event_subscriber(
            lambda batch: [handler(host_event(e)) for e in batch], duplicate=0.5, reorder=4, seed=7
        )
        people = human_client(emulator)
        try:
            edits(people)
        finally:
            people.close()
        assert emulator.events.wait_idle(timeout=30)
        assert_converged(world, "Late2")
        assert "Late1" not in world.rule_names()
        assert list(emulator.events.failures) == []
    finally:
        function_app.runtime.use(None)
        world.rt.close()


@pytest.mark.parametrize("round_", range(4))
def test_sweep_and_event_on_one_nsg_at_once(emulator: Any, round_: int) -> None:
    world = make_world(emulator, network(drop=()))
    function_app.runtime.use(world.rt)
    try:
        (event,) = human_events(world, delete_storage)
        emulator.clear_requests()
        handler = on_nsg_change()
        calls: list[Callable[[], object]] = [world.sweep, lambda: handler(host_event(event))]
        if round_ % 2:
            calls.reverse()
        errors = run_together(*calls)
        assert errors == []
        assert_converged(world)
        assert remediator_puts(world) == 1
    finally:
        function_app.runtime.use(None)
        world.rt.close()


def _world_with_held_put(emulator: Any) -> tuple[Any, Any]:
    """The remediator's world, with its NSG PUT held 0.5 s (a delay fault) so a person can write first."""
    options = ArmOptions(**{**{f: getattr(FAST, f) for f in FAST.__dataclass_fields__}, "read_timeout": 10.0})
    world = make_world(emulator, options=options)
    hold = emulator.faults.add(
        kind="delay", method="PUT", path=r"/networkSecurityGroups/nsg-cyclecloud$", principal="remediator", seconds=0.5
    )
    return world, hold


def _wait_until_held(hold: Any) -> None:
    deadline = time.monotonic() + 10
    while hold.hits == 0 and time.monotonic() < deadline:  # the remediator has read; its PUT waits
        time.sleep(0.005)


@pytest.mark.parametrize("edit", ["add a rule", "delete a baseline rule", "change a rule"])
def test_human_edit_between_read_and_write(emulator: Any, edit: str) -> None:
    """A person's write lands while the remediator's PUT is in flight (held by a delay fault):
    If-Match makes ARM refuse the stale write (412), the remediator re-reads and re-plans, and the
    person's edit survives."""
    world, hold = _world_with_held_put(emulator)

    def person() -> None:
        _wait_until_held(hold)
        people = human_client(emulator)
        try:
            if edit == "add a rule":
                people.security_rules.begin_create_or_update(
                    RESOURCE_GROUP, NSG, "Between", rule("Between", 600, "8443")
                ).result()
            elif edit == "delete a baseline rule":
                people.security_rules.begin_delete(RESOURCE_GROUP, NSG, "AllowAzureMonitor").result()
            else:
                changed = rule(HUMAN_RULE["name"], 300, "2222")
                people.security_rules.begin_create_or_update(RESOURCE_GROUP, NSG, HUMAN_RULE["name"], changed).result()
        finally:
            people.close()

    try:
        reports: list[Any] = []
        errors = run_together(lambda: reports.append(world.sweep()), person)
        assert errors == []
        (report,) = reports
        assert report.ok, report.to_json()["errors"]
        puts = world.arm_requests(method="PUT", caller="remediator")
        assert [r["status"] for r in puts] == [412, 200] or [r["status"] for r in puts] == [412, 201], puts
        assert_converged(world, *(["Between"] if edit == "add a rule" else []))
        mine = next(r for r in world.rules() if r["name"] == HUMAN_RULE["name"])
        expected_port = "2222" if edit == "change a rule" else "22"
        assert mine["properties"]["destinationPortRange"] == expected_port, "the person's edit was overwritten"
        assert report.nsgs[0].attempts == 2
    finally:
        world.rt.close()


def test_an_nsg_unmanaged_in_the_edit_that_beat_the_write_is_not_written(emulator: Any) -> None:
    """Issue 11, item 1. The remediator read the broken NSG and planned to restore AllowAzureStorage;
    before its PUT landed, a person removed the lockdown tag, deleted their own SSH allow (TCP 22)
    and added a rule, in one write. The stale PUT gets 412; the re-read NSG is no longer managed.
    Before the fix the old plan (from the stale read) was written anyway: the SSH allow came back
    (access widened), the person's new rule was deleted, an unmanaged NSG was written, and the
    report said ``errors: []``."""
    world, hold = _world_with_held_put(emulator)

    def person() -> None:
        _wait_until_held(hold)
        people = human_client(emulator)
        try:
            nsg = world.nsg()  # as ARM answers a GET now
            rules = [
                {"name": r["name"], "properties": r["properties"]}
                for r in nsg["properties"]["securityRules"]
                if r["name"] != HUMAN_RULE["name"]
            ]
            rules.append({"name": "Between", **rule("Between", 600, "8443")})
            tags = {k: v for k, v in (nsg.get("tags") or {}).items() if k.lower() != TAG.lower()}
            body = {"location": nsg["location"], "tags": tags, "properties": {"securityRules": rules}}
            people.network_security_groups.begin_create_or_update(RESOURCE_GROUP, NSG, body).result()
        finally:
            people.close()

    try:
        reports: list[Any] = []
        errors = run_together(lambda: reports.append(world.sweep()), person)
        assert errors == []
        (report,) = reports
        puts = world.arm_requests(method="PUT")
        assert [(r["caller"], r["status"]) for r in puts] == [("human", 200), ("remediator", 412)], puts
        names = world.rule_names()
        assert HUMAN_RULE["name"] not in names, "the person's deletion of an allow rule was undone (widened)"
        assert "Between" in names, "the rule the person had just added was deleted"
        assert "AllowAzureStorage" not in names, "an NSG no longer managed was written"
        outcome = next(o for o in report.nsgs if o.nsg_id.lower() == CC.lower())
        assert outcome.error is not None
        assert "no longer managed" in outcome.error
        assert any("no longer managed" in e for e in report.all_errors())
    finally:
        world.rt.close()
