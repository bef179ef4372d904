"""assess() end to end on the CycleCloud network fixtures and the ARM REST examples.

Uses the shipped baseline YAML (remediation/baselines/cyclecloud.yaml via
load_baseline), so these tests also pin what the packaged default requires.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from remediation.assess import Assessment, assess
from remediation.baseline import Role
from remediation.baseline_file import load_baseline
from remediation.evaluate import DEFAULT_CONTEXT, Flows, Universe, Verdict, evaluate_nsg
from remediation.findings import FindingKind, Severity
from remediation.model import Direction, Inventory, NetworkSecurityGroup, PortRange, Protocol, SecurityRule
from remediation.parse import merge_inventories, parse_document
from remediation.plan import planned_nsg
from tests.support.core import addr, ports, rule

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
REST = ROOT / "reference" / "arm-rest-spec"
BASELINE = load_baseline()


def load(*paths: str) -> Inventory:
    return merge_inventories(*(parse_document(json.loads((FIXTURES / p).read_text()), where=p) for p in paths))


def compliant(form: str = "arm") -> Inventory:
    return load(*(f"compliant/{form}/{n}.json" for n in ("vnet", "nsg-cyclecloud", "nsg-cluster", "nics")))


def found(result: Assessment) -> set[tuple[str, str, str | None, bool]]:
    return {(f.kind.value, f.requirement, f.rule, f.remediable) for f in result.findings}


def with_nsg(inventory: Inventory, group: NetworkSecurityGroup) -> Inventory:
    nsgs = (*(n for n in inventory.nsgs if n.key != group.key), group)
    return replace(inventory, nsgs=nsgs)


def nsg_named(inventory: Inventory, name: str) -> NetworkSecurityGroup:
    return next(n for n in inventory.nsgs if n.name == name)


def add_rules(inventory: Inventory, name: str, *rules: SecurityRule) -> Inventory:
    group = nsg_named(inventory, name)
    return with_nsg(inventory, replace(group, security_rules=group.security_rules + rules))


def reassess(inventory: Inventory, result: Assessment) -> Assessment:
    """Apply every plan, then assess again."""
    for plan in result.plans:
        group = next(n for n in inventory.nsgs if n.key == plan.nsg_id.lower())
        inventory = with_nsg(inventory, planned_nsg(group, plan))
    return assess(inventory, BASELINE)


# --------------------------------------------------------------------------- compliant


@pytest.mark.parametrize("form", ["arm", "az"])
def test_compliant_network_has_no_findings_and_empty_plans(form: str) -> None:
    result = assess(compliant(form), BASELINE)
    assert result.findings == ()
    assert all(p.is_empty for p in result.plans)
    assert {p.nsg_name for p in result.plans} == {"nsg-cyclecloud", "nsg-cluster"}
    assert result.to_json() == {"findings": [], "plans": [], "notJudged": []}


def test_unmanaged_nsgs_are_ignored_unless_roles_are_given() -> None:
    inv = compliant()
    untagged = Inventory(nsgs=tuple(replace(n, tags={}) for n in inv.nsgs), vnets=inv.vnets, nics=inv.nics)
    assert assess(untagged, BASELINE).plans == ()
    forced = assess(untagged, BASELINE, roles=frozenset({Role.CYCLECLOUD}))
    assert {p.nsg_name for p in forced.plans} == {"nsg-cyclecloud", "nsg-cluster"}
    # nsg-cluster judged as a CycleCloud NSG lacks the five outbound rules.
    assert {f.requirement for f in forced.findings if f.kind is FindingKind.MISSING_RULE} >= {"BlockOutbound"}


# --------------------------------------------------------------------------- broken fixtures, one per kind


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        (
            "broken/nsg-cyclecloud-missing-storage.json",
            {("missing_rule", "AllowAzureStorage", "BlockOutbound", True)},
        ),
        (
            "broken/nsg-cyclecloud-azurerm-port-80.json",
            {
                ("modified_rule", "AllowAzureRM", "AllowAzureRM", True),
                ("lockdown_breach", "BlockOutbound", "AllowAzureRM", True),
            },
        ),
        (
            "broken/nsg-cyclecloud-allow-any-out.json",
            {
                ("lockdown_breach", "BlockOutbound", "AllowAnyOut", False),
                ("shadowed_rule", "BlockOutbound", "AllowAnyOut", False),
            },
        ),
        (
            "broken/nsg-cyclecloud-deny-9443.json",
            {("port_blocked", "https_9443", "DenyNodes9443", False)},
        ),
    ],
)
def test_broken_fixtures(fixture: str, expected: set[tuple[str, str, str | None, bool]]) -> None:
    inventory = merge_inventories(compliant(), load(fixture))
    result = assess(inventory, BASELINE)
    assert found(result) == expected
    after = reassess(inventory, result)
    assert not after.remediable
    assert found(after) == {f for f in expected if not f[3]}  # only what people must fix stays


def test_finding_json_contract() -> None:
    inventory = merge_inventories(compliant(), load("broken/nsg-cyclecloud-deny-9443.json"))
    body = assess(inventory, BASELINE).to_json()
    # One finding per node subnet whose path is blocked: compute and hpc.
    assert [f["subnet"].rsplit("/", 1)[-1] for f in body["findings"]] == ["compute", "hpc"]
    finding = body["findings"][0]
    assert set(finding) >= {"kind", "requirement", "nsg", "rule", "remediable", "severity", "message"}
    assert finding["kind"] == "port_blocked"
    assert finding["severity"] == Severity.CRITICAL.value
    assert finding["nsg"].endswith("/networkSecurityGroups/nsg-cyclecloud")
    assert "9443" in finding["message"]
    assert "DenyNodes9443" in finding["message"]
    assert finding["reason"]
    assert body["plans"] == []


# --------------------------------------------------------------------------- port_blocked at every level


def _nic_nsg(name: str, *rules: SecurityRule) -> NetworkSecurityGroup:
    base = nsg_named(compliant(), "nsg-cyclecloud")
    return NetworkSecurityGroup(
        id=base.id.rsplit("/", 1)[0] + "/" + name, name=name, location="westeurope", security_rules=rules
    )


def _attach_nic_nsg(inventory: Inventory, nic_name: str, group: NetworkSecurityGroup) -> Inventory:
    nics = tuple(replace(n, nsg_id=group.id) if n.name == nic_name else n for n in inventory.nics)
    return replace(inventory, nsgs=(*inventory.nsgs, group), nics=nics)


def test_nic_level_nsg_blocks_inbound_to_cyclecloud() -> None:
    # The subnet NSG allows the nodes (AllowVnetInBound); the CycleCloud VM's NIC NSG denies 9443.
    nic_nsg = _nic_nsg("nsg-cc-nic", rule("DenyAmqpAndWeb", 200, direction="Inbound", access="Deny", dport="9443"))
    inventory = _attach_nic_nsg(compliant(), "cyclecloud-vm-nic", nic_nsg)
    result = assess(inventory, BASELINE)
    assert len(result.findings) == 2  # from compute and from hpc
    finding = result.findings[0]
    assert (finding.kind, finding.requirement, finding.rule, finding.nsg) == (
        FindingKind.PORT_BLOCKED,
        "https_9443",
        "DenyAmqpAndWeb",
        nic_nsg.id,
    )
    assert "NIC level (NIC cyclecloud-vm-nic)" in finding.message
    assert "cyclecloud-vm-nic" in finding.message
    assert not finding.remediable
    assert "not owned by the baseline" in finding.reason


def test_nic_level_nsg_blocks_outbound_from_nodes() -> None:
    nic_nsg = _nic_nsg("nsg-node-nic", rule("NoAmqp", 300, access="Deny", dport="5672", dst="10.10.1.0/24"))
    inventory = _attach_nic_nsg(compliant(), "compute-node-1-nic", nic_nsg)
    result = assess(inventory, BASELINE)
    assert found(result) == {("port_blocked", "amqp_5672", "NoAmqp", False)}
    (finding,) = result.findings
    assert finding.nsg == nic_nsg.id
    assert "outbound" in finding.message


def test_nic_nsg_without_the_vnet_rule_blocks_by_default_rule() -> None:
    # A NIC NSG whose own custom rule denies the whole VNet inbound leaves DenyAllInBound... named.
    nic_nsg = _nic_nsg(
        "nsg-cc-nic", rule("DenyVnet", 100, direction="Inbound", access="Deny", protocol="*", src="VirtualNetwork")
    )
    result = assess(_attach_nic_nsg(compliant(), "cyclecloud-vm-nic", nic_nsg), BASELINE)
    assert found(result) == {
        ("port_blocked", "amqp_5672", "DenyVnet", False),
        ("port_blocked", "https_9443", "DenyVnet", False),
    }


def test_cluster_subnet_nsg_blocks_outbound() -> None:
    deny = rule("DenyToCycleCloud", 100, access="Deny", protocol="*", dst="10.10.1.0/24")
    result = assess(add_rules(compliant(), "nsg-cluster", deny), BASELINE)
    assert found(result) == {
        ("port_blocked", "amqp_5672", "DenyToCycleCloud", False),
        ("port_blocked", "https_9443", "DenyToCycleCloud", False),
    }
    assert all(f.nsg.endswith("nsg-cluster") for f in result.findings)


def test_partly_blocked_port_range_is_still_blocked() -> None:
    deny = rule("DenySome", 100, direction="Inbound", access="Deny", src="10.10.3.0/24", dport="5672")
    result = assess(add_rules(compliant(), "nsg-cyclecloud", deny), BASELINE)
    assert found(result) == {("port_blocked", "amqp_5672", "DenySome", False)}


# --------------------------------------------------------------------------- attachments and endpoints


def _edit_subnet(inventory: Inventory, subnet_name: str, **changes: Any) -> Inventory:
    vnets = tuple(
        replace(v, subnets=tuple(replace(s, **changes) if s.name == subnet_name else s for s in v.subnets))
        for v in inventory.vnets
    )
    return replace(inventory, vnets=vnets)


def test_nsg_detached_from_its_subnet() -> None:
    inventory = _edit_subnet(compliant(), "compute", nsg_id=None)
    result = assess(inventory, BASELINE)
    detached = [f for f in result.findings if f.kind is FindingKind.NSG_DETACHED]
    assert len(detached) == 1
    assert detached[0].subnet is not None
    assert detached[0].subnet.endswith("/subnets/compute")
    assert "no NSG" in detached[0].message
    assert not detached[0].remediable
    assert "subnet write" in detached[0].reason


def test_nsg_replaced_by_another_on_its_subnet() -> None:
    other = _nic_nsg("nsg-rogue")
    inventory = _edit_subnet(compliant(), "cyclecloud", nsg_id=other.id)
    inventory = replace(inventory, nsgs=(*inventory.nsgs, other))
    detached = [f for f in assess(inventory, BASELINE).findings if f.kind is FindingKind.NSG_DETACHED]
    assert [("nsg-rogue" in f.message, f.nsg.endswith("nsg-cyclecloud")) for f in detached] == [(True, True)]


def test_service_endpoint_missing() -> None:
    inventory = _edit_subnet(compliant(), "hpc", service_endpoints=())
    result = assess(inventory, BASELINE)
    assert found(result) == {("service_endpoint_missing", "Microsoft.Storage", None, False)}
    (finding,) = result.findings
    assert finding.subnet is not None
    assert finding.subnet.endswith("/subnets/hpc")
    assert "subnet write" in finding.reason


def test_service_endpoint_compared_case_insensitively() -> None:
    inventory = _edit_subnet(compliant(), "hpc", service_endpoints=("microsoft.storage",))
    assert assess(inventory, BASELINE).findings == ()


# --------------------------------------------------------------------------- judged by meaning


def test_equivalent_rule_under_another_name_satisfies_requirement() -> None:
    inventory = merge_inventories(compliant(), load("broken/nsg-cyclecloud-missing-storage.json"))
    mine = rule("CorpStorage443", 150, dst="Storage", dport="443")
    assert assess(add_rules(inventory, "nsg-cyclecloud", mine), BASELINE).findings == ()


def test_regional_rule_does_not_satisfy_global_requirement() -> None:
    inventory = merge_inventories(compliant(), load("broken/nsg-cyclecloud-missing-storage.json"))
    regional = rule("StorageWE", 150, dst="Storage.WestEurope", dport="443")
    result = assess(add_rules(inventory, "nsg-cyclecloud", regional), BASELINE)
    assert ("missing_rule", "AllowAzureStorage", "BlockOutbound", True) in found(result)


def test_split_rules_together_satisfy_requirement() -> None:
    inventory = merge_inventories(compliant(), load("broken/nsg-cyclecloud-missing-storage.json"))
    a = rule("StorageTcp443", 150, dst="Storage", dport="443", sport="0-32767")
    b = rule("StorageTcp443High", 151, dst="Storage", dport="443", sport="32768-65535")
    assert assess(add_rules(inventory, "nsg-cyclecloud", a, b), BASELINE).findings == ()


def test_shadowed_baseline_rule_names_the_overriding_rule() -> None:
    deny = rule("DenyStorageAll", 99 + 1, access="Deny", protocol="*", dst="Storage")
    group = nsg_named(compliant(), "nsg-cyclecloud")
    moved = tuple(replace(r, priority=r.priority + 10) if r.priority < 200 else r for r in group.security_rules)
    inventory = with_nsg(compliant(), replace(group, security_rules=(deny, *moved)))
    result = assess(inventory, BASELINE)
    assert found(result) == {("shadowed_rule", "AllowAzureStorage", "DenyStorageAll", False)}
    assert "DenyStorageAll" in result.findings[0].message


def test_exact_tag_model_changes_nothing_on_a_compliant_network() -> None:
    from remediation.tags import exact_from_documents

    docs = [json.loads(p.read_text()) for p in sorted((ROOT / "reference" / "service-tags").glob("*.json"))]
    docs = [d for d in docs if d.get("name") != "AzureCloud"]
    assert assess(compliant(), BASELINE, tags=exact_from_documents(docs)).findings == ()


# --------------------------------------------------------------------------- the shared NSG (cyclecloud,cluster)


def shared(*, tagged_nic: bool = True) -> Inventory:
    """The shared NSG on every subnet; with the CycleCloud VM's NIC (10.10.1.4) tagged as such."""
    inventory = load("shared/vnet.json", "shared/nsg-shared.json", "compliant/arm/nics.json")
    if not tagged_nic:
        return inventory
    nics = tuple(
        replace(n, tags={"cyclecloud-lockdown": "cyclecloud"}) if n.name == "cyclecloud-vm-nic" else n
        for n in inventory.nics
    )
    return replace(inventory, nics=nics)


