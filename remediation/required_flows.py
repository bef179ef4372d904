"""Where CycleCloud is, and the paths the baseline's required flows take through NSGs.

Pure. CycleCloud is a host, not a subnet. It is found, in this order:

1. its NIC(s), tagged ``cyclecloud-lockdown=cyclecloud`` (the lockdown tag
   with the value ``cyclecloud``): their private IPs are where the flows
   go, their ASG memberships decide ASG rules;
2. the baseline's ``cyclecloud.addresses`` (for ``check`` on exports without
   NICs);
3. the NICs an NSG tagged ``cyclecloud`` alone is attached to (cyclecloud_arm
   and azurehpc put the NSG on the VM's NIC);
4. the subnets of NSGs tagged ``cyclecloud`` alone (the layout Microsoft's
   document assumes: one NSG on the CycleCloud subnet).

An NSG tagged ``cyclecloud,cluster`` (one NSG shared by every subnet, as
CycleCloud Workspace for Slurm deploys it) says nothing about which host is
CycleCloud: without one of the above, CycleCloud's location is unknown and
no flow to it is guessed (:attr:`RequiredFlows.unlocated`).

A *node subnet* is a subnet guarded by a ``cluster`` NSG that is not
delegated to a service, is not one of Azure's reserved service subnets, and
is not where CycleCloud lives. Each required flow is then a set of *legs*:
outbound from its source through the source's NIC NSG then subnet NSG,
inbound to its destination through the destination's subnet NSG then NIC
NSG. A host never needs to reach itself, so a flow whose two ends overlap
has no legs. What cannot be judged is said, never silently skipped
(:class:`Unjudged`).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from enum import StrEnum

from remediation.baseline import Baseline, FlowEndpoint, FlowRequirement, Role, roles_from_tag
from remediation.errors import InputError
from remediation.evaluate import Flows
from remediation.model import (
    Access,
    Address,
    Asg,
    Direction,
    IPNetwork,
    NetworkInterface,
    NetworkSecurityGroup,
    Prefix,
    Protocol,
    Subnet,
)
from remediation.network import Network

#: Subnets Azure reserves for its own services: they never hold cluster nodes.
SERVICE_SUBNETS = frozenset(
    s.lower()
    for s in (
        "AzureBastionSubnet",
        "GatewaySubnet",
        "AzureFirewallSubnet",
        "AzureFirewallManagementSubnet",
        "RouteServerSubnet",
    )
)


class LocatedBy(StrEnum):
    """How CycleCloud's location was found (shown in notes and the JSON report)."""

    NIC_TAG = "nic_tag"
    BASELINE = "baseline_addresses"
    NSG_NIC = "cyclecloud_nsg_nic"
    NSG_SUBNET = "cyclecloud_nsg_subnet"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One end of a required flow: its addresses and what guards them.

    ``subnet`` is the subnet the traffic leaves or enters (its NSG acts at
    the subnet level); ``nics`` the NICs whose NSGs act at the NIC level: the
    host's own NIC, or the NICs seen in a node subnet.
    """

    label: str
    addresses: tuple[Address, ...]
    subnet: Subnet | None
    nics: tuple[NetworkInterface, ...] = ()
    host: bool = False

    def networks(self) -> tuple[IPNetwork, ...]:
        return tuple(a.network for a in self.addresses if isinstance(a, Prefix))


@dataclass(frozen=True, slots=True)
class Leg:
    """One direction of one required flow through one pair of NSGs (either may be absent)."""

    requirement: FlowRequirement
    direction: Direction
    flows: Flows
    subnet_nsg: NetworkSecurityGroup | None
    nic_nsg: NetworkSecurityGroup | None
    nic_label: str
    source: Endpoint
    destination: Endpoint


@dataclass(frozen=True, slots=True)
class Unjudged:
    """A required flow (or part of it) that could not be judged, and why."""

    requirement: str
    reason: str

    def to_json(self) -> dict[str, str]:
        return {"requirement": self.requirement, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class RequiredFlows:
    """The legs to judge, what could not be judged, and how CycleCloud was located.

    ``unlocated`` are the managed NSGs with the ``cyclecloud`` role whose
    CycleCloud could not be located (each gets a ``cyclecloud_location_unknown``
    finding).
    """

    located_by: LocatedBy
    cyclecloud: tuple[Endpoint, ...]
    node_subnets: tuple[Subnet, ...]
    legs: tuple[Leg, ...]
    unjudged: tuple[Unjudged, ...]
    unlocated: tuple[NetworkSecurityGroup, ...] = ()
    _by_nsg: dict[str, tuple[Leg, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Indexed once: a sweep asks for the legs of thousands of NSGs.
        index: dict[str, dict[int, Leg]] = {}
        for leg in self.legs:
            # The NSGs on the leg, and those guarding either end (its subnet's; a host's NIC's):
            # a leg through NSGs nobody manages (a ReturnProxy's subnet) is still judged.
            keys = {n.key for n in (leg.subnet_nsg, leg.nic_nsg) if n is not None}
            for end in (leg.source, leg.destination):
                if end.subnet is not None and end.subnet.nsg_id:
                    keys.add(end.subnet.nsg_id.lower())
                if end.host:
                    keys.update(nic.nsg_id.lower() for nic in end.nics if nic.nsg_id)
            for key in keys:
                index.setdefault(key, {})[id(leg)] = leg
        object.__setattr__(self, "_by_nsg", {k: tuple(v.values()) for k, v in index.items()})

    def legs_of(self, nsg: NetworkSecurityGroup) -> tuple[Leg, ...]:
        """The legs ``nsg`` is on, or that start from or end in what it guards."""
        return self._by_nsg.get(nsg.key, ())


_SHARED = frozenset({Role.CYCLECLOUD, Role.CLUSTER})

HOW_TO_TAG = (
    "tag the CycleCloud VM's NIC: az network nic update -g <resource-group> -n <cyclecloud-nic> "
    "--set tags.{tag}=cyclecloud"
)


def required_flows(network: Network, baseline: Baseline) -> RequiredFlows:
    """Locate CycleCloud and the node subnets, and lay each required flow out as legs."""
    return _Builder(network, baseline).build()


class _Builder:
    def __init__(self, network: Network, baseline: Baseline) -> None:
        self.network = network
        self.baseline = baseline
        self.unjudged: list[Unjudged] = []

    def build(self) -> RequiredFlows:
        located_by, cyclecloud = self._locate()
        nodes = self._node_subnets(cyclecloud)
        legs: list[Leg] = []
        unlocated: tuple[NetworkSecurityGroup, ...] = ()
        if located_by is LocatedBy.UNKNOWN:
            unlocated = tuple(nsg for nsg, roles in self.network.managed() if roles >= _SHARED)
        for req in self.baseline.flows:
            if located_by is LocatedBy.UNKNOWN and Role.CYCLECLOUD in (req.source.role, req.destination.role):
                self._note(req, self._unlocated_reason())  # the one reason: the other end does not matter
                continue
            sources = self._ends(req, req.source, cyclecloud, located_by, nodes, "source")
            destinations = self._ends(req, req.destination, cyclecloud, located_by, nodes, "destination")
            for source in sources:
                for destination in destinations:
                    if _overlap(source, destination):
                        continue  # never require a host (or a subnet) to reach itself
                    legs.extend(self._legs(req, source, destination))
        return RequiredFlows(
            located_by,
            cyclecloud,
            tuple(nodes),
            tuple(legs),
            tuple(dict.fromkeys(self.unjudged)),
            unlocated,
        )

    # -- CycleCloud ---------------------------------------------------------------

    def _locate(self) -> tuple[LocatedBy, tuple[Endpoint, ...]]:
        net = self.network
        tagged = [nic for nic in net.nics.values() if _is_cyclecloud_nic(nic, self.baseline.lockdown_tag)]
        if tagged:
            return LocatedBy.NIC_TAG, tuple(self._host(nic) for nic in tagged)
        if self.baseline.cyclecloud_addresses:
            return LocatedBy.BASELINE, tuple(self._address(a, "CycleCloud") for a in self.baseline.cyclecloud_addresses)
        alone = [nsg for nsg, roles in net.managed() if roles == frozenset({Role.CYCLECLOUD})]
        nics = [nic for nsg in alone for nic in net.nics_of(nsg)]
        if nics:
            return LocatedBy.NSG_NIC, tuple(self._host(nic) for nic in dict.fromkeys(nics))
        subnets = [s for nsg in alone for s in net.subnets_of(nsg)]
        if subnets:
            return LocatedBy.NSG_SUBNET, tuple(self._subnet(s, "CycleCloud subnet") for s in subnets)
        return LocatedBy.UNKNOWN, ()

    def _host(self, nic: NetworkInterface) -> Endpoint:
        subnet = next((self.network.subnets.get(s.lower()) for s in nic.subnet_ids), None)
        addresses = tuple(Prefix(ipaddress.ip_network(ip)) for ip in nic.private_ips)
        ips = ", ".join(str(ip) for ip in nic.private_ips)
        return Endpoint(f"CycleCloud (NIC {nic.name!r}, {ips or 'no private IP'})", addresses, subnet, (nic,), True)

    def _address(self, address: Address, what: str) -> Endpoint:
        """An address end: the subnet holding it and the NIC with that IP, when the input has them."""
        assert isinstance(address, Prefix)  # the baseline refuses other addresses in flows
        net = address.network
        subnet = next(
            (s for s in self.network.subnets.values() if any(_within(net, p) for p in s.address_prefixes)), None
        )
        nics = tuple(
            nic
            for nic in self.network.nics.values()
            if any(
                _within(net, ipaddress.ip_network(ip)) or _within(ipaddress.ip_network(ip), net)
                for ip in nic.private_ips
            )
        )
        return Endpoint(f"{what} ({address.to_arm()})", (address,), subnet, nics, True)

    def _subnet(self, subnet: Subnet, what: str) -> Endpoint:
        addresses = tuple(Prefix(p) for p in subnet.address_prefixes)
        return Endpoint(f"{what} {subnet.name!r}", addresses, subnet, tuple(self.network.nics_in(subnet)))

    # -- node subnets -------------------------------------------------------------

    def _node_subnets(self, cyclecloud: tuple[Endpoint, ...]) -> list[Subnet]:
        cc_subnets = {e.subnet.key for e in cyclecloud if e.subnet is not None}
        cc_nets = [n for e in cyclecloud for n in e.networks()]
        nodes: list[Subnet] = []
        seen: set[str] = set()
        for subnet in self.network.subnets_with_role(Role.CLUSTER):
            if subnet.key in seen:
                continue
            seen.add(subnet.key)
            if is_service_subnet(subnet):
                continue  # a service's subnet (NetApp, MySQL, Bastion): no cluster node lives there
            if subnet.key in cc_subnets or any(_within(c, p) for c in cc_nets for p in subnet.address_prefixes):
                continue  # where CycleCloud itself lives: it never needs to reach itself
            nodes.append(subnet)
        return nodes

    # -- flow ends ----------------------------------------------------------------

    def _ends(
        self,
        req: FlowRequirement,
        end: FlowEndpoint,
        cyclecloud: tuple[Endpoint, ...],
        located_by: LocatedBy,
        nodes: list[Subnet],
        side: str,
    ) -> list[Endpoint]:
        if end.role is Role.CYCLECLOUD:
            if located_by is LocatedBy.UNKNOWN:
                self._note(req, self._unlocated_reason())
                return []
            usable = [e for e in cyclecloud if e.addresses]
            for e in cyclecloud:
                if not e.addresses:
                    self._note(req, f"the addresses of {e.label} are unknown (its VNet is not in the input)")
            return usable
        if end.role is Role.CLUSTER:
            if not nodes:
                self._note(
                    req,
                    "no node subnet is known: no subnet guarded by an NSG tagged "
                    f"{self.baseline.lockdown_tag}=cluster (other than CycleCloud's own, or a delegated one) is in the input",
                )
                return []
            return self._node_ends(req, nodes, cyclecloud)
        return [self._address(a, side) for a in end.addresses]

    def _node_ends(self, req: FlowRequirement, nodes: list[Subnet], cyclecloud: tuple[Endpoint, ...]) -> list[Endpoint]:
        """Where the nodes are: each node subnet, or, where a deployment sorts hosts into ASGs,
        the hosts in a CycleCloud client ASG.

        An ASG named as the source of an allow rule for the flow's ports marks CycleCloud's
        clients (``asg-cyclecloud-client``). In a subnet whose known NICs sit in ASGs, membership
        decides who is a node: its client hosts must reach CycleCloud, its other addresses need
        not (az-hop's deployer, an AD server). A subnet whose NICs are in no ASG (nodes CycleCloud
        creates) is all nodes. Client hosts in a cluster NSG's other subnets (az-hop's scheduler,
        beside CycleCloud) count too, CycleCloud's own NIC never.
        """
        clients = self._client_asgs(req)
        cc_nics = {nic.key for e in cyclecloud for nic in e.nics if e.host}
        ends: list[Endpoint] = []
        node_keys = {s.key for s in nodes}
        guarded = {s.key: s for s in self.network.subnets_with_role(Role.CLUSTER) if not is_service_subnet(s)}
        for subnet in guarded.values():
            nics = [n for n in self.network.nics_in(subnet) if n.key not in cc_nics]
            client_nics = [n for n in nics if clients & {a.lower() for a in n.asg_ids} and n.private_ips]
            ends.extend(self._client(nic, subnet) for nic in client_nics)
            if subnet.key not in node_keys:
                continue
            if any(n.asg_ids for n in nics):
                if not client_nics:
                    # Said, not silent: no host here is taken for a node (az-hop's AD subnet).
                    self._note(
                        req,
                        f"node subnet {subnet.name!r}: its hosts are sorted into ASGs and none is in one an allow "
                        f"rule lets reach {req.name}'s ports, so none is taken for a node",
                    )
                continue
            if not subnet.address_prefixes:
                self._note(
                    req, f"the addresses of node subnet {subnet.name!r} are unknown (its VNet is not in the input)"
                )
                continue
            ends.append(self._subnet(subnet, "node subnet"))
        return ends

    def _client_asgs(self, req: FlowRequirement) -> set[str]:
        """ASGs some allow rule lets reach the flow's ports: where a deployment puts CycleCloud's clients."""
        found: set[str] = set()
        for nsg in self.network.nsgs.values():
            for rule in nsg.security_rules:
                if rule.access is not Access.ALLOW or rule.protocol not in (req.protocol, Protocol.ANY):
                    continue
                if not any(p.low <= w.high and w.low <= p.high for p in rule.destination_ports for w in req.ports):
                    continue
                found.update(a.key for a in rule.sources if isinstance(a, Asg))
        return found

    def _client(self, nic: NetworkInterface, subnet: Subnet) -> Endpoint:
        addresses = tuple(Prefix(ipaddress.ip_network(ip)) for ip in nic.private_ips)
        ips = ", ".join(str(ip) for ip in nic.private_ips)
        return Endpoint(f"NIC {nic.name!r} ({ips}) in subnet {subnet.name!r}", addresses, subnet, (nic,), True)

    def _unlocated_reason(self) -> str:
        tag = self.baseline.lockdown_tag
        alone = [nsg.name for nsg, roles in self.network.managed() if roles == frozenset({Role.CYCLECLOUD})]
        if alone:
            return (
                f"CycleCloud's location is unknown: NSG {alone[0]!r} ({tag}=cyclecloud) is attached to no subnet "
                f"or NIC in the input, and no NIC is tagged {tag}=cyclecloud"
            )
        if any(Role.CYCLECLOUD in roles for _, roles in self.network.managed()):
            return (
                "CycleCloud's location is unknown: its NSG is shared with the cluster "
                f"({self.baseline.lockdown_tag}=cyclecloud,cluster) and no NIC is tagged "
                f"{self.baseline.lockdown_tag}=cyclecloud; " + HOW_TO_TAG.format(tag=self.baseline.lockdown_tag)
            )
        return (
            f"CycleCloud's location is unknown: no NSG tagged {self.baseline.lockdown_tag}=cyclecloud and no NIC "
            f"tagged {self.baseline.lockdown_tag}=cyclecloud is in the input"
        )

    def _note(self, req: FlowRequirement, reason: str) -> None:
        self.unjudged.append(Unjudged(req.name, reason))

    # -- legs ---------------------------------------------------------------------

    def _legs(self, req: FlowRequirement, source: Endpoint, destination: Endpoint) -> list[Leg]:
        flows = Flows(req.protocol, source.addresses, destination.addresses, req.ports)
        legs: list[Leg] = []
        for direction, end in ((Direction.OUTBOUND, source), (Direction.INBOUND, destination)):
            if end.subnet is None and not end.nics:
                what = "leaving" if direction is Direction.OUTBOUND else "entering"
                self._note(
                    req,
                    f"no subnet or NIC in the input holds {end.label}: the NSGs on the traffic {what} it are unknown",
                )
                continue
            for subnet_nsg, nic_nsg, label in self._pairs(req, end):
                legs.append(Leg(req, direction, flows, subnet_nsg, nic_nsg, label, source, destination))
        return legs

    def _pairs(
        self, req: FlowRequirement, end: Endpoint
    ) -> list[tuple[NetworkSecurityGroup | None, NetworkSecurityGroup | None, str]]:
        """(subnet NSG, NIC NSG, NIC label) for each way through ``end``'s NSGs."""
        subnet_nsg: NetworkSecurityGroup | None = None
        if end.subnet is not None:
            subnet_nsg = self.network.nsg_of_subnet(end.subnet)
            if subnet_nsg is None and end.subnet.nsg_id:
                self._note(
                    req,
                    f"the NSG {_short(end.subnet.nsg_id)!r} of subnet {end.subnet.name!r} is not in the input "
                    "(not judged at the subnet level)",
                )
        pairs: list[tuple[NetworkSecurityGroup | None, NetworkSecurityGroup | None, str]] = []
        if end.host:
            for nic in end.nics or (None,):
                nic_nsg = self._nic_nsg(req, nic) if nic is not None else None
                pairs.append((subnet_nsg, nic_nsg, f"NIC {nic.name}" if nic is not None else ""))
            return pairs
        pairs.append((subnet_nsg, None, ""))  # a node without an NSG of its own
        seen: set[str] = set()
        for nic in end.nics:
            nic_nsg = self._nic_nsg(req, nic)
            if nic_nsg is not None and nic_nsg.key not in seen:
                seen.add(nic_nsg.key)
                pairs.append((subnet_nsg, nic_nsg, f"NIC {nic.name}"))
        return pairs

    def _nic_nsg(self, req: FlowRequirement, nic: NetworkInterface) -> NetworkSecurityGroup | None:
        nsg = self.network.nsg_by_id(nic.nsg_id)
        if nsg is None and nic.nsg_id:
            self._note(
                req,
                f"the NSG {_short(nic.nsg_id)!r} of NIC {nic.name!r} is not in the input (not judged at the NIC level)",
            )
        return nsg


def is_service_subnet(subnet: Subnet) -> bool:
    """Delegated to a service, or one of Azure's reserved subnets: no cluster node lives there."""
    return bool(subnet.delegations) or subnet.name.lower() in SERVICE_SUBNETS


def _is_cyclecloud_nic(nic: NetworkInterface, tag: str) -> bool:
    for key, value in nic.tags.items():
        if key.lower() == tag.lower():
            try:
                return Role.CYCLECLOUD in roles_from_tag(value)
            except InputError:
                return False
    return False


def _within(inner: IPNetwork, outer: IPNetwork) -> bool:
    return inner.version == outer.version and inner.subnet_of(outer)  # type: ignore[arg-type]


def _overlap(a: Endpoint, b: Endpoint) -> bool:
    return any(x.version == y.version and x.overlaps(y) for x in a.networks() for y in b.networks())


def _short(resource_id: str) -> str:
    return resource_id.rstrip("/").rsplit("/", 1)[-1]
