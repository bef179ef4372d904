"""Detachments on the emulator: a person takes a managed NSG off a cluster subnet.

ARM then drops the NSG's back-reference too, so only the remembered
attachment (state) can tell. The Event Grid path (the Function's user code,
the emulator's own events) and a sweep both report ``nsg_detached`` for the
subnet, alert operators through the real alert policy, and the remediator
writes nothing: re-attaching is a subnet write it never makes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import azure.functions as func
import pytest

import function_app
from devtools.demo import cyclecloud_network
from devtools.emulator import REMEDIATOR, Emulator
from devtools.functions_host import user_function
from remediation.alerts.dispatch import Channel
from remediation.baseline_file import load_baseline
from remediation.findings import FindingKind, Severity
from remediation.ports import AlertStatus
from remediation.reports import ReconcileReport
from remediation.wiring import Runtime
from tests.integration.conftest import human_credential, network_client, remediator_runtime
from tests.integration.test_events import Subscriber
from tests.support.inbox import AlertInbox

pytestmark = pytest.mark.integration

BASELINE = load_baseline()
RG = "rg-cyclecloud"


class Inbox(AlertInbox):
    def detached(self, status: AlertStatus = AlertStatus.NEW) -> list[str | None]:
        return [
            a.finding.subnet
            for a in self.alerts
            if a.finding is not None and a.finding.kind is FindingKind.NSG_DETACHED and a.status is status
        ]


@pytest.fixture
def inbox() -> Inbox:
    return Inbox()


@pytest.fixture
def runtime(arm_env: Emulator, monkeypatch: pytest.MonkeyPatch, inbox: Inbox) -> Iterator[Runtime]:
    docs = cyclecloud_network(arm_env.subscription_id, BASELINE, resource_group=RG)
    for rt in remediator_runtime(arm_env, monkeypatch, docs, channels=[Channel(inbox, Severity.INFO)]):
        function_app.runtime.use(rt)
        yield rt
        function_app.runtime.use(None)


def sweep(rt: Runtime) -> ReconcileReport:
    return replace(rt, tags=None, tag_source=None).reconcile(None, trigger="sweep")


def subnet_id(em: Emulator, name: str) -> str:
    return f"/subscriptions/{em.subscription_id}/resourceGroups/{RG}/providers/Microsoft.Network/virtualNetworks/vnet-cyclecloud/subnets/{name}"


def nsg_id(em: Emulator, name: str) -> str:
    return f"/subscriptions/{em.subscription_id}/resourceGroups/{RG}/providers/Microsoft.Network/networkSecurityGroups/{name}"


def detach(em: Emulator, *subnets: str) -> None:
    """What a person does in the portal: PUT the subnet without networkSecurityGroup."""
    with network_client(em, human_credential(em)) as person:
        for name in subnets:
            subnet = person.subnets.get(RG, "vnet-cyclecloud", name)
            subnet.network_security_group = None
            person.subnets.begin_create_or_update(RG, "vnet-cyclecloud", name, subnet, polling_interval=0.01).result()


def remediator_writes(em: Emulator) -> list[dict[str, Any]]:
    return [r for r in em.requests() if r["method"] in ("PUT", "PATCH", "DELETE") and r["caller"] == REMEDIATOR]


def detached(report: ReconcileReport) -> list[tuple[str, str]]:
    return sorted(
        (f.nsg.lower(), (f.subnet or "").lower()) for f in report.findings if f.kind is FindingKind.NSG_DETACHED
    )


def test_a_detached_cluster_subnet_is_reported_by_event_and_sweep_without_a_write(
    runtime: Runtime, arm_env: Emulator, inbox: Inbox
) -> None:
    first = sweep(runtime)
    assert first.ok
    assert detached(first) == []
    assert runtime.state is not None
    assert {k.lower() for k in runtime.state.attachments()} == {
        subnet_id(arm_env, n).lower() for n in ("cyclecloud", "compute", "hpc")
    }

    subscriber = Subscriber()
    arm_env.set_event_subscriber(subscriber)
    detach(arm_env, "compute")
    assert arm_env.events.wait_idle(15)
    assert subscriber.errors == []
    ops = [e["data"]["operationName"].lower() for e in subscriber.delivered]
    assert "microsoft.network/virtualnetworks/subnets/write" in ops
    # The NSG no longer names the subnet: only the memory knows.
    cluster = next(v for k, v in arm_env.state.items() if k.lower() == nsg_id(arm_env, "nsg-cluster").lower())
    assert all("compute" not in s["id"] for s in cluster["properties"].get("subnets", []))
    assert inbox.detached() == [subnet_id(arm_env, "compute")]  # alerted by the event, once

    arm_env.set_event_subscriber(None)
    arm_env.clear_requests()
    report = sweep(runtime)
    assert detached(report) == [(nsg_id(arm_env, "nsg-cluster").lower(), subnet_id(arm_env, "compute").lower())]
    [finding] = [f for f in report.findings if f.kind is FindingKind.NSG_DETACHED]
    assert not finding.remediable
    assert "'compute' lost managed NSG 'nsg-cluster' and now has no NSG" in finding.message
    assert remediator_writes(arm_env) == []
    assert inbox.detached() == [subnet_id(arm_env, "compute")], "no second alert for the same detachment"
    assert inbox.detached(AlertStatus.RESOLVED) == []


def test_re_attaching_resolves_it(runtime: Runtime, arm_env: Emulator, inbox: Inbox) -> None:
    sweep(runtime)
    detach(arm_env, "compute", "hpc")
    assert [s for _, s in detached(sweep(runtime))] == [subnet_id(arm_env, n).lower() for n in ("compute", "hpc")]
    with network_client(arm_env, human_credential(arm_env)) as person:
        subnet = person.subnets.get(RG, "vnet-cyclecloud", "compute")
        subnet.network_security_group = person.network_security_groups.get(RG, "nsg-cluster")
        person.subnets.begin_create_or_update(RG, "vnet-cyclecloud", "compute", subnet, polling_interval=0.01).result()
    report = sweep(runtime)
    assert [s for _, s in detached(report)] == [subnet_id(arm_env, "hpc").lower()]
    assert inbox.detached(AlertStatus.RESOLVED) == [subnet_id(arm_env, "compute")]
    assert remediator_writes(arm_env) == []


def test_deleting_the_detached_nsg_is_reported_by_its_delete_event(
    runtime: Runtime, arm_env: Emulator, inbox: Inbox
) -> None:
    sweep(runtime)
    detach(arm_env, "compute", "hpc")  # no subscriber yet: only the delete event arrives
    subscriber = Subscriber()
    arm_env.set_event_subscriber(subscriber)
    with network_client(arm_env, human_credential(arm_env)) as person:
        person.network_security_groups.begin_delete(RG, "nsg-cluster", polling_interval=0.01).result()
    assert arm_env.events.wait_idle(15)
    assert subscriber.errors == []
    assert [e["data"]["operationName"] for e in subscriber.delivered] == [
        "Microsoft.Network/networkSecurityGroups/delete"
    ]
    assert sorted(s or "" for s in inbox.detached()) == [subnet_id(arm_env, n) for n in ("compute", "hpc")]
    assert all("no longer exists" in (a.finding.message if a.finding else "") for a in inbox.alerts)
    arm_env.set_event_subscriber(None)
    report = sweep(runtime)
    assert len(detached(report)) == 2
    assert remediator_writes(arm_env) == []
    assert inbox.detached(AlertStatus.RESOLVED) == []


def test_discovery_reads_the_vnets_of_remembered_subnets(runtime: Runtime, arm_env: Emulator) -> None:
    """With every subnet detached no NSG leads to the VNet any more; the remembered subnets do."""
    detach(arm_env, "cyclecloud", "compute", "hpc")
    scope = f"/subscriptions/{arm_env.subscription_id}"
    assert runtime.source.inventory(scope).vnets == ()
    arm_env.clear_requests()
    remembered = [subnet_id(arm_env, "compute").upper(), subnet_id(arm_env, "hpc")]
    inventory = runtime.source.inventory(scope, extra_subnet_ids=remembered)
    assert [v.name for v in inventory.vnets] == ["vnet-cyclecloud"]
    assert {s.name: s.nsg_id for s in inventory.subnets} == {"cyclecloud": None, "compute": None, "hpc": None}
    vnet_gets = [r for r in arm_env.requests() if r["method"] == "GET" and "/virtualnetworks/" in r["path"].lower()]
    assert len(vnet_gets) == 1, "the VNet is read once for both subnets"
    gone = subnet_id(arm_env, "x").replace("vnet-cyclecloud", "vnet-deleted")
    assert [v.name for v in runtime.source.inventory(scope, extra_subnet_ids=[gone]).vnets] == []


def reconcile_http(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    request = func.HttpRequest("POST", "/api/reconcile", body=json.dumps(body).encode(), headers={})
    response = user_function(function_app.app, "reconcile")(request)
    return response.status_code, json.loads(response.get_body())


def test_an_operator_accepts_a_detachment_over_http(runtime: Runtime, arm_env: Emulator, inbox: Inbox) -> None:
    sweep(runtime)
    detach(arm_env, "hpc")
    hpc = subnet_id(arm_env, "hpc")
    assert [s for _, s in detached(sweep(runtime))] == [hpc.lower()]

    status, report = reconcile_http({"acceptDetached": [hpc], "dryRun": True})
    assert status == 200
    assert report["acceptedDetached"] == [hpc.lower()]
    assert not [f for f in report["findings"] if f["kind"] == "nsg_detached"]
    assert [s for _, s in detached(sweep(runtime))] == [hpc.lower()], "a dry run forgets nothing"

    status, report = reconcile_http({"acceptDetached": [hpc]})
    assert status == 200
    assert hpc.lower() not in {k.lower() for k in runtime.state.attachments()}
    assert detached(sweep(runtime)) == [], "accepted: the finding does not come back"
    assert remediator_writes(arm_env) == []


@pytest.mark.parametrize(
    ("value", "status", "says"),
    [
        (["/subscriptions/x/resourceGroups/rg"], 400, "acceptDetached[0]: must be a subnet id"),
        ("not-a-list", 400, "acceptDetached: must be a list of subnet ids"),
        (
            [
                "/subscriptions/00000000-0000-0000-0000-0000000000f2/resourceGroups/rg/providers/"
                "Microsoft.Network/virtualNetworks/v/subnets/s"
            ],
            403,
            "outside the configured subscription",
        ),
    ],
)
def test_accept_detached_rejects_bad_input_before_any_arm_call(
    runtime: Runtime, arm_env: Emulator, value: Any, status: int, says: str
) -> None:
    arm_env.clear_requests()
    code, body = reconcile_http({"acceptDetached": value})
    assert code == status
    assert says in body["error"]
    assert arm_env.requests() == []