def test_shared_nsg_compliant() -> None:
    inventory = shared()
    group = nsg_named(inventory, "nsg-shared")
    assert group.tags["cyclecloud-lockdown"] == "cyclecloud,cluster"
    result = assess(inventory, BASELINE)
    assert result.findings == ()
    assert result.not_judged == ()
    assert [p.nsg_name for p in result.plans] == ["nsg-shared"]


def test_shared_nsg_without_a_tagged_nic_guesses_no_port_blocked() -> None:
    # Defect 1: every subnet of the shared NSG was taken for CycleCloud's and for a node's, so
    # 9443 was demanded between them all. Without the tagged NIC nobody knows which host is
    # CycleCloud: one medium finding saying how to tag it, and the flows listed as not judged.
    deny_in = rule("DenyWebIn", 200, direction="Inbound", access="Deny", dport="9443")
    result = assess(add_rules(shared(tagged_nic=False), "nsg-shared", deny_in), BASELINE)
    assert found(result) == {("cyclecloud_location_unknown", "cyclecloud_location", None, False)}
    (finding,) = result.findings
    assert finding.severity is Severity.MEDIUM
    assert "az network nic update" in finding.message
    assert "tags.cyclecloud-lockdown=cyclecloud" in finding.message
    assert {u.requirement for u in result.not_judged} == {"amqp_5672", "https_9443"}
    assert all("location is unknown" in u.reason for u in result.not_judged)


