"""NsgReview: requirements judged by meaning (portions), problems with their deciding rules."""

from __future__ import annotations

import ipaddress
from dataclasses import replace

import pytest

from remediation.baseline import Role
from remediation.evaluate import Flows
from remediation.findings import FindingKind
from remediation.model import (
    Direction,
    Inventory,
    NetworkInterface,
    NetworkSecurityGroup,
    Protocol,
    SecurityRule,
    Subnet,
    VirtualNetwork,
)
from remediation.network import Network
from remediation.review import NsgReview
from remediation.tags import CONTAINMENT
from tests.support.core import BASELINE_RULES, RG, addr, cyclecloud_baseline, nsg, ports, rule

BASELINE = cyclecloud_baseline()
STORAGE, AAD, MONITOR, ARM, BLOCK = BASELINE_RULES
REQ = {r.name: r for r in BASELINE.rules}


def review(*rules: SecurityRule, inventory: Inventory | None = None) -> NsgReview:
    group = nsg(*rules)
    network = Network(inventory or Inventory(nsgs=(group,)))
    return NsgReview(network, group, frozenset({Role.CYCLECLOUD}), BASELINE, CONTAINMENT)


def problems(*rules: SecurityRule) -> set[tuple[str, str, str | None]]:
    return {(p.kind.value, p.requirement, p.rule.name if p.rule else None) for p in review(*rules).problems()}


# --------------------------------------------------------------------------- portions


def test_portion_of_block_outbound_excludes_the_allow_list() -> None:
    r = review(*BASELINE_RULES)
    block = r.portion(REQ["BlockOutbound"])
    u = r.universe
    assert not block.overlaps(u.flows(Flows(Protocol.TCP, (addr("*"),), (addr("Storage"),), ports("443"))))
    assert u.flows(Flows(Protocol.UDP, (addr("*"),), (addr("Storage"),), ports("443"))).issubset(block)
    assert u.flows(Flows(Protocol.TCP, (addr("*"),), (addr("Internet"),), ports("80"))).issubset(block)
    assert not block.overlaps(u.flows(Flows(Protocol.ANY, (addr("*"),), (addr("VirtualNetwork"),))))


def test_allowlist_is_the_union_of_allow_portions() -> None:
    r = review(*BASELINE_RULES)
    allow = r.allowlist(Direction.OUTBOUND)
    assert allow.describe() == "TCP/443"
    assert r.allowlist(Direction.INBOUND).is_empty
    for name in ("AllowAzureStorage", "AllowActiveDirectory", "AllowAzureMonitor", "AllowAzureRM"):
        assert r.scoped_portion(REQ[name]).issubset(allow)


def test_compliant_has_no_problems_and_every_requirement_is_satisfied() -> None:
    r = review(*BASELINE_RULES)
    assert r.problems() == []
    assert all(r.satisfied(r.nsg, req) for req in BASELINE.rules)


# --------------------------------------------------------------------------- by meaning, not by name


@pytest.mark.parametrize(
    "equivalent",
    [
        rule("Renamed", 100, dst="Storage", dport="443"),
        rule("SpelledOtherwise", 100, dst="storage", dport="443-443"),
        rule("AmongOthers", 100, dst="Storage", dport="80,443"),  # wider: satisfies, but breaches
        rule("TwoHalvesA", 100, dst="Storage", dport="443", sport="0-1023"),
    ],
)
def test_requirement_satisfied_by_another_name(equivalent: SecurityRule) -> None:
    kinds = {k for k, req, _ in problems(equivalent, AAD, MONITOR, ARM, BLOCK) if req == "AllowAzureStorage"}
    if equivalent.name == "TwoHalvesA":
        assert kinds == {"missing_rule"}  # only part of the sources' ports: not enough alone
    else:
        assert kinds == set()


def test_requirement_satisfied_without_a_rule_when_nothing_denies() -> None:
    # With BlockOutbound gone, Storage TCP/443 passes by AllowInternetOutBound: AllowAzureStorage is met.
    found = problems(AAD, MONITOR, ARM)
    assert ("missing_rule", "BlockOutbound", "AllowInternetOutBound") in found
    assert not any(req == "AllowAzureStorage" for _, req, _ in found)


def test_deny_requirement_met_by_a_broader_deny() -> None:
    broader = rule("DenyEverythingOut", 4000, access="Deny", protocol="*", dst="*")
    assert problems(STORAGE, AAD, MONITOR, ARM, broader) == set()


# --------------------------------------------------------------------------- the problem kinds


def test_missing_names_the_rule_deciding_now() -> None:
    (p,) = review(AAD, MONITOR, ARM, BLOCK).problems()
    assert (p.kind, p.requirement, p.rule.name if p.rule else None) == (
        FindingKind.MISSING_RULE,
        "AllowAzureStorage",
        "BlockOutbound",
    )
    assert "decided now by rule 'BlockOutbound' (priority 4000)" in p.detail


