"""The state store contract, run against the in-memory store and Table Storage (Azurite)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import SecretStr

from remediation.errors import SettingsError, TransientError
from remediation.findings import Severity
from remediation.ports import AlertHistoryEntry, AlertState, AuditRecord, StateStore
from remediation.settings import Settings
from remediation.state import CHUNK_BYTES, InMemoryStateStore, TableStateStore, pack, unpack
from tests.support.net import free_port

T0 = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)
NSG = "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.Network/networkSecurityGroups/nsg-a"
OTHER = "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.Network/networkSecurityGroups/nsg-b"


def table_store(connection_string: str, prefix: str | None = None) -> TableStateStore:
    settings = Settings(
        state_connection_string=SecretStr(connection_string),
        state_table_prefix=prefix or "t" + uuid.uuid4().hex[:12],  # a fresh set of tables per test
    )
    return TableStateStore.from_settings(settings, clock=lambda: T0)


@pytest.fixture(params=["memory", "azurite"])
def store(request: pytest.FixtureRequest) -> Iterator[StateStore]:
    if request.param == "memory":
        yield InMemoryStateStore(clock=lambda: T0)
    else:
        yield table_store(request.getfixturevalue("azurite"))


def rule(i: int) -> dict[str, Any]:
    return {
        "name": f"Rule{i:04d}",
        "properties": {
            "priority": 100 + i,
            "direction": "Outbound",
            "access": "Allow",
            "protocol": "Tcp",
            "sourceAddressPrefix": "*",
            "destinationAddressPrefixes": [f"10.{i % 250}.{i // 250}.0/24", f"172.16.{i % 250}.0/24"],
            "destinationPortRanges": ["443", "5672", "9443", f"{1000 + i}"],
            "description": f"rule number {i} with a description that makes the JSON bigger, padded {i * 7919:012d}",
        },
    }


def audit(at: datetime, nsg: str = NSG, rules: int = 2, **kwargs: Any) -> AuditRecord:
    return AuditRecord(
        at=at,
        nsg_id=nsg,
        trigger=kwargs.pop("trigger", "eventgrid"),
        event_id=kwargs.pop("event_id", "evt-1"),
        actor=kwargs.pop("actor", "alice@contoso.example"),
        rules_before=[rule(i) for i in range(rules)],
        rules_after=[rule(i) for i in range(rules + 1)],
        **kwargs,
    )


def test_seen_event_records_once(store: StateStore) -> None:
    assert store.seen_event("7a1b5f8e-0000-4000-8000-000000000001") is False
    assert store.seen_event("7a1b5f8e-0000-4000-8000-000000000001") is True
    assert store.seen_event("7a1b5f8e-0000-4000-8000-000000000002") is False
    # Ids with characters a row key may not hold are fine.
    assert store.seen_event("a/b#c?d\\e") is False
    assert store.seen_event("a/b#c?d\\e") is True


def test_an_event_id_that_is_not_valid_unicode_is_recorded_without_error(store: StateStore) -> None:
    # Issue 11 item 6: the Table store raised UnicodeEncodeError on a lone surrogate, out of the handler.
    odd = "bad\ud800id"
    assert store.seen_event(odd) is False
    assert store.seen_event(odd) is True
    assert store.seen_event("bad\ud801id") is False  # a different id is not taken for it
    store.forget_event(odd)
    assert store.seen_event(odd) is False


def test_seen_event_is_concurrency_safe(store: StateStore) -> None:
    results: list[bool] = []
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        results.append(store.seen_event("same-event"))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] + [True] * 7


def test_audit_trail_round_trip_newest_first_and_by_nsg(store: StateStore) -> None:
    store.record_audit(audit(T0, trigger="timer", event_id=None, actor=None))
    store.record_audit(audit(T0 + timedelta(minutes=5), nsg=OTHER, correlation_id="corr-2"))
    store.record_audit(audit(T0 + timedelta(minutes=10)))
    trail = store.audit_trail()
    assert [r.at for r in trail] == [T0 + timedelta(minutes=m) for m in (10, 5, 0)]
    assert trail[1].correlation_id == "corr-2"
    oldest = trail[2]
    assert oldest == audit(T0, trigger="timer", event_id=None, actor=None)
    assert [r.at for r in store.audit_trail(nsg_id=NSG.upper())] == [T0 + timedelta(minutes=10), T0]
    assert len(store.audit_trail(limit=1)) == 1
    assert store.audit_trail(nsg_id=OTHER + "x") == []


def test_audit_of_a_subnet_write_keeps_what_changed(store: StateStore) -> None:
    change = "subnet /subscriptions/x/.../subnets/hpc: added service endpoint(s) Microsoft.Storage"
    store.record_audit(audit(T0, rules=0, changes=[change]))
    [record] = store.audit_trail()
    assert tuple(record.changes) == (change,)
    assert (list(record.rules_before), list(record.rules_after)) == ([], [rule(0)])


def test_audit_rules_beyond_the_property_limit(store: StateStore) -> None:
    big = audit(T0, rules=1000)
    assert len(str(big.rules_before)) > 4 * CHUNK_BYTES  # far beyond one 64 KiB property
    store.record_audit(big)
    (back,) = store.audit_trail()
    assert back.rules_before == big.rules_before
    assert back.rules_after == big.rules_after


def test_pack_splits_into_chunks_and_omits_the_impossible() -> None:
    incompressible = [uuid.uuid4().hex + uuid.uuid4().hex for _ in range(4000)]
    props = pack("x", incompressible)
    assert props["x_chunks"] >= 2
    assert all(len(props[f"x_{i}"]) <= CHUNK_BYTES for i in range(props["x_chunks"]))
    assert unpack(props, "x") == incompressible
    huge = [uuid.uuid4().hex for _ in range(60_000)]
    omitted = pack("y", huge)
    assert omitted["y_chunks"] == 0
    assert "exceed" in omitted["y_omitted"]
    assert unpack(omitted, "y", default=[]) == []


def test_status_round_trip(store: StateStore) -> None:
    assert store.load_status() is None
    store.save_status({"ok": False, "findings": 3, "at": "2026-11-26T06:00:00Z"})
    store.save_status({"ok": True, "findings": 0, "nsgs": [NSG] * 500})
    assert store.load_status() == {"ok": True, "findings": 0, "nsgs": [NSG] * 500}


def state(fp: str, **kwargs: Any) -> AlertState:
    values: dict[str, Any] = {
        "fingerprint": fp,
        "resource_id": NSG,
        "severity": Severity.CRITICAL,
        "first_seen": T0,
        "last_seen": T0 + timedelta(hours=1),
        "last_sent": T0,
        "status": "open",
        "count": 5,
        "finding": {"kind": "port_blocked", "requirement": "amqp_5672", "nsg": NSG},
    }
    values.update(kwargs)
    return AlertState(**values)


def test_alert_states_round_trip_and_upsert(store: StateStore) -> None:
    assert store.alert_states() == {}
    many = [state(f"{i:032x}") for i in range(130)]  # more than one transaction
    store.save_alert_states([*many, state("f" * 32, last_sent=None)])
    states = store.alert_states()
    assert len(states) == 131
    assert states["f" * 32].last_sent is None
    assert states[f"{7:032x}"] == many[7]
    store.save_alert_states([state("f" * 32, status="resolved", count=6, last_sent=T0 + timedelta(hours=2))])
    updated = store.alert_states()["f" * 32]
    assert (updated.status, updated.count, updated.last_sent) == ("resolved", 6, T0 + timedelta(hours=2))


def test_alert_history_newest_first(store: StateStore) -> None:
    fp = "a" * 32
    for minutes, status in ((0, "new"), (60, "reminder"), (90, "resolved")):
        store.record_alert(
            AlertHistoryEntry(
                at=T0 + timedelta(minutes=minutes),
                fingerprint=fp,
                status=status,
                severity=Severity.HIGH,
                title=f"{status} title",
                delivered=("teams",),
                failed=("email-smtp",) if status == "new" else (),
            )
        )
    store.record_alert(AlertHistoryEntry(at=T0, fingerprint="", status="restored", severity=Severity.INFO, title="r"))
    history = store.alert_history(fp)
    assert [h.status for h in history] == ["resolved", "reminder", "new"]
    assert history[2].failed == ("email-smtp",)
    assert history[2].delivered == ("teams",)
    assert [h.title for h in store.alert_history("")] == ["r"]
    assert len(store.alert_history(fp, limit=2)) == 2


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture(params=["memory", "azurite"])
def clocked(request: pytest.FixtureRequest) -> tuple[StateStore, Clock]:
    clock = Clock(T0)
    if request.param == "memory":
        return InMemoryStateStore(clock=clock), clock
    settings = Settings(
        state_connection_string=SecretStr(request.getfixturevalue("azurite")),
        state_table_prefix="t" + uuid.uuid4().hex[:12],
    )
    return TableStateStore.from_settings(settings, clock=clock), clock


def test_prune_drops_old_event_ids_and_resolved_states_only(clocked: tuple[StateStore, Clock]) -> None:
    store, clock = clocked
    clock.at = T0 - timedelta(days=10)
    old_ids = [f"old-{i}" for i in range(130)]  # spread over many partitions, some holding several
    for event_id in old_ids:
        assert not store.seen_event(event_id)
    clock.at = T0 - timedelta(days=1)
    assert not store.seen_event("recent")
    old = T0 - timedelta(days=9)
    store.save_alert_states(
        [
            state("a" * 32, status="resolved", last_seen=old),
            state("b" * 32, status="resolved", last_seen=T0 - timedelta(days=2)),
            state("c" * 32, status="open", first_seen=old, last_seen=old),  # open: kept, however old
        ]
    )
    store.record_audit(audit(old))
    store.record_alert(
        AlertHistoryEntry(at=old, fingerprint="a" * 32, status="resolved", severity=Severity.HIGH, title="t")
    )
    clock.at = T0

    assert store.prune(T0 - timedelta(days=7)) == len(old_ids) + 1
    assert sorted(store.alert_states()) == ["b" * 32, "c" * 32]
    assert [r.at for r in store.audit_trail()] == [old], "the audit trail is the record: kept"
    assert [h.title for h in store.alert_history("a" * 32)] == ["t"]
    assert store.seen_event("recent") is True
    assert store.seen_event(old_ids[0]) is False, "forgotten, so recorded afresh"
    assert store.prune(T0 - timedelta(days=7)) == 0


def test_prune_survives_rows_gone_meanwhile(azurite: str) -> None:
    # A batch holding a row deleted meanwhile (forget_event, a parallel sweep) is retried row by row.
    store = table_store(azurite)
    for event_id in ("e1", "e2", "e3"):
        store.seen_event(event_id)
    events = store._table("events")
    keys = [(str(e["PartitionKey"]), str(e["RowKey"])) for e in events.list_entities()]
    gone = (keys[0][0], "0" * 64)  # same partition as a real row, so their transaction fails
    store._delete(events, [*keys, gone])  # no error: a row already gone is what pruning wants
    assert list(events.list_entities()) == []


def test_tables_are_created_if_absent_and_reused(azurite: str) -> None:
    prefix = "t" + uuid.uuid4().hex[:12]
    first = table_store(azurite, prefix)
    first.record_audit(audit(T0))
    second = table_store(azurite, prefix)  # the tables exist now: no error, same data
    assert len(second.audit_trail()) == 1


def test_settings_errors_name_the_setting() -> None:
    with pytest.raises(SettingsError, match="STATE_TABLE_ENDPOINT"):
        TableStateStore.from_settings(Settings())
    with pytest.raises(SettingsError, match="credential"):
        TableStateStore.from_settings(Settings(state_table_endpoint="https://acct.table.core.windows.net"))


def test_bad_prefix_is_a_settings_error(azurite: str) -> None:
    with pytest.raises(SettingsError, match="STATE_TABLE_PREFIX"):
        table_store(azurite, "bad-prefix")


def test_unreachable_storage_is_transient() -> None:
    down = (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=AAAA;"
        f"TableEndpoint=http://127.0.0.1:{free_port()}/devstoreaccount1;"
    )
    settings = Settings(state_connection_string=SecretStr(down))
    with pytest.raises(TransientError, match="state table lockdownalerts: create failed"):
        TableStateStore.from_settings(settings, retry_total=0)