def test_shared_nsg_blocking_inbound_to_the_tagged_host() -> None:
    # Only node subnets (compute, hpc) must reach CycleCloud's NIC; its own subnet need not.
    deny_in = rule("DenyWebIn", 200, direction="Inbound", access="Deny", dport="9443")
    result = assess(add_rules(shared(), "nsg-shared", deny_in), BASELINE)
    assert found(result) == {("port_blocked", "https_9443", "DenyWebIn", False)}
    assert sorted((f.subnet or "").rsplit("/", 1)[-1] for f in result.findings) == ["compute", "hpc"]
    assert all("inbound" in f.message and "10.10.1.4" in f.message for f in result.findings)


def test_shared_nsg_deny_between_node_subnets_is_not_a_required_path() -> None:
    # compute -> hpc is no required flow: a deny there is none of the guard's business.
    deny = rule("DenyComputeToHpc", 200, direction="Inbound", access="Deny", src="10.10.2.0/24", dst="10.10.3.0/24")
    assert assess(add_rules(shared(), "nsg-shared", deny), BASELINE).findings == ()


def test_shared_nsg_blocking_outbound_is_found_once_per_node_subnet() -> None:
    deny_out = rule("DenyAmqpOut", 200, access="Deny", dport="5672", dst="VirtualNetwork")
    result = assess(add_rules(shared(), "nsg-shared", deny_out), BASELINE)
    assert found(result) == {("port_blocked", "amqp_5672", "DenyAmqpOut", False)}
    assert len(result.findings) == 2


