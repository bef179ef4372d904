"""Service-endpoint repair end to end: the real SDK against the emulator.

The cluster subnet 'hpc' lacks the Microsoft.Storage service endpoint and carries properties a
subnet PUT must keep (its NSG, a route table, a delegation, another endpoint with its locations,
network policies). With SERVICE_ENDPOINT_REPAIR the guard adds the endpoint with exactly one
subnet PUT and keeps everything else; without it nothing is written and the finding says why.
Every request is checked against the custom role: the subnet write needs the opt-in actions.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from devtools.demo import cyclecloud_network
from devtools.emulator import REMEDIATOR, Emulator
from remediation.baseline_file import load_baseline
from remediation.events import parse_event
from remediation.findings import FindingKind
from remediation.reports import ReconcileReport
from remediation.wiring import Runtime
from tests.infra.rbac_map import action_for, is_covered, role_actions
from tests.integration.conftest import human_credential, network_client, remediator_runtime

pytestmark = pytest.mark.integration

BASELINE = load_baseline()
RG = "rg-cyclecloud"
KEEP = {
    "routeTable": {"id": "/subscriptions/{sub}/resourceGroups/rg-net/providers/Microsoft.Network/routeTables/rt-hpc"},
    # (not a delegation: a delegated subnet holds no nodes, so it needs no Storage endpoint)
    "natGateway": {"id": "/subscriptions/{sub}/resourceGroups/rg-net/providers/Microsoft.Network/natGateways/ng-hpc"},
    "privateEndpointNetworkPolicies": "Disabled",
    "privateLinkServiceNetworkPolicies": "Enabled",
}


def network(sub: str) -> list[dict[str, Any]]:
    docs = copy.deepcopy(cyclecloud_network(sub, BASELINE, resource_group=RG))
    vnet = next(d for d in docs if "/virtualNetworks/" in d["id"])
    hpc = next(s for s in vnet["properties"]["subnets"] if s["name"] == "hpc")
    hpc["properties"]["serviceEndpoints"] = [{"service": "Microsoft.KeyVault", "locations": ["westeurope"]}]
    for key, value in KEEP.items():
        hpc["properties"][key] = _with_sub(copy.deepcopy(value), sub)
    return docs


def _with_sub(value: Any, sub: str) -> Any:
    if isinstance(value, dict):
        return {k: _with_sub(v, sub) for k, v in value.items()}
    if isinstance(value, list):
        return [_with_sub(v, sub) for v in value]
    return value.replace("{sub}", sub) if isinstance(value, str) else value


@pytest.fixture
def repairing(arm_env: Emulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    yield from remediator_runtime(
        arm_env, monkeypatch, network(arm_env.subscription_id), retries=2, SERVICE_ENDPOINT_REPAIR="true"
    )


@pytest.fixture
def default(arm_env: Emulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    monkeypatch.delenv("SERVICE_ENDPOINT_REPAIR", raising=False)
    yield from remediator_runtime(arm_env, monkeypatch, network(arm_env.subscription_id), retries=2)


def hpc_id(em: Emulator) -> str:
    return (
        f"/subscriptions/{em.subscription_id}/resourceGroups/{RG}/providers/Microsoft.Network"
        "/virtualNetworks/vnet-cyclecloud/subnets/hpc"
    )


def hpc(em: Emulator, name: str = "hpc") -> dict[str, Any]:
    """The subnet ``name`` (default: hpc) as the emulator holds it."""
    vnet = next(v for k, v in em.state.items() if "/virtualnetworks/" in k.lower())
    return dict(next(s for s in vnet["properties"]["subnets"] if s["name"] == name))


def writes(em: Emulator, *, ok_only: bool = True) -> list[dict[str, Any]]:
    return [
        r
        for r in em.requests()
        if r["method"] in ("PUT", "PATCH", "DELETE") and (not ok_only or r["status"] in (200, 201, 202))
    ]


def endpoint_findings(report: ReconcileReport, *, remaining: bool = False) -> list[Any]:
    found = report.remaining if remaining else report.findings
    return [f for f in found if f.kind is FindingKind.SERVICE_ENDPOINT_MISSING]


def test_repair_adds_the_endpoint_with_one_subnet_put_and_keeps_every_other_property(
    repairing: Runtime, arm_env: Emulator
) -> None:
    before = hpc(arm_env)
    report = repairing.reconcile(None, trigger="sweep")
    assert report.ok, report.all_errors()
    [finding] = endpoint_findings(report)
    assert finding.remediable
    assert finding.subnet == hpc_id(arm_env)
    assert endpoint_findings(report, remaining=True) == []
    [put] = writes(arm_env)
    assert (put["method"], put["path"].lower(), put["caller"]) == ("PUT", hpc_id(arm_env).lower(), REMEDIATOR)
    after = hpc(arm_env)
    services = {e["service"]: e["locations"] for e in after["properties"]["serviceEndpoints"]}
    assert services["Microsoft.KeyVault"] == ["westeurope"]  # the other endpoint, exactly as it was
    assert "Microsoft.Storage" in services
    for key in (*KEEP, "networkSecurityGroup", "addressPrefix"):
        assert after["properties"][key] == before["properties"][key], key
    outcome = next(o for o in report.nsgs if o.nsg_id.endswith("/nsg-cluster"))
    [write] = outcome.subnet_writes
    assert (write.added, write.attempts, write.lost_endpoints) == (("Microsoft.Storage",), 1, ())
    assert outcome.to_json()["subnetWrites"][0]["added"] == ["Microsoft.Storage"]
    # The audit trail names the subnet write; no rule changed.
    assert repairing.state is not None
    [record] = repairing.state.audit_trail()
    assert record.nsg_id == outcome.nsg_id
    assert (record.rules_before, record.rules_after) == ([], [])
    assert "hpc" in record.changes[0]
    assert "Microsoft.Storage" in record.changes[0]
    # Converged: the next sweep finds nothing and writes nothing.
    arm_env.clear_requests()
    assert endpoint_findings(repairing.reconcile(None, trigger="sweep")) == []
    assert writes(arm_env) == []


def test_without_the_setting_nothing_is_written_and_the_finding_says_why(default: Runtime, arm_env: Emulator) -> None:
    report = default.reconcile(None, trigger="sweep")
    [finding] = endpoint_findings(report, remaining=True)
    assert not finding.remediable
    assert "SERVICE_ENDPOINT_REPAIR" in finding.reason
    assert writes(arm_env, ok_only=False) == []
    assert "Microsoft.Storage" not in {e["service"] for e in hpc(arm_env)["properties"]["serviceEndpoints"]}


def test_audit_mode_with_repair_enabled_writes_nothing(arm_env: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    for rt in remediator_runtime(
        arm_env,
        monkeypatch,
        network(arm_env.subscription_id),
        retries=2,
        SERVICE_ENDPOINT_REPAIR="true",
        REMEDIATION_MODE="audit",
    ):
        report = rt.reconcile(None, trigger="sweep")
        assert [f.remediable for f in endpoint_findings(report, remaining=True)] == [True]
        assert writes(arm_env, ok_only=False) == []


def test_a_conflicting_subnet_write_is_re_read_and_retried(repairing: Runtime, arm_env: Emulator) -> None:
    arm_env.faults.add(kind="status", method="PUT", path="subnets/hpc", status=412)
    report = repairing.reconcile(None, trigger="sweep")
    assert report.ok, report.all_errors()
    assert [r["status"] for r in arm_env.requests() if r["method"] == "PUT"] == [412, 200]
    on_subnet = [(r["method"], r["status"]) for r in arm_env.requests() if r["path"].lower().endswith("/subnets/hpc")]
    # Read, refused write, read again, write (then the poller's final GET of the resource).
    assert on_subnet[:4] == [("GET", 200), ("PUT", 412), ("GET", 200), ("PUT", 200)]
    outcome = next(o for o in report.nsgs if o.nsg_id.endswith("/nsg-cluster"))
    assert outcome.subnet_writes[0].attempts == 2
    assert endpoint_findings(report, remaining=True) == []


def test_a_person_changing_the_vnet_between_read_and_write_is_not_overwritten(
    repairing: Runtime, arm_env: Emulator
) -> None:
    """The PUT is held back while a person tags the VNet: If-Match refuses the stale write (412), the
    guard re-reads and writes again, and the person's change survives."""
    held = arm_env.faults.add(kind="delay", method="PUT", path="subnets/hpc", seconds=1)
    vnet_name = "vnet-cyclecloud"

    def person() -> None:
        deadline = time.monotonic() + 30
        while held.hits == 0 and time.monotonic() < deadline:  # the guard's PUT has arrived and is held
            time.sleep(0.01)
        with network_client(arm_env, human_credential(arm_env)) as client:
            client.virtual_networks.update_tags(RG, vnet_name, {"tags": {"owner": "netops"}})

    racer = threading.Thread(target=person)
    racer.start()
    report = repairing.reconcile(None, trigger="sweep")
    racer.join()
    assert report.ok, report.all_errors()
    puts = [r["status"] for r in arm_env.requests() if r["method"] == "PUT" and r["caller"] == REMEDIATOR]
    assert puts == [412, 200]
    vnet = next(v for k, v in arm_env.state.items() if k.lower().endswith("/virtualnetworks/vnet-cyclecloud"))
    assert vnet["tags"] == {"owner": "netops"}
    assert "Microsoft.Storage" in {e["service"] for e in hpc(arm_env)["properties"]["serviceEndpoints"]}


