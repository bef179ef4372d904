"""The engine on Microsoft's real CycleCloud networks (tests/fixtures/real): every verdict by hand.

Each variant's expected.yaml (written by hand from Azure's rules, one reason per
line; see tests/fixtures/real/README.md) says, per required path, whether
node -> CycleCloud passes and, when it does not, which NSG and rule drop the
packet first; whether each rule of the seed's baseline holds for CycleCloud;
and which subnets have the Storage endpoint. ``assess`` with the shipped
baseline must agree on all of it:

- CycleCloud is found by its tagged NIC, the node subnets are the ones named;
- a required path that is blocked is a ``port_blocked`` from that subnet (or
  client NIC) whose first blocking leg in traffic order (outbound before
  inbound) names the expected NSG, rule and direction; an allowed path, or
  one the deployment blocks by design (``required: false``), has none; no
  other ``port_blocked`` exists;
- a baseline requirement holds exactly when no finding says otherwise;
- a missing Storage endpoint is a finding on exactly that subnet;
- with no node subnet known, the flows are listed as not judged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from remediation.assess import Assessment, assess
from remediation.baseline import Role
from remediation.baseline_file import load_baseline
from remediation.findings import Finding, FindingKind
from remediation.network import Network
from remediation.parse import parse_document
from remediation.required_flows import RequiredFlows, required_flows

REAL = Path(__file__).resolve().parent / "fixtures" / "real"
BASELINE = load_baseline()
RULE_KINDS = {FindingKind.MISSING_RULE, FindingKind.MODIFIED_RULE, FindingKind.SHADOWED_RULE}


@dataclass(frozen=True)
class Case:
    deployment: str
    expected: dict[str, Any]
    variant: dict[str, Any]

    @property
    def id(self) -> str:
        return f"{self.deployment}/{self.variant['name']}"


def cases() -> list[Case]:
    found = []
    for expected_file in sorted(REAL.glob("*/expected.yaml")):
        expected = yaml.safe_load(expected_file.read_text())
        for variant in expected["variants"]:
            found.append(Case(expected_file.parent.name, expected, variant))
    return found


CASES = cases()


def _name(resource_id: str | None) -> str:
    return (resource_id or "").rstrip("/").rsplit("/", 1)[-1]


def judged(case: Case) -> tuple[Assessment, RequiredFlows]:
    path = REAL / case.deployment / case.variant["file"]
    inventory = parse_document(json.loads(path.read_text()), where=str(path))
    return assess(inventory, BASELINE), required_flows(Network(inventory, BASELINE.lockdown_tag), BASELINE)


def _path_findings(findings: list[Finding], path: dict[str, Any]) -> list[Finding]:
    """The port_blocked findings of one expected path: its flow, from its subnet (or client NIC)."""
    nic = path.get("from_nic")
    chosen = []
    for f in findings:
        if f.requirement != path["flow"] or _name(f.subnet) != path["from_subnet"]:
            continue
        source = f.source or ""
        if (nic is not None and f"NIC {nic!r}" in source) or (nic is None and source.startswith("node subnet")):
            chosen.append(f)
    return chosen


def _direction(finding: Finding) -> str:
    return "outbound" if "denied outbound" in finding.message else "inbound"


def mismatches(case: Case) -> list[str]:
    """Every way the engine's judgement differs from the hand-written verdicts (empty: exact)."""
    result, required = judged(case)
    expected, variant = case.expected, case.variant
    wrong: list[str] = []

    nic = expected["cyclecloud"]["nic"]
    if not any(nic in e.label for e in required.cyclecloud):
        wrong.append(f"CycleCloud located at {[e.label for e in required.cyclecloud]}, not NIC {nic!r}")
    nodes = set(variant.get("node_subnets", expected["node_subnets"]))
    if {s.name for s in required.node_subnets} != nodes:
        wrong.append(f"node subnets {sorted(s.name for s in required.node_subnets)} != {sorted(nodes)}")
    if not nodes and {u.requirement for u in result.not_judged} != {"amqp_5672", "https_9443"}:
        wrong.append(f"no node subnet, yet not_judged is {result.not_judged}")

    blocked = [f for f in result.findings if f.kind is FindingKind.PORT_BLOCKED]
    accounted: set[tuple[str, ...]] = set()
    for path in variant["paths"] if nodes else []:
        mine = _path_findings(blocked, path)
        accounted.update(f.key for f in mine)
        label = f"{path['flow']} from {path['from_subnet']}" + (f" ({path['from_nic']})" if "from_nic" in path else "")
        if not path["required"] or path["verdict"] == "allowed":
            if mine:
                wrong.append(f"{label}: expected no port_blocked ({path['reason']}), got {[f.message for f in mine]}")
            continue
        if not mine:
            wrong.append(f"{label}: expected blocked by {path['deciding_rule']} ({path['reason']}), got none")
            continue
        first = sorted(mine, key=lambda f: _direction(f) != "outbound")[0]
        got = (_name(first.nsg), first.rule, _direction(first))
        want = (path["deciding_nsg"], path["deciding_rule"], path["direction"])
        if got != want:
            wrong.append(f"{label}: deciding {got} != {want} ({path['reason']})")
    extra = [f.message for f in blocked if f.key not in accounted]
    if extra:
        wrong.append(f"port_blocked on no expected path: {extra}")

    cc_nsgs = {
        n.key
        for n, roles in Network(judged_inventory(case), BASELINE.lockdown_tag).managed()
        if Role.CYCLECLOUD in roles
    }
    for item in variant["baseline"]:
        name = item["requirement"]
        against = [
            f
            for f in result.findings
            if f.nsg.lower() in cc_nsgs
            and f.requirement == name
            and (f.kind in RULE_KINDS or f.kind is FindingKind.LOCKDOWN_BREACH)
        ]
        if item["holds"] == bool(against):
            wrong.append(
                f"baseline {name}: holds={item['holds']} ({item['reason']}), findings {[f.message for f in against]}"
            )

    # The baseline asks the endpoint of CycleCloud's subnet and the node subnets: a subnet no
    # managed NSG guards (cyclecloud_arm's compute before the operator's nsg-compute) has no role.
    judged_subnets = nodes | {expected["cyclecloud"]["subnet"]}
    for item in variant.get("service_endpoints", []):
        if item["subnet"] not in judged_subnets:
            continue
        missing = [
            f
            for f in result.findings
            if f.kind is FindingKind.SERVICE_ENDPOINT_MISSING
            and _name(f.subnet) == item["subnet"]
            and f.requirement == item["service"]
        ]
        if item["present"] == bool(missing):
            wrong.append(
                f"endpoint {item['service']} on {item['subnet']}: present={item['present']}, findings {len(missing)}"
            )
    return wrong


def judged_inventory(case: Case) -> Any:
    path = REAL / case.deployment / case.variant["file"]
    return parse_document(json.loads(path.read_text()), where=str(path))


def test_every_deployment_has_variants() -> None:
    assert {c.deployment for c in CASES} >= {"ccws-asg", "ccws-subnet", "azhop", "cyclecloud-arm"}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_variant_judged_exactly(case: Case) -> None:
    assert mismatches(case) == []


def test_breaks_change_the_findings() -> None:
    """A real break never produces the same findings (keys) as the healthy network."""
    by_deployment: dict[str, dict[str, set[tuple[str, ...]]]] = {}
    for case in CASES:
        result, _ = judged(case)
        by_deployment.setdefault(case.deployment, {})[case.variant["name"]] = {f.key for f in result.findings}
    for deployment, variants in by_deployment.items():
        healthy = variants.get("locked-down")
        for name, keys in variants.items():
            if name.startswith("broken-") and healthy is not None:
                assert keys != healthy, f"{deployment}/{name} looks like locked-down"