def test_shared_nsg_missing_rule_restored() -> None:
    group = nsg_named(shared(), "nsg-shared")
    inventory = with_nsg(shared(), replace(group, security_rules=group.security_rules[1:]))
    result = assess(inventory, BASELINE)
    assert {f.kind for f in result.findings} == {FindingKind.MISSING_RULE}
    assert not reassess(inventory, result).findings


# --------------------------------------------------------------------------- the ARM REST examples


def _rest_nsgs() -> list[tuple[str, NetworkSecurityGroup]]:
    out: list[tuple[str, NetworkSecurityGroup]] = []
    for path in sorted(REST.glob("NetworkSecurityGroup*.json")):
        doc = json.loads(path.read_text())
        for code, response in doc.get("responses", {}).items():
            body = response.get("body") if isinstance(response, dict) else None
            if not body or "GroupRule" in path.name:
                continue  # rule-only bodies are refused as documents (tested in test_parse)
            inventory = parse_document(body, where=f"{path.name}:{code}")
            out.extend((f"{path.name}:{code}:{n.name}", n) for n in inventory.nsgs)
    return out


REST_NSGS = _rest_nsgs()


def test_rest_nsg_examples_found() -> None:
    names = {n.split(":")[0] for n, _ in REST_NSGS}
    assert {
        "NetworkSecurityGroupGet.json",
        "NetworkSecurityGroupCreateWithRule.json",
        "NetworkSecurityGroupList.json",
    } <= names


