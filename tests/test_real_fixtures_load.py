"""The real-deployment fixtures (tests/fixtures/real/) load, and their expected.yaml is well-formed.

Only the data is checked here: every network file parses with the project's
parser, and every name an expected verdict uses (subnet, NIC, NSG, rule,
file) exists in the file it is about. The verdicts themselves are judged by
the engine's tests, not here.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from remediation.model import Inventory, NetworkSecurityGroup
from remediation.parse import parse_document

REAL = Path(__file__).parent / "fixtures" / "real"
DEPLOYMENTS = sorted(p.parent for p in REAL.glob("*/expected.yaml"))
NETWORK_FILES = sorted(REAL.glob("*/*.json"))

FLOWS = {"amqp_5672", "https_9443"}
VERDICTS = {"allowed", "blocked"}
DIRECTIONS = {"inbound", "outbound"}
BASELINE = {"AllowAzureStorage", "AllowActiveDirectory", "AllowAzureMonitor", "AllowAzureRM", "BlockOutbound"}
PATH_KEYS = {
    "from_subnet",
    "from_nic",
    "flow",
    "required",
    "verdict",
    "deciding_nsg",
    "deciding_rule",
    "direction",
    "allowed_by",
    "reason",
}


def load(path: Path) -> Inventory:
    return parse_document(json.loads(path.read_text(encoding="utf-8")), where=str(path.relative_to(REAL)))


def test_there_are_fixtures() -> None:
    assert len(DEPLOYMENTS) >= 3
    assert len(NETWORK_FILES) >= 10


@pytest.mark.parametrize("path", NETWORK_FILES, ids=lambda p: str(p.relative_to(REAL)))
def test_network_file_parses_into_an_inventory(path: Path) -> None:
    inventory = load(path)
    assert inventory.nsgs, "no NSG"
    assert len(inventory.vnets) == 1, "not one VNet"
    assert inventory.vnets[0].address_space, "a VNet without an address space"
    assert inventory.nics, "no NIC"
    subnet_ids = {s.id.lower() for s in inventory.subnets}
    nsg_ids = {n.id.lower() for n in inventory.nsgs}
    for subnet in inventory.subnets:
        assert subnet.nsg_id is None or subnet.nsg_id.lower() in nsg_ids, f"{subnet.name}: NSG not in the file"
    for nic in inventory.nics:
        assert nic.private_ips, f"{nic.name}: no private IP"
        assert all(s.lower() in subnet_ids for s in nic.subnet_ids), f"{nic.name}: subnet not in the file"
        assert nic.nsg_id is None or nic.nsg_id.lower() in nsg_ids, f"{nic.name}: NSG not in the file"


@dataclass(frozen=True)
class Network:
    """Names in one variant's file, for checking what expected.yaml refers to."""

    inventory: Inventory

    def subnet_names(self) -> set[str]:
        return {s.name for s in self.inventory.subnets}

    def nsg(self, name: str) -> NetworkSecurityGroup:
        found = [n for n in self.inventory.nsgs if n.name == name]
        assert found, f"NSG {name!r} not in the file"
        return found[0]

    def has_rule(self, nsg: str, rule: str) -> bool:
        group = self.nsg(nsg)
        return any(r.name == rule for r in group.security_rules + group.default_rules)

    def nic_subnet(self, nic_name: str) -> str:
        nics = [n for n in self.inventory.nics if n.name == nic_name]
        assert nics, f"NIC {nic_name!r} not in the file"
        by_id = {s.id.lower(): s.name for s in self.inventory.subnets}
        return by_id[nics[0].subnet_ids[0].lower()]


def _check_path(net: Network, path: dict[str, Any], where: str) -> None:
    assert set(path) <= PATH_KEYS, f"{where}: unknown keys {set(path) - PATH_KEYS}"
    assert path["from_subnet"] in net.subnet_names(), f"{where}: subnet {path['from_subnet']!r} not in the file"
    if "from_nic" in path:
        assert net.nic_subnet(path["from_nic"]) == path["from_subnet"], f"{where}: NIC not in from_subnet"
    assert path["flow"] in FLOWS, where
    assert isinstance(path["required"], bool), where
    assert path["verdict"] in VERDICTS, where
    assert isinstance(path["reason"], str), where
    assert path["reason"].strip(), f"{where}: no reason"
    if path["verdict"] == "blocked":
        assert path["direction"] in DIRECTIONS, where
        assert net.has_rule(path["deciding_nsg"], path["deciding_rule"]), (
            f"{where}: {path['deciding_rule']!r} not in {path['deciding_nsg']!r}"
        )
        assert "allowed_by" not in path, where
    else:
        assert "deciding_rule" not in path, where
        assert "deciding_nsg" not in path, where
        for step in path.get("allowed_by", []):
            assert step["direction"] in DIRECTIONS, where
            assert net.has_rule(step["nsg"], step["rule"]), f"{where}: {step['rule']!r} not in {step['nsg']!r}"


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=lambda p: p.name)
def test_expected_yaml_is_well_formed(deployment: Path) -> None:
    expected = yaml.safe_load((deployment / "expected.yaml").read_text(encoding="utf-8"))
    source = expected["source"]
    for key in ("repo", "path", "notes"):
        assert source[key], f"source.{key} is empty"
    assert len(str(source["commit"])) == 40
    variants = expected["variants"]
    files = [v["file"] for v in variants]
    assert len(set(files)) == len(files), "a file named by two variants"
    assert {p.name for p in deployment.glob("*.json")} == set(files), "a network file without a variant, or the reverse"
    cyclecloud = expected["cyclecloud"]
    for variant in variants:
        where = f"{deployment.name}/{variant['name']}"
        net = Network(load(deployment / variant["file"]))
        raw = json.loads((deployment / variant["file"]).read_text(encoding="utf-8"))
        tags = next(r.get("tags", {}) for r in raw if r["name"] == cyclecloud["nic"])
        assert tags.get("cyclecloud-lockdown") == "cyclecloud", f"{where}: CycleCloud's NIC is not tagged"
        for line in expected["not_node_subnets"]:
            assert line["subnet"] in net.subnet_names(), f"{where}: {line['subnet']!r} not in the file"
        assert net.nic_subnet(cyclecloud["nic"]) == cyclecloud["subnet"], where
        nic = next(n for n in net.inventory.nics if n.name == cyclecloud["nic"])
        assert ipaddress.ip_address(cyclecloud["ip"]) in nic.private_ips, where
        node_subnets = variant.get("node_subnets", expected["node_subnets"])  # a variant may add or drop NSGs
        for subnet in node_subnets:
            assert subnet in net.subnet_names(), f"{where}: node subnet {subnet!r} not in the file"
        assert cyclecloud["subnet"] not in node_subnets, "CycleCloud's own subnet is not a node subnet"
        for i, path in enumerate(variant["paths"]):
            _check_path(net, path, f"{where}: paths[{i}]")
            assert path.get("from_nic") != cyclecloud["nic"], f"{where}: paths[{i}] asks CycleCloud to reach itself"
        requirements = [b["requirement"] for b in variant["baseline"]]
        assert sorted(requirements) == sorted(BASELINE), f"{where}: baseline lists {requirements}"
        for line in variant["baseline"]:
            assert isinstance(line["holds"], bool), where
            assert line["reason"].strip(), where
        for line in variant.get("service_endpoints", []):
            assert line["subnet"] in net.subnet_names(), where
            assert isinstance(line["present"], bool), where
            subnet = next(s for s in net.inventory.subnets if s.name == line["subnet"])
            assert (line["service"] in subnet.service_endpoints) == line["present"], f"{where}: {line}"
