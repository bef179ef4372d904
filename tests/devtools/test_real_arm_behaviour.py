"""What recorded real ARM traffic shows and the emulator now does too (../shared/reference/arm-recordings):
the etag changing when an operation settles, a later write superseding a running one, NRP's
RetryableError, the failed operation's body, the waits NRP suggests, protocols kept as written,
no flushConnection, service endpoints answered with locations ["*"]."""

from __future__ import annotations

from devtools.emulator import Emulator
from tests.devtools.rest import Rest, nsg_body, nsg_id, rule


def test_the_etag_changes_when_the_operation_settles(rest: Rest, arm_emulator: Emulator) -> None:
    # azure-cli's test_network_nsg: the PUT answers etag 194222dc.. Updating, the GET after the operation 5b39835b..
    arm_emulator.config.lro_polls = 1
    put = rest.put(nsg_id(), nsg_body(("a", rule())))
    assert put.json()["properties"]["provisioningState"] == "Updating"
    assert rest.settle(put)["status"] == "Succeeded"
    after = rest.get(nsg_id()).json()
    assert after["properties"]["provisioningState"] == "Succeeded"
    assert after["etag"] != put.json()["etag"]
    stale = rest.put(nsg_id(), nsg_body(("a", rule())), headers={"If-Match": put.json()["etag"]})
    assert stale.status_code == 412, "the etag a PUT answered is stale once its operation settled"


def test_a_later_write_supersedes_a_running_operation(rest: Rest, arm_emulator: Emulator) -> None:
    arm_emulator.config.lro_polls = 3
    first = rest.put(nsg_id(), nsg_body(("a", rule())))
    second = rest.put(nsg_id(), nsg_body(("a", rule()), ("b", rule(300))))
    status = rest.settle(first)
    assert status == {
        "status": "Canceled",
        "error": {
            "code": "CanceledAndSupersededDueToAnotherOperation",
            "message": status["error"]["message"],
            "details": [],
        },
    }
    assert rest.settle(second)["status"] == "Succeeded"
    names = [r["name"] for r in arm_emulator.state[nsg_id()]["properties"]["securityRules"]]
    assert names == ["a", "b"]
    events = [e["data"]["operationName"] for e in arm_emulator.events.delivered]
    assert len(events) <= 1, "a superseded operation sends no event of its own"


def test_a_superseded_fault_keeps_nothing_of_the_write_and_changes_the_etag(rest: Rest, arm_emulator: Emulator) -> None:
    before = rest.put(nsg_id(), nsg_body(("a", rule())))
    rest.settle(before)
    etag = rest.get(nsg_id()).json()["etag"]
    arm_emulator.faults.add(kind="superseded", method="PUT", path="networkSecurityGroups/nsg1$")
    put = rest.put(nsg_id(), nsg_body(("a", rule()), ("b", rule(300))), headers={"If-Match": etag})
    assert put.status_code == 200
    status = rest.settle(put)
    assert (status["status"], status["error"]["code"]) == ("Canceled", "CanceledAndSupersededDueToAnotherOperation")
    now = rest.get(nsg_id()).json()
    assert [r["name"] for r in now["properties"]["securityRules"]] == ["a"]
    assert now["etag"] != etag


def test_retryable_error_is_429_with_its_detail_and_no_retry_after(rest: Rest, arm_emulator: Emulator) -> None:
    # azure-cli's test_network_vpn_connection_nat_rule: the wait is only in the detail's message.
    arm_emulator.faults.add(kind="status", method="PUT", path="nsg1$", status=429, code="RetryableError")
    answer = rest.put(nsg_id(), nsg_body())
    assert answer.status_code == 429
    assert "Retry-After" not in answer.headers
    assert "x-ms-retry-after-ms" not in answer.headers
    error = answer.json()["error"]
    assert (error["code"], error["message"]) == ("RetryableError", "A retryable error occurred.")
    assert error["details"][0]["code"] == "RetryableErrorDueToAnotherOperation"
    assert "can be retried in 12 seconds" in error["details"][0]["message"]


def test_a_failed_operation_answers_the_real_shape_with_its_code(rest: Rest, arm_emulator: Emulator) -> None:
    arm_emulator.faults.add(
        kind="lro_failed", method="PUT", path="nsg1$", code="NetworkSecurityGroupUpdateFailed", message="it failed"
    )
    status = rest.settle(rest.put(nsg_id(), nsg_body(("a", rule()))))
    assert status == {
        "status": "Failed",
        "error": {"code": "NetworkSecurityGroupUpdateFailed", "message": "it failed", "details": []},
    }


def test_nrp_waits_grow_between_polls(rest: Rest, arm_emulator: Emulator) -> None:
    config = arm_emulator.config
    config.lro_polls, config.lro_retry_after, config.lro_poll_retry_after, config.lro_poll_backoff = 3, 7, 10, 2
    put = rest.put(nsg_id(), nsg_body())
    assert put.headers["Retry-After"] == "7"
    url = put.headers["Azure-AsyncOperation"]
    waits = []
    for _ in range(4):
        answer = rest.get(url, api_version=None)
        waits.append(answer.headers.get("Retry-After"))
    assert waits == ["10", "20", "40", None]


def test_answers_keep_the_protocol_as_written_and_carry_no_flush_connection(rest: Rest) -> None:
    body = rest.put(nsg_id(), nsg_body(("a", rule(protocol="TCP")))).json()
    assert body["properties"]["securityRules"][0]["properties"]["protocol"] == "TCP"
    assert "flushConnection" not in body["properties"]
    flushing = nsg_body()
    flushing["properties"]["flushConnection"] = True
    with_flush = rest.put(nsg_id(), flushing).json()
    assert with_flush["properties"]["flushConnection"] is True
