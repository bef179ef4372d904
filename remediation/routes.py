"""Which next hop traffic from a subnet takes: user routes over system routes.

Azure picks the route with the longest prefix that contains the destination;
when a user route and a system route have the same prefix, the user route
wins. The system routes of a subnet are: each address prefix of its VNet
(``VnetLocal``), each peered VNet's prefixes (``VNetPeering``), ``0.0.0.0/0``
to the ``Internet``, and ``None`` (dropped) for 10.0.0.0/8, 172.16.0.0/12,
192.168.0.0/16 and 100.64.0.0/10 unless the VNet itself uses them. That last
rule is why a spoke whose only user route is ``0.0.0.0/0`` to a firewall
still drops traffic to another, unpeered spoke: ``10.0.0.0/8`` is longer than
``/0``.

A user route may name a service tag instead of a prefix. Such a route stands
for the tag's published prefixes, so it beats ``0.0.0.0/0`` for traffic to
that service; among tag routes the narrower tag wins (a regional tag before
its global one, a service's tag before ``AzureCloud``). Traffic to a public
name (``management.azure.com``) is routed by what is known of its address:
the service tag the baseline gives it. A route to a literal public prefix
narrower than ``/0`` may or may not hold that address; such routes are named
in the answer as uncertain instead of guessed.

Pure: no I/O; :mod:`remediation.parse_paths` builds these types from JSON.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from remediation.model import IPNetwork
from remediation.tags import tag_base, tag_contains, tag_region

__all__ = [
    "Destination",
    "Hop",
    "NextHopType",
    "Route",
    "RouteTable",
    "SubnetRoutes",
    "system_routes",
]


class NextHopType(StrEnum):
    VNET_LOCAL = "VnetLocal"
    VNET_PEERING = "VNetPeering"
    INTERNET = "Internet"
    VIRTUAL_APPLIANCE = "VirtualAppliance"
    GATEWAY = "VirtualNetworkGateway"
    NONE = "None"


#: Address ranges Azure's system routes drop unless a VNet uses them.
DROPPED_RANGES: tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(p) for p in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10")
)
DEFAULT_ROUTE = ipaddress.ip_network("0.0.0.0/0")


@dataclass(frozen=True, slots=True)
class Route:
    """One route: to a prefix or a service tag (exactly one is set)."""

    name: str
    next_hop: NextHopType
    prefix: IPNetwork | None = None
    service_tag: str | None = None
    next_hop_ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None = None
    #: False for Azure's system routes.
    user: bool = True

    @property
    def target(self) -> str:
        return self.service_tag or str(self.prefix)

    def describe(self) -> str:
        where = f" {self.next_hop_ip}" if self.next_hop_ip else ""
        origin = "route" if self.user else "system route"
        return f"{origin} {self.name} ({self.target} -> {self.next_hop.value}{where})"


@dataclass(frozen=True, slots=True)
class RouteTable:
    id: str
    name: str
    routes: tuple[Route, ...] = ()
    #: Subnets the table names as attached (ARM's read-only back-references).
    subnet_ids: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return self.id.lower()


@dataclass(frozen=True, slots=True)
class Destination:
    """Where traffic goes: an address range, or a public name with its service tag (if known)."""

    network: IPNetwork | None = None
    fqdn: str | None = None
    service_tag: str | None = None

    def describe(self) -> str:
        return self.fqdn or str(self.network)


@dataclass(frozen=True, slots=True)
class Hop:
    """The route a destination (or a part of it) takes, and routes that might take it instead."""

    destination: Destination
    route: Route
    route_table_id: str | None
    #: Routes whose prefixes may or may not hold the destination's address.
    uncertain: tuple[Route, ...] = ()

    @property
    def next_hop(self) -> NextHopType:
        return self.route.next_hop


def system_routes(vnet_prefixes: Iterable[IPNetwork], peered_prefixes: Iterable[IPNetwork] = ()) -> tuple[Route, ...]:
    """Azure's default routes for a subnet of a VNet with these prefixes and peerings."""
    local = [Route("VnetLocal", NextHopType.VNET_LOCAL, prefix=p, user=False) for p in vnet_prefixes]
    peered = [Route("VNetPeering", NextHopType.VNET_PEERING, prefix=p, user=False) for p in peered_prefixes]
    used = {r.prefix for r in (*local, *peered)}
    dropped = [Route("None", NextHopType.NONE, prefix=p, user=False) for p in DROPPED_RANGES if p not in used]
    internet = Route("Internet", NextHopType.INTERNET, prefix=DEFAULT_ROUTE, user=False)
    return (*local, *peered, internet, *dropped)


