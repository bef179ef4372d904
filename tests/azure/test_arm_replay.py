"""The unchanged ARM adapter against real ARM answers, recorded by Azure CLI's and Cloud
Custodian's test suites (../shared/reference/arm-recordings, read at run time; see
tests/support/arm_replay.py for how they are served and what is replaced).

Covered: a subscription's NSG list, a GET, the conditional PUT followed to the end of its
long-running operation (Azure-AsyncOperation poll, final GET), NRP's 429 RetryableError
without Retry-After, and an operation that ended Failed.
"""

from __future__ import annotations

from typing import Any

import pytest

from remediation.azure.arm import ArmNetwork, ArmOptions
from remediation.errors import TransientError
from remediation.parse import parse_nsg
from remediation.plan import RemediationPlan
from remediation.settings import Settings
from tests.support.arm_replay import RECORDINGS, Recorded, Replay, recorded
from tests.support.credential import StaticCredential

pytestmark = pytest.mark.skipif(not RECORDINGS.is_dir(), reason="../shared/reference/arm-recordings is not there")

NIC_CASSETTE = "azure-cli/test_network_nic.yaml"
LIST_CASSETTE = "cloud-custodian/NetworkSecurityGroupTest.test_cidr_and_ingress_no_match.json"
RETRYABLE_CASSETTE = "azure-cli/test_network_vpn_connection_nat_rule.yaml"
FAILED_CASSETTE = "azure-cli/test_express_route_gateway_connection_inbound_outbound_routemap.yaml"

# Recorded exchanges used (interaction numbers in their cassettes).
GET_MYNSG = recorded(NIC_CASSETTE, 11)  # GET mynsg: 200, etag 0a04c793..
PUT_MYNSG = recorded(NIC_CASSETTE, 12)  # PUT mynsg: 200 with Azure-AsyncOperation
POLL_MYNSG = recorded(NIC_CASSETTE, 13)  # the operation: Succeeded
AFTER_MYNSG = recorded(NIC_CASSETTE, 14)  # GET mynsg after it: etag 6939d3c8.., tag CostCenter
RETRYABLE_429 = recorded(RETRYABLE_CASSETTE, 9)  # 429 RetryableError / RetryableErrorDueToAnotherOperation
FAILED_POLL = recorded(
    FAILED_CASSETTE, 60
)  # {"status": "Failed", "error": {"code": "ServiceProviderNotProvisioned", ..}}
LIST_ALL = recorded(LIST_CASSETTE, 0)  # a real subscription's NSG list (47 NSGs)

FAST = ArmOptions(retry_total=3, retry_backoff_factor=0.01, retry_backoff_max=0.05, polling_interval=0.01)

STORAGE_RULE: dict[str, Any] = {
    "name": "AllowAzureStorage",
    "properties": {
        "protocol": "Tcp",
        "access": "Allow",
        "priority": 100,
        "direction": "Outbound",
        "sourceAddressPrefix": "*",
        "sourcePortRange": "*",
        "destinationAddressPrefix": "Storage",
        "destinationPortRange": "443",
    },
}


def adapter(
    replay: Replay, subscription: str, monkeypatch: pytest.MonkeyPatch, tag: str = "cyclecloud-lockdown"
) -> ArmNetwork:
    from azure.core.pipeline.transport import RequestsTransport

    env = {
        "AZURE_SUBSCRIPTION_ID": subscription,
        "ARM_ENDPOINT": "https://management.azure.com",
        "REMEDIATION_MODE": "enforce",
        "LOCKDOWN_TAG": tag,
    }
    settings = Settings.from_env(env)
    transport = RequestsTransport(session=replay.session(), session_owner=False)
    return ArmNetwork.from_settings(settings, credential=StaticCredential(), options=FAST, transport=transport)


def restore_plan(nsg_id: str, name: str, location: str, current: Any) -> RemediationPlan:
    wanted = parse_nsg(
        {"id": nsg_id, "name": name, "location": location, "properties": {"securityRules": [STORAGE_RULE]}},
        where="plan",
    )
    (storage,) = wanted.security_rules
    return RemediationPlan(nsg_id, name, (*current.security_rules, storage), added=(storage,))


def step(answer: Recorded, *, path: str | None = None, method: str | None = None) -> tuple[str, str, Recorded]:
    return (method or answer.method, path or answer.path, answer)


