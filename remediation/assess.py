"""One call from inventory to findings and plans (the core's front door).

``assess(inventory, baseline, *, tags=None, roles=None, only=None,
expected_attachments=None, subnets=None, repair_endpoints=False) -> Assessment``

``tags`` is a :class:`remediation.tags.TagModel` (None: the built-in
containment model); ``roles`` overrides the roles read from each NSG's tag
(the ``check --role`` option). NSGs without the lockdown tag are ignored
unless ``roles`` is given.

A finding is remediable exactly when it is gone once the plan is applied:
the plan is re-checked here, so "fixable" is never a guess.

Service endpoints are a subnet's, not an NSG's: ``service_endpoint_missing``
is remediable only with ``repair_endpoints`` (the operator opted in to subnet
writes), and only for a subnet whose own NSG reference is the managed NSG
under review; the :class:`EndpointRepair` items say which subnet gets which
services. Adding the missing services is what the review checks, so the
finding is gone once they are added.

Attachments have a memory: when a managed NSG is detached from a subnet (or
swapped, or deleted), Azure drops the NSG's back-reference too, so the
inventory alone no longer says the subnet was ever managed.
``expected_attachments`` (subnet id -> the managed NSG it was last seen
with, kept by the service's state store; :func:`observed_attachments` gives
the pairs to remember) brings that back. An expectation holds until the
subnet is guarded by a managed NSG again (the same or another one tagged
with the lockdown tag) or the subnet is deleted; that is also how an
operator makes a detachment permanent on purpose. Removing the tag from an
NSG still attached stops guarding it: :func:`released_attachments` names
the expectations to drop.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from typing import Any

from remediation.baseline import Baseline, Role
from remediation.findings import Finding, FindingKind, severity_for, unmet_key
from remediation.model import Access, Inventory, NetworkSecurityGroup
from remediation.network import Network
from remediation.plan import RemediationPlan, build_plan, planned_nsg
from remediation.required_flows import HOW_TO_TAG, RequiredFlows, Unjudged, required_flows
from remediation.review import NsgReview, Problem
from remediation.tags import CONTAINMENT, TagModel

ENDPOINT_REASON = (
    "adding the {service} service endpoint is a subnet write, which the remediator makes only with "
    "SERVICE_ENDPOINT_REPAIR=true (off by default)"
)
DETACHED_REASON = "re-associating a subnet is a subnet write, which the remediator does not make; re-attach the NSG"


@dataclass(frozen=True, slots=True)
class EndpointRepair:
    """Services to add to one subnet's ``serviceEndpoints``, the subnet attached to managed ``nsg_id``.

    ``fixes`` are the findings the repair makes go away.
    """

    subnet_id: str
    nsg_id: str
    services: tuple[str, ...]
    fixes: tuple[Finding, ...] = ()


@dataclass(frozen=True, slots=True)
class Assessment:
    """Findings and plans; ``not_judged`` names each required flow (or part) that could not be
    judged and why: no finding means "nothing wrong in what could be judged"."""

    findings: tuple[Finding, ...]
    plans: tuple[RemediationPlan, ...]
    endpoint_repairs: tuple[EndpointRepair, ...] = ()
    not_judged: tuple[Unjudged, ...] = ()

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "findings": [f.to_json() for f in self.findings],
            "plans": [p.to_json() for p in self.plans if not p.is_empty],
            "notJudged": [u.to_json() for u in self.not_judged],
        }
        if self.endpoint_repairs:
            body["endpointRepairs"] = [
                {"subnet": r.subnet_id, "nsg": r.nsg_id, "services": list(r.services)} for r in self.endpoint_repairs
            ]
        return body

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
    expected_attachments: Mapping[str, str] | None = None,
    subnets: Collection[str] | None = None,
    repair_endpoints: bool = False,
) -> Assessment:
    """Findings and plans of every managed NSG, or of those whose ids are in ``only``.

    The whole inventory still counts as the network (subnets of each role,
    NICs, VNets), so an event touching one NSG is judged end to end without
    reviewing the other thousands.

    ``expected_attachments`` maps subnet ids to the managed NSG each was last
    seen attached to: a known subnet (its VNet is in the inventory) no longer
    guarded by that NSG nor by another managed one is ``nsg_detached``. With
    ``only``, such a pair is judged when its NSG is in ``only`` or its subnet
    in ``subnets``.

    When an NSG holds a rule the guard cannot read (or cannot be read at
    all), the network is judged twice: with that rule matching nothing and
    with it matching every address it could. Findings of either reading are
    reported, so nothing it might allow or block is taken as fine; nothing is
    written to that NSG, nor to another whose plan the two readings disagree on.
    """

    if not all(n.judgeable for n in inventory.nsgs):
        judge = functools.partial(
            assess,
            baseline=baseline,
            tags=tags,
            roles=roles,
            only=only,
            expected_attachments=expected_attachments,
            subnets=subnets,
            repair_endpoints=repair_endpoints,
        )
        readings = judge(_reading(inventory, widest=False)), judge(_reading(inventory, widest=True))
        return _both_readings(inventory, *readings, only)
    network = Network(inventory, baseline.lockdown_tag, roles)
    required = required_flows(network, baseline)
    wanted = {i.lower() for i in only} if only is not None else None
    findings: list[Finding] = []
    plans: list[RemediationPlan] = []
    seen: set[tuple[str, ...]] = set()
    for nsg, problem in network.misconfigured():
        if wanted is None or nsg.key in wanted:
            seen.add(_bad_tag(nsg, problem, baseline).key)
            findings.append(_bad_tag(nsg, problem, baseline))
    for f in _unlocated(required, baseline):
        if wanted is None or f.nsg.lower() in wanted:
            seen.add(f.key)
            findings.append(f)
    for nsg, nsg_roles in network.managed():
        if wanted is not None and nsg.key not in wanted:
            continue
        review = NsgReview(network, nsg, nsg_roles, baseline, tags or CONTAINMENT, required)
        nsg_findings, plan = assess_review(review)
        for f in nsg_findings:
            if f.key not in seen:
                seen.add(f.key)
                findings.append(f)
        plans.append(plan)
    if expected_attachments:
        wanted_subnets = {i.lower() for i in subnets} if subnets is not None else set()
        for f in _detached_from_memory(network, baseline, expected_attachments):
            if wanted is not None and f.nsg.lower() not in wanted and (f.subnet or "").lower() not in wanted_subnets:
                continue
            if f.key not in seen:
                seen.add(f.key)
                findings.append(f)
        # A remembered subnet names the detachment better than "guards nothing": one report.
        named = {f.nsg.lower() for f in findings if f.kind is FindingKind.NSG_DETACHED and f.subnet}
        findings = [
            f for f in findings if not (f.kind is FindingKind.NSG_DETACHED and not f.subnet and f.nsg.lower() in named)
        ]
    repairs: tuple[EndpointRepair, ...] = ()
    if repair_endpoints:
        findings, repairs = _endpoint_repairs(network, findings)
    findings.sort(key=lambda f: (-f.severity.rank, f.nsg.lower(), f.kind.value, f.requirement))
    return Assessment(tuple(findings), tuple(plans), repairs, required.unjudged)


def _unlocated(required: RequiredFlows, baseline: Baseline) -> list[Finding]:
    """One ``cyclecloud_location_unknown`` per shared NSG when CycleCloud's host cannot be told."""
    how = HOW_TO_TAG.format(tag=baseline.lockdown_tag)
    flows = ", ".join(f.name for f in baseline.flows if Role.CYCLECLOUD in (f.source.role, f.destination.role))
    return [
        Finding(
            kind=FindingKind.CYCLECLOUD_LOCATION_UNKNOWN,
            requirement="cyclecloud_location",
            nsg=nsg.id,
            rule=None,
            remediable=False,
            severity=severity_for(FindingKind.CYCLECLOUD_LOCATION_UNKNOWN, False),
            message=(
                f"NSG {nsg.name!r} is shared by CycleCloud and the cluster "
                f"({baseline.lockdown_tag}=cyclecloud,cluster) and no NIC is tagged as CycleCloud's: which host is "
                f"CycleCloud is unknown, so {flows or 'the flows to it'} cannot be judged; {how}"
            ),
            reason="the remediator does not tag NICs: " + how,
        )
        for nsg in required.unlocated
    ]