def test_modified_names_the_rule_and_what_changed() -> None:
    drifted = rule("AllowAzureStorage", 100, access="Deny", dst="Storage", dport="443")
    (p,) = review(drifted, AAD, MONITOR, ARM, BLOCK).problems()
    assert (p.kind, p.rule) == (FindingKind.MODIFIED_RULE, drifted)
    assert "TCP/443" in p.detail


def test_shadowed_names_the_overriding_rule() -> None:
    shadow = rule("DenyStorageUdpTcp", 100, access="Deny", protocol="*", dst="Storage")
    moved = rule("AllowAzureStorage", 105, dst="Storage", dport="443")
    (p,) = review(shadow, moved, AAD, MONITOR, ARM, BLOCK).problems()
    assert (p.kind, p.requirement, p.rule) == (FindingKind.SHADOWED_RULE, "AllowAzureStorage", shadow)
    assert "'DenyStorageUdpTcp' (priority 100) overrides AllowAzureStorage" in p.detail


def test_block_shadowed_by_human_allow_is_shadowed_and_breach() -> None:
    allow = rule("AllowWeb", 200, dst="Internet", dport="80")
    assert problems(*BASELINE_RULES, allow) == {
        ("shadowed_rule", "BlockOutbound", "AllowWeb"),
        ("lockdown_breach", "BlockOutbound", "AllowWeb"),
    }


def test_breach_names_every_allowing_rule_and_what_it_allows() -> None:
    r = review(*BASELINE_RULES[:4], rule("AllowWeb", 200, dst="Internet", dport="80"))
    breaches = {p.rule.name: p.detail for p in r.problems() if p.kind is FindingKind.LOCKDOWN_BREACH and p.rule}
    assert set(breaches) == {"AllowWeb", "AllowInternetOutBound"}
    assert "TCP/80" in breaches["AllowWeb"]


def test_allow_to_private_space_is_not_a_breach() -> None:
    assert problems(*BASELINE_RULES, rule("AllowCorp", 200, protocol="*", dst="10.0.0.0/8")) == set()


def test_inbound_rules_never_breach_the_outbound_lockdown() -> None:
    inbound = rule("AllowSshIn", 200, direction="Inbound", src="Internet", dport="22")
    assert problems(*BASELINE_RULES, inbound) == set()


def test_problems_of_a_planned_nsg_are_judged_in_the_same_universe() -> None:
    r = review(AAD, MONITOR, ARM, BLOCK)
    fixed = NetworkSecurityGroup(id=r.nsg.id, name=r.nsg.name, security_rules=BASELINE_RULES)
    assert r.problems(fixed) == []


# --------------------------------------------------------------------------- flows and attachments


SUBNET_CC = f"{RG}/providers/Microsoft.Network/virtualNetworks/vnet/subnets/cyclecloud"
SUBNET_NODES = f"{RG}/providers/Microsoft.Network/virtualNetworks/vnet/subnets/nodes"


def network(
    cc: NetworkSecurityGroup, cluster: NetworkSecurityGroup, *, endpoints: tuple[str, ...] = ("Microsoft.Storage",)
) -> Inventory:
    vnet = VirtualNetwork(
        id=f"{RG}/providers/Microsoft.Network/virtualNetworks/vnet",
        name="vnet",
        address_space=(ipaddress.ip_network("10.20.0.0/16"),),
        subnets=(
            Subnet(SUBNET_CC, "cyclecloud", (ipaddress.ip_network("10.20.1.0/24"),), cc.id, endpoints),
            Subnet(SUBNET_NODES, "nodes", (ipaddress.ip_network("10.20.2.0/24"),), cluster.id, endpoints),
        ),
    )
    nic = NetworkInterface(
        id=f"{RG}/providers/Microsoft.Network/networkInterfaces/node1",
        name="node1",
        subnet_ids=(SUBNET_NODES,),
        private_ips=(ipaddress.ip_address("10.20.2.4"),),
    )
    return Inventory(nsgs=(cc, cluster), vnets=(vnet,), nics=(nic,))


