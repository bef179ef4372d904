"""The path beyond the NSGs on a hub-and-spoke network (tests/fixtures/hub-spoke, after microsoft/WhatTheHack 035).

Runs ``check`` on exported JSON: the CycleCloud spoke (the shared fixture
network, NSGs compliant) on a route table to the hub's Azure Firewall, with
one firewall policy variant per test. Expected verdicts by hand, reasons beside.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from remediation.cli import main
from tests.test_baseline_firewall import DOCUMENT_NAMES

FIXTURES = Path(__file__).resolve().parent / "fixtures"
HUB_SPOKE = FIXTURES / "hub-spoke"
NETWORK = [
    FIXTURES / "compliant" / "arm" / "nsg-cyclecloud.json",
    FIXTURES / "compliant" / "arm" / "nsg-cluster.json",
    FIXTURES / "compliant" / "arm" / "nics.json",
    HUB_SPOKE / "spoke-vnet.json",
    HUB_SPOKE / "hub.json",
]
POLICY = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/wth-rg-hub/providers/Microsoft.Network/firewallPolicies/wth-fwp-policy01"


def check(capsys: pytest.CaptureFixture[str], route_table: str, groups: str) -> tuple[int, dict[str, Any]]:
    files = [*NETWORK, HUB_SPOKE / route_table, HUB_SPOKE / groups]
    code = main(["check", "--format", "json", *map(str, files)])
    out, err = capsys.readouterr()
    assert err == ""
    return code, json.loads(out)


def by_requirement(body: dict[str, Any], subnet: str = "cyclecloud") -> dict[str, dict[str, Any]]:
    return {v["requirement"]: v for v in body["paths"] if v["subnet"].endswith("/" + subnet)}


def test_a_firewall_allowing_the_document_list_is_clean(capsys: pytest.CaptureFixture[str]) -> None:
    code, body = check(capsys, "rt-spoke.json", "rcg-clean.json")
    assert code == 0
    assert body["findings"] == []
    verdicts = by_requirement(body)
    # Every name goes 0.0.0.0/0 -> the firewall, where the CycleCloud application collection allows it
    # before the priority-65000 deny-all collection is reached.
    assert {n: verdicts[n]["outcome"] for n in DOCUMENT_NAMES} == dict.fromkeys(DOCUMENT_NAMES, "allowed")
    assert {verdicts[n]["rule"] for n in DOCUMENT_NAMES} == {
        "CycleCloud_AppRules/allow-cyclecloud-azure/cyclecloud-apis"
    }
    assert verdicts["management.azure.com"]["nextHop"] == "VirtualAppliance 10.0.1.4"
    # Nodes reach CycleCloud inside the spoke: VnetLocal /16 beats the user /0, the firewall is not on the way.
    assert by_requirement(body, "compute")["amqp_5672"]["outcome"] == "direct"


def test_a_policy_missing_management_azure_com_is_critical_naming_the_deciding_collection(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, body = check(capsys, "rt-spoke.json", "rcg-missing-arm.json")
    assert code == 1
    (finding,) = body["findings"]
    # Nothing allows it; the first rule that matches is the deny-all application collection at 65000.
    assert finding["kind"] == "firewall_blocked"
    assert finding["severity"] == "critical"  # one of CycleCloud's own names
    assert finding["requirement"] == "management.azure.com"
    assert finding["nsg"] == POLICY
    assert finding["rule"] == "Platform_DenyAll/deny-all-web/deny-any-https"
    assert finding["remediable"] is False
    assert "shared by many workloads" in finding["reason"]


def test_a_deny_collection_at_a_higher_priority_wins(capsys: pytest.CaptureFixture[str]) -> None:
    code, body = check(capsys, "rt-spoke.json", "rcg-deny-first.json")
    assert code == 1
    blocked = {f["requirement"]: f["rule"] for f in body["findings"]}
    # deny-azure-com (priority 200) precedes allow-cyclecloud-azure (300) in the same group;
    # "*.azure.com" holds exactly these two names of the list.
    assert blocked == {
        "management.azure.com": "CycleCloud_AppRules/deny-azure-com/block-azure-com",
        "dc.applicationinsights.azure.com": "CycleCloud_AppRules/deny-azure-com/block-azure-com",
    }


def test_a_route_bypassing_the_firewall(capsys: pytest.CaptureFixture[str]) -> None:
    code, body = check(capsys, "rt-spoke-bypass.json", "rcg-missing-arm.json")
    # The AzureResourceManager tag route is longer than /0: management.azure.com goes straight out,
    # so the policy's gap does not matter (the NSG's AllowAzureRM decides, and it is compliant).
    assert code == 0
    assert body["findings"] == []
    verdict = by_requirement(body)["management.azure.com"]
    assert verdict["outcome"] == "direct"
    assert verdict["nextHop"] == "Internet"
    assert "route-arm-direct" in verdict["route"]
    assert by_requirement(body)["login.microsoftonline.com"]["outcome"] == "allowed"  # still through the firewall


def test_node_ports_crossing_the_firewall_are_judged_by_its_network_rules(capsys: pytest.CaptureFixture[str]) -> None:
    code, body = check(capsys, "rt-spoke-eastwest.json", "rcg-clean.json")
    assert code == 1
    # The spoke's own /16 is routed to the firewall, which has no network rule for TCP 5672/9443:
    # its default deny blocks node -> CycleCloud from both node subnets.
    blocked = sorted((f["requirement"], f["subnet"].rsplit("/", 1)[-1], f["rule"]) for f in body["findings"])
    assert blocked == [
        ("amqp_5672", "compute", None),
        ("amqp_5672", "hpc", None),
        ("https_9443", "compute", None),
        ("https_9443", "hpc", None),
    ]
    assert {f["severity"] for f in body["findings"]} == {"critical"}
    # Each says where the flow starts: four findings, four different messages (an alert names its source).
    assert len({f["message"] for f in body["findings"]}) == 4
    assert all(f"from subnet {f['subnet'].rsplit('/', 1)[-1]} " in f["message"] for f in body["findings"])


def test_a_route_that_drops_the_traffic(capsys: pytest.CaptureFixture[str]) -> None:
    code, body = check(capsys, "rt-spoke-blackhole.json", "rcg-clean.json")
    assert code == 1
    # 0.0.0.0/0 -> None: every name of the list is dropped before any firewall.
    assert {f["requirement"] for f in body["findings"]} == DOCUMENT_NAMES
    assert {(f["kind"], f["rule"], f["severity"]) for f in body["findings"]} == {
        ("route_dropped", "route-internet-blackhole", "critical")
    }


def test_an_appliance_that_is_not_a_known_firewall_is_said_once(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    table = json.loads((HUB_SPOKE / "rt-spoke.json").read_text())
    for route in table["properties"]["routes"]:
        route["properties"]["nextHopIpAddress"] = "10.0.2.10"  # a third-party NVA
    (tmp_path / "rt.json").write_text(json.dumps(table))
    files = [*NETWORK, tmp_path / "rt.json", HUB_SPOKE / "rcg-clean.json"]
    code = main(["check", "--format", "json", *map(str, files)])
    body = json.loads(capsys.readouterr().out)
    (finding,) = body["findings"]
    assert code == 1
    assert (finding["kind"], finding["severity"], finding["rule"]) == ("path_unjudged", "info", "10.0.2.10")


def test_the_table_shows_the_paths(capsys: pytest.CaptureFixture[str]) -> None:
    files = [*NETWORK, HUB_SPOKE / "rt-spoke.json", HUB_SPOKE / "rcg-missing-arm.json"]
    assert main(["check", *map(str, files)]) == 1
    out = capsys.readouterr().out
    assert "firewall_blocked" in out
    assert "Paths beyond the NSGs:" in out
    assert "blocked   cyclecloud: HTTPS to management.azure.com is denied by firewall wth-afw-hub01" in out


def test_flows_beyond_the_nsgs_run_from_node_subnets_to_cyclecloud_only() -> None:
    # Issue 10 on a CycleCloud Workspace for Slurm network (one NSG on every subnet): the path
    # beyond the NSGs is judged for compute -> CycleCloud's NIC (10.0.0.4), not between the
    # shared NSG's subnets (cyclecloud, the NetApp-delegated one).
    from remediation.baseline_file import load_baseline
    from remediation.network import Network
    from remediation.paths import PathInventory, judge_paths
    from tests.support.networks import ccws

    baseline = load_baseline()
    report = judge_paths(Network(ccws(), baseline.lockdown_tag), PathInventory(), baseline)
    flows = {
        (v.requirement, v.subnet.rsplit("/", 1)[-1], v.destination) for v in report.verdicts if "_" in v.requirement
    }
    assert flows == {("amqp_5672", "compute", "10.0.0.4/32"), ("https_9443", "compute", "10.0.0.4/32")}


def test_names_are_reached_from_cyclecloud_s_host_not_every_subnet_of_a_shared_nsg() -> None:
    # The same CCWS network: the shared NSG is tagged cyclecloud,cluster on every subnet, but only
    # CycleCloud's host (its tagged NIC, 10.0.0.4 in subnet cyclecloud) must reach the document's names.
    from remediation.baseline_file import load_baseline
    from remediation.network import Network
    from remediation.paths import PathInventory, judge_paths
    from tests.support.networks import ccws

    baseline = load_baseline()
    report = judge_paths(Network(ccws(), baseline.lockdown_tag), PathInventory(), baseline)
    names = {(v.requirement, v.subnet.rsplit("/", 1)[-1]) for v in report.verdicts if "." in v.requirement}
    assert names == {(name, "cyclecloud") for name in DOCUMENT_NAMES}