@pytest.mark.parametrize(("name", "group"), REST_NSGS, ids=[n for n, _ in REST_NSGS])
def test_rest_nsg_example_evaluates_and_plans(name: str, group: NetworkSecurityGroup) -> None:
    # Each evaluates in both directions: every flow is decided by exactly one rule.
    u = Universe.of(DEFAULT_CONTEXT, group.security_rules)
    for direction in Direction:
        verdict = evaluate_nsg(u, group, direction, u.all_flows())
        assert verdict.verdict is Verdict.PARTIAL  # defaults allow some, deny the rest
        assert u.all_flows().issubset(verdict.allowed | verdict.denied)
    # Judged as a CycleCloud NSG it lacks the baseline, and the plan fixes that without touching its rules.
    inventory = Inventory(nsgs=(group,))
    result = assess(inventory, BASELINE, roles=frozenset({Role.CYCLECLOUD}))
    assert FindingKind.MISSING_RULE in {f.kind for f in result.findings}
    (plan,) = result.plans
    assert set(group.security_rules) <= set(plan.security_rules)
    after = assess(Inventory(nsgs=(planned_nsg(group, plan),)), BASELINE, roles=frozenset({Role.CYCLECLOUD}))
    assert not after.remediable


def test_rest_nsg_get_rule1_decides_inbound_port_80() -> None:
    group = dict(REST_NSGS)["NetworkSecurityGroupGet.json:200:testnsg"]
    query = Flows(Protocol.TCP, (addr("Internet"),), (addr("VirtualNetwork"),), ports("80"))
    u = Universe.of(DEFAULT_CONTEXT, group.security_rules, [query])
    verdict = evaluate_nsg(u, group, Direction.INBOUND, u.flows(query))
    assert verdict.verdict is Verdict.ALLOWED
    assert verdict.deciding_rule is not None
    assert verdict.deciding_rule.name == "rule1"


