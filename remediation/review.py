"""Review one managed NSG against the baseline: the raw problems, before planning.

A requirement is judged by meaning: the part of the flow space a baseline
rule decides *within the baseline* (its *portion*) must be decided the same
way by the NSG, whatever the names of the NSG's rules. Each problem keeps
the rule that decides it, so findings can say why.
"""

from __future__ import annotations

from dataclasses import dataclass

from remediation.baseline import Baseline, FlowEndpoint, FlowRequirement, Role, RuleRequirement
from remediation.evaluate import (
    EvaluationContext,
    Flows,
    FlowSet,
    FlowVerdict,
    PathVerdict,
    Universe,
    evaluate_nsg,
    evaluate_path,
    evaluate_rules,
    restrict,
)
from remediation.findings import FindingKind
from remediation.model import (
    Access,
    Address,
    AnyAddress,
    Direction,
    NetworkSecurityGroup,
    Prefix,
    Protocol,
    SecurityRule,
    ServiceTag,
    Subnet,
)
from remediation.network import Network
from remediation.tags import TagModel

_INTERNET = ServiceTag("Internet")
_VNET = ServiceTag("VirtualNetwork")


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong, before we know whether the plan can fix it."""

    kind: FindingKind
    requirement: str
    nsg_id: str
    rule: SecurityRule | None
    detail: str
    subnet_id: str | None = None

    @property
    def key(self) -> tuple[str, str, str, str, str]:
        return (
            self.kind.value,
            self.requirement,
            self.nsg_id.lower(),
            (self.rule.name if self.rule else "").lower(),
            (self.subnet_id or "").lower(),
        )


@dataclass(frozen=True, slots=True)
class FlowCheck:
    """A required flow as seen from one NSG: the query and the NSG pairs on its path."""

    requirement: FlowRequirement
    direction: Direction
    flows: Flows
    paths: tuple[tuple[NetworkSecurityGroup | None, NetworkSecurityGroup | None, str], ...]


class NsgReview:
    """Everything needed to judge (and re-judge after a plan) one managed NSG."""

    def __init__(
        self,
        network: Network,
        nsg: NetworkSecurityGroup,
        roles: frozenset[Role],
        baseline: Baseline,
        tags: TagModel,
    ) -> None:
        self.network = network
        self.nsg = nsg
        self.roles = roles
        self.baseline = baseline
        self.requirements = baseline.rules_for(roles)
        self.subnets = network.subnets_of(nsg)
        vnet_prefixes = network.vnet_prefixes_for(self.subnets) if network.vnets else ()
        self.ctx = EvaluationContext(tags=tags, vnet_prefixes=vnet_prefixes, asg_members=network.asg_members())
        self.flow_checks = self._flow_checks()
        rules: list[SecurityRule] = [*nsg.security_rules, *(r.rule for r in self.requirements)]
        for check in self.flow_checks:
            for subnet_nsg, nic_nsg, _ in check.paths:
                for other in (subnet_nsg, nic_nsg):
                    if other is not None and other.key != nsg.key:
                        rules.extend(other.security_rules)
        self.universe = Universe.of(self.ctx, rules, [c.flows for c in self.flow_checks], addresses=[_INTERNET])
        self.portions = self._portions()
        self._internet = self.universe.flows(_to_internet())
        # evaluate_nsg answers by (rule objects, direction, query object). The plan asks
        # again what the review already asked of the same rules; the stored value keeps
        # the rules and the query alive, so their ids in the key cannot be reused.
        self._verdicts: dict[
            tuple[str, int, Direction, int], tuple[tuple[SecurityRule, ...], FlowSet, FlowVerdict]
        ] = {}
        self._allowlists: dict[Direction, FlowSet] = {}
        self._same: dict[tuple[int, str], tuple[SecurityRule, bool]] = {}
        self._names: dict[int, tuple[tuple[SecurityRule, ...], dict[str, SecurityRule]]] = {}
        self._flow_queries = [self.universe.flows(c.flows) for c in self.flow_checks]
        self._paths_seen: dict[tuple[int, Direction, str, str, int, int], tuple[object, PathVerdict]] = {}
        # The questions verdict() is asked most (each baseline rule's portion, all of the
        # Internet outbound) are answered from one evaluation per NSG and direction over
        # their union: one pass over the rules instead of one per question.
        self._known: dict[Direction, dict[int, FlowSet]] = {d: {} for d in Direction}
        # The Internet first: the baseline's portions mostly lie inside it, so the union
        # stays one cube instead of the Internet cut around each portion.
        self._known[Direction.OUTBOUND][id(self._internet)] = self._internet
        for req in self.requirements:
            portion = self.portion(req)
            self._known[req.rule.direction][id(portion)] = portion
        self._cover: dict[Direction, FlowSet] = {}
        for direction, queries in self._known.items():
            union = self.universe.empty()
            for q in queries.values():
                union = union | q
            self._cover[direction] = union
        # The breach check's basis, the same for the NSG as read and for its plan: the
        # outbound deny rules that lock the Internet, and what may still reach it.
        self._locks = [
            r
            for r in self.requirements
            if r.rule.access is Access.DENY
            and r.rule.direction is Direction.OUTBOUND
            and not (self._internet & self.universe.rule_flows(r.rule)).is_empty
        ]
        self._permitted = (
            self.allowlist(Direction.OUTBOUND) | self._required_flows(Direction.OUTBOUND)
            if self._locks
            else self.universe.empty()
        )

    # -- the baseline's own meaning ---------------------------------------------

    def _portions(self) -> dict[str, FlowSet]:
        """For each baseline rule, the flows it decides within the baseline itself."""
        portions: dict[str, FlowSet] = {}
        for direction in Direction:
            rules = sorted(
                (r.rule for r in self.requirements if r.rule.direction is direction), key=lambda r: r.priority
            )
            verdict = evaluate_rules(self.universe, rules, self.universe.all_flows())
            for decision in verdict.decisions:
                portions[decision.rule.name.lower()] = decision.flows
        return portions

    def portion(self, requirement: RuleRequirement) -> FlowSet:
        return self.portions.get(requirement.name.lower(), self.universe.empty())

    def verdict(self, nsg: NetworkSecurityGroup, direction: Direction, query: FlowSet) -> FlowVerdict:
        """``evaluate_nsg`` in this review's universe, computed once per rule list and query."""
        rules = self.universe.ordered(nsg.security_rules, direction)
        # Keyed by the rules of this direction only (Universe.ordered gives one tuple per
        # distinct list): a plan that adds outbound rules leaves every inbound answer of
        # the NSG as read valid for the planned NSG.
        key = (nsg.id, id(rules), direction, id(query))
        hit = self._verdicts.get(key)
        if hit is None:
            cover = self._cover[direction]
            if query is not cover and self._known[direction].get(id(query)) is query:
                answer = restrict(self.verdict(nsg, direction, cover), query)
            else:
                answer = evaluate_nsg(self.universe, nsg, direction, query)
            hit = self._verdicts[key] = (rules, query, answer)
        return hit[2]

    def wrongly_decided(self, nsg: NetworkSecurityGroup, requirement: RuleRequirement) -> FlowSet:
        """The part of the requirement's portion that ``nsg`` decides the other way."""
        verdict = self.verdict(nsg, requirement.rule.direction, self.portion(requirement))
        return verdict.denied if requirement.rule.access is Access.ALLOW else verdict.allowed

    def satisfied(self, nsg: NetworkSecurityGroup, requirement: RuleRequirement) -> bool:
        return self.wrongly_decided(nsg, requirement).is_empty

    def allowlist(self, direction: Direction) -> FlowSet:
        """What the baseline allows in ``direction``: the only Internet traffic permitted."""
        allowed = self._allowlists.get(direction)
        if allowed is None:
            allowed = self.universe.empty()
            for req in self.requirements:
                if req.rule.direction is direction and req.rule.access is Access.ALLOW:
                    allowed = allowed | self.portion(req)
            self._allowlists[direction] = allowed
        return allowed

    # -- problems ---------------------------------------------------------------

    def problems(self, nsg: NetworkSecurityGroup | None = None) -> list[Problem]:
        """Every problem of ``nsg`` (default: the NSG as read; a planned NSG to re-check a plan)."""
        nsg = nsg or self.nsg
        found: list[Problem] = []
        for req in self.requirements:
            found.extend(self._rule_problems(nsg, req))
        found.extend(self._breach_problems(nsg))
        found.extend(self._flow_problems(nsg))
        found.extend(self._attachment_problems())
        return found

    def _rule_problems(self, nsg: NetworkSecurityGroup, req: RuleRequirement) -> list[Problem]:
        portion = self.portion(req)
        if portion.is_empty:
            return []
        verdict = self.verdict(nsg, req.rule.direction, portion)
        wrong = verdict.denied if req.rule.access is Access.ALLOW else verdict.allowed
        named = self.named(nsg, req.name)
        if wrong.is_empty:
            if named is not None and not self.same_meaning(named, req):
                # Its portion is still decided right, but the rule under the baseline's
                # name was widened (AllowAzureRM to any port): it is ours to restore.
                return [
                    Problem(
                        FindingKind.MODIFIED_RULE,
                        req.name,
                        nsg.id,
                        named,
                        f"rule {named.name!r} no longer does what the baseline requires: {self._difference(named, req)}",
                    )
                ]
            return []
        culprits = [d.rule for d in verdict.decisions if d.access is not req.rule.access and d.rule is not named]
        custom_culprit = next((r for r in culprits if not r.is_default), None)
        where = ",".join(a.to_arm() for a in req.rule.destinations)
        what = f"{wrong.describe()} to {where} ({req.rule.access.value.lower()} required by {req.name})"
        if named is not None and self._equivalent(named, req):
            culprit = custom_culprit or (culprits[0] if culprits else None)
            if culprit is not None and self.baseline.owns(culprit.name):
                return []  # a drifted baseline rule: its own finding (modified, breach) covers it
            who = f"rule {culprit.name!r} (priority {culprit.priority})" if culprit else "another rule"
            return [
                Problem(
                    FindingKind.SHADOWED_RULE,
                    req.name,
                    nsg.id,
                    culprit,
                    f"{who} overrides {req.name} for {what}",
                )
            ]
        if named is not None:
            return [
                Problem(
                    FindingKind.MODIFIED_RULE,
                    req.name,
                    nsg.id,
                    named,
                    f"rule {named.name!r} no longer does what the baseline requires: {what}",
                )
            ]
        deciding = custom_culprit or (culprits[0] if culprits else None)
        detail = f"no rule provides {req.name}: {what}"
        if deciding is not None:
            detail += f"; decided now by {deciding.name!r} (priority {deciding.priority})"
        return [Problem(FindingKind.MISSING_RULE, req.name, nsg.id, deciding, detail)]

    def named(self, nsg: NetworkSecurityGroup, name: str) -> SecurityRule | None:
        """The rule of ``nsg`` called ``name`` (ARM compares rule names case-insensitively)."""
        rules = nsg.security_rules
        index = self._names.get(id(rules))
        if index is None or index[0] is not rules:
            index = self._names[id(rules)] = (rules, {r.name.lower(): r for r in reversed(rules)})
        return index[1].get(name.lower())

    def same_meaning(self, rule: SecurityRule, req: RuleRequirement) -> bool:
        """The rule decides exactly the requirement's flows, the same way (spelling aside)."""
        key = (id(rule), req.name)
        hit = self._same.get(key)
        if hit is None or hit[0] is not rule:
            hit = self._same[key] = (rule, self._same_meaning(rule, req))
        return hit[1]

    def _same_meaning(self, rule: SecurityRule, req: RuleRequirement) -> bool:
        if rule.direction is not req.rule.direction or rule.access is not req.rule.access:
            return False
        mine, wanted = self.universe.rule_flows(rule), self.universe.rule_flows(req.rule)
        return mine.issubset(wanted) and wanted.issubset(mine)

    def _difference(self, rule: SecurityRule, req: RuleRequirement) -> str:
        if rule.direction is not req.rule.direction or rule.access is not req.rule.access:
            return f"it is {rule.direction.value} {rule.access.value}, the baseline's {req.rule.direction.value} {req.rule.access.value}"
        mine, wanted = self.universe.rule_flows(rule), self.universe.rule_flows(req.rule)
        parts = []
        if not (mine - wanted).is_empty:
            parts.append(f"it also matches {(mine - wanted).describe()}")
        if not (wanted - mine).is_empty:
            parts.append(f"it no longer matches {(wanted - mine).describe()}")
        return "; ".join(parts)

    def _equivalent(self, rule: SecurityRule, req: RuleRequirement) -> bool:
        """Same direction and access, and it matches at least the requirement's portion."""
        if rule.direction is not req.rule.direction or rule.access is not req.rule.access:
            return False
        return self.portion(req).issubset(self.universe.rule_flows(rule))

    def _breach_problems(self, nsg: NetworkSecurityGroup) -> list[Problem]:
        locks, permitted = self._locks, self._permitted
        if not locks:
            return []
        verdict = self.verdict(nsg, Direction.OUTBOUND, self._internet)
        found: list[Problem] = []
        for decision in verdict.decisions:
            if decision.access is not Access.ALLOW:
                continue
            # What this rule allows beyond the permitted flows; the same as intersecting it
            # with (all allowed - permitted), without building that large set.
            extra = decision.flows - permitted
            if extra.is_empty:
                continue
            found.append(
                Problem(
                    FindingKind.LOCKDOWN_BREACH,
                    locks[0].name,
                    nsg.id,
                    decision.rule,
                    f"rule {decision.rule.name!r} (priority {decision.rule.priority}) allows {extra.describe()} "
                    "outbound to the Internet beyond the baseline's allow-list",
                )
            )
        return found

    def _required_flows(self, direction: Direction) -> FlowSet:
        required = self.universe.empty()
        for check, query in zip(self.flow_checks, self._flow_queries, strict=True):
            if check.direction is direction:
                required = required | query
        return required

    def _flow_checks(self) -> list[FlowCheck]:
        checks: list[FlowCheck] = []
        for req in self.baseline.flows:
            src_role, dst_role = req.source.role, req.destination.role
            if src_role is not None and src_role in self.roles:
                sources = self._addresses(self.subnets)
                destinations = self._endpoint(req.destination)
                flows = Flows(req.protocol, sources, destinations, req.ports)
                checks.append(FlowCheck(req, Direction.OUTBOUND, flows, self._paths(self.subnets)))
            if dst_role is not None and dst_role in self.roles:
                sources = self._endpoint(req.source)
                destinations = self._addresses(self.subnets)
                flows = Flows(req.protocol, sources, destinations, req.ports)
                checks.append(FlowCheck(req, Direction.INBOUND, flows, self._paths(self.subnets)))
        return checks

    def _endpoint(self, endpoint: FlowEndpoint) -> tuple[Address, ...]:
        if endpoint.role is None:
            return endpoint.addresses
        return self._addresses(self.network.subnets_with_role(endpoint.role))

    def _addresses(self, subnets: list[Subnet]) -> tuple[Address, ...]:
        """Subnet prefixes when known; else the VirtualNetwork tag, which every subnet lies in."""
        prefixes = tuple(Prefix(p) for s in subnets for p in s.address_prefixes)
        return prefixes or (_VNET,)

    def _paths(
        self, subnets: list[Subnet]
    ) -> tuple[tuple[NetworkSecurityGroup | None, NetworkSecurityGroup | None, str], ...]:
        """(subnet NSG, NIC NSG, label) on the paths into this NSG's subnets: this NSG, and each NIC NSG seen."""
        paths: list[tuple[NetworkSecurityGroup | None, NetworkSecurityGroup | None, str]] = [(self.nsg, None, "subnet")]
        seen: set[str] = set()
        for subnet in subnets:
            for nic in self.network.nics_in(subnet):
                nic_nsg = self.network.nsg_by_id(nic.nsg_id)
                if nic_nsg is not None and nic_nsg.key not in seen:
                    seen.add(nic_nsg.key)
                    paths.append((self.nsg, nic_nsg, f"NIC {nic.name}"))
        return tuple(paths)

    def _flow_problems(self, nsg: NetworkSecurityGroup) -> list[Problem]:
        found: list[Problem] = []
        for check, query in zip(self.flow_checks, self._flow_queries, strict=True):
            for subnet_nsg, nic_nsg, label in check.paths:
                subnet_level = nsg if subnet_nsg is not None and subnet_nsg.key == nsg.key else subnet_nsg
                verdict = self._path_verdict(query, check.direction, subnet_level, nic_nsg)
                blocking = verdict.blocking
                if blocking is None:
                    continue
                step, rule = blocking
                where = step.nsg_id or nsg.id
                found.append(
                    Problem(
                        FindingKind.PORT_BLOCKED,
                        check.requirement.name,
                        where,
                        rule,
                        f"{check.requirement.name}: {verdict.denied.describe()} "
                        f"{'from' if check.direction is Direction.INBOUND else 'to'} "
                        f"{(check.requirement.source if check.direction is Direction.INBOUND else check.requirement.destination).describe()} "
                        f"is denied {check.direction.value.lower()} by rule {rule.name!r} "
                        f"(priority {rule.priority}) "
                        + ("at the subnet level" if step.level == "subnet" else f"at the NIC level ({label})"),
                    )
                )
        return found

    def _path_verdict(
        self,
        query: FlowSet,
        direction: Direction,
        subnet_nsg: NetworkSecurityGroup | None,
        nic_nsg: NetworkSecurityGroup | None,
    ) -> PathVerdict:
        """``evaluate_path``, remembered by the rules of ``direction`` at each level.

        The re-check of a plan asks again of the same rules (a plan adding outbound
        rules leaves every inbound path as it was); the stored rule lists keep the
        ids in the key from being reused.
        """
        subnet_rules = self.universe.ordered(subnet_nsg.security_rules, direction) if subnet_nsg else ()
        nic_rules = self.universe.ordered(nic_nsg.security_rules, direction) if nic_nsg else ()
        key = (
            id(query),
            direction,
            subnet_nsg.id if subnet_nsg else "",
            nic_nsg.id if nic_nsg else "",
            id(subnet_rules),
            id(nic_rules),
        )
        hit = self._paths_seen.get(key)
        if hit is None:
            answer = evaluate_path(self.universe, query, direction, subnet_nsg, nic_nsg)
            hit = self._paths_seen[key] = ((subnet_nsg, nic_nsg, subnet_rules, nic_rules), answer)
        return hit[1]

    def _attachment_problems(self) -> list[Problem]:
        found: list[Problem] = []
        for subnet_id in self.nsg.subnet_ids:
            subnet = self.network.subnets.get(subnet_id.lower())
            if subnet is None or (subnet.nsg_id or "").lower() == self.nsg.key:
                continue
            other = f"NSG {subnet.nsg_id.rsplit('/', 1)[-1]!r}" if subnet.nsg_id else "no NSG"
            found.append(
                Problem(
                    FindingKind.NSG_DETACHED,
                    "attachment",
                    self.nsg.id,
                    None,
                    f"subnet {subnet.name!r} is managed by {self.nsg.name!r} but now has {other}",
                    subnet.id,
                )
            )
        for req in self.baseline.service_endpoints:
            if not req.roles & self.roles:
                continue
            for subnet in self.subnets:
                if subnet.key not in self.network.subnets:
                    continue  # only a back-reference: endpoints unknown
                if not any(e.lower() == req.service.lower() for e in subnet.service_endpoints):
                    found.append(
                        Problem(
                            FindingKind.SERVICE_ENDPOINT_MISSING,
                            req.service,
                            self.nsg.id,
                            None,
                            f"subnet {subnet.name!r} has no {req.service} service endpoint",
                            subnet.id,
                        )
                    )
        return found


def _to_internet() -> Flows:
    return Flows(Protocol.ANY, (AnyAddress(),), (_INTERNET,))
