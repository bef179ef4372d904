"""Etags, If-Match / If-None-Match, and long-running operations through Azure-AsyncOperation."""

from __future__ import annotations

import re
import time

import pytest

from devtools.emulator import ArmError, Emulator
from devtools.emulator._lro import Operations
from tests.devtools.rest import SUB, Rest, nsg_body, nsg_id, rule

ETAG = re.compile(r'^W/"[0-9a-f-]{36}"$')


def test_every_write_gets_a_new_etag_shared_by_the_rules(rest: Rest) -> None:
    first = rest.put(nsg_id(), nsg_body(("a", rule()))).json()
    assert ETAG.match(first["etag"])
    second = rest.put(f"{nsg_id()}/securityRules/b", {"properties": rule(300)}).json()
    nsg = rest.get(nsg_id()).json()
    assert len({first["etag"], second["etag"]}) == 2
    assert nsg["etag"] == second["etag"]
    assert {r["etag"] for r in nsg["properties"]["securityRules"]} == {nsg["etag"]}
    assert nsg["properties"]["resourceGuid"] == first["properties"]["resourceGuid"]


def test_if_match_current_etag_writes_and_stale_etag_is_412(rest: Rest, arm_emulator: Emulator) -> None:
    etag = rest.put(nsg_id(), nsg_body(("a", rule()))).json()["etag"]
    ok = rest.put(nsg_id(), nsg_body(("a", rule()), ("b", rule(300))), headers={"If-Match": etag})
    assert ok.status_code == 200
    stale = rest.put(nsg_id(), nsg_body(("c", rule(400))), headers={"If-Match": etag})
    assert stale.status_code == 412
    assert stale.json()["error"]["code"] == "PreconditionFailed"
    names = [r["name"] for r in arm_emulator.state[nsg_id()]["properties"]["securityRules"]]
    assert names == ["a", "b"], "a failed precondition changes nothing"


def test_if_match_applies_to_rule_writes_and_deletes(rest: Rest) -> None:
    etag = rest.put(nsg_id(), nsg_body(("a", rule()))).json()["etag"]
    rest.put(f"{nsg_id()}/securityRules/b", {"properties": rule(300)})
    assert (
        rest.put(f"{nsg_id()}/securityRules/a", {"properties": rule()}, headers={"If-Match": etag}).status_code == 412
    )
    assert rest.delete(f"{nsg_id()}/securityRules/a", headers={"If-Match": etag}).status_code == 412
    current = rest.get(nsg_id()).json()["etag"]
    assert rest.delete(f"{nsg_id()}/securityRules/a", headers={"If-Match": current}).status_code == 202


def test_if_match_star_needs_an_existing_resource(rest: Rest) -> None:
    assert rest.put(nsg_id(), nsg_body(), headers={"If-Match": "*"}).status_code == 412
    rest.put(nsg_id(), nsg_body())
    assert rest.put(nsg_id(), nsg_body(), headers={"If-Match": "*"}).status_code == 200


def test_if_none_match_star_only_creates(rest: Rest) -> None:
    assert rest.put(nsg_id(), nsg_body(), headers={"If-None-Match": "*"}).status_code == 201
    again = rest.put(nsg_id(), nsg_body(), headers={"If-None-Match": "*"})
    assert again.status_code == 412


def test_put_is_a_long_running_operation(rest: Rest, arm_emulator: Emulator) -> None:
    arm_emulator.config.lro_polls = 2
    response = rest.put(nsg_id(), nsg_body(("a", rule())))
    assert response.status_code == 201
    assert response.json()["properties"]["provisioningState"] == "Updating"
    url = response.headers["Azure-AsyncOperation"]
    assert re.match(
        rf"^{re.escape(arm_emulator.endpoint)}/subscriptions/{SUB}/providers/Microsoft.Network/locations/westeurope/operations/[0-9a-f-]+\?api-version=",
        url,
    )
    assert "Location" not in response.headers, "NRP's PUT answers Azure-AsyncOperation only"
    assert response.headers["x-ms-retry-after-ms"] == "10"
    statuses = [rest.get(url, api_version=None).json()["status"] for _ in range(4)]
    assert statuses == ["InProgress", "InProgress", "Succeeded", "Succeeded"]
    assert rest.get(nsg_id()).json()["properties"]["provisioningState"] == "Succeeded"


