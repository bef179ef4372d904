"""Where CycleCloud is and which flows are required, on networks shaped like Microsoft's deployments.

Each expected verdict is written by hand from Azure's rules (first match by
priority, the default rules, VirtualNetwork = the VNet's address space,
inbound subnet then NIC, outbound NIC then subnet); the reason is beside it.
"""

from __future__ import annotations

import ipaddress
from dataclasses import replace

from remediation.assess import Assessment, assess
from remediation.baseline import Baseline, FlowEndpoint, FlowRequirement, Role
from remediation.findings import FindingKind
from remediation.model import Direction, Inventory, NetworkSecurityGroup, PortRange, Prefix, Protocol, SecurityRule
from remediation.network import Network
from remediation.required_flows import LocatedBy, required_flows
from tests.support.core import BASELINE_RULES, cyclecloud_baseline, nsg, rule
from tests.support.networks import (
    ARM_SUBNET_CC,
    ARM_SUBNET_OTHER,
    NET,
    NIC_NSG,
    SHARED,
    SUBNET_ANF,
    SUBNET_CC,
    SUBNET_COMPUTE,
    ccws,
    ccws_rules,
    nic_level,
)

BASELINE = cyclecloud_baseline()
USER_NSG = f"{NET}/networkSecurityGroups/nsg-user"
FLOWS_ONLY = replace(BASELINE, rules=(), service_endpoints=())


def blocked(result: Assessment) -> set[tuple[str, str, str | None, str]]:
    """(requirement, NSG name, deciding rule, from subnet) of each port_blocked."""
    return {
        (f.requirement, f.nsg.rsplit("/", 1)[-1], f.rule, (f.subnet or "").rsplit("/", 1)[-1])
        for f in result.findings
        if f.kind is FindingKind.PORT_BLOCKED
    }


def without(name: str) -> tuple[SecurityRule, ...]:
    return tuple(r for r in ccws_rules() if r.name != name)


# --------------------------------------------------------------------------- locating CycleCloud


def test_tagged_nic_locates_cyclecloud_and_delegated_subnets_hold_no_nodes() -> None:
    required = required_flows(Network(ccws()), FLOWS_ONLY)
    assert required.located_by is LocatedBy.NIC_TAG
    assert [e.addresses for e in required.cyclecloud] == [(Prefix(ipaddress.ip_network("10.0.0.4/32")),)]
    # cyclecloud is where CycleCloud lives; hpc-anf-subnet is delegated to NetApp: only compute holds nodes.
    assert [s.id for s in required.node_subnets] == [SUBNET_COMPUTE]
    assert SUBNET_ANF not in {s.id for s in required.node_subnets}
    assert SUBNET_CC not in {s.id for s in required.node_subnets}
    directions = {(leg.requirement.name, leg.direction) for leg in required.legs}
    assert directions == {(n, d) for n in ("amqp_5672", "https_9443") for d in Direction}


def test_baseline_addresses_locate_cyclecloud_without_a_tagged_nic() -> None:
    baseline = replace(FLOWS_ONLY, cyclecloud_addresses=(Prefix(ipaddress.ip_network("10.0.0.4/32"), "10.0.0.4"),))
    required = required_flows(Network(ccws(tagged=False)), baseline)
    assert required.located_by is LocatedBy.BASELINE
    assert required.unlocated == ()
    assert [e.subnet.id for e in required.cyclecloud if e.subnet] == [SUBNET_CC]
    assert blocked(assess(ccws(tagged=False), baseline)) == set()


def test_nic_of_a_cyclecloud_nsg_locates_cyclecloud() -> None:
    required = required_flows(Network(nic_level()), FLOWS_ONLY)
    assert required.located_by is LocatedBy.NSG_NIC
    assert [e.label for e in required.cyclecloud] == ["CycleCloud (NIC 'cycleserver-nic', 10.1.0.4)"]


# --------------------------------------------------------------------------- CycleCloud Workspace for Slurm


def test_ccws_as_deployed_passes_the_required_path() -> None:
    # compute -> 10.0.0.4: outbound 320 allows (10.0.0.4 is in asg-cyclecloud), inbound 460 allows.
    result = assess(ccws(), FLOWS_ONLY)
    assert result.findings == ()
    assert result.not_judged == ()


def test_ccws_without_rule_460_is_blocked_inbound() -> None:
    # Inbound from compute now falls to DenyVnetInbound 3100 (both ends are in VirtualNetwork).
    result = assess(ccws(rules=without("AllowCycleClientComputeIn")), FLOWS_ONLY)
    assert blocked(result) == {
        ("amqp_5672", "nsg-ccws", "DenyVnetInbound", "compute"),
        ("https_9443", "nsg-ccws", "DenyVnetInbound", "compute"),
    }
    assert all("denied inbound" in f.message and "subnet level" in f.message for f in result.findings)