def test_the_subnet_write_needs_the_opt_in_role_actions(repairing: Runtime, arm_env: Emulator) -> None:
    repairing.reconcile(None, trigger="sweep")
    sent = [r for r in arm_env.requests() if r["path"] != "/msi/token"]
    actions = {action_for(r["method"], r["path"]) for r in sent}
    assert "Microsoft.Network/virtualNetworks/subnets/write" in actions
    assert {a for a in actions if not is_covered(a, role_actions(service_endpoint_repair=True))} == set()
    assert {a for a in actions if not is_covered(a, role_actions())} == {
        "Microsoft.Network/virtualNetworks/subnets/read",
        "Microsoft.Network/virtualNetworks/subnets/write",
    }


def test_a_failing_subnet_write_is_reported_transient_and_the_finding_stays(
    repairing: Runtime, arm_env: Emulator
) -> None:
    arm_env.faults.add(kind="status", method="PUT", path="subnets/hpc", status=503, times=None)
    report = repairing.reconcile(None, trigger="sweep")
    outcome = next(o for o in report.nsgs if o.nsg_id.endswith("/nsg-cluster"))
    assert outcome.transient
    assert outcome.error is not None
    assert "subnets/hpc" in outcome.error
    assert "503" in outcome.error
    assert [f.remediable for f in endpoint_findings(report, remaining=True)] == [True]
    assert writes(arm_env) == []