def test_legs_per_nsg_and_direction() -> None:
    cc = nsg(*BASELINE_RULES)
    cluster = nsg(name="nsg-nodes", role="cluster")
    inv = network(cc, cluster)
    net = Network(inv)
    cc_review = NsgReview(net, cc, net.roles(cc), BASELINE, CONTAINMENT)
    cluster_review = NsgReview(net, cluster, net.roles(cluster), BASELINE, CONTAINMENT)
    # Each review sees every leg starting or ending in what it guards: both directions of both flows.
    legs = {
        (leg.requirement.name, leg.direction, leg.subnet_nsg.name if leg.subnet_nsg else None) for leg in cc_review.legs
    }
    assert legs == {
        ("amqp_5672", Direction.INBOUND, "nsg-cyclecloud"),
        ("https_9443", Direction.INBOUND, "nsg-cyclecloud"),
        ("amqp_5672", Direction.OUTBOUND, "nsg-nodes"),
        ("https_9443", Direction.OUTBOUND, "nsg-nodes"),
    }
    assert {(leg.requirement.name, leg.direction) for leg in cluster_review.legs} == {
        (name, d) for name in ("amqp_5672", "https_9443") for d in Direction
    }
    leg = next(c for c in cc_review.legs if c.requirement.name == "https_9443" and c.direction is Direction.INBOUND)
    assert [a.to_arm() for a in leg.flows.sources] == ["10.20.2.0/24"]
    assert [a.to_arm() for a in leg.flows.destinations] == ["10.20.1.0/24"]
    assert cc_review.problems() == []
    assert cluster_review.problems() == []


def test_port_blocked_inbound_by_the_reviewed_nsg() -> None:
    cc = nsg(
        *BASELINE_RULES, rule("DenyNodes", 300, direction="Inbound", access="Deny", src="10.20.2.0/24", dport="5672")
    )
    inv = network(cc, nsg(name="nsg-nodes", role="cluster"))
    net = Network(inv)
    found = NsgReview(net, cc, net.roles(cc), BASELINE, CONTAINMENT).problems()
    assert [(p.kind, p.requirement, p.rule.name if p.rule else None) for p in found] == [
        (FindingKind.PORT_BLOCKED, "amqp_5672", "DenyNodes")
    ]
    assert "subnet level" in found[0].detail


def test_detached_and_missing_endpoint_problems() -> None:
    cc = nsg(*BASELINE_RULES)
    cc = NetworkSecurityGroup(
        id=cc.id, name=cc.name, tags=cc.tags, security_rules=cc.security_rules, subnet_ids=(SUBNET_CC,)
    )
    inv = network(nsg(name="nsg-other", role=None), nsg(name="nsg-nodes", role="cluster"), endpoints=())
    inv = Inventory(nsgs=(*inv.nsgs, cc), vnets=inv.vnets, nics=inv.nics)
    net = Network(inv)
    found = NsgReview(net, cc, net.roles(cc), BASELINE, CONTAINMENT).problems()
    kinds = sorted((p.kind.value, p.subnet_id) for p in found)
    assert kinds == [("nsg_detached", SUBNET_CC)]
    nodes = next(n for n in inv.nsgs if n.name == "nsg-nodes")
    nodes_found = NsgReview(net, nodes, net.roles(nodes), BASELINE, CONTAINMENT).problems()
    assert [(p.kind.value, p.requirement, p.subnet_id) for p in nodes_found] == [
        ("service_endpoint_missing", "Microsoft.Storage", SUBNET_NODES)
    ]


# --------------------------------------------------------------------------- meaning in context


def test_virtualnetwork_source_satisfies_a_star_source_requirement() -> None:
    # Defect 4: no packet leaving a subnet of the VNet has a source outside VirtualNetwork, so
    # "from VirtualNetwork" means the baseline's "from *" there: neither modified nor missing.
    vnet_rules = tuple(replace(r, sources=(addr("VirtualNetwork"),)) for r in BASELINE_RULES)
    assert problems(*vnet_rules) == set()


def test_virtualnetwork_source_still_judged_on_what_it_matches() -> None:
    # The same rule narrowed to port 80 under the baseline's name is still modified.
    narrowed = replace(ARM, sources=(addr("VirtualNetwork"),), destination_ports=ports("80"))
    assert ("modified_rule", "AllowAzureRM", "AllowAzureRM") in problems(STORAGE, AAD, MONITOR, narrowed, BLOCK)


def test_shadowed_by_meaning_whatever_the_name() -> None:
    # Defect 7: AllowAzureRM under another name, overridden by a higher-priority deny, is shadowed
    # just as it is under its own name, with the same message.
    deny = rule("DenyArm", 90, access="Deny", dst="AzureResourceManager", dport="443")
    renamed = replace(ARM, name="PermitArm")
    same = review(STORAGE, AAD, MONITOR, ARM, BLOCK, deny).problems()
    other = review(STORAGE, AAD, MONITOR, renamed, BLOCK, deny).problems()
    assert [(p.kind, p.requirement, p.rule.name if p.rule else None) for p in same] == [
        (FindingKind.SHADOWED_RULE, "AllowAzureRM", "DenyArm")
    ]
    assert [(p.kind, p.requirement, p.rule.name if p.rule else None) for p in other] == [
        (FindingKind.SHADOWED_RULE, "AllowAzureRM", "DenyArm")
    ]
    assert same[0].detail.startswith("rule 'DenyArm' (priority 90) overrides AllowAzureRM")
    assert other[0].detail.startswith("rule 'DenyArm' (priority 90) overrides AllowAzureRM")
