"""An event reads the alert states of what it judged, not the store; the sweep still reads every one.

Through the real pieces: the policy, Table Storage (Azurite) and the in-memory store, the Teams
receiver. What must not change with the narrower read: "resolved" only inside the judged scope,
and an alert recorded but never delivered (a one-shot incident, an opening alert) is still sent,
by the event when it lies in its scope, by the sweep otherwise; reminders likewise.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from datetime import timedelta

import pytest
from pydantic import SecretStr

from remediation.alerts.dispatch import Channel
from remediation.alerts.notify import Notified, notify
from remediation.alerts.teams import TeamsSink
from remediation.findings import Finding, FindingKind, Severity, incident
from remediation.ports import StateStore
from remediation.settings import Settings
from remediation.state import InMemoryStateStore, TableStateStore
from tests.alerts.samples import SUB, T0, missing_rule, port_blocked
from tests.support.http_receiver import WebhookReceiver
from tests.support.table_queries import count_queries

RG = f"/subscriptions/{SUB}/resourceGroups/rg-cluster"


def nsg(n: int) -> str:
    return f"{RG}/providers/Microsoft.Network/networkSecurityGroups/nsg-{n}"


def table_store(azurite: str) -> TableStateStore:
    settings = Settings(state_connection_string=SecretStr(azurite), state_table_prefix="s" + uuid.uuid4().hex[:12])
    return TableStateStore.from_settings(settings)


@pytest.fixture(params=["memory", "azurite"])
def store(request: pytest.FixtureRequest) -> Iterator[StateStore]:
    if request.param == "memory":
        yield InMemoryStateStore()
    else:
        yield table_store(request.getfixturevalue("azurite"))


def rule_lost(nsg_id: str) -> Finding:
    return incident(
        FindingKind.RULE_LOST,
        "AllowOperatorSsh",
        nsg_id,
        "rule 'AllowOperatorSsh' was in the NSG before the remediator's write and is gone after it",
        "the remediator never recreates rules it does not own",
        rule="AllowOperatorSsh",
    )


class Run:
    """Sweeps (the subscription) and events (one NSG) through ``notify``, as the service calls it."""

    def __init__(self, store: StateStore, receiver: WebhookReceiver) -> None:
        self.store = store
        self.receiver = receiver
        # No retries: a failing receiver is the point here, not the backoff.
        self.channels = [Channel(TeamsSink(SecretStr(receiver.url()), timeout=5, retry_total=0), Severity.INFO)]

    def sweep(self, findings: Sequence[Finding], hours: float) -> Notified:
        return self._notify(findings, hours, [f"/subscriptions/{SUB}"])

    def event(self, nsg_id: str, findings: Sequence[Finding], hours: float) -> Notified:
        return self._notify(findings, hours, [nsg_id])

    def _notify(self, findings: Sequence[Finding], hours: float, scopes: list[str]) -> Notified:
        return notify(
            findings,
            store=self.store,
            channels=self.channels,
            now=T0 + timedelta(hours=hours),
            reminder_hours=24,
            scopes=scopes,
            sleep=lambda s: None,
            attempts=1,
        )


def subscription(count: int) -> list[Finding]:
    """Two open findings on each of ``count`` NSGs (the benchmark's port_blocked pair, here two kinds)."""
    return [f for n in range(1, count + 1) for f in (port_blocked(nsg(n)), missing_rule(nsg=nsg(n)))]


def test_an_event_reads_only_its_nsgs_alert_states_from_table_storage(
    azurite: str, webhook_receiver: WebhookReceiver
) -> None:
    store = table_store(azurite)
    run = Run(store, webhook_receiver)
    run.sweep(subscription(40), 0)
    assert len(store.alert_states()) == 80

    answered = count_queries(store._table("alerts"))
    # nsg-1's two findings, still there: nothing to say, and nsg-10 .. nsg-19 (same prefix) are not read.
    assert run.event(nsg(1), [port_blocked(nsg(1)), missing_rule(nsg=nsg(1))], 1).alerts == ()
    rows = [str(e["RowKey"]) for e in answered.entities]
    assert len(rows) == 2, rows  # before: all 80 states of the subscription, on every event
    assert all("RowKey ge" in f for f in answered.filters if "@pk" in f and "RowKey" in f)

    answered.clear()
    run.sweep(subscription(40), 2)
    assert len(answered.entities) == 80  # the sweep still reads every state


def test_scoped_read_returns_a_scope_and_what_lies_under_it(
    store: StateStore, webhook_receiver: WebhookReceiver
) -> None:
    run = Run(store, webhook_receiver)
    run.sweep(subscription(12), 0)
    one = {port_blocked(nsg(1)).fingerprint, missing_rule(nsg=nsg(1)).fingerprint}
    assert set(store.alert_states([nsg(1)])) == one  # not nsg-10, nsg-11, nsg-12
    assert set(store.alert_states([nsg(1).upper() + "/"])) == one  # ids compare case-insensitively
    assert len(store.alert_states([RG])) == 24  # under the resource group: every NSG's
    assert store.alert_states([f"{RG}-other"]) == {}  # a resource group merely named alike
    assert len(store.alert_states([nsg(n) for n in range(1, 13)])) == 24  # more scopes than one filter holds


def test_an_event_resolves_only_in_its_scope(store: StateStore, webhook_receiver: WebhookReceiver) -> None:
    run = Run(store, webhook_receiver)
    run.sweep([port_blocked(nsg(1)), port_blocked(nsg(2))], 0)
    gone = run.event(nsg(1), [], 1)
    assert [a.title for a in gone.alerts] == ["Resolved: port blocked amqp_5672 on nsg-1"]
    assert store.alert_states()[port_blocked(nsg(2)).fingerprint].status == "open"  # another NSG's: untouched


def test_an_undelivered_one_shot_alert_is_sent_by_its_event_or_the_sweep(
    store: StateStore, webhook_receiver: WebhookReceiver
) -> None:
    run = Run(store, webhook_receiver)
    webhook_receiver.fail(status=503)
    lost = rule_lost(nsg(1))
    assert not run.event(nsg(1), [lost], 0).report.ok  # recorded, owed
    webhook_receiver.recover()

    assert run.event(nsg(2), [], 0.25).alerts == ()  # another NSG's event does not read nsg-1's states
    assert store.alert_states()[lost.fingerprint].last_sent is None  # still owed, not dropped
    sent = run.sweep([], 0.5)  # the sweep reads every state: the owed alert goes out
    assert [a.title for a in sent.alerts] == ["Rule AllowOperatorSsh lost in the remediator's write to nsg-1"]
    assert run.sweep([], 0.75).alerts == ()  # once

    webhook_receiver.fail(status=503)
    second = rule_lost(nsg(3))
    run.event(nsg(3), [second], 1)
    webhook_receiver.recover()
    again = run.event(nsg(3), [], 1.25)  # its own NSG's next event sends it
    assert [a.title for a in again.alerts] == ["Rule AllowOperatorSsh lost in the remediator's write to nsg-3"]
    assert len([p for p in webhook_receiver.posts if "nsg-3" in str(p.json())]) == 1


def test_an_undelivered_opening_alert_and_reminders_still_go_out(
    store: StateStore, webhook_receiver: WebhookReceiver
) -> None:
    run = Run(store, webhook_receiver)
    webhook_receiver.fail(status=503)
    run.sweep([port_blocked(nsg(1)), port_blocked(nsg(2))], 0)
    webhook_receiver.recover()
    # An event on nsg-2 sends nsg-2's owed opening alert, and leaves nsg-1's to its own event or the sweep.
    two = run.event(nsg(2), [port_blocked(nsg(2))], 0.25)
    assert [a.title for a in two.alerts] == ["Port blocked amqp_5672 on nsg-2"]
    assert store.alert_states()[port_blocked(nsg(1)).fingerprint].last_sent is None
    one = run.sweep([port_blocked(nsg(1)), port_blocked(nsg(2))], 0.5)
    assert [a.title for a in one.alerts] == ["Port blocked amqp_5672 on nsg-1"]

    # A day on: an event on nsg-2 reminds of nsg-2 only; the sweep then reminds of nsg-1.
    later = run.event(nsg(2), [port_blocked(nsg(2))], 24.5)
    assert [a.title for a in later.alerts] == ["Reminder: port blocked amqp_5672 on nsg-2"]
    sweep = run.sweep([port_blocked(nsg(1)), port_blocked(nsg(2))], 24.75)
    assert [a.title for a in sweep.alerts] == ["Reminder: port blocked amqp_5672 on nsg-1"]


def test_states_of_the_first_table_layout_are_read_and_moved(azurite: str, webhook_receiver: WebhookReceiver) -> None:
    store = table_store(azurite)
    run = Run(store, webhook_receiver)
    run.sweep([port_blocked(nsg(1)), port_blocked(nsg(2))], 0)
    table = store._table("alerts")
    # Rewrite them as the first layout stored them: partition "alert", row key the fingerprint.
    for entity in list(table.list_entities()):
        old = {k: v for k, v in entity.items() if k != "fingerprint"}
        table.delete_entity(partition_key=entity["PartitionKey"], row_key=entity["RowKey"])
        table.create_entity({**old, "PartitionKey": "alert", "RowKey": entity["fingerprint"]})

    gone = run.event(nsg(1), [], 1)  # an event finds nsg-1's (so resolves it, once) ...
    assert [a.title for a in gone.alerts] == ["Resolved: port blocked amqp_5672 on nsg-1"]
    assert {e["PartitionKey"] for e in table.list_entities()} == {"state"}  # ... and every old row is moved
    assert run.event(nsg(2), [port_blocked(nsg(2))], 1.25).alerts == ()  # nsg-2's: still open, known, quiet
    assert len(store.alert_states()) == 2