def test_a_person_removing_the_endpoint_is_repaired_from_the_event(repairing: Runtime, arm_env: Emulator) -> None:
    """Event Grid path: the person's subnet write is handled, the guard's own subnet write is not."""
    rt = repairing
    assert rt.reconcile(None, trigger="sweep").ok  # converge first: hpc gets its endpoint
    assert arm_env.events.wait_idle(15)  # that write's event is not the subscriber's
    outcomes: list[Any] = []
    arm_env.set_event_subscriber(lambda batch: outcomes.extend(rt.handle_event(parse_event(e)) for e in batch))
    with network_client(arm_env, human_credential(arm_env)) as person:
        subnet = person.subnets.get(RG, "vnet-cyclecloud", "compute").as_dict()
        subnet["properties"]["serviceEndpoints"] = []
        person.subnets.begin_create_or_update(RG, "vnet-cyclecloud", "compute", subnet, polling_interval=0.01).result()
    assert arm_env.events.wait_idle(15)
    assert arm_env.events.wait_idle(15)  # the guard's own write's event, if any, is delivered too
    handled = [o for o in outcomes if o.status == "handled"]
    assert len(handled) == 1
    assert [o.reason for o in outcomes if o.status == "ignored"] == ["own write"]
    compute = hpc(arm_env, "compute")
    assert [e["service"] for e in compute["properties"]["serviceEndpoints"]] == ["Microsoft.Storage"]
    own = [r for r in writes(arm_env) if r["caller"] == REMEDIATOR and r["path"].lower().endswith("/compute")]
    assert len(own) == 1
