"""Remediation plans: the full list of custom rules an NSG should hold.

A plan is data; executing it is the ARM adapter's job. It only ever adds or
restores baseline rules; every rule the baseline does not own is kept as read.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from remediation.baseline import RuleRequirement
from remediation.evaluate import evaluate_nsg
from remediation.findings import Finding
from remediation.model import MAX_CUSTOM_PRIORITY, MIN_CUSTOM_PRIORITY, Access, NetworkSecurityGroup, SecurityRule
from remediation.review import NsgReview


@dataclass(frozen=True, slots=True)
class RemediationPlan:
    """What to write to one NSG.

    ``security_rules`` is the complete desired custom rule list (ARM replaces
    the list on PUT). ``added`` are baseline rules created or restored;
    ``replaced`` the drifted rules (same name) they replace; ``unremediable``
    the findings this plan cannot fix, each with its reason.
    """

    nsg_id: str
    nsg_name: str
    security_rules: tuple[SecurityRule, ...]
    added: tuple[SecurityRule, ...] = ()
    replaced: tuple[SecurityRule, ...] = ()
    unremediable: tuple[Finding, ...] = ()

    @property
    def is_empty(self) -> bool:
        """True when applying the plan would change nothing."""
        return not self.added and not self.replaced

    def to_json(self) -> dict[str, Any]:
        return {
            "nsg": self.nsg_id,
            "securityRules": [r.to_arm() for r in self.security_rules],
            "added": [r.name for r in self.added],
            "replaced": [r.name for r in self.replaced],
        }


MAX_PRIORITY_TRIES = 64


def build_plan(review: NsgReview) -> RemediationPlan:
    """Restore every missing or modified baseline rule of one NSG.

    Rules the baseline does not own are kept as read. A baseline rule goes at
    its own priority when that is free; when another rule holds it, at the
    nearest free priority that keeps the baseline's meaning: no rule the
    baseline does not own lies between the two, the requirement is then met,
    and no requirement met before stops being met. Otherwise the rule is not
    placed and the finding stays, unremediable, with the reason.
    """
    nsg = review.nsg
    rules = list(nsg.security_rules)
    added: list[SecurityRule] = []
    replaced: list[SecurityRule] = []
    ordered = sorted(review.requirements, key=lambda r: (r.rule.direction.value, r.rule.priority))
    current = nsg  # the NSG holding ``rules``, built once per change rather than once per question
    changed = True
    while changed:
        # Restoring one rule can break a requirement judged before it: with both
        # AllowAzureRM and BlockOutbound deleted, AzureRM's flows pass by the
        # default AllowInternetOutBound until BlockOutbound is restored. So go
        # round again until nothing more is placed; each requirement is placed
        # at most once (afterwards its rule is present and intact), so this ends.
        changed = False
        for req in ordered:
            if review.scoped_portion(req).is_empty:
                continue
            named = review.named(current, req.name)
            if review.satisfied(current, req) and (named is None or _may_stay(review, named, req)):
                continue  # met, and no rule under our name was widened
            if named is not None and _same_match(named, req.rule) and named.access is req.rule.access:
                continue  # present and intact but overridden: shadowed, nothing of ours to restore
            without = [r for r in rules if r is not named]
            placed = _place(review, nsg, without, req.rule)
            if placed is None:
                continue
            after = [*without, placed] if named is None else [placed if r is named else r for r in rules]
            planned = _with_rules(nsg, after)
            if named is not None and _widens(review, current, planned, named, placed):
                continue  # the drifted rule also denies what ours would not: leave it to a person
            if named is None and _changes_nothing(review, current, planned, req):
                continue  # overridden wherever it could go (a person's allow above it): a dead rule fixes nothing
            rules, current = after, planned
            added.append(placed)
            if named is not None:
                replaced.append(named)
            changed = True
    return RemediationPlan(
        nsg_id=nsg.id,
        nsg_name=nsg.name,
        security_rules=tuple(rules),
        added=tuple(added),
        replaced=tuple(replaced),
    )


def planned_nsg(nsg: NetworkSecurityGroup, plan: RemediationPlan) -> NetworkSecurityGroup:
    """The NSG as it would be after the plan is applied."""
    return _with_rules(nsg, list(plan.security_rules))


def _with_rules(nsg: NetworkSecurityGroup, rules: list[SecurityRule]) -> NetworkSecurityGroup:
    return replace(nsg, security_rules=tuple(rules))


def _may_stay(review: NsgReview, named: SecurityRule, req: RuleRequirement) -> bool:
    """The rule under the requirement's name means it, or is a deny that denies more: putting the
    baseline's narrower deny back would open what a person chose to close (never widen)."""
    if review.same_meaning(named, req):
        return True
    return (
        req.rule.access is Access.DENY
        and named.access is Access.DENY
        and named.direction is req.rule.direction
        and review.universe.rule_flows(req.rule).issubset(review.universe.rule_flows(named))
    )