def test_a_real_subscription_list_is_read_and_the_tagged_nsg_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    sub = LIST_ALL.path.split("/")[2]
    replay = Replay([step(LIST_ALL)])
    # One NSG of that subscription carries the tag "delete-me": let it stand for the lockdown tag.
    arm = adapter(replay, sub, monkeypatch, tag="delete-me")
    try:
        inventory = arm.inventory(f"/subscriptions/{sub}")
    finally:
        arm.close()
    assert [n.name for n in inventory.nsgs] == ["drew-api-server-test-nsg"]
    (nsg,) = inventory.nsgs
    raw = next(n for n in LIST_ALL.json()["value"] if n["name"] == "drew-api-server-test-nsg")
    assert nsg.etag == raw["etag"]
    assert [r.name for r in nsg.security_rules] == [r["name"] for r in raw["properties"]["securityRules"]]
    assert [s.method for s in replay.sent] == ["GET"]
    assert replay.sent[0].headers["Authorization"] == f"Bearer {StaticCredential.token}"


def test_get_then_conditional_put_followed_to_the_end_of_its_operation(monkeypatch: pytest.MonkeyPatch) -> None:
    sub = GET_MYNSG.path.split("/")[2]
    async_url = PUT_MYNSG.headers["azure-asyncoperation"]
    replay = Replay([step(GET_MYNSG), step(PUT_MYNSG), step(POLL_MYNSG), step(AFTER_MYNSG)])
    arm = adapter(replay, sub, monkeypatch)
    try:
        nsg = arm.get_nsg(GET_MYNSG.path)
        plan = restore_plan(nsg.id, nsg.name, nsg.location, nsg)
        result = arm.apply(nsg, plan)
    finally:
        arm.close()
    _get, put, poll, final = replay.sent
    read = GET_MYNSG.json()
    assert put.headers["If-Match"] == read["etag"], "the PUT is conditional on the etag that was read"
    body = put.json()
    assert body["location"] == read["location"]
    assert (body.get("tags") or {}) == (read.get("tags") or {})
    assert [r["name"] for r in body["properties"]["securityRules"]] == ["AllowAzureStorage"]
    assert not {"etag", "provisioningState", "defaultSecurityRules"} & (set(body) | set(body["properties"]))
    assert poll.url.split("?")[0] == async_url.split("?")[0], "the operation ARM named is polled"
    assert (final.method, final.path) == ("GET", GET_MYNSG.path)
    assert result.written
    assert result.lost_rules == ()
    assert result.after is not None
    assert result.after.etag == AFTER_MYNSG.json()["etag"]
    assert result.after.tags == {"CostCenter": "MyBusinessGroup"}


def test_retryable_error_without_retry_after_is_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    sub = GET_MYNSG.path.split("/")[2]
    assert "retry-after" not in {k.lower() for k in RETRYABLE_429.headers}
    throttled = step(RETRYABLE_429, method="PUT", path=PUT_MYNSG.path)
    replay = Replay([step(GET_MYNSG), throttled, step(PUT_MYNSG), step(POLL_MYNSG), step(AFTER_MYNSG)])
    arm = adapter(replay, sub, monkeypatch)
    try:
        nsg = arm.get_nsg(GET_MYNSG.path)
        result = arm.apply(nsg, restore_plan(nsg.id, nsg.name, nsg.location, nsg))
    finally:
        arm.close()
    assert result.written
    first, second = (s for s in replay.sent if s.method == "PUT")
    assert first.headers["If-Match"] == second.headers["If-Match"] == GET_MYNSG.json()["etag"]
    assert first.body == second.body


def test_retryable_error_that_persists_is_transient_and_names_the_nsg(monkeypatch: pytest.MonkeyPatch) -> None:
    sub = GET_MYNSG.path.split("/")[2]
    throttled = step(RETRYABLE_429, method="PUT", path=PUT_MYNSG.path)
    replay = Replay([step(GET_MYNSG)] + [throttled] * (FAST.retry_total + 1))
    arm = adapter(replay, sub, monkeypatch)
    try:
        nsg = arm.get_nsg(GET_MYNSG.path)
        with pytest.raises(TransientError, match="mynsg") as raised:
            arm.apply(nsg, restore_plan(nsg.id, nsg.name, nsg.location, nsg))
    finally:
        arm.close()
    assert "RetryableError" in str(raised.value)
    assert replay.steps == []


def test_an_operation_that_ended_failed_is_transient_with_arms_code(monkeypatch: pytest.MonkeyPatch) -> None:
    sub = GET_MYNSG.path.split("/")[2]
    assert FAILED_POLL.json()["status"] == "Failed"
    failed = step(FAILED_POLL, path=POLL_MYNSG.path)
    replay = Replay([step(GET_MYNSG), step(PUT_MYNSG), failed])
    arm = adapter(replay, sub, monkeypatch)
    try:
        nsg = arm.get_nsg(GET_MYNSG.path)
        with pytest.raises(TransientError) as raised:
            arm.apply(nsg, restore_plan(nsg.id, nsg.name, nsg.location, nsg))
    finally:
        arm.close()
    message = str(raised.value)
    assert "mynsg" in message
    assert FAILED_POLL.json()["error"]["code"] in message, message
