"""One call from inventory to findings and plans (the core's front door).

``assess(inventory, baseline, *, tags=None, roles=None) -> Assessment``

``tags`` is a :class:`remediation.tags.TagModel` (None: the built-in
containment model); ``roles`` overrides the roles read from each NSG's tag
(the ``check --role`` option). NSGs without the lockdown tag are ignored
unless ``roles`` is given.

A finding is remediable exactly when it is gone once the plan is applied:
the plan is re-checked here, so "fixable" is never a guess.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, replace
from typing import Any

from remediation.baseline import Baseline, Role
from remediation.findings import Finding, FindingKind, severity_for
from remediation.model import Access, Inventory
from remediation.network import Network
from remediation.plan import RemediationPlan, build_plan, planned_nsg
from remediation.review import NsgReview, Problem
from remediation.tags import CONTAINMENT, TagModel


@dataclass(frozen=True, slots=True)
class Assessment:
    findings: tuple[Finding, ...]
    plans: tuple[RemediationPlan, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "findings": [f.to_json() for f in self.findings],
            "plans": [p.to_json() for p in self.plans if not p.is_empty],
        }

    @property
    def remediable(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.remediable)


def assess(
    inventory: Inventory,
    baseline: Baseline,
    *,
    tags: TagModel | None = None,
    roles: frozenset[Role] | None = None,
    only: Collection[str] | None = None,
) -> Assessment:
    """Findings and plans of every managed NSG, or of those whose ids are in ``only``.

    The whole inventory still counts as the network (subnets of each role,
    NICs, VNets), so an event touching one NSG is judged end to end without
    reviewing the other thousands.
    """
    network = Network(inventory, baseline.lockdown_tag, roles)
    wanted = {i.lower() for i in only} if only is not None else None
    findings: list[Finding] = []
    plans: list[RemediationPlan] = []
    seen: set[tuple[str, ...]] = set()
    for nsg, nsg_roles in network.managed():
        if wanted is not None and nsg.key not in wanted:
            continue
        review = NsgReview(network, nsg, nsg_roles, baseline, tags or CONTAINMENT)
        nsg_findings, plan = assess_review(review)
        for f in nsg_findings:
            key = (f.kind.value, f.requirement, f.nsg.lower(), f.rule or "", f.subnet or "")
            if key not in seen:
                seen.add(key)
                findings.append(f)
        plans.append(plan)
    findings.sort(key=lambda f: (-f.severity.rank, f.nsg.lower(), f.kind.value, f.requirement))
    return Assessment(tuple(findings), tuple(plans))


def assess_review(review: NsgReview) -> tuple[list[Finding], RemediationPlan]:
    """Findings and plan of one NSG; remediable means "gone after the plan"."""
    before = review.problems()
    plan = build_plan(review)
    after = review.problems(planned_nsg(review.nsg, plan)) if not plan.is_empty else before
    after_keys = {p.key for p in after}
    before_keys = {p.key for p in before}
    findings = [_finding(p, p.key not in after_keys, review) for p in before]
    findings += [_finding(p, False, review) for p in after if p.key not in before_keys]
    unremediable = tuple(f for f in findings if not f.remediable)
    return findings, replace(plan, unremediable=unremediable)


def _finding(problem: Problem, remediable: bool, review: NsgReview) -> Finding:
    return Finding(
        kind=problem.kind,
        requirement=problem.requirement,
        nsg=problem.nsg_id,
        rule=problem.rule.name if problem.rule else None,
        remediable=remediable,
        severity=severity_for(problem.kind, remediable),
        message=problem.detail,
        reason="" if remediable else _reason(problem, review),
        subnet=problem.subnet_id,
    )


def _reason(problem: Problem, review: NsgReview) -> str:
    if problem.kind is FindingKind.NSG_DETACHED:
        return "re-associating a subnet is a subnet write, which the remediator does not make; re-attach the NSG"
    if problem.kind is FindingKind.SERVICE_ENDPOINT_MISSING:
        return (
            f"adding the {problem.requirement} service endpoint is a subnet write, which the remediator does not make"
        )
    rule = problem.rule
    if problem.kind in (FindingKind.MISSING_RULE, FindingKind.MODIFIED_RULE):
        req = next((r for r in review.requirements if r.name == problem.requirement), None)
        if req is not None:
            holder = next(
                (
                    r
                    for r in review.nsg.security_rules
                    if r.priority == req.rule.priority
                    and r.direction is req.rule.direction
                    and r.name.lower() != req.name.lower()
                ),
                None,
            )
            if holder is not None:
                return (
                    f"priority {req.rule.priority} is taken by {holder.name!r} and no free priority keeps "
                    "the baseline's meaning"
                )
            if rule is not None and rule.access is Access.DENY and req.rule.access is Access.DENY:
                return (
                    f"rule {rule.name!r} denies more than the baseline's; putting the baseline's rule back would "
                    "open traffic someone chose to block, and the remediator never widens access: review it"
                )
    if rule is not None and not rule.is_default and not review.baseline.owns(rule.name):
        return (
            f"rule {rule.name!r} (priority {rule.priority}) is not owned by the baseline; the remediator never "
            "alters or deletes such rules: remove or narrow it"
        )
    return "the baseline's rules alone cannot fix this without changing rules the baseline does not own"