def test_ccws_without_rule_320_is_blocked_outbound() -> None:
    # Outbound from compute falls to DenyVnetOutbound 3100.
    result = assess(ccws(rules=without("AllowComputeCycleClientIn")), FLOWS_ONLY)
    assert blocked(result) == {
        ("amqp_5672", "nsg-ccws", "DenyVnetOutbound", "compute"),
        ("https_9443", "nsg-ccws", "DenyVnetOutbound", "compute"),
    }
    assert all("denied outbound" in f.message for f in result.findings)


def test_ccws_nic_out_of_asg_cyclecloud_is_blocked() -> None:
    # 320 and 460 name asg-cyclecloud; 10.0.0.4 is no longer in it: leaving compute meets
    # DenyVnetOutbound 3100, entering cyclecloud meets DenyVnetInbound 3100 (each leg on its own).
    result = assess(ccws(in_asg=False), FLOWS_ONLY)
    assert blocked(result) == {
        (flow, "nsg-ccws", deny, "compute")
        for flow in ("amqp_5672", "https_9443")
        for deny in ("DenyVnetOutbound", "DenyVnetInbound")
    }


def test_ccws_deny_9443_above_460_is_blocked() -> None:
    deny = rule("DenyWeb", 400, direction="Inbound", access="Deny", dport="9443")
    result = assess(ccws(rules=(*ccws_rules(), deny)), FLOWS_ONLY)
    assert blocked(result) == {("https_9443", "nsg-ccws", "DenyWeb", "compute")}


def test_ccws_breaks_change_the_finding_keys() -> None:
    # Defect 2: a real break must not look like the healthy network to the alert policy.
    healthy = {f.key for f in assess(ccws(), BASELINE).findings}
    for broken in (ccws(rules=without("AllowCycleClientComputeIn")), ccws(in_asg=False)):
        assert {f.key for f in assess(broken, BASELINE).findings} - healthy


def test_ccws_untagged_reports_location_unknown_once_and_nothing_guessed() -> None:
    result = assess(ccws(tagged=False, rules=without("AllowCycleClientComputeIn")), FLOWS_ONLY)
    assert [(f.kind, f.nsg, f.remediable) for f in result.findings] == [
        (FindingKind.CYCLECLOUD_LOCATION_UNKNOWN, SHARED, False)
    ]
    assert "az network nic update" in result.findings[0].reason
    assert [u.requirement for u in result.not_judged] == ["amqp_5672", "https_9443"]


def test_ccws_host_never_required_to_reach_itself() -> None:
    # A second NIC in the CycleCloud subnet is not a node: nothing from cyclecloud to 10.0.0.4.
    required = required_flows(Network(ccws()), FLOWS_ONLY)
    assert all(leg.source.subnet is None or leg.source.subnet.id != SUBNET_CC for leg in required.legs)


# --------------------------------------------------------------------------- the NSG on CycleCloud's NIC


def test_nic_level_nsg_judged_for_its_own_nic_only() -> None:
    # Defect 3: a deny toward another subnet (10.1.2.0/24) on the CycleCloud NIC's NSG touches
    # none of the node -> CycleCloud traffic (replies are stateful): no port_blocked.
    deny = rule("DenyUserSubnet", 200, access="Deny", protocol="*", dst="10.1.2.0/24")
    deny_in = rule("DenyUserIn", 200, direction="Inbound", access="Deny", protocol="*", src="10.1.2.0/24")
    assert assess(nic_level(nic_rules=(deny, deny_in)), BASELINE).findings == ()


def test_nic_level_nsg_blocking_the_nodes_says_nic_level() -> None:
    deny = rule("DenyNodesWeb", 200, direction="Inbound", access="Deny", src="10.1.1.0/24", dport="9443")
    result = assess(nic_level(nic_rules=(deny,)), BASELINE)
    assert blocked(result) == {("https_9443", "cyclecloud-nsg", "DenyNodesWeb", "compute")}
    (finding,) = result.findings
    assert "at the NIC level (NIC cycleserver-nic)" in finding.message
    assert "subnet level" not in finding.message


def test_nic_level_nsg_checks_its_nics_subnet_for_the_storage_endpoint() -> None:
    result = assess(nic_level(cc_endpoints=()), BASELINE)
    assert [(f.kind, f.nsg, f.subnet) for f in result.findings] == [
        (FindingKind.SERVICE_ENDPOINT_MISSING, NIC_NSG, ARM_SUBNET_CC)
    ]


# --------------------------------------------------------------------------- nothing to judge is said


def test_cyclecloud_nsg_alone_names_what_was_not_judged() -> None:
    # Defect 6: an NSG with no VNet and no cluster NSG cannot say anything about the nodes' path.
    deny = rule("DenyNodesWeb", 200, direction="Inbound", access="Deny", src="10.1.1.0/24", dport="9443")
    group = nsg(*BASELINE_RULES, deny)
    result = assess(Inventory(nsgs=(group,)), BASELINE)
    assert result.findings == ()
    reasons = {u.requirement: u.reason for u in result.not_judged}
    assert set(reasons) == {"amqp_5672", "https_9443"}
    assert all("no node subnet is known" in r or "unknown" in r for r in reasons.values())
    assert result.to_json()["notJudged"]


