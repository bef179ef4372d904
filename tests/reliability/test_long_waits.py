"""One invocation stays within its timeout however long ARM asks to wait (issue 11).

Real NRP answers a PUT with Retry-After 1-10 s and then suggests 10, 20, 40 s between polls (the
emulator's ``lro_retry_after`` / ``lro_poll_retry_after`` / ``lro_poll_backoff``). The adapter waits
at most ``ArmOptions.max_poll_seconds`` for an operation, then leaves it to ARM; the run reports it
transient (an event is redelivered) and the next run verifies it without writing again. A run whose
time budget is spent starts no more writes and hands them to the next delivery or sweep.
"""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

import function_app
from devtools.demo import host_event
from devtools.emulator import Emulator
from devtools.functions_host import user_function
from remediation.azure.arm import ArmOptions
from remediation.errors import TransientError
from tests.reliability.harness import CC, FAST, RESOURCE_GROUP, World, human_client, make_world

pytestmark = pytest.mark.integration

#: The adapter gives an operation one second here (45 s in production).
PATIENCE = replace(FAST, max_poll_seconds=1.0)


def nrp_timing(em: Emulator) -> None:
    """NRP's waits: Retry-After 5 s on the PUT, then 10, 20, 40 s; operations settle after 3 s."""
    config = em.config
    config.lro_polls, config.lro_retry_after = 3, 5
    config.lro_poll_retry_after, config.lro_poll_backoff = 10, 2
    config.lro_max_seconds = 3


def test_a_sweep_does_not_wait_out_nrps_polls(emulator: Emulator) -> None:
    nrp_timing(emulator)
    world = make_world(emulator, options=PATIENCE)
    try:
        started = time.monotonic()
        report = world.sweep()
        took = time.monotonic() - started
        assert took < 5, f"the sweep waited {took:.1f} s for an operation ARM said to poll in 5+10+20+40 s"
        (outcome,) = [o for o in report.nsgs if o.written is not None]
        assert outcome.transient
        assert outcome.error is not None
        assert "still running" in outcome.error
        assert world.writes() != [], "the write was accepted"

        time.sleep(3.5)  # the operation ends on its own, as ARM's do
        emulator.clear_requests()
        again = world.sweep()
        assert again.ok, again.all_errors()
        assert world.remaining_remediable() == []
        assert world.writes() == [], "the next run verified it without writing again"
    finally:
        world.rt.close()


def test_an_event_whose_write_is_still_running_is_redelivered_and_then_settled(emulator: Emulator) -> None:
    nrp_timing(emulator)
    world = make_world(emulator, options=PATIENCE)
    function_app.runtime.use(world.rt)
    try:
        world.sweep()  # restores the demo's broken rule (its check left to later)
        time.sleep(3.5)
        captured: list[dict[str, object]] = []
        emulator.set_event_subscriber(captured.extend)
        people = human_client(emulator)
        try:
            people.security_rules.begin_delete(RESOURCE_GROUP, "nsg-cyclecloud", "AllowAzureRM").result(timeout=10)
        finally:
            people.close()
        deadline = time.monotonic() + 15
        while not captured and time.monotonic() < deadline:
            time.sleep(0.1)
        emulator.set_event_subscriber(None)
        (event,) = captured
        handler = user_function(function_app.app, "on_nsg_change")
        with pytest.raises(TransientError, match="still running"):
            handler(host_event(event))
        time.sleep(3.5)
        handler(host_event(event))  # Event Grid's redelivery: the id was forgotten
        assert "AllowAzureRM" in world.rule_names()
        assert world.remaining_remediable() == []
    finally:
        function_app.runtime.use(None)
        world.rt.close()


def test_a_run_whose_time_budget_is_spent_defers_its_writes(world: World) -> None:
    spent = replace(world.rt, time_budget=0.0)
    report = spent.reconcile(None, trigger="sweep")
    (outcome,) = [o for o in report.nsgs if o.nsg_id.lower() == CC.lower()]
    assert outcome.transient
    assert outcome.error is not None
    assert outcome.error.startswith("deferred")
    assert world.writes() == []
    later = world.rt.reconcile(None, trigger="sweep")  # the next sweep (or delivery) does it
    assert later.ok, later.all_errors()
    assert world.remaining_remediable() == []
    assert isinstance(PATIENCE, ArmOptions)