def test_rest_ip_flow_verify_example_agrees() -> None:
    """NetworkWatcherIpFlowVerify: TCP 10.2.0.4:80 -> 121.10.1.1:80 outbound is allowed by "Rule1".

    The example does not ship the NSG; one with such a rule gives the same answer.
    """
    doc = json.loads((REST / "NetworkWatcherIpFlowVerify.json").read_text())
    ask, answer = doc["parameters"]["parameters"], doc["responses"]["200"]["body"]
    group = NetworkSecurityGroup(id="/x/nsg", name="nsg", security_rules=(rule("Rule1", 100, dport="80"),))
    query = Flows(
        Protocol(ask["protocol"].capitalize()),
        (addr(ask["localIPAddress"]),),
        (addr(ask["remoteIPAddress"]),),
        (PortRange(int(ask["remotePort"]), int(ask["remotePort"])),),
        (PortRange(int(ask["localPort"]), int(ask["localPort"])),),
    )
    u = Universe.of(DEFAULT_CONTEXT, group.security_rules, [query])
    verdict = evaluate_nsg(u, group, Direction(ask["direction"]), u.flows(query))
    assert verdict.deciding_rule is not None
    assert (verdict.deciding_rule.access.value, verdict.deciding_rule.name) == (answer["access"], answer["ruleName"])


def _rest_rules() -> list[tuple[str, SecurityRule]]:
    from remediation.parse import parse_rule

    out: list[tuple[str, SecurityRule]] = []
    for path in sorted(REST.glob("NetworkSecurityGroupRule*.json")):
        doc = json.loads(path.read_text())
        for code, response in doc["responses"].items():
            body = response.get("body")
            items = body.get("value", [body]) if isinstance(body, dict) else []
            out.extend((f"{path.name}:{code}:{i}", parse_rule(item, where=path.name)) for i, item in enumerate(items))
    return out


REST_RULES = _rest_rules()


@pytest.mark.parametrize(("name", "one"), REST_RULES, ids=[n for n, _ in REST_RULES])
def test_rest_rule_example_decides_its_own_flows(name: str, one: SecurityRule) -> None:
    group = NetworkSecurityGroup(id="/x/nsg", name="nsg", security_rules=(one,))
    u = Universe.of(DEFAULT_CONTEXT, group.security_rules)
    own = u.rule_flows(one)
    verdict = evaluate_nsg(u, group, one.direction, own)
    assert [d.rule.name for d in verdict.decisions] == [one.name]
    assert verdict.verdict is (Verdict.ALLOWED if one.access.value == "Allow" else Verdict.DENIED)