UNJUDGEABLE_REASON = "until the guard can read it, nothing is written to this NSG"
BOTH_READINGS_REASON = (
    "judged both ways because {names} cannot be read, and the two readings need different fixes: nothing is "
    "written until the unreadable rules are rewritten"
)


def _bad_tag(nsg: NetworkSecurityGroup, problem: str, baseline: Baseline) -> Finding:
    return Finding(
        kind=FindingKind.UNJUDGEABLE,
        requirement="lockdown tag",
        nsg=nsg.id,
        rule=None,
        remediable=False,
        severity=severity_for(FindingKind.UNJUDGEABLE, False),
        message=f"NSG {nsg.name!r} is not guarded: its tag {baseline.lockdown_tag} names no role ({problem})",
        reason=(
            "set the tag to cyclecloud, cluster or cyclecloud,cluster, or remove it to stop guarding this NSG; "
            "the rest of the subscription is judged as usual"
        ),
    )


def _unjudgeable(nsg: NetworkSecurityGroup) -> list[Finding]:
    """One finding per rule of ``nsg`` that cannot be read, or one for the NSG when none of it can."""
    severity = severity_for(FindingKind.UNJUDGEABLE, False)
    if nsg.unreadable:
        return [
            Finding(
                kind=FindingKind.UNJUDGEABLE,
                requirement="readable NSG",
                nsg=nsg.id,
                rule=None,
                remediable=False,
                severity=severity,
                message=(
                    f"NSG {nsg.name!r} cannot be read ({nsg.unreadable}); flows through it are judged both as if "
                    "it allowed and as if it denied everything"
                ),
                reason=UNJUDGEABLE_REASON,
            )
        ]
    return [
        Finding(
            kind=FindingKind.UNJUDGEABLE,
            requirement="readable rule",
            nsg=nsg.id,
            rule=u.name,
            remediable=False,
            severity=severity,
            message=(
                f"rule {u.name!r} (priority {u.widest.priority} {u.widest.direction.value}) in {nsg.name!r} cannot "
                f"be judged: {u.reason}; the NSG is judged both with the rule matching nothing and with it "
                "matching every address"
            ),
            reason=f"rewrite it with IP addresses, CIDRs or service tags; {UNJUDGEABLE_REASON}",
        )
        for u in nsg.unreadable_rules
    ]


