"""Remediation plans: what is restored, where it goes, and what is never touched."""

from __future__ import annotations

from dataclasses import replace

import pytest

from remediation.assess import Assessment, assess
from remediation.findings import FindingKind
from remediation.model import Inventory, NetworkSecurityGroup, SecurityRule
from remediation.network import Network
from remediation.plan import RemediationPlan, build_plan, planned_nsg
from remediation.review import NsgReview
from remediation.tags import CONTAINMENT
from tests.support.core import BASELINE_RULES, cyclecloud_baseline, nsg, rule

BASELINE = cyclecloud_baseline()
STORAGE, AAD, MONITOR, ARM, BLOCK = BASELINE_RULES


def run(*rules: SecurityRule) -> tuple[Assessment, RemediationPlan]:
    result = assess(Inventory(nsgs=(nsg(*rules),)), BASELINE)
    return result, result.plans[0]


def slots(plan: RemediationPlan) -> dict[str, int]:
    return {r.name: r.priority for r in plan.security_rules}


def test_compliant_nsg_plan_is_empty() -> None:
    result, plan = run(*BASELINE_RULES)
    assert result.findings == ()
    assert plan.is_empty
    assert plan.security_rules == BASELINE_RULES
    assert result.to_json()["findings"] == []
    assert result.to_json()["plans"] == []


def test_missing_rule_restored_at_its_priority() -> None:
    result, plan = run(AAD, MONITOR, ARM, BLOCK)
    assert [(f.kind, f.requirement, f.remediable) for f in result.findings] == [
        (FindingKind.MISSING_RULE, "AllowAzureStorage", True)
    ]
    assert plan.added == (STORAGE,)
    assert plan.replaced == ()
    assert slots(plan)["AllowAzureStorage"] == 100


def test_modified_rule_replaced_in_place() -> None:
    drifted = replace(ARM, destination_ports=(BLOCK.destination_ports[0],))  # port * instead of 443
    result, plan = run(STORAGE, AAD, MONITOR, drifted, BLOCK)
    kinds = {(f.kind, f.requirement) for f in result.findings}
    assert (FindingKind.MODIFIED_RULE, "AllowAzureRM") in kinds
    assert all(f.remediable for f in result.findings)
    assert plan.replaced == (drifted,)
    assert plan.added == (ARM,)
    assert [r.name for r in plan.security_rules] == [r.name for r in BASELINE_RULES]  # same place in the list
    assert ARM in plan.security_rules
    assert drifted not in plan.security_rules


def test_both_allow_and_block_missing_restores_both() -> None:
    # Regression (fixed in plan.py): with AllowAzureRM and BlockOutbound both
    # deleted, AllowAzureRM's flows pass by the default AllowInternetOutBound,
    # so a single pass skipped it; restoring BlockOutbound then cut Azure RM
    # off and the first plan left a new, unremediable missing_rule behind.
    result, plan = run(STORAGE, AAD, MONITOR)
    assert {r.name for r in plan.added} == {"AllowAzureRM", "BlockOutbound"}
    assert all(f.remediable for f in result.findings), [f.to_json() for f in result.findings]
    again = assess(Inventory(nsgs=(planned_nsg(nsg(STORAGE, AAD, MONITOR), plan),)), BASELINE)
    assert again.findings == ()


def test_everything_missing_restores_the_whole_baseline() -> None:
    result, plan = run()
    assert {r.name for r in plan.added} == {r.name for r in BASELINE_RULES}
    assert set(plan.security_rules) == set(BASELINE_RULES)
    assert all(f.remediable for f in result.findings)


def test_baseline_priority_taken_by_harmless_human_rule_moves_to_free_priority() -> None:
    human = rule("HumanDenyCorp", 100, access="Deny", protocol="*", dst="10.0.0.0/8")
    result, plan = run(human, AAD, MONITOR, ARM, BLOCK)
    assert human in plan.security_rules
    placed = slots(plan)["AllowAzureStorage"]
    assert placed != 100
    assert 100 <= placed <= 4096
    assert placed < BLOCK.priority  # still above BlockOutbound: the meaning is kept
    assert all(f.remediable for f in result.findings)
    assert assess(Inventory(nsgs=(planned_nsg(nsg(human, AAD, MONITOR, ARM, BLOCK), plan),)), BASELINE).findings == ()


def test_baseline_priority_taken_by_conflicting_rule_is_unremediable_with_reason() -> None:
    human = rule("HumanDenyStorage", 100, access="Deny", dst="Storage", dport="443")
    result, plan = run(human, AAD, MONITOR, ARM, BLOCK)
    assert plan.is_empty
    (finding,) = [f for f in result.findings if f.requirement == "AllowAzureStorage"]
    assert finding.kind is FindingKind.MISSING_RULE
    assert not finding.remediable
    assert finding.rule == "HumanDenyStorage"
    assert "HumanDenyStorage" in finding.reason
    assert "priority 100" in finding.reason
    assert finding in plan.unremediable


def test_block_priority_taken_by_human_allow_goes_just_above_it() -> None:
    human = rule("HumanAllowAll", 4000, protocol="*", dst="Internet")
    result, plan = run(STORAGE, AAD, MONITOR, ARM, human)
    assert slots(plan)["BlockOutbound"] == 3999
    assert human in plan.security_rules
    assert {f.kind for f in result.findings} >= {FindingKind.MISSING_RULE, FindingKind.LOCKDOWN_BREACH}
    assert all(f.remediable for f in result.findings)


