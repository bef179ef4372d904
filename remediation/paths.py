"""Beyond the NSGs: can CycleCloud reach what it needs through the path it actually takes?

For the CycleCloud subnets and the node subnets this follows each required
destination through the subnet's effective routes (:mod:`remediation.routes`)
and, where the next hop is an Azure Firewall, through the firewall's rules
(:mod:`remediation.firewall`):

* HTTPS from the CycleCloud subnets to each name of the baseline's
  ``firewall:`` section (the document's list, plus what operators add);
* the baseline's flows between subnets (node -> CycleCloud TCP 5672/9443)
  when their route crosses a firewall.

Findings (:class:`~remediation.findings.FindingKind`): ``firewall_blocked``
names the deciding group/collection/rule (or says no rule allows it: the
firewall's default deny); ``route_dropped`` names the route that drops the
traffic; ``path_unjudged`` (info) says once what cannot be judged: an
appliance that is not an Azure Firewall in the input, a gateway, a policy
or route table missing from the input, a rule that may match.

None of them is remediable, by design: a route table and a firewall policy
are shared by many workloads (a hub's policy serves every spoke), so
changing them is a network team's decision, not a guard's. They are alerted.

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from remediation.baseline import Baseline, FlowRequirement, RequiredFqdn, Role
from remediation.findings import Finding, FindingKind, Severity
from remediation.firewall import (
    AzureFirewall,
    Decision,
    FirewallFlow,
    FirewallPolicy,
    IpGroup,
    RuleCollectionGroup,
    RuleSet,
    judge,
    ordered_rules,
)
from remediation.model import IPNetwork, Subnet
from remediation.network import Network
from remediation.required_flows import RequiredFlows, required_flows
from remediation.routes import Destination, Hop, NextHopType, RouteTable, SubnetRoutes, routes_by_subnet, system_routes

__all__ = ["NEVER_WRITTEN", "PathInventory", "PathReport", "PathVerdict", "judge_paths", "merge_paths"]

NEVER_WRITTEN = (
    "route tables and firewall policies are shared by many workloads (a hub's policy serves every spoke); "
    "the guard alerts on them and never writes them"
)


@dataclass(frozen=True, slots=True)
class PathInventory:
    """What lies on the path beyond the NSGs, as read from ARM or exported JSON."""

    route_tables: tuple[RouteTable, ...] = ()
    firewalls: tuple[AzureFirewall, ...] = ()
    policies: tuple[FirewallPolicy, ...] = ()
    groups: tuple[RuleCollectionGroup, ...] = ()
    ip_groups: tuple[IpGroup, ...] = ()
    #: Subnet id (lower-case) -> the route table id it names.
    route_table_of: Mapping[str, str] = field(default_factory=dict)
    #: VNet id (lower-case) -> prefixes of its connected peerings.
    peered_prefixes: Mapping[str, tuple[IPNetwork, ...]] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not (self.route_tables or self.firewalls or self.policies or self.groups or self.ip_groups)


def merge_paths(*inventories: PathInventory) -> PathInventory:
    """One path inventory from several; a later resource of the same id replaces an earlier one."""

    def by_id(items: Iterable[Any]) -> tuple[Any, ...]:
        return tuple({item.id.lower(): item for item in items}.values())

    associations: dict[str, str] = {}
    peerings: dict[str, tuple[IPNetwork, ...]] = {}
    for inventory in inventories:
        associations.update(inventory.route_table_of)
        peerings.update(inventory.peered_prefixes)
    return PathInventory(
        route_tables=by_id(t for i in inventories for t in i.route_tables),
        firewalls=by_id(f for i in inventories for f in i.firewalls),
        policies=by_id(p for i in inventories for p in i.policies),
        groups=by_id(g for i in inventories for g in i.groups),
        ip_groups=by_id(g for i in inventories for g in i.ip_groups),
        route_table_of=associations,
        peered_prefixes=peerings,
    )


@dataclass(frozen=True, slots=True)
class PathVerdict:
    """One required destination from one subnet: the hop it takes and what the firewall there does.

    ``outcome``: ``direct`` (no appliance on the way: the NSGs decide),
    ``allowed`` / ``blocked`` by the firewall, ``dropped`` by a route,
    ``unjudged`` (see ``message``).
    """

    requirement: str
    subnet: str
    destination: str
    next_hop: str
    outcome: str
    message: str
    route: str = ""
    firewall: str = ""
    rule: str = ""

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "requirement": self.requirement,
            "subnet": self.subnet,
            "destination": self.destination,
            "nextHop": self.next_hop,
            "outcome": self.outcome,
            "message": self.message,
        }
        for key, value in (("route", self.route), ("firewall", self.firewall), ("rule", self.rule)):
            if value:
                body[key] = value
        return body


@dataclass(frozen=True, slots=True)
class PathReport:
    verdicts: tuple[PathVerdict, ...] = ()
    findings: tuple[Finding, ...] = ()

    def to_json(self) -> list[dict[str, Any]]:
        return [v.to_json() for v in self.verdicts]


def judge_paths(network: Network, paths: PathInventory, baseline: Baseline) -> PathReport:
    """Every required destination of every managed subnet, through its routes and firewall."""
    return _Judge(network, paths, baseline).run()


class _Judge:
    def __init__(self, network: Network, paths: PathInventory, baseline: Baseline) -> None:
        self.network = network
        self.paths = paths
        self.baseline = baseline
        self.tables = routes_by_subnet(paths.route_tables, paths.route_table_of)
        self.known_tables = {t.key for t in paths.route_tables}
        self.firewalls = {ip: fw for fw in paths.firewalls for ip in fw.private_ips}
        self.policies = {p.key: p for p in paths.policies}
        self.ip_groups = {g.id.lower(): g for g in paths.ip_groups}
        self.rule_sets: dict[str, RuleSet] = {}
        self.subnet_routes: dict[tuple[str, tuple[IPNetwork, ...], str], SubnetRoutes] = {}
        self.verdicts: list[PathVerdict] = []
        self.findings: dict[tuple[str, ...], Finding] = {}

    def run(self) -> PathReport:
        located = required_flows(self.network, self.baseline)
        for requirement in self.baseline.firewall_fqdns:
            for subnet, sources in self._sources(requirement.roles, located):
                self._name(requirement, subnet, sources)
        # The same node -> CycleCloud pairs the NSG review judges (required_flows.py): from each
        # node subnet to CycleCloud's host, never between the subnets of one shared NSG.
        pairs: dict[tuple[str, str, str], tuple[FlowRequirement, Subnet, tuple[IPNetwork, ...]]] = {}
        for leg in located.legs:
            flow, source = leg.requirement, leg.source.subnet
            if flow.source.role is None or flow.destination.role is None or source is None:
                continue  # flows to literal addresses are the NSG review's
            known = self.network.subnets.get(source.key, source)
            pairs.setdefault((flow.name, source.key, leg.destination.label), (flow, known, leg.destination.networks()))
        for flow, source, targets in pairs.values():
            self._flow(flow, source, targets)
        return PathReport(tuple(self.verdicts), tuple(self.findings.values()))

    # ------------------------------------------------------------------ topology

    def _sources(self, roles: frozenset[Role], located: RequiredFlows) -> list[tuple[Subnet, tuple[IPNetwork, ...]]]:
        """Where a name is reached from: CycleCloud's host (its subnet's routes, its own addresses) as
        required_flows locates it, and the node subnets; never the other subnets of a shared NSG."""
        found: dict[str, tuple[Subnet, tuple[IPNetwork, ...]]] = {}
        if Role.CYCLECLOUD in roles:
            for end in located.cyclecloud:
                if end.subnet is not None:
                    subnet = self.network.subnets.get(end.subnet.key, end.subnet)
                    found.setdefault(subnet.key, (subnet, end.networks() or subnet.address_prefixes))
        if Role.CLUSTER in roles:
            for node in located.node_subnets:
                subnet = self.network.subnets.get(node.key, node)
                found.setdefault(subnet.key, (subnet, subnet.address_prefixes))
        return list(found.values())

    def _routes(self, subnet: Subnet) -> SubnetRoutes | None:
        """The subnet's effective routes; None (and a finding) when its route table is not in the input."""
        named = self.paths.route_table_of.get(subnet.key)
        table = self.tables.get(subnet.key)
        if table is None and named is not None and named.lower() not in self.known_tables:
            self._add(
                FindingKind.PATH_UNJUDGED,
                "route table",
                named,
                None,
                Severity.INFO,
                f"subnet {subnet.name} uses route table {_short(named)}, which is not in the input: "
                "its path beyond the NSGs is not judged",
                subnet.id,
            )
            return None
        vnet = self.network.vnets.get(subnet.vnet_id.lower())
        space = (vnet.address_space if vnet else ()) or subnet.address_prefixes
        # Subnets of one VNet on one table route alike: one SubnetRoutes (and its answers) serves them.
        key = (subnet.vnet_id.lower(), tuple(space), table.key if table is not None else "")
        routes = self.subnet_routes.get(key)
        if routes is None:
            peered = self.paths.peered_prefixes.get(subnet.vnet_id.lower(), ())
            routes = self.subnet_routes[key] = SubnetRoutes(system_routes(space, peered), table)
        return routes

    # ------------------------------------------------------------------ names (HTTPS to the document's FQDNs)

    def _name(self, requirement: RequiredFqdn, subnet: Subnet, sources: tuple[IPNetwork, ...]) -> None:
        routes = self._routes(subnet)
        if routes is None:
            return
        destination = Destination(fqdn=requirement.fqdn, service_tag=requirement.service_tag)
        (hop,) = routes.lookup(destination)
        severity = Severity.CRITICAL if requirement.critical else Severity.HIGH
        label = f"{requirement.app_protocol.upper()} to {requirement.fqdn}"
        if hop.next_hop is NextHopType.VIRTUAL_APPLIANCE:
            flows = [
                FirewallFlow(
                    source=prefix,
                    port=requirement.port,
                    fqdn=requirement.fqdn,
                    service_tag=requirement.service_tag,
                    app_protocol=requirement.app_protocol,
                )
                for prefix in sources
            ]
            self._through_firewall(requirement.fqdn, label, subnet, hop, flows, severity)
        elif hop.next_hop is NextHopType.INTERNET:
            bypass = ""
            if _default_to_appliance(routes):
                bypass = f"; it bypasses the appliance the subnet's other traffic goes to ({hop.route.describe()})"
            self._verdict(requirement.fqdn, subnet, hop, "direct", f"{label} goes straight to the Internet{bypass}")
        elif hop.next_hop is NextHopType.NONE:
            self._dropped(requirement.fqdn, label, subnet, hop, severity)
        else:
            self._unjudged_hop(requirement.fqdn, label, subnet, hop)

    # ------------------------------------------------------------------ flows between subnets (node -> CycleCloud)

    def _flow(self, flow: FlowRequirement, source: Subnet, targets: tuple[IPNetwork, ...]) -> None:
        routes = self._routes(source)
        if routes is None:
            return
        ports = sorted({p for r in flow.ports for p in (r.low, r.high)})
        for prefix in targets:
            for hop in routes.lookup(Destination(network=prefix)):
                network = hop.destination.network
                what = f"{flow.name} ({flow.protocol.value.upper()} {','.join(map(str, ports))})"
                label = f"{what} to {network}"
                if hop.next_hop in (NextHopType.VNET_LOCAL, NextHopType.VNET_PEERING):
                    self._verdict(
                        flow.name, source, hop, "direct", f"{label} stays in the virtual network: the NSGs decide"
                    )
                elif hop.next_hop is NextHopType.VIRTUAL_APPLIANCE and network is not None:
                    # Every node subnet crosses the same firewall: the finding says which one it is about.
                    label = f"{what} from subnet {source.name} to {network}"
                    flows = [
                        FirewallFlow(
                            source=src, port=port, protocol=flow.protocol, destination=network, app_protocol=None
                        )
                        for src in source.address_prefixes
                        for port in ports
                    ]
                    self._through_firewall(flow.name, label, source, hop, flows, Severity.CRITICAL)
                elif hop.next_hop in (NextHopType.NONE, NextHopType.INTERNET):
                    self._dropped(flow.name, label, source, hop, Severity.CRITICAL)
                else:
                    self._unjudged_hop(flow.name, label, source, hop)

    # ------------------------------------------------------------------ hops

    def _through_firewall(
        self, requirement: str, label: str, subnet: Subnet, hop: Hop, flows: list[FirewallFlow], severity: Severity
    ) -> None:
        ip = hop.route.next_hop_ip
        firewall = self.firewalls.get(ip) if ip is not None else None
        if firewall is None:
            self._add(
                FindingKind.PATH_UNJUDGED,
                "virtual appliance",
                hop.route_table_id or subnet.id,
                str(ip),
                Severity.INFO,
                f"the virtual appliance at {ip} ({hop.route.describe()}) is not an Azure Firewall in the input: "
                "what it lets through is not judged",
                None,
            )
            self._verdict(
                requirement, subnet, hop, "unjudged", f"{label} goes to the virtual appliance {ip}, not judged"
            )
            return
        rules = self._rule_set(firewall)
        owner = firewall.policy_id or firewall.id
        for flow in flows:
            decision = judge(rules, flow)
            self._decided(requirement, label, subnet, hop, firewall, owner, flow, decision, severity)

    def _decided(
        self,
        requirement: str,
        label: str,
        subnet: Subnet,
        hop: Hop,
        firewall: AzureFirewall,
        owner: str,
        flow: FirewallFlow,
        decision: Decision,
        severity: Severity,
    ) -> None:
        rule = decision.decided_by.label if decision.decided_by else ""
        where = f"firewall {firewall.name}"
        source = (
            f" from {flow.source}"
            if flow.source not in subnet.address_prefixes or len(subnet.address_prefixes) > 1
            else ""
        )
        if decision.outcome == "allowed":
            text = f"{label}{source} is allowed by {where}, rule {rule}"
            self._verdict(requirement, subnet, hop, "allowed", text, firewall=firewall.name, rule=rule)
            return
        if decision.blocked:
            if decision.outcome == "denied":
                why = f"denied by {where}: rule {rule}, in a Deny collection, is the first rule that matches"
            else:
                why = f"allowed by no rule of {where}: the firewall denies it by default"
            text = f"{label}{source} is {why}"
            self._verdict(requirement, subnet, hop, "blocked", text, firewall=firewall.name, rule=rule)
            self._add(FindingKind.FIREWALL_BLOCKED, requirement, owner, rule or None, severity, text, subnet.id)
            return
        if decision.outcome == "unjudged":
            text = f"{label}{source} goes through {where}, whose rules are not all known: {decision.reason}"
        else:
            maybe = ", ".join(p.label for p in decision.uncertain)
            decided = f" before the decision by {rule}" if rule else ""
            text = f"{label}{source} through {where} depends on rule(s) that may or may not match: {maybe}{decided}"
        self._verdict(requirement, subnet, hop, "unjudged", text, firewall=firewall.name, rule=rule)
        self._add(FindingKind.PATH_UNJUDGED, requirement, owner, rule or None, Severity.INFO, text, subnet.id)

    def _rule_set(self, firewall: AzureFirewall) -> RuleSet:
        found = self.rule_sets.get(firewall.key)
        if found is None:
            found = ordered_rules(firewall, self.policies, self.paths.groups, self.ip_groups)
            self.rule_sets[firewall.key] = found
        return found

    def _dropped(self, requirement: str, label: str, subnet: Subnet, hop: Hop, severity: Severity) -> None:
        how = (
            "drops it"
            if hop.next_hop is NextHopType.NONE
            else "sends it to the Internet, where a private address is unreachable"
        )
        text = f"{label} from subnet {subnet.name}: {hop.route.describe()} {how}"
        self._verdict(requirement, subnet, hop, "dropped", text)
        self._add(
            FindingKind.ROUTE_DROPPED,
            requirement,
            hop.route_table_id or subnet.id,
            hop.route.name,
            severity,
            text,
            subnet.id,
        )

    def _unjudged_hop(self, requirement: str, label: str, subnet: Subnet, hop: Hop) -> None:
        text = f"{label} leaves through {hop.route.describe()}: what lies beyond is not judged"
        self._verdict(requirement, subnet, hop, "unjudged", text)
        self._add(
            FindingKind.PATH_UNJUDGED,
            "next hop",
            hop.route_table_id or subnet.id,
            hop.route.name,
            Severity.INFO,
            text,
            subnet.id,
        )

    # ------------------------------------------------------------------ output

    def _verdict(
        self,
        requirement: str,
        subnet: Subnet,
        hop: Hop,
        outcome: str,
        message: str,
        *,
        firewall: str = "",
        rule: str = "",
    ) -> None:
        self.verdicts.append(
            PathVerdict(
                requirement=requirement,
                subnet=subnet.id,
                destination=hop.destination.describe(),
                next_hop=hop.next_hop.value + (f" {hop.route.next_hop_ip}" if hop.route.next_hop_ip else ""),
                outcome=outcome,
                message=message,
                route=hop.route.describe(),
                firewall=firewall,
                rule=rule,
            )
        )

    def _add(
        self,
        kind: FindingKind,
        requirement: str,
        resource: str,
        rule: str | None,
        severity: Severity,
        message: str,
        subnet: str | None,
    ) -> None:
        finding = Finding(
            kind=kind,
            requirement=requirement,
            nsg=resource,
            rule=rule,
            remediable=False,
            severity=severity,
            message=message,
            reason=NEVER_WRITTEN,
            subnet=subnet,
        )
        if kind is FindingKind.PATH_UNJUDGED and requirement in ("virtual appliance", "route table"):
            finding = replace(finding, subnet=None)  # said once per appliance or table, not per subnet
        self.findings.setdefault(finding.key, finding)


def _default_to_appliance(routes: SubnetRoutes) -> bool:
    return routes.table is not None and any(
        r.prefix is not None and r.prefix.prefixlen == 0 and r.next_hop is NextHopType.VIRTUAL_APPLIANCE
        for r in routes.table.routes
    )


def _short(resource_id: str) -> str:
    return resource_id.rstrip("/").rsplit("/", 1)[-1]