def _reading(inventory: Inventory, *, widest: bool) -> Inventory:
    """The inventory with every unreadable rule matching nothing, or (``widest``) every address it could."""
    nsgs = tuple(
        n
        if n.judgeable
        else replace(
            n,
            security_rules=n.security_rules + (tuple(u.widest for u in n.unreadable_rules) if widest else ()),
            unreadable_rules=(),
            unreadable="",
        )
        for n in inventory.nsgs
    )
    return replace(inventory, nsgs=nsgs)


def _both_readings(
    inventory: Inventory, narrow: Assessment, wide: Assessment, only: Collection[str] | None
) -> Assessment:
    """Every finding of either reading; remediable only where both readings agree on the plan."""
    wanted = {i.lower() for i in only} if only is not None else None
    unreadable = {n.key: n for n in inventory.nsgs if not n.judgeable and (wanted is None or n.key in wanted)}
    names = ", ".join(
        f"NSG {n.name!r}" if n.unreadable else ", ".join(repr(u.name) for u in n.unreadable_rules)
        for n in inventory.nsgs
        if not n.judgeable
    )
    wide_plans = {p.nsg_id.lower(): p for p in wide.plans}
    held = set(unreadable)  # NSGs nothing is written to
    for plan in narrow.plans:
        other = wide_plans.get(plan.nsg_id.lower())
        if other is None or (other.added, other.replaced) != (plan.added, plan.replaced):
            held.add(plan.nsg_id.lower())
    by_key: dict[tuple[str, ...], list[Finding]] = {}
    for f in (*narrow.findings, *wide.findings):
        by_key.setdefault(f.key, []).append(f)
    findings: list[Finding] = [f for n in unreadable.values() for f in _unjudgeable(n)]
    for readings in by_key.values():
        first = readings[0]
        if first.remediable and (first.nsg.lower() in held or not all(f.remediable for f in readings)):
            first = replace(
                first,
                remediable=False,
                severity=severity_for(first.kind, False),
                reason=BOTH_READINGS_REASON.format(names=names),
            )
        findings.append(first)
    findings.sort(key=lambda f: (-f.severity.rank, f.nsg.lower(), f.kind.value, f.requirement))
    nsgs = {n.key: n for n in inventory.nsgs}
    plans = []
    for plan in narrow.plans:
        key = plan.nsg_id.lower()
        unfixed = tuple(f for f in findings if f.nsg.lower() == key and not f.remediable)
        kept = replace(plan, security_rules=nsgs[key].security_rules, added=(), replaced=()) if key in held else plan
        plans.append(replace(kept, unremediable=unfixed))
    return replace(narrow, findings=tuple(findings), plans=tuple(plans))