def test_human_rules_are_never_changed_or_removed() -> None:
    humans = [
        rule("HumanAllowAll", 200, protocol="*", dst="Internet"),  # a breach: reported, not removed
        rule("HumanInbound", 100, direction="Inbound", src="10.0.0.0/8", dport="22"),
    ]
    result, plan = run(*humans)
    for h in humans:
        assert h in plan.security_rules
    breach = [f for f in result.findings if f.kind is FindingKind.LOCKDOWN_BREACH and f.rule == "HumanAllowAll"]
    assert breach
    assert not breach[0].remediable
    assert "not owned by the baseline" in breach[0].reason


def test_shadowed_rule_is_not_rewritten() -> None:
    shadow = rule("HumanDenyStorage", 99 + 1, access="Deny", dst="Storage", dport="443")
    storage = replace(STORAGE, priority=110)
    result, plan = run(shadow, storage, AAD, MONITOR, ARM, BLOCK)
    assert plan.is_empty
    (finding,) = result.findings
    assert (finding.kind, finding.rule, finding.remediable) == (FindingKind.SHADOWED_RULE, "HumanDenyStorage", False)


def test_plan_json_is_the_full_rule_list_in_arm_form() -> None:
    _, plan = run(AAD, MONITOR, ARM, BLOCK)
    body = plan.to_json()
    assert body["nsg"] == nsg().id
    assert body["added"] == ["AllowAzureStorage"]
    assert body["replaced"] == []
    assert [r["name"] for r in body["securityRules"]] == [
        "AllowActiveDirectory",
        "AllowAzureMonitor",
        "AllowAzureRM",
        "BlockOutbound",
        "AllowAzureStorage",
    ]
    storage = body["securityRules"][-1]["properties"]
    assert storage == {
        "protocol": "Tcp",
        "access": "Allow",
        "priority": 100,
        "direction": "Outbound",
        "sourceAddressPrefix": "*",
        "destinationAddressPrefix": "Storage",
        "sourcePortRange": "*",
        "destinationPortRange": "443",
    }


def test_build_plan_is_pure_and_repeatable() -> None:
    group = nsg(AAD, BLOCK)
    network = Network(Inventory(nsgs=(group,)))
    review = NsgReview(network, group, network.roles(group), BASELINE, CONTAINMENT)
    assert build_plan(review) == build_plan(review)
    assert group.security_rules == (AAD, BLOCK)


def _planned(group: NetworkSecurityGroup) -> NetworkSecurityGroup:
    return planned_nsg(group, assess(Inventory(nsgs=(group,)), BASELINE).plans[0])


def test_planned_nsg_keeps_everything_but_the_rules() -> None:
    group = nsg(AAD)
    after = _planned(group)
    assert (after.id, after.name, after.tags, after.location) == (group.id, group.name, group.tags, group.location)
    assert len(after.security_rules) == 5


@pytest.mark.parametrize(
    ("widened", "extra"),
    [
        (rule("AllowAzureRM", 103, dst="AzureResourceManager", dport="*"), "TCP/0-442,444-65535"),
        (rule("AllowAzureRM", 103, protocol="*", dst="AzureResourceManager", dport="443"), "UDP/443"),
        (rule("AllowAzureRM", 103, dst="AzureResourceManager", dport="443,8443"), "TCP/8443"),
    ],
)
def test_widened_baseline_rule_is_modified_and_restored(widened: SecurityRule, extra: str) -> None:
    # Regression (fixed in review.py/plan.py): a rule under the baseline's name that
    # still covers its portion but allows more was only a lockdown_breach, reported
    # unremediable with the reason "rules the baseline does not own", though the
    # baseline owns it. It is now modified_rule, and the plan restores it.
    result, plan = run(STORAGE, AAD, MONITOR, widened, BLOCK)
    found = {(f.kind, f.requirement, f.rule, f.remediable) for f in result.findings}
    assert (FindingKind.MODIFIED_RULE, "AllowAzureRM", "AllowAzureRM", True) in found
    assert (FindingKind.LOCKDOWN_BREACH, "BlockOutbound", "AllowAzureRM", True) in found
    modified = next(f for f in result.findings if f.kind is FindingKind.MODIFIED_RULE)
    assert f"it also matches {extra}" in modified.message
    assert plan.replaced == (widened,)
    assert plan.added == (ARM,)


def test_baseline_rule_spelled_differently_is_not_modified() -> None:
    respelled = rule("allowazurerm", 103, dst="azureresourcemanager", dport="443-443")
    result, plan = run(STORAGE, AAD, MONITOR, respelled, BLOCK)
    assert result.findings == ()
    assert plan.is_empty


@pytest.mark.parametrize(
    "extra",
    [(), (rule("HumanAllowTcp", 104, dst="*"),)],
    ids=["deny-vnet", "deny-all-shadowed"],
)
def test_replacing_a_drifted_deny_never_opens_what_it_denied(extra: tuple[SecurityRule, ...]) -> None:
    # Regression (fixed in plan.py, _widens): BlockOutbound turned by a person into
    # 'deny VirtualNetwork' (or 'deny *' while a human allow shadows it) was replaced
    # by the baseline's 'deny Internet', which re-opened outbound VNet traffic through
    # AllowVnetOutBound: wider than before, beyond anything the baseline requires.
    # The drifted rule now stays, and the findings say a person must act.
    dst = "VirtualNetwork" if not extra else "*"
    drifted = rule("BlockOutbound", 4000, access="Deny", protocol="*", dst=dst)
    result, plan = run(STORAGE, AAD, MONITOR, ARM, drifted, *extra)
    assert plan.is_empty, ([r.name for r in plan.added], [r.name for r in plan.replaced])
    assert drifted in plan.security_rules
    assert result.findings
    assert not any(f.remediable for f in result.findings)
    assert {f.kind for f in result.findings} & {FindingKind.LOCKDOWN_BREACH, FindingKind.SHADOWED_RULE}
