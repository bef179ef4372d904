"""Never widen, end to end: random drift of the CycleCloud and cluster NSGs, a sweep by the
unchanged product through the Azure SDK on the emulator, then the NSGs as ARM holds them.

For each NSG and direction: flows allowed after remediation are a subset of the flows allowed
before, union the flows the baseline's allow rules for the NSG's roles require. Also: every rule
people made survives exactly, at most one write per NSG, and what is still wrong afterwards is
only what the plan said it could not fix. CI runs 40 examples; ``RUN_SLOW=1`` runs 300.
(The same property over plans alone, with many more examples, is in tests/test_engine_properties.py.)
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from devtools.emulator import ArmError, Emulator
from remediation.baseline import roles_of
from remediation.evaluate import EvaluationContext, FlowSet, Universe, allowed_flows
from remediation.model import Access, Direction, NetworkSecurityGroup
from remediation.parse import parse_nsg
from tests.reliability.harness import BASELINE, CC, CLUSTER, World, make_world, network, run_slow

pytestmark = pytest.mark.integration

EXAMPLES = 300 if run_slow() else 40

PORTS = ["*", "443", "22", "80", "5672", "9443", "8000-9000", "1-65535"]
ADDRESSES = [
    "*",
    "Internet",
    "Storage",
    "AzureCloud",
    "VirtualNetwork",
    "10.10.0.0/24",
    "10.10.1.0/24",
    "52.1.1.0/24",
    "0.0.0.0/0",
]
PRIORITIES = [100, 101, 102, 103, 104, 150, 200, 3999, 4000, 4001, 4096]


@st.composite
def drifted(draw: st.DrawFn, template: dict[str, Any]) -> list[dict[str, Any]]:
    """The template NSG's rules after people drifted them: deleted, changed, renamed, moved,
    plus new rules of their own (often on the baseline's priorities, to force conflicts)."""
    rules: list[dict[str, Any]] = []
    slots: set[tuple[str, int]] = set()
    names: set[str] = set()
    for original in template["properties"]["securityRules"]:
        r = copy.deepcopy(original)
        p = r["properties"]
        fate = draw(
            st.sampled_from(
                ["keep", "keep", "delete", "ports", "access", "destination", "source", "priority", "rename"]
            )
        )
        if fate == "delete":
            continue
        if fate == "ports":
            p.pop("destinationPortRanges", None)
            p["destinationPortRange"] = draw(st.sampled_from(PORTS))
        elif fate == "access":
            p["access"] = "Deny" if p["access"] == "Allow" else "Allow"
        elif fate in ("destination", "source"):
            key = "destinationAddressPrefix" if fate == "destination" else "sourceAddressPrefix"
            p.pop(key + "es", None)
            p[key] = draw(st.sampled_from(ADDRESSES))
        elif fate == "priority":
            p["priority"] = draw(st.sampled_from(PRIORITIES))
        elif fate == "rename":
            r["name"] = "Equivalent" + r["name"]
        slot = (p["direction"], p["priority"])
        if slot in slots or r["name"].lower() in names:
            continue
        slots.add(slot)
        names.add(r["name"].lower())
        rules.append(r)
    for i in range(draw(st.integers(0, 4))):
        direction = draw(st.sampled_from(["Outbound", "Outbound", "Inbound"]))
        priority = draw(st.sampled_from(PRIORITIES))
        if (direction, priority) in slots:
            continue
        slots.add((direction, priority))
        rules.append(
            {
                "name": f"Person{i}",
                "properties": {
                    "protocol": draw(st.sampled_from(["Tcp", "Udp", "*"])),
                    "access": draw(st.sampled_from(["Allow", "Deny"])),
                    "priority": priority,
                    "direction": direction,
                    "sourceAddressPrefix": draw(st.sampled_from(ADDRESSES)),
                    "destinationAddressPrefix": draw(st.sampled_from(ADDRESSES)),
                    "sourcePortRange": "*",
                    "destinationPortRange": draw(st.sampled_from(PORTS)),
                },
            }
        )
    return draw(st.permutations(rules))


TEMPLATE = network(drop=(), extra=())
TEMPLATE_CC = next(d for d in TEMPLATE if d["id"] == CC)
TEMPLATE_CLUSTER = next(d for d in TEMPLATE if d["id"] == CLUSTER)


def required(u: Universe, nsg: NetworkSecurityGroup, direction: Direction) -> FlowSet:
    flows = u.empty()
    for req in BASELINE.rules_for(roles_of(nsg.tags, BASELINE.lockdown_tag)):
        if req.rule.direction is direction and req.rule.access is Access.ALLOW:
            flows = flows | u.rule_flows(req.rule)
    return flows


def human_rules(nsg: NetworkSecurityGroup) -> dict[str, Any]:
    return {r.name.lower(): r for r in nsg.security_rules if not BASELINE.owns(r.name)}


@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(cc_rules=drifted(TEMPLATE_CC), cluster_rules=drifted(TEMPLATE_CLUSTER))
def test_remediation_never_widens(
    emulator: Emulator, cc_rules: list[dict[str, Any]], cluster_rules: list[dict[str, Any]]
) -> None:
    em = emulator
    em.reset()
    docs = copy.deepcopy(TEMPLATE)
    for doc in docs:
        if doc["id"] == CC:
            doc["properties"]["securityRules"] = cc_rules
        elif doc["id"] == CLUSTER:
            doc["properties"]["securityRules"] = cluster_rules
    try:
        world: World = make_world(em, docs)
    except ArmError:
        assume(False)  # ARM itself would refuse this drift (the emulator validates like a PUT)
        raise
    try:
        before = {nsg_id: parse_nsg(em.state[nsg_id], where="before") for nsg_id in (CC, CLUSTER)}
        report = world.sweep()
        assert not report.to_json()["errors"], report.to_json()["errors"]
        for nsg_id, old in before.items():
            new = parse_nsg(em.state[nsg_id], where="after")
            u = Universe.of(
                EvaluationContext(), [*old.security_rules, *new.security_rules, *(r.rule for r in BASELINE.rules)]
            )
            for direction in Direction:
                was = allowed_flows(u, old, direction)
                now = allowed_flows(u, new, direction)
                assert now.issubset(was | required(u, new, direction)), f"{new.name} {direction}: widened"
            assert human_rules(new) == human_rules(old), f"{new.name}: a person's rule changed or went"
            writes = [w for w in world.writes() if w["path"].lower().endswith(nsg_id.lower())]
            assert len(writes) <= 1, f"{new.name}: {len(writes)} writes"
        # Whatever is still wrong is what the plan said it could not fix, never what it could.
        assert world.remaining_remediable() == [], [o.to_json() for o in report.nsgs]
    finally:
        world.rt.close()


def test_a_stricter_deny_under_a_baseline_name_is_kept() -> None:
    """Regression (found by the property above): BlockOutbound changed by a person from 'deny
    Internet' to 'deny everything' was replaced by the baseline's narrower rule, which opened
    outbound VirtualNetwork traffic through the default AllowVnetOutBound. It now stays, and the
    finding is reported as needing a person, with the reason."""
    import json
    from pathlib import Path

    from remediation.assess import assess
    from remediation.parse import merge_inventories, parse_document
    from remediation.plan import planned_nsg

    arm = Path(__file__).resolve().parents[1] / "fixtures" / "compliant" / "arm"
    cc = json.loads((arm / "nsg-cyclecloud.json").read_text())
    block = next(r for r in cc["properties"]["securityRules"] if r["name"] == "BlockOutbound")
    block["properties"]["destinationAddressPrefix"] = "*"
    docs = [json.loads((arm / name).read_text()) for name in ("vnet.json", "nsg-cluster.json", "nics.json")]
    inventory = merge_inventories(*(parse_document(d, where="fixture") for d in [*docs, cc]))
    result = assess(inventory, BASELINE)
    nsg = next(n for n in inventory.nsgs if n.name == "nsg-cyclecloud")
    plan = next(p for p in result.plans if p.nsg_id.lower() == nsg.key)
    assert plan.is_empty, ([r.name for r in plan.added], [r.name for r in plan.replaced])
    after = planned_nsg(nsg, plan)
    u = Universe.of(EvaluationContext(), [*nsg.security_rules, *after.security_rules])
    assert allowed_flows(u, after, Direction.OUTBOUND).issubset(allowed_flows(u, nsg, Direction.OUTBOUND))
    (finding,) = [f for f in result.findings if f.nsg.lower() == nsg.key]
    assert not finding.remediable
    assert "never widens" in finding.reason