def test_deny_all_inbound_with_an_allow_from_the_nodes_is_no_false_alarm() -> None:
    # DenyAllInBound (priority 3000 here) behind an allow from the nodes' prefix: the nodes pass.
    allow = rule("AllowNodes", 200, direction="Inbound", src="10.1.1.0/24", dport="5672,9443")
    deny_all = rule("DenyAll", 3000, direction="Inbound", access="Deny", protocol="*")
    assert blocked(assess(nic_level(nic_rules=(allow, deny_all)), BASELINE)) == set()


def test_required_flows_touch_only_nsgs_on_their_path() -> None:
    inventory = nic_level()
    required = required_flows(Network(inventory), BASELINE)
    cc = next(n for n in inventory.nsgs if n.key == NIC_NSG.lower())
    inbound = [leg for leg in required.legs_of(cc) if leg.direction is Direction.INBOUND]
    assert {(leg.subnet_nsg, leg.nic_nsg.name if leg.nic_nsg else None) for leg in inbound} == {
        (None, "cyclecloud-nsg")
    }
    assert all(leg.destination.subnet and leg.destination.subnet.id == ARM_SUBNET_CC for leg in inbound)


# --------------------------------------------------------------------------- address flows, both ways


def _return_proxy(address: str) -> Baseline:
    """The baseline with the ReturnProxy option: CycleCloud -> ``address`` on SSH instead of the node flows."""
    ssh = FlowRequirement(
        "return_proxy_ssh",
        Protocol.TCP,
        (PortRange(22, 22),),
        FlowEndpoint(role=Role.CYCLECLOUD),
        FlowEndpoint(addresses=(Prefix(ipaddress.ip_network(address), address),)),
    )
    return replace(BASELINE, flows=(ssh,))


def _with_user_nsg(inventory: Inventory, *rules: SecurityRule) -> Inventory:
    """An untagged NSG on the user subnet (10.1.2.0/24), where the ReturnProxy VM lives."""
    user_nsg = NetworkSecurityGroup(id=USER_NSG, name="nsg-user", security_rules=rules)
    vnets = tuple(
        replace(v, subnets=tuple(replace(s, nsg_id=USER_NSG) if s.id == ARM_SUBNET_OTHER else s for s in v.subnets))
        for v in inventory.vnets
    )
    return replace(inventory, nsgs=(*inventory.nsgs, user_nsg), vnets=vnets)


def test_address_flow_is_checked_inbound_at_the_address_too() -> None:
    # Defect 5: a flow to {addresses} skipped the inbound check. The ReturnProxy 10.1.2.10 sits in
    # the user subnet, whose (untagged) NSG denies SSH from CycleCloud's 10.1.0.4: blocked inbound.
    deny = rule("DenySsh", 200, direction="Inbound", access="Deny", src="10.1.0.0/24", dport="22")
    result = assess(_with_user_nsg(nic_level(), deny), _return_proxy("10.1.2.10"))
    assert blocked(result) == {("return_proxy_ssh", "nsg-user", "DenySsh", "cycle")}
    assert "denied inbound" in result.findings[0].message


def test_address_flow_is_checked_outbound_from_cyclecloud() -> None:
    deny = rule("NoSshOut", 200, access="Deny", dst="10.1.2.0/24", dport="22")
    result = assess(nic_level(nic_rules=(deny,)), _return_proxy("10.1.2.10"))
    assert blocked(result) == {("return_proxy_ssh", "cyclecloud-nsg", "NoSshOut", "cycle")}
    assert "at the NIC level" in result.findings[0].message


def test_address_outside_the_input_is_said_not_judged_inbound() -> None:
    # 192.168.7.7 is in no subnet of the input: its inbound side is not judged (said so). Outbound,
    # it is neither VirtualNetwork nor Internet, so CycleCloud's NIC NSG drops it by DenyAllOutBound.
    result = assess(nic_level(), _return_proxy("192.168.7.7"))
    assert [(f.requirement, f.rule, f.default_rule) for f in result.findings] == [
        ("return_proxy_ssh", "DenyAllOutBound", True)
    ]
    assert [u.requirement for u in result.not_judged] == ["return_proxy_ssh"]
    assert "no subnet or NIC in the input holds" in result.not_judged[0].reason


def test_a_node_subnet_whose_hosts_are_in_no_client_asg_is_said_so() -> None:
    # az-hop's ad subnet is a node subnet by the tag, but its hosts are in AD ASGs only: none is
    # taken for a node, and the report says so instead of staying silent.
    import json
    from pathlib import Path

    from remediation.parse import parse_document

    path = Path(__file__).parent / "fixtures" / "real" / "azhop" / "as-deployed.json"
    inventory = parse_document(json.loads(path.read_text()), where=str(path))
    result = assess(inventory, BASELINE)
    notes = [u.reason for u in result.not_judged if u.requirement == "amqp_5672"]
    assert any(n.startswith("node subnet 'ad'") for n in notes), notes
    assert not any("'compute'" in n for n in notes)