def _changes_nothing(
    review: NsgReview, before: NetworkSecurityGroup, after: NetworkSecurityGroup, req: RuleRequirement
) -> bool:
    """Adding the rule leaves every flow of the requirement decided as before."""
    wrong_before, wrong_after = review.wrongly_decided(before, req), review.wrongly_decided(after, req)
    return wrong_before.issubset(wrong_after) and wrong_after.issubset(wrong_before)


def _widens(
    review: NsgReview,
    before: NetworkSecurityGroup,
    after: NetworkSecurityGroup,
    old: SecurityRule,
    new: SecurityRule,
) -> bool:
    """Would replacing drifted rule ``old`` by ``new`` allow more, beyond the baseline's allow rules?

    Adding a baseline rule can only widen by that rule's own flows, which the baseline
    requires. Replacing one also drops whatever the drifted rule denied (BlockOutbound
    turned into 'deny VirtualNetwork'): that must not open up (never widen). Only flows
    one of the two rules matches can change verdict, so only those are evaluated.
    """
    u = review.universe
    direction = new.direction
    required = u.empty()
    for r in review.requirements:
        if r.rule.direction is direction and r.rule.access is Access.ALLOW:
            required = required | u.rule_flows(r.rule)
    touched = u.rule_flows(old) | u.rule_flows(new)
    opened = evaluate_nsg(u, after, direction, touched).allowed - evaluate_nsg(u, before, direction, touched).allowed
    return not opened.issubset(required)


def _same_match(a: SecurityRule, b: SecurityRule) -> bool:
    return (
        a.direction is b.direction
        and a.protocol is b.protocol
        and set(a.sources) == set(b.sources)
        and set(a.destinations) == set(b.destinations)
        and set(a.source_ports) == set(b.source_ports)
        and set(a.destination_ports) == set(b.destination_ports)
    )


def _place(
    review: NsgReview, nsg: NetworkSecurityGroup, rules: list[SecurityRule], wanted: SecurityRule
) -> SecurityRule | None:
    taken = {r.priority: r for r in rules if r.direction is wanted.direction}
    if wanted.priority not in taken:
        return wanted
    met_before = [r for r in review.requirements if review.satisfied(_with_rules(nsg, rules), r)]
    owned = {r.name.lower() for r in review.requirements}
    for candidate in _nearby(wanted.priority, taken, MAX_PRIORITY_TRIES):
        low, high = sorted((candidate, wanted.priority))
        if any(low < p < high and r.name.lower() not in owned for p, r in taken.items()):
            continue  # would jump over a rule we do not own: its meaning would change
        moved = replace(wanted, priority=candidate)
        trial = _with_rules(nsg, [*rules, moved])
        req = next(r for r in review.requirements if r.name == wanted.name)
        if review.satisfied(trial, req) and all(review.satisfied(trial, r) for r in met_before):
            return moved
    return None


def _nearby(priority: int, taken: dict[int, SecurityRule], tries: int) -> list[int]:
    out: list[int] = []
    for distance in range(1, MAX_CUSTOM_PRIORITY - MIN_CUSTOM_PRIORITY + 1):
        for candidate in (priority + distance, priority - distance):
            if MIN_CUSTOM_PRIORITY <= candidate <= MAX_CUSTOM_PRIORITY and candidate not in taken:
                out.append(candidate)
                if len(out) >= tries:
                    return out
    return out
