"""Every fault kind, through raw HTTP, the control API and the SDK's own retry policy."""

from __future__ import annotations

import time

import pytest
import requests

from devtools.emulator import Emulator
from tests.devtools.rest import Rest, nsg_body, nsg_id, rule
from tests.integration.conftest import human_credential, network_client


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (429, "TooManyRequests"),
        (500, "InternalServerError"),
        (503, "ServiceUnavailable"),
        (409, "AnotherOperationInProgress"),
        (412, "PreconditionFailed"),
    ],
)
def test_status_fault_answers_arms_error_once(rest: Rest, arm_emulator: Emulator, status: int, code: str) -> None:
    arm_emulator.faults.add(kind="status", method="PUT", path="networkSecurityGroups/nsg1$", status=status)
    failed = rest.put(nsg_id(), nsg_body())
    assert failed.status_code == status
    assert failed.json()["error"]["code"] == code
    assert "x-ms-request-id" in failed.headers
    assert rest.get(nsg_id()).status_code == 404, "nothing was written"
    assert rest.put(nsg_id(), nsg_body()).status_code == 201, "times=1: the next call passes"


def test_429_carries_retry_after(rest: Rest, arm_emulator: Emulator) -> None:
    arm_emulator.faults.add(kind="status", status=429, retry_after=2, path="networkSecurityGroups")
    assert rest.get(nsg_id()).headers["Retry-After"] == "2"


def test_method_path_times_skip_and_principal_select_requests(rest: Rest, arm_emulator: Emulator) -> None:
    rest.put(nsg_id(), nsg_body())
    arm_emulator.faults.add(kind="status", method="GET", path=r"/nsg1$", status=500, times=2, skip=1)
    codes = [rest.get(nsg_id()).status_code for _ in range(4)]
    assert codes == [200, 500, 500, 200]
    assert rest.put(nsg_id(), nsg_body()).status_code == 200, "PUT is not matched"
    arm_emulator.faults.add(kind="status", status=503, principal="remediator", times=None)
    assert rest.get(nsg_id()).status_code == 200, "the human is not the remediator"


def test_drop_closes_the_connection_without_answer(rest: Rest, arm_emulator: Emulator) -> None:
    arm_emulator.faults.add(kind="drop", method="PUT", path="networkSecurityGroups")
    with pytest.raises(requests.ConnectionError):
        rest.put(nsg_id(), nsg_body())
    assert rest.get(nsg_id()).status_code == 404
    assert [e["status"] for e in arm_emulator.requests()][:1] == ["dropped"]


def test_drop_after_apply_loses_the_answer_of_a_write_that_happened(rest: Rest, arm_emulator: Emulator) -> None:
    arm_emulator.faults.add(kind="drop", method="PUT", path="networkSecurityGroups", apply=True)
    with pytest.raises(requests.ConnectionError):
        rest.put(nsg_id(), nsg_body(("a", rule())))
    assert rest.get(nsg_id()).status_code == 200


def test_delay_slows_the_answer(rest: Rest, arm_emulator: Emulator) -> None:
    arm_emulator.faults.add(kind="delay", seconds=0.4, method="GET")
    start = time.perf_counter()
    assert rest.get(nsg_id()).status_code == 404
    assert time.perf_counter() - start >= 0.4
    start = time.perf_counter()
    rest.get(nsg_id())
    assert time.perf_counter() - start < 0.4


def test_lro_failed_ends_the_operation_failed_and_changes_nothing(rest: Rest, arm_emulator: Emulator) -> None:
    seen: list[dict[str, object]] = []
    arm_emulator.set_event_subscriber(seen.extend)
    rest.settle(rest.put(nsg_id(), nsg_body(("a", rule()))))
    before = arm_emulator.state[nsg_id()]
    arm_emulator.faults.add(kind="lro_failed", method="PUT")
    accepted = rest.put(nsg_id(), nsg_body(("b", rule(300))))
    assert accepted.status_code == 200
    final = rest.settle(accepted)
    assert final["status"] == "Failed"
    assert final["error"]["code"]
    after = arm_emulator.state[nsg_id()]
    assert after["etag"] == before["etag"]
    assert [r["name"] for r in after["properties"]["securityRules"]] == ["a"]
    assert arm_emulator.events.wait_idle()
    assert len(seen) == 1, "a failed operation sends no ResourceWriteSuccess"


def test_faults_through_the_control_api(rest: Rest, arm_emulator: Emulator) -> None:
    created = rest.control(
        "POST", "faults", {"method": "PUT", "path": "nsg1", "status": 429, "retry_after": 1, "times": 1}
    )
    assert created.status_code == 201
    fault_id = created.json()["id"]
    assert [f["id"] for f in rest.control("GET", "faults").json()["value"]] == [fault_id]
    assert rest.put(nsg_id(), nsg_body()).status_code == 429
    assert rest.control("GET", "faults").json()["value"][0]["hits"] == 1
    assert rest.control("DELETE", f"faults/{fault_id}").status_code == 204
    bad = rest.control("POST", "faults", {"kind": "explode"})
    assert bad.status_code == 400
    assert "kind" in bad.json()["error"]["message"]


def test_the_sdk_retries_transient_faults_by_itself(arm_emulator: Emulator) -> None:
    client = network_client(arm_emulator, credential=human_credential(arm_emulator))
    arm_emulator.faults.add(kind="status", method="GET", path="networkSecurityGroups", status=503, times=1)
    arm_emulator.faults.add(
        kind="status", method="GET", path="networkSecurityGroups", status=429, retry_after=1, times=1
    )
    start = time.perf_counter()
    assert list(client.network_security_groups.list_all()) == []
    assert time.perf_counter() - start >= 1, "Retry-After was honoured"
    assert [r["status"] for r in arm_emulator.requests()] == [503, 429, 200]


def test_faults_can_hit_the_identity_endpoint(rest: Rest, arm_emulator: Emulator) -> None:
    arm_emulator.faults.add(kind="status", path="/msi/token", status=500)
    response = rest.session.get(
        arm_emulator.identity_endpoint,
        params={"api-version": "2019-08-01", "resource": arm_emulator.endpoint},
        headers={"X-IDENTITY-HEADER": arm_emulator.identity_header},
        verify=arm_emulator.ca_bundle,
    )
    assert response.status_code == 500
