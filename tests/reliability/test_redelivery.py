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

from typing import Any

import pytest

import function_app
from devtools.demo import host_event
from devtools.functions_host import user_function
from remediation.errors import TransientError
from tests.reliability.harness import RESOURCE_GROUP, World, human_client

pytestmark = pytest.mark.integration


def test_redelivery_after_a_transient_failure_is_handled(world: World) -> None:
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
    from remediation.settings import Secret, Settings
    from remediation.state import InMemoryStateStore, TableStateStore

    if kind == "memory":
        store: Any = InMemoryStateStore()
    else:
        connection = request.getfixturevalue("azurite")
        settings = Settings(state_connection_string=Secret(connection), state_table_prefix="redelivery")
        store = TableStateStore.from_settings(settings)
    assert store.seen_event("event-1") is False
    assert store.seen_event("event-1") is True
    store.forget_event("event-1")
    assert store.seen_event("event-1") is False
    assert store.seen_event("event-1") is True
    store.forget_event("never-seen")  # forgetting what was never recorded is no error