@dataclass(frozen=True, slots=True)
class SubnetRoutes:
    """The effective routes of one subnet: its table's user routes over the system routes."""

    system: tuple[Route, ...]
    table: RouteTable | None = None
    # Built once: a sweep asks one table's routes about thousands of subnets' destinations.
    _by_prefix: dict[IPNetwork, Route] = field(init=False, repr=False, compare=False)
    _answers: dict[Destination, tuple[Hop, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        chosen: dict[IPNetwork, Route] = {}
        for route in self.system:
            if route.prefix is not None:
                chosen[route.prefix] = route
        for route in self.table.routes if self.table else ():
            if route.prefix is not None:
                chosen[route.prefix] = route  # same prefix: the user route wins
        object.__setattr__(self, "_by_prefix", chosen)
        object.__setattr__(self, "_answers", {})

    def _prefix_routes(self) -> dict[IPNetwork, Route]:
        return self._by_prefix

    def _hop(self, destination: Destination, route: Route, uncertain: tuple[Route, ...] = ()) -> Hop:
        table_id = self.table.id if self.table is not None and route.user else None
        return Hop(destination, route, table_id, uncertain)

    def lookup(self, destination: Destination) -> tuple[Hop, ...]:
        """The hops of a destination: one for an address range routed one way, one per part otherwise."""
        found = self._answers.get(destination)
        if found is None:
            if destination.network is not None:
                found = self._lookup_network(destination, destination.network)
            else:
                found = (self._lookup_name(destination),)
            self._answers[destination] = found
        return found

    def _lookup_network(self, destination: Destination, network: IPNetwork) -> tuple[Hop, ...]:
        routes = self._prefix_routes()
        covering = [p for p in routes if p.version == network.version and network.subnet_of(p)]  # type: ignore[arg-type]
        if not covering:
            return ()
        hops = [self._hop(destination, routes[max(covering, key=lambda p: p.prefixlen)])]
        # Longer routes inside the range send a part of it elsewhere: name each part.
        for prefix, route in sorted(routes.items(), key=lambda item: item[0].prefixlen):
            if prefix.version == network.version and prefix != network and prefix.subnet_of(network):  # type: ignore[arg-type]
                hops.append(self._hop(Destination(network=prefix), route))
        # A part routed as the whole is not news.
        first = hops[0].route
        return (hops[0], *(h for h in hops[1:] if h.route != first))

    def _lookup_name(self, destination: Destination) -> Hop:
        tag = destination.service_tag
        tag_routes = [
            r
            for r in (self.table.routes if self.table else ())
            if r.service_tag and tag and tag_contains(r.service_tag, tag)
        ]
        uncertain = tuple(
            r
            for r in (self.table.routes if self.table else ())
            if r.prefix is not None and r.prefix.prefixlen > 0 and not _private(r.prefix)
        )
        if tag_routes:
            return self._hop(destination, min(tag_routes, key=_tag_rank), uncertain)
        defaults = self._prefix_routes()
        return self._hop(destination, defaults[DEFAULT_ROUTE], uncertain)


def _private(network: IPNetwork) -> bool:
    return any(network.version == r.version and network.subnet_of(r) for r in DROPPED_RANGES) or network.is_private  # type: ignore[arg-type]


def _tag_rank(route: Route) -> tuple[int, str]:
    """Azure's order among tag routes: regional tags, global tags, AzureCloud regional, AzureCloud."""
    tag = route.service_tag or ""
    cloud = tag_base(tag).lower() == "azurecloud"
    regional = tag_region(tag) is not None
    return (2 * cloud + (not regional), tag.lower())


def routes_by_subnet(tables: Iterable[RouteTable], associations: Mapping[str, str]) -> dict[str, RouteTable]:
    """Subnet id (lower-case) -> its route table, from the subnets' side and the tables' back-references."""
    by_id = {t.key: t for t in tables}
    found: dict[str, RouteTable] = {}
    for table in by_id.values():
        for subnet_id in table.subnet_ids:
            found[subnet_id.lower()] = table
    for subnet_id, table_id in associations.items():
        named = by_id.get(table_id.lower())
        if named is not None:
            found[subnet_id.lower()] = named
    return found
