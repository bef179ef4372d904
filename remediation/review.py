"""Review one managed NSG against the baseline: the raw problems, before planning.

A requirement is judged by meaning: the part of the flow space a baseline
rule decides *within the baseline* (its *portion*) must be decided the same
way by the NSG, whatever the names of the NSG's rules. Each problem keeps
the rule that decides it, so findings can say why.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from remediation.baseline import Baseline, Role, RuleRequirement
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
from remediation.findings import DEFAULT_RULE_MARK, FindingKind, where_key
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
)
from remediation.network import Network
from remediation.required_flows import RequiredFlows, is_service_subnet, required_flows
from remediation.tags import TagModel

_INTERNET = ServiceTag("Internet")
_VNET = ServiceTag("VirtualNetwork")
_ANY = AnyAddress()


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong, before we know whether the plan can fix it."""

    kind: FindingKind
    requirement: str
    nsg_id: str
    rule: SecurityRule | None
    detail: str
    subnet_id: str | None = None
    source: str | None = None

    @property
    def key(self) -> tuple[str, str, str, str, str]:
        return (
            self.kind.value,
            self.requirement,
            self.nsg_id.lower(),
            (self.rule.name.lower() + (DEFAULT_RULE_MARK if self.rule.is_default else "")) if self.rule else "",
            where_key(self.subnet_id, self.source),
        )