def test_resource_shows_updating_until_its_operation_ends(rest: Rest, arm_emulator: Emulator) -> None:
    arm_emulator.config.lro_polls = 1
    response = rest.put(nsg_id(), nsg_body())
    assert rest.get(nsg_id()).json()["properties"]["provisioningState"] == "Updating"
    rest.settle(response)
    assert rest.get(nsg_id()).json()["properties"]["provisioningState"] == "Succeeded"


def test_delete_answers_202_with_location_then_204(rest: Rest, arm_emulator: Emulator) -> None:
    arm_emulator.config.lro_polls = 1
    rest.settle(rest.put(nsg_id(), nsg_body()))
    response = rest.delete(nsg_id())
    assert response.status_code == 202
    assert "/operations/" in response.headers["Azure-AsyncOperation"]
    location = response.headers["Location"]
    assert "/operationResults/" in location
    assert rest.get(location, api_version=None).status_code == 202
    assert rest.get(location, api_version=None).status_code == 204
    assert rest.get(nsg_id()).status_code == 404
    assert rest.delete(nsg_id()).status_code == 204, "deleting nothing is 204"


def test_unpolled_operations_settle_on_their_own(rest: Rest, arm_emulator: Emulator) -> None:
    arm_emulator.config.lro_polls = 100
    arm_emulator.config.lro_max_seconds = 0.1
    rest.put(nsg_id(), nsg_body())
    deadline = time.monotonic() + 5
    while rest.get(nsg_id()).json()["properties"]["provisioningState"] != "Succeeded":
        assert time.monotonic() < deadline, "the operation never settled"
        time.sleep(0.05)


def test_operation_status_of_unknown_id_is_404(rest: Rest, arm_emulator: Emulator) -> None:
    url = f"/subscriptions/{SUB}/providers/Microsoft.Network/locations/westeurope/operations/nope"
    assert rest.get(url).status_code == 404


def test_lro_polls_zero_settles_at_once(rest: Rest, arm_emulator: Emulator) -> None:
    arm_emulator.config.lro_polls = 0
    response = rest.put(nsg_id(), nsg_body())
    assert response.json()["properties"]["provisioningState"] == "Succeeded"
    assert rest.get(response.headers["Azure-AsyncOperation"], api_version=None).json()["status"] == "Succeeded"


def test_patch_updates_tags_only(rest: Rest) -> None:
    created = rest.put(nsg_id(), nsg_body(("a", rule()))).json()
    patched = rest.request("PATCH", nsg_id(), {"tags": {"cyclecloud-lockdown": "cluster"}})
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert body["tags"] == {"cyclecloud-lockdown": "cluster"}
    assert body["etag"] != created["etag"]
    assert [r["name"] for r in body["properties"]["securityRules"]] == ["a"]


def test_ended_operations_are_forgotten_after_a_while() -> None:
    ops = Operations(max_seconds=60)
    op = ops.start(
        subscription=SUB,
        location="westeurope",
        polls=0,
        fail=False,
        kind="write",
        resource_url="/x",
        on_done=lambda o: None,
    )
    ops.finish(op)
    ops.settle_expired(keep_seconds=3600)
    assert ops.poll(op.id).status == "Succeeded"
    ops.settle_expired(keep_seconds=0)
    with pytest.raises(ArmError, match="OperationNotFound"):
        ops.poll(op.id)


def test_patch_of_an_nsg_attached_to_a_subnet_keeps_the_attachment(rest: Rest) -> None:
    """An NSG's ``subnets`` are read-only back-references ({id} only); a tags PATCH must not trip on
    them (it once failed with a KeyError, answered 500) nor drop the attachment."""
    rest.put(nsg_id(), nsg_body(("a", rule())))
    vnet = nsg_id().replace("networkSecurityGroups/nsg1", "virtualNetworks/v1")
    subnet = {"name": "s1", "properties": {"addressPrefix": "10.0.0.0/24", "networkSecurityGroup": {"id": nsg_id()}}}
    body = {
        "location": "westeurope",
        "properties": {"addressSpace": {"addressPrefixes": ["10.0.0.0/16"]}, "subnets": [subnet]},
    }
    assert rest.put(vnet, body).status_code in (200, 201)
    patched = rest.request("PATCH", nsg_id(), {"tags": {"cyclecloud-lockdown": "cluster"}})
    assert patched.status_code == 200, patched.text
    assert [s["id"].rsplit("/", 1)[-1] for s in patched.json()["properties"]["subnets"]] == ["s1"]