def _endpoint_repairs(network: Network, findings: list[Finding]) -> tuple[list[Finding], tuple[EndpointRepair, ...]]:
    """Missing service endpoints made remediable, one repair per subnet attached to a managed NSG."""
    managed = {nsg.key for nsg, _ in network.managed()}
    by_subnet: dict[str, list[Finding]] = {}
    result: list[Finding] = []
    for f in findings:
        subnet = (
            network.subnets.get((f.subnet or "").lower()) if f.kind is FindingKind.SERVICE_ENDPOINT_MISSING else None
        )
        attached = (subnet.nsg_id or "").lower() if subnet is not None else ""
        if subnet is None or attached != f.nsg.lower() or attached not in managed:
            result.append(f)  # not a subnet of the managed NSG under review: never written
            continue
        fixed = replace(f, remediable=True, reason="", severity=severity_for(f.kind, True))
        by_subnet.setdefault(subnet.key, []).append(fixed)
        result.append(fixed)
    repairs = []
    for key, fixes in by_subnet.items():
        services = tuple(dict.fromkeys(f.requirement for f in fixes))
        repairs.append(EndpointRepair(network.subnets[key].id, fixes[0].nsg, services, tuple(fixes)))
    return result, tuple(repairs)


def observed_attachments(inventory: Inventory, baseline: Baseline) -> dict[str, str]:
    """Subnet id -> the managed NSG attached to it now: what to remember for the next run.

    From the subnet's own ``nsg_id`` when its VNet is in the inventory, else
    from the managed NSGs' back-references.
    """
    network = Network(inventory, baseline.lockdown_tag)
    managed = {nsg.key: nsg for nsg, _ in network.managed()}
    pairs: dict[str, tuple[str, str]] = {}
    for subnet in network.subnets.values():
        nsg = managed.get((subnet.nsg_id or "").lower())
        if nsg is not None:
            pairs[subnet.key] = (subnet.id, nsg.id)
    for nsg in managed.values():
        for subnet_id in nsg.subnet_ids:
            if subnet_id.lower() not in network.subnets:
                pairs.setdefault(subnet_id.lower(), (subnet_id, nsg.id))
    return dict(pairs.values())