# --------------------------------------------------------------------------- reporting (issue 10, defect 8)


def test_a_persons_rule_named_like_a_default_rule_has_its_own_key() -> None:
    # CCWS has its own AllowInternetOutBound at 3000; the default one (65001) decides what it
    # leaves (UDP and the rest). Two breaches, two keys: one must not swallow the other.
    from tests.support.core import cyclecloud_baseline
    from tests.support.networks import ccws

    result = assess(ccws(), cyclecloud_baseline())
    breaches = [f for f in result.findings if f.kind is FindingKind.LOCKDOWN_BREACH]
    assert sorted((f.rule, f.default_rule) for f in breaches) == [
        ("AllowInternetOutBound", False),
        ("AllowInternetOutBound", True),
    ]
    assert len({f.key for f in breaches}) == 2
    assert [f.to_json().get("defaultRule") for f in breaches if f.default_rule] == [True]


def test_one_report_per_unmet_requirement_and_no_phantom_shadowed_rule() -> None:
    # Adding BlockOutbound at 4000 cannot beat the person's allow at 3000 for TCP: the missing
    # rule is reported once, not fixable, and no shadowed_rule names a BlockOutbound that does not exist.
    from tests.support.core import cyclecloud_baseline
    from tests.support.networks import ccws

    result = assess(ccws(), cyclecloud_baseline())
    block = [
        f for f in result.findings if f.requirement == "BlockOutbound" and f.kind is not FindingKind.LOCKDOWN_BREACH
    ]
    assert [(f.kind, f.rule, f.remediable) for f in block] == [
        (FindingKind.MISSING_RULE, "AllowInternetOutBound", False)
    ]
    assert "not owned by the baseline" in block[0].reason
    assert not any(f.kind is FindingKind.SHADOWED_RULE for f in result.findings)


def test_delegated_subnet_needs_no_storage_endpoint() -> None:
    from tests.support.core import cyclecloud_baseline
    from tests.support.networks import ccws

    result = assess(ccws(), cyclecloud_baseline())
    assert not any(f.kind is FindingKind.SERVICE_ENDPOINT_MISSING for f in result.findings)


def test_managed_nsg_attached_to_nothing_is_detached() -> None:
    group = replace(nsg_named(compliant(), "nsg-cyclecloud"), subnet_ids=(), nic_ids=())
    inventory = Inventory(nsgs=(group,))
    result = assess(inventory, BASELINE)
    assert found(result) == {("nsg_detached", "attachment", None, False)}
    assert "guards nothing" in result.findings[0].message


# --------------------------------------------------------------------------- what cannot be judged (issue 11 item 2)


def with_unreadable(inventory: Inventory, name: str, widest: SecurityRule, drop: str = "") -> Inventory:
    """``name``'s NSG holding ``widest`` as a rule it cannot read (an address ARM takes, such as "789")."""
    from remediation.model import UnreadableRule

    group = nsg_named(inventory, name)
    kept = tuple(r for r in group.security_rules if r.name != drop)
    unreadable = (UnreadableRule(widest=widest, reason="address prefix '789' is a bare number"),)
    return with_nsg(inventory, replace(group, security_rules=kept, unreadable_rules=unreadable))


def test_an_unreadable_allow_rule_is_judged_as_if_it_allowed_everything_it_could() -> None:
    # Outbound to "789" on 443: read as matching nothing it is harmless, read as '*' it lets
    # the CycleCloud VM reach the Internet past BlockOutbound. Not guessed fine: both reported.
    inventory = with_unreadable(compliant(), "nsg-cyclecloud", rule("People443", 200, dst="*", dport="443"))
    result = assess(inventory, BASELINE)
    assert ("unjudgeable", "readable rule", "People443", False) in found(result)
    assert ("lockdown_breach", "BlockOutbound", "People443", False) in found(result)
    [unjudged] = [f for f in result.findings if f.kind is FindingKind.UNJUDGEABLE]
    assert unjudged.severity is Severity.HIGH
    assert "'789'" in unjudged.message
    assert unjudged.reason  # what to do about it