class NsgReview:
    """Everything needed to judge (and re-judge after a plan) one managed NSG.

    ``required`` is the network's required flows (:func:`required_flows`),
    computed once per assessment and shared by every review; None computes it.
    """

    def __init__(
        self,
        network: Network,
        nsg: NetworkSecurityGroup,
        roles: frozenset[Role],
        baseline: Baseline,
        tags: TagModel,
        required: RequiredFlows | None = None,
    ) -> None:
        self.network = network
        self.nsg = nsg
        self.roles = roles
        self.baseline = baseline
        self.requirements = baseline.rules_for(roles)
        self.subnets = network.subnets_of(nsg)
        self.nics = network.nics_of(nsg)
        # A NIC-level NSG guards its NIC's traffic only; the NIC's subnet is where that traffic
        # lives (its VNet, its service endpoints).
        self.nic_subnets = [
            network.subnets[k]
            for k in dict.fromkeys(s.lower() for nic in self.nics for s in nic.subnet_ids)
            if k in network.subnets
        ]
        self.required = required if required is not None else required_flows(network, baseline)
        self.legs = self.required.legs_of(nsg)
        vnet_prefixes = network.vnet_prefixes_for(self.subnets + self.nic_subnets) if network.vnets else ()
        self.ctx = EvaluationContext(tags=tags, vnet_prefixes=vnet_prefixes, asg_members=network.asg_members())
        self.scope = self._scope()
        rules: list[SecurityRule] = [*nsg.security_rules, *(r.rule for r in self.requirements)]
        seen = {nsg.key}
        for leg in self.legs:
            for other in (leg.subnet_nsg, leg.nic_nsg):
                if other is not None and other.key not in seen:
                    seen.add(other.key)
                    rules.extend(other.security_rules)
        self.universe = Universe.of(
            self.ctx, rules, [leg.flows for leg in self.legs], addresses=[_INTERNET, *self.scope]
        )
        # The traffic this NSG can see, by direction: what leaves (enters) its subnets or NIC.
        # A requirement is judged there only: an outbound rule from VirtualNetwork means the
        # baseline's "from *" for every packet that can leave a subnet of that VNet.
        self._context = {
            Direction.OUTBOUND: self.universe.flows(Flows(Protocol.ANY, self.scope, (_ANY,))),
            Direction.INBOUND: self.universe.flows(Flows(Protocol.ANY, (_ANY,), self.scope)),
        }
        self.portions = self._portions()
        self._scoped: dict[str, FlowSet] = {
            name: portion & self._context[direction] for name, (direction, portion) in self.portions.items()
        }
        self._internet = self.universe.flows(Flows(Protocol.ANY, self.scope, (_INTERNET,)))
        # evaluate_nsg answers by (rule objects, direction, query object). The plan asks
        # again what the review already asked of the same rules; the stored value keeps
        # the rules and the query alive, so their ids in the key cannot be reused.
        self._verdicts: dict[
            tuple[str, int, Direction, int], tuple[tuple[SecurityRule, ...], FlowSet, FlowVerdict]
        ] = {}
        self._allowlists: dict[Direction, FlowSet] = {}
        self._same: dict[tuple[int, str], tuple[SecurityRule, bool]] = {}
        self._names: dict[int, tuple[tuple[SecurityRule, ...], dict[str, SecurityRule]]] = {}
        self._leg_queries = [self.universe.flows(leg.flows) for leg in self.legs]
        self._paths_seen: dict[tuple[int, Direction, str, str, int, int], tuple[object, PathVerdict]] = {}
        # The questions verdict() is asked most (each baseline rule's portion, all of the
        # Internet outbound) are answered from one evaluation per NSG and direction over
        # their union: one pass over the rules instead of one per question.
        self._known: dict[Direction, dict[int, FlowSet]] = {d: {} for d in Direction}
        # The Internet first: the baseline's portions mostly lie inside it, so the union
        # stays one cube instead of the Internet cut around each portion.
        self._known[Direction.OUTBOUND][id(self._internet)] = self._internet
        for req in self.requirements:
            portion = self.scoped_portion(req)
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

    def _scope(self) -> tuple[Address, ...]:
        """The addresses on this NSG's own side of its traffic.

        A NIC-level NSG (attached to NICs only) sees its NICs' private IPs;
        any other NSG the VirtualNetwork its subnets lie in.
        """
        if self.nics and not self.subnets and all(nic.private_ips for nic in self.nics):
            return tuple(Prefix(ipaddress.ip_network(ip)) for nic in self.nics for ip in nic.private_ips)
        return (_VNET,)

    def _portions(self) -> dict[str, tuple[Direction, FlowSet]]:
        """For each baseline rule, the flows it decides within the baseline itself."""
        portions: dict[str, tuple[Direction, FlowSet]] = {}
        for direction in Direction:
            rules = sorted(
                (r.rule for r in self.requirements if r.rule.direction is direction), key=lambda r: r.priority
            )
            verdict = evaluate_rules(self.universe, rules, self.universe.all_flows())
            for decision in verdict.decisions:
                portions[decision.rule.name.lower()] = (direction, decision.flows)
        return portions

    def portion(self, requirement: RuleRequirement) -> FlowSet:
        """The flows the requirement decides within the baseline (whatever their source)."""
        found = self.portions.get(requirement.name.lower())
        return found[1] if found is not None else self.universe.empty()

    def scoped_portion(self, requirement: RuleRequirement) -> FlowSet:
        """The requirement's portion within the traffic this NSG can see: what it is judged on."""
        return self._scoped.get(requirement.name.lower(), self.universe.empty())

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
        verdict = self.verdict(nsg, requirement.rule.direction, self.scoped_portion(requirement))
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
                    allowed = allowed | self.scoped_portion(req)
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
        portion = self.scoped_portion(req)
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
        # Judged by meaning: the baseline's rule under another name (the same flows, the same
        # access), overridden, is shadowed just as it would be under the baseline's name.
        provider = named if named is not None and self._equivalent(named, req) else None
        if provider is None and named is None:
            provider = next(
                (r for r in nsg.security_rules if r not in culprits and self.same_meaning(r, req)),
                None,
            )
        if provider is not None:
            culprit = custom_culprit or (culprits[0] if culprits else None)
            if culprit is not None and self.baseline.owns(culprit.name):
                return []  # a drifted baseline rule: its own finding (modified, breach) covers it
            who = f"rule {culprit.name!r} (priority {culprit.priority})" if culprit else "another rule"
            alias = "" if provider.name.lower() == req.name.lower() else f" (provided by rule {provider.name!r})"
            return [
                Problem(
                    FindingKind.SHADOWED_RULE,
                    req.name,
                    nsg.id,
                    culprit,
                    f"{who} overrides {req.name}{alias} for {what}",
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
            detail += f"; decided now by {_rule_label(deciding)}"
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
        mine, wanted = self._in_context(rule), self._in_context(req.rule)
        return mine.issubset(wanted) and wanted.issubset(mine)

    def _in_context(self, rule: SecurityRule) -> FlowSet:
        """The flows ``rule`` matches among those this NSG can see (spelling and unseen sources aside)."""
        return self.universe.rule_flows(rule) & self._context[rule.direction]

    def _difference(self, rule: SecurityRule, req: RuleRequirement) -> str:
        if rule.direction is not req.rule.direction or rule.access is not req.rule.access:
            return f"it is {rule.direction.value} {rule.access.value}, the baseline's {req.rule.direction.value} {req.rule.access.value}"
        mine, wanted = self._in_context(rule), self._in_context(req.rule)
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
        return self.scoped_portion(req).issubset(self.universe.rule_flows(rule))

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
        for leg, query in zip(self.legs, self._leg_queries, strict=True):
            if leg.direction is direction:
                required = required | query
        return required

    def _flow_problems(self, nsg: NetworkSecurityGroup) -> list[Problem]:
        found: list[Problem] = []
        for leg, query in zip(self.legs, self._leg_queries, strict=True):
            subnet_nsg = nsg if leg.subnet_nsg is not None and leg.subnet_nsg.key == nsg.key else leg.subnet_nsg
            nic_nsg = nsg if leg.nic_nsg is not None and leg.nic_nsg.key == nsg.key else leg.nic_nsg
            verdict = self._path_verdict(query, leg.direction, subnet_nsg, nic_nsg)
            blocking = verdict.blocking
            if blocking is None:
                continue
            step, rule = blocking
            where = step.nsg_id or nsg.id
            level = "at the subnet level" if step.level == "subnet" else f"at the NIC level ({leg.nic_label})"
            name = leg.requirement.name
            found.append(
                Problem(
                    FindingKind.PORT_BLOCKED,
                    name,
                    where,
                    rule,
                    f"{name}: {verdict.denied.describe()} from {leg.source.label} to {leg.destination.label} "
                    f"is denied {leg.direction.value.lower()} by {_rule_label(rule)} {level}",
                    leg.source.subnet.id if leg.source.subnet is not None else None,
                    leg.source.label,
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

        def detached(detail: str, subnet_id: str | None = None) -> None:
            found.append(Problem(FindingKind.NSG_DETACHED, "attachment", self.nsg.id, None, detail, subnet_id))

        if not self.network.guards_anything(self.nsg):
            detached(f"managed NSG {self.nsg.name!r} is attached to no subnet and no NIC: it guards nothing")
        for subnet_id in self.nsg.subnet_ids:
            subnet = self.network.subnets.get(subnet_id.lower())
            if subnet is None or (subnet.nsg_id or "").lower() == self.nsg.key:
                continue
            other = f"NSG {subnet.nsg_id.rsplit('/', 1)[-1]!r}" if subnet.nsg_id else "no NSG"
            detached(f"subnet {subnet.name!r} is managed by {self.nsg.name!r} but now has {other}", subnet.id)
        for req in self.baseline.service_endpoints:
            if not req.roles & self.roles:
                continue
            for subnet in [*self.subnets, *self.nic_subnets]:
                if subnet.key not in self.network.subnets:
                    continue  # only a back-reference: endpoints unknown
                if is_service_subnet(subnet):
                    continue  # NetApp's, MySQL's, Bastion's: neither nodes nor CycleCloud live there
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


def _rule_label(rule: SecurityRule) -> str:
    """How a message names a rule; Azure's default rules are said to be so."""
    kind = "default rule" if rule.is_default else "rule"
    return f"{kind} {rule.name!r} (priority {rule.priority})"
