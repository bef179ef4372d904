"""The sweep and path events judge route tables and the Azure Firewall through the real SDK pipeline.

The emulator holds the hub-and-spoke fixture network (tests/fixtures/hub-spoke): the CycleCloud
spoke on a route table to the hub's firewall, whose policy misses management.azure.com.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devtools.emulator import Emulator
from devtools.emulator._routes import parse as parse_route
from remediation.reports import ReconcileReport
from remediation.service import Reconciler
from remediation.wiring import Runtime
from tests.devtools.rest import Rest
from tests.infra.rbac_map import action_for, is_covered, role_actions
from tests.integration.conftest import remediator_runtime

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
HUB_SPOKE = FIXTURES / "hub-spoke"
FIXTURE_SUB = "00000000-0000-0000-0000-000000000001"


def load(path: Path, subscription: str) -> Any:
    return json.loads(path.read_text().replace(FIXTURE_SUB, subscription))


def items(doc: Any) -> list[dict[str, Any]]:
    if isinstance(doc, dict) and "value" in doc:
        return list(doc["value"])
    return list(doc) if isinstance(doc, list) else [doc]


@pytest.fixture
def runtime(arm_env: Emulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    sub = arm_env.subscription_id
    docs = [
        *items(load(FIXTURES / "compliant" / "arm" / "nsg-cyclecloud.json", sub)),
        *items(load(FIXTURES / "compliant" / "arm" / "nsg-cluster.json", sub)),
        *items(load(HUB_SPOKE / "rt-spoke.json", sub)),
        *items(load(HUB_SPOKE / "hub.json", sub)),
        *items(load(HUB_SPOKE / "spoke-vnet.json", sub)),
        *items(load(FIXTURES / "compliant" / "arm" / "nics.json", sub)),
    ]
    for doc in docs:
        if "/virtualNetworks/" not in doc["id"]:  # back-references ARM computes: not part of a PUT
            doc["properties"] = {
                k: v for k, v in doc["properties"].items() if k not in ("subnets", "networkInterfaces")
            }
    for rt in remediator_runtime(arm_env, monkeypatch, docs):
        put_groups(arm_env, load(HUB_SPOKE / "rcg-missing-arm.json", sub))
        arm_env.clear_requests()
        yield rt


def put_groups(em: Emulator, doc: Any) -> None:
    for group in items(doc):
        em.network.put(parse_route(group["id"]), {"properties": group["properties"]}, state="Succeeded")


def reconciler(rt: Runtime) -> Reconciler:
    return Reconciler(source=rt.source, writer=rt.writer, baseline=rt.baseline, settings=rt.settings, paths=rt.paths)


def path_findings(report: ReconcileReport) -> list[tuple[str, str, str | None]]:
    kinds = {"firewall_blocked", "route_dropped", "path_unjudged"}
    return sorted((f.kind.value, f.requirement, f.rule) for f in report.findings if f.kind.value in kinds)


def test_the_sweep_names_the_collection_that_denies_management_azure_com(runtime: Runtime, arm_env: Emulator) -> None:
    report = reconciler(runtime).reconcile(None, trigger="sweep")
    assert report.ok, report.errors
    # The deny-all application collection (65000) is the first rule that matches: nothing allows the name.
    assert path_findings(report) == [
        ("firewall_blocked", "management.azure.com", "Platform_DenyAll/deny-all-web/deny-any-https")
    ]
    (finding,) = [f for f in report.findings if f.kind.value == "firewall_blocked"]
    assert finding.severity.value == "critical"
    assert not finding.remediable
    assert finding in report.remaining  # alerted
    writes = [r for r in arm_env.requests() if r["method"] != "GET" and r["path"] != "/msi/token"]
    assert writes == []  # the NSGs are compliant and the firewall is never written
    sent = {(r["method"], action_for(r["method"], r["path"])) for r in arm_env.requests() if r["path"] != "/msi/token"}
    assert {(m, a) for m, a in sent if not is_covered(a, role_actions())} == set()
    assert ("GET", "Microsoft.Network/firewallPolicies/ruleCollectionGroups/read") in sent


def test_a_rule_collection_group_event_judges_the_paths_again(runtime: Runtime, arm_env: Emulator) -> None:
    arm_env.config.lro_polls = 0
    sub = arm_env.subscription_id
    (apps,) = [g for g in items(load(HUB_SPOKE / "rcg-clean.json", sub)) if g["name"] == "CycleCloud_AppRules"]
    response = Rest(arm_env).put(apps["id"], {"properties": apps["properties"]})
    assert response.status_code == 200, response.text
    report = reconciler(runtime).reconcile(None, trigger="event", affected=[apps["id"]])
    # The event names a rule collection group: the subscription's paths are judged, and the name is allowed now.
    assert path_findings(report) == []
    assert report.ok


def test_a_path_that_cannot_be_read_stops_nothing_else(runtime: Runtime, arm_env: Emulator) -> None:
    arm_env.faults.add(kind="status", method="GET", path="firewallPolicies$", status=403, times=10)
    report = reconciler(runtime).reconcile(None, trigger="sweep")
    assert [e for e in report.errors if e.startswith("paths: not judged")]
    assert len(report.nsgs) == 2  # the NSGs were judged all the same
    assert path_findings(report) == []


def test_a_subscription_with_nothing_on_the_path_costs_four_list_pages(
    arm_env: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from devtools.demo import cyclecloud_network
    from remediation.baseline_file import load_baseline

    docs = cyclecloud_network(arm_env.subscription_id, load_baseline())
    for rt in remediator_runtime(arm_env, monkeypatch, docs):
        reconciler(rt).reconcile(None, trigger="sweep")
    listed = [
        r["path"].rsplit("/", 1)[-1]
        for r in arm_env.requests()
        if r["method"] == "GET" and r["path"].startswith(f"/subscriptions/{arm_env.subscription_id}/providers/")
    ]
    # No route table, firewall, policy or IP group: the VNets are not listed again for their peerings.
    assert sorted(p for p in listed if p != "networkSecurityGroups") == [
        "azureFirewalls",
        "firewallPolicies",
        "ipGroups",
        "routeTables",
    ]
