"""At-least-once: an event whose handling failed for a transient reason is handled when Event Grid
delivers it again, not dropped as a duplicate.

Regression: the handler records an event id before acting and asks the state store to forget it
when the work fails transiently (so the redelivery gets through the duplicate check), but neither
state store could forget: the redelivery was dropped as "duplicate delivery" and the NSG stayed
broken until the next sweep. Both stores now implement ``forget_event``; the Table Storage one is
tested against Azurite in tests/test_state.py's contract when Azurite is installed, and here
through the in-memory one with the real handler on the emulator.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import function_app
from devtools.demo import host_event
from devtools.functions_host import user_function
from remediation.errors import AuthenticationFailure, TransientError
from remediation.findings import Finding, FindingKind, Severity
from tests.reliability.harness import RESOURCE_GROUP, World, human_client

pytestmark = pytest.mark.integration


def test_redelivery_after_a_transient_failure_is_handled(world: World) -> None:
    em = world.em
    event = _delete_monitor_rule(world)
    handler = user_function(function_app.app, "on_nsg_change")

    # ARM keeps failing the remediator's PUT: the handler raises so that Event Grid redelivers.
    em.faults.add(
        kind="status", method="PUT", path="networkSecurityGroups", status=503, principal="remediator", times=None
    )
    with pytest.raises(TransientError):
        handler(host_event(event))
    assert "AllowAzureMonitor" not in world.rule_names()

    # ARM recovers; Event Grid delivers the same event again.
    em.faults.clear()
    handler(host_event(event))
    assert "AllowAzureMonitor" in world.rule_names(), "the redelivery was dropped as a duplicate"
    assert world.remaining_remediable() == []

    # A true duplicate of a handled event is still dropped before any ARM call.
    em.clear_requests()
    handler(host_event(event))
    assert world.arm_requests() == []


@pytest.mark.parametrize("kind", ["memory", "azurite"])
def test_both_state_stores_forget_an_event(kind: str, request: pytest.FixtureRequest) -> None:
    from pydantic import SecretStr

    from remediation.settings import Settings
    from remediation.state import InMemoryStateStore, TableStateStore

    if kind == "memory":
        store: Any = InMemoryStateStore()
    else:
        connection = request.getfixturevalue("azurite")
        settings = Settings(state_connection_string=SecretStr(connection), state_table_prefix="redelivery")
        store = TableStateStore.from_settings(settings)
    assert store.seen_event("event-1") is False
    assert store.seen_event("event-1") is True
    store.forget_event("event-1")
    assert store.seen_event("event-1") is False
    assert store.seen_event("event-1") is True
    store.forget_event("never-seen")  # forgetting what was never recorded is no error


def _delete_monitor_rule(world: World) -> dict[str, Any]:
    em = world.em
    captured: list[dict[str, Any]] = []
    em.set_event_subscriber(captured.extend)
    people = human_client(em)
    try:
        people.security_rules.begin_delete(RESOURCE_GROUP, "nsg-cyclecloud", "AllowAzureMonitor").result()
    finally:
        people.close()
    assert em.events.wait_idle(timeout=10)
    em.set_event_subscriber(None)
    (event,) = captured
    return event


AUTH_FAULTS = {
    # The managed-identity endpoint failing every time (App Service's, here the emulator's).
    "identity endpoint 503": {"kind": "status", "path": "/msi/token", "status": 503, "times": None},
    # ARM refusing the token.
    "ARM 401": {
        "kind": "status",
        "method": "GET",
        "path": "networkSecurityGroups",
        "status": 401,
        "code": "InvalidAuthenticationToken",
        "principal": "remediator",
        "times": None,
    },
}


@pytest.mark.parametrize("failure", list(AUTH_FAULTS))
def test_an_authentication_failure_is_transient_for_an_event(world: World, failure: str) -> None:
    """Issue 11, item 3: the event was dropped as non-transient after its id was recorded, so Event
    Grid's redelivery was ignored as a duplicate and the rule stayed missing until the next sweep."""
    event = _delete_monitor_rule(world)
    handler = user_function(function_app.app, "on_nsg_change")
    world.em.faults.add(**AUTH_FAULTS[failure])
    with pytest.raises(AuthenticationFailure):
        handler(host_event(event))
    assert "AllowAzureMonitor" not in world.rule_names()

    world.em.faults.clear()  # the identity endpoint (or the token) works again; Event Grid redelivers
    handler(host_event(event))
    assert "AllowAzureMonitor" in world.rule_names(), "the redelivery was dropped as a duplicate"


class _Recorder:
    def __init__(self) -> None:
        self.sent: list[Finding] = []

    def notify(self, findings: Sequence[Finding], **_: Any) -> Sequence[str]:
        self.sent.extend(findings)
        return [f.kind.value for f in findings]


def test_authentication_failing_past_a_sweep_interval_alerts_once(world: World) -> None:
    now = [datetime(2026, 1, 5, 12, 0, tzinfo=UTC)]
    recorder = _Recorder()
    rt = replace(world.rt, clock=lambda: now[0], notifier=recorder)
    world.em.faults.add(**AUTH_FAULTS["ARM 401"])

    def sweep_at(minutes: int) -> None:
        now[0] = datetime(2026, 1, 5, 12, 0, tzinfo=UTC) + timedelta(minutes=minutes)
        with pytest.raises(AuthenticationFailure):
            rt.reconcile(None, trigger="sweep")

    sweep_at(0)
    sweep_at(10)
    assert recorder.sent == [], "one failure, or a short one, is not worth waking anyone"
    sweep_at(16)
    (alert,) = recorder.sent
    assert alert.kind is FindingKind.GUARD_UNAUTHENTICATED
    assert alert.severity is Severity.HIGH
    assert "since 2026-01-05T12:00:00" in alert.message
    sweep_at(30)
    sweep_at(45)
    assert len(recorder.sent) == 1, "alerted once while it persists"

    world.em.faults.clear()
    now[0] += timedelta(minutes=1)
    rt.reconcile(None, trigger="sweep")  # authenticates again: the episode is over
    world.em.faults.add(**AUTH_FAULTS["ARM 401"])
    sweep_at(60)
    sweep_at(80)
    assert len(recorder.sent) == 2, "a new episode alerts again"
