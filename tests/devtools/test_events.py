"""Event Grid events for every successful write and delete: shape, caller, delivery, duplicates."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from devtools.emulator import HUMAN, REMEDIATOR, Emulator
from tests.devtools.rest import Rest, nsg_body, nsg_id, rule

SAMPLES = Path(__file__).resolve().parents[2] / "reference" / "eventgrid"
OID = "http://schemas.microsoft.com/identity/claims/objectidentifier"


class Collector:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.threads: set[str] = set()

    def __call__(self, batch: list[dict[str, Any]]) -> None:
        self.threads.add(threading.current_thread().name)
        self.events.extend(batch)


@pytest.fixture
def collector(arm_emulator: Emulator) -> Collector:
    c = Collector()
    arm_emulator.set_event_subscriber(c)
    return c


def test_write_event_has_the_event_grid_shape_and_names_the_caller(
    rest: Rest, arm_emulator: Emulator, collector: Collector
) -> None:
    response = rest.put(nsg_id(), nsg_body(), headers={"x-ms-correlation-request-id": "corr-123"})
    assert response.headers["x-ms-correlation-request-id"] == "corr-123"
    rest.settle(response)
    assert arm_emulator.events.wait_idle()
    [event] = collector.events
    sample = json.loads((SAMPLES / "resource_write_success.json").read_text())
    assert set(event) == set(sample)
    assert set(sample["data"]) <= set(event["data"])
    assert event["eventType"] == "Microsoft.Resources.ResourceWriteSuccess"
    assert event["subject"] == event["data"]["resourceUri"] == nsg_id()
    data = event["data"]
    assert data["operationName"] == "Microsoft.Network/networkSecurityGroups/write"
    assert data["authorization"]["action"] == data["operationName"]
    assert data["correlationId"] == "corr-123"
    human = arm_emulator.identities.get(HUMAN)
    assert data["claims"][OID] == human.oid
    assert data["claims"]["appid"] == human.appid
    assert data["claims"]["name"] == human.display_name
    assert event["topic"] == nsg_id().split("/providers/")[0]
    assert collector.threads == {"emulator-events"}, "delivered off the request thread"


def test_rule_write_and_delete_events(rest: Rest, arm_emulator: Emulator, collector: Collector) -> None:
    arm_emulator.config.lro_polls = 0
    rest.put(nsg_id(), nsg_body())
    rest.put(f"{nsg_id()}/securityRules/r1", {"properties": rule()})
    rest.delete(f"{nsg_id()}/securityRules/r1")
    rest.delete(nsg_id())
    assert arm_emulator.events.wait_idle()
    seen = [(e["eventType"].rsplit(".", 1)[1], e["data"]["operationName"], e["subject"]) for e in collector.events]
    assert seen == [
        ("ResourceWriteSuccess", "Microsoft.Network/networkSecurityGroups/write", nsg_id()),
        (
            "ResourceWriteSuccess",
            "Microsoft.Network/networkSecurityGroups/securityRules/write",
            f"{nsg_id()}/securityRules/r1",
        ),
        (
            "ResourceDeleteSuccess",
            "Microsoft.Network/networkSecurityGroups/securityRules/delete",
            f"{nsg_id()}/securityRules/r1",
        ),
        ("ResourceDeleteSuccess", "Microsoft.Network/networkSecurityGroups/delete", nsg_id()),
    ]


def test_reads_failures_and_seeds_send_no_events(rest: Rest, arm_emulator: Emulator, collector: Collector) -> None:
    arm_emulator.seed([{"id": nsg_id(), "location": "westeurope", "properties": {}}])
    rest.get(nsg_id())
    rest.put(nsg_id(), nsg_body(("a", rule(1))))
    rest.delete(nsg_id("ghost"))
    assert arm_emulator.events.wait_idle()
    assert collector.events == []
    assert list(arm_emulator.events.published) == []


def test_events_are_published_without_a_subscriber(rest: Rest, arm_emulator: Emulator) -> None:
    arm_emulator.config.lro_polls = 0
    rest.put(nsg_id(), nsg_body())
    assert [e["subject"] for e in arm_emulator.events.published] == [nsg_id()]
    assert list(arm_emulator.events.delivered) == []


def test_events_wait_for_the_operation_to_succeed(rest: Rest, arm_emulator: Emulator, collector: Collector) -> None:
    arm_emulator.config.lro_polls = 2
    response = rest.put(nsg_id(), nsg_body())
    assert arm_emulator.events.wait_idle()
    assert collector.events == []
    rest.settle(response)
    assert arm_emulator.events.wait_idle()
    assert len(collector.events) == 1


def test_remediator_writes_name_the_managed_identity(arm_emulator: Emulator, collector: Collector) -> None:
    remediator = Rest(arm_emulator, principal=REMEDIATOR)
    remediator.settle(remediator.put(nsg_id(), nsg_body()))
    assert arm_emulator.events.wait_idle()
    claims = collector.events[0]["data"]["claims"]
    assert claims[OID] == arm_emulator.identities.get(REMEDIATOR).oid
    assert claims["idtyp"] == "app"
    assert "name" not in claims


def test_duplicates_keep_their_id(rest: Rest, arm_emulator: Emulator) -> None:
    collector = Collector()
    arm_emulator.set_event_subscriber(collector, duplicate=1.0)
    arm_emulator.config.lro_polls = 0
    for i in range(3):
        rest.put(nsg_id(f"n{i}"), nsg_body())
    assert arm_emulator.events.wait_idle()
    ids = [e["id"] for e in collector.events]
    assert len(ids) == 6
    assert len(set(ids)) == 3
    assert all(ids.count(i) == 2 for i in set(ids))


def test_reorder_shuffles_deliveries_reproducibly(rest: Rest, arm_emulator: Emulator) -> None:
    orders = []
    for _ in range(2):
        arm_emulator.reset()
        arm_emulator.config.lro_polls = 0
        collector = Collector()
        arm_emulator.set_event_subscriber(collector, reorder=8, seed=7)
        arm_emulator.events.pause()  # the whole burst is queued before delivery starts
        for i in range(8):
            rest.put(nsg_id(f"n{i}"), nsg_body())
        arm_emulator.events.resume()
        assert arm_emulator.events.wait_idle()
        orders.append([e["subject"].rsplit("/", 1)[1] for e in collector.events])
    assert sorted(orders[0]) == [f"n{i}" for i in range(8)]
    assert orders[0] != [f"n{i}" for i in range(8)]
    assert orders[0] == orders[1]


def test_stringified_claims_like_some_senders(rest: Rest, arm_emulator: Emulator) -> None:
    collector = Collector()
    arm_emulator.set_event_subscriber(collector, stringify_claims=True)
    arm_emulator.config.lro_polls = 0
    rest.put(nsg_id(), nsg_body())
    assert arm_emulator.events.wait_idle()
    data = collector.events[0]["data"]
    assert isinstance(data["claims"], str)
    assert json.loads(data["claims"])["appid"]
    assert isinstance(data["authorization"], str)


class _Sink(BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], Any]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Sink.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return None


@pytest.fixture
def http_sink() -> Iterator[str]:
    _Sink.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/api/events"
    server.shutdown()
    server.server_close()


def test_http_subscriber_gets_a_json_array(rest: Rest, arm_emulator: Emulator, http_sink: str) -> None:
    assert rest.control("PUT", "events", {"url": http_sink}).status_code == 204
    arm_emulator.config.lro_polls = 0
    rest.put(nsg_id(), nsg_body())
    assert arm_emulator.events.wait_idle()
    [(headers, body)] = _Sink.received
    assert headers["aeg-event-type"] == "Notification"
    assert isinstance(body, list)
    assert body[0]["eventType"] == "Microsoft.Resources.ResourceWriteSuccess"
    assert rest.control("GET", "events").json()["value"][0]["id"] == body[0]["id"]


def test_a_failing_subscriber_does_not_stop_delivery(rest: Rest, arm_emulator: Emulator) -> None:
    got: list[dict[str, Any]] = []

    def flaky(batch: list[dict[str, Any]]) -> None:
        if not got and not flaky.failed:  # type: ignore[attr-defined]
            flaky.failed = True  # type: ignore[attr-defined]
            raise RuntimeError("subscriber down")
        got.extend(batch)

    flaky.failed = False  # type: ignore[attr-defined]
    arm_emulator.set_event_subscriber(flaky)
    arm_emulator.config.lro_polls = 0
    rest.put(nsg_id(), nsg_body())
    assert arm_emulator.events.wait_idle()
    assert len(got) == 1, "retried after the failure"