def released_attachments(inventory: Inventory, baseline: Baseline, expected: Mapping[str, str]) -> list[str]:
    """Remembered subnets still attached to their NSG, whose lockdown tag was removed: no longer guarded.

    Removing the tag is how an operator stops guarding an NSG, so these
    expectations are dropped rather than reported.
    """
    network = Network(inventory, baseline.lockdown_tag)
    managed = {nsg.key for nsg, _ in network.managed()}
    released = []
    for subnet_id, nsg_id in expected.items():
        subnet = network.subnets.get(subnet_id.lower())
        if subnet is not None and (subnet.nsg_id or "").lower() == nsg_id.lower() and nsg_id.lower() not in managed:
            released.append(subnet_id)
    return released


def _detached_from_memory(network: Network, baseline: Baseline, expected: Mapping[str, str]) -> list[Finding]:
    """``nsg_detached`` for each remembered pair whose known subnet lost its managed NSG."""
    managed = {nsg.key for nsg, _ in network.managed()}
    tag = baseline.lockdown_tag
    found: list[Finding] = []
    for subnet_id, nsg_id in expected.items():
        subnet = network.subnets.get(subnet_id.lower())
        if subnet is None:
            continue  # its VNet was not read, or the subnet is gone: nothing to judge
        now = (subnet.nsg_id or "").lower()
        if now in managed or now == nsg_id.lower():
            # Guarded by a managed NSG (reviewed as such), or still by the same NSG whose
            # tag was removed: that is how an operator stops guarding it (see released_attachments).
            continue
        lost = network.nsg_by_id(nsg_id)
        lost_name = nsg_id.rstrip("/").rsplit("/", 1)[-1]
        has = f"NSG {subnet.nsg_id.rsplit('/', 1)[-1]!r} (not tagged {tag})" if subnet.nsg_id else "no NSG"
        gone = "" if lost is not None else f"; {lost_name!r} no longer exists or is no longer tagged"
        what = f"lost managed NSG {lost_name!r} and now has {has}{gone}"
        found.append(
            Finding(
                kind=FindingKind.NSG_DETACHED,
                requirement="attachment",
                nsg=lost.id if lost is not None else nsg_id,
                rule=None,
                remediable=False,
                severity=severity_for(FindingKind.NSG_DETACHED, False),
                message=f"subnet {subnet.name!r} {what}",
                reason=DETACHED_REASON,
                subnet=subnet.id,
            )
        )
    return found


def assess_review(review: NsgReview) -> tuple[list[Finding], RemediationPlan]:
    """Findings and plan of one NSG; remediable means "gone after the plan"."""
    before = review.problems()
    plan = build_plan(review)
    after = review.problems(planned_nsg(review.nsg, plan)) if not plan.is_empty else before
    # A requirement still unmet after the plan is not fixed by it, whatever rule now decides it
    # or however its kind reads (a missing BlockOutbound placed under a person's allow is then
    # shadowed): one finding, not fixable, never two with opposite flags.
    after_keys = {_unmet(p) for p in after}
    before_keys = {_unmet(p) for p in before}
    findings = [_finding(p, _unmet(p) not in after_keys, review) for p in before]
    findings += [_finding(p, False, review) for p in after if _unmet(p) not in before_keys]
    unremediable = tuple(f for f in findings if not f.remediable)
    return findings, replace(plan, unremediable=unremediable)


def _unmet(problem: Problem) -> tuple[str, ...]:
    return unmet_key(problem.kind, problem.requirement, problem.nsg_id, problem.subnet_id, problem.key)


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
        default_rule=problem.rule is not None and problem.rule.is_default,
        source=problem.source,
    )


def _reason(problem: Problem, review: NsgReview) -> str:
    if problem.kind is FindingKind.NSG_DETACHED:
        return DETACHED_REASON
    if problem.kind is FindingKind.SERVICE_ENDPOINT_MISSING:
        return ENDPOINT_REASON.format(service=problem.requirement)
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