def test_an_unreadable_deny_rule_is_judged_as_if_it_blocked_everything_it_could() -> None:
    # Inbound deny from "789": read as '*' it blocks the nodes' AMQP and HTTPS to CycleCloud.
    inventory = with_unreadable(compliant(), "nsg-cyclecloud", rule("PeopleDeny", 110, "Inbound", "Deny", "*"))
    kinds = {(f.kind, f.requirement) for f in assess(inventory, BASELINE).findings}
    assert (FindingKind.PORT_BLOCKED, "amqp_5672") in kinds
    assert (FindingKind.PORT_BLOCKED, "https_9443") in kinds


def test_nothing_is_written_to_an_nsg_with_an_unreadable_rule() -> None:
    # AllowAzureStorage is missing too: reported, but its fix waits until the rule is readable,
    # since a plan made from a guess could widen or break what the unreadable rule does.
    inventory = with_unreadable(
        compliant(), "nsg-cyclecloud", rule("People443", 200, "Inbound", dport="443"), drop="AllowAzureStorage"
    )
    result = assess(inventory, BASELINE)
    assert ("missing_rule", "AllowAzureStorage", "BlockOutbound", False) in found(result)
    [plan] = [p for p in result.plans if p.nsg_name == "nsg-cyclecloud"]
    assert plan.is_empty
    assert {f.requirement for f in plan.unremediable} >= {"AllowAzureStorage", "readable rule"}


def test_other_nsgs_are_still_fixed_when_both_readings_agree() -> None:
    # The cluster NSG holds the unreadable rule; the CycleCloud NSG's missing rule is fixed as usual.
    base = compliant()
    cc = nsg_named(base, "nsg-cyclecloud")
    base = with_nsg(
        base, replace(cc, security_rules=tuple(r for r in cc.security_rules if r.name != "AllowAzureStorage"))
    )
    inventory = with_unreadable(base, "nsg-cluster", rule("People443", 200, "Inbound", dport="443"))
    result = assess(inventory, BASELINE)
    assert ("missing_rule", "AllowAzureStorage", "BlockOutbound", True) in found(result)
    [plan] = [p for p in result.plans if p.nsg_name == "nsg-cyclecloud"]
    assert [r.name for r in plan.added] == ["AllowAzureStorage"]
    assert ("unjudgeable", "readable rule", "People443", False) in found(result)


def test_an_nsg_that_cannot_be_read_at_all_is_named_and_flows_through_it_judged_both_ways() -> None:
    from remediation.errors import InputError
    from remediation.parse import unreadable_nsg

    inventory = compliant()
    cluster = nsg_named(inventory, "nsg-cluster")
    raw = json.loads((FIXTURES / "compliant/arm/nsg-cluster.json").read_text())
    stand_in = unreadable_nsg(raw, where="arm", error=InputError("something new", where="arm"))
    assert (stand_in.id, stand_in.tags, stand_in.subnet_ids, stand_in.etag) == (
        cluster.id,
        cluster.tags,
        cluster.subnet_ids,
        None,
    )
    result = assess(with_nsg(inventory, stand_in), BASELINE)
    unjudged = next(f for f in result.findings if f.kind is FindingKind.UNJUDGEABLE)
    assert (unjudged.nsg, unjudged.requirement, unjudged.rule) == (cluster.id, "readable NSG", None)
    assert "something new" in unjudged.message
    # Read as denying everything, the nodes cannot reach CycleCloud: reported, not guessed fine.
    assert {f.requirement for f in result.findings if f.kind is FindingKind.PORT_BLOCKED} == {"amqp_5672", "https_9443"}
    assert all(p.is_empty for p in result.plans)
