"""Effective routes: longest prefix match of user routes over system routes (Azure's documented selection)."""

from __future__ import annotations

import ipaddress

import pytest

from remediation.routes import Destination, NextHopType, Route, RouteTable, SubnetRoutes, system_routes

FIREWALL = ipaddress.ip_address("10.0.1.4")
SPOKE = ipaddress.ip_network("10.10.0.0/16")
HUB = ipaddress.ip_network("10.0.0.0/16")


def net(text: str) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(text)


def to_firewall(name: str, prefix: str) -> Route:
    return Route(name, NextHopType.VIRTUAL_APPLIANCE, prefix=net(prefix), next_hop_ip=FIREWALL)


def subnet_routes(*routes: Route) -> SubnetRoutes:
    table = RouteTable(
        id="/subscriptions/s/resourceGroups/r/providers/Microsoft.Network/routeTables/rt", name="rt", routes=routes
    )
    return SubnetRoutes(system_routes([SPOKE], [HUB]), table if routes else None)


HUB_SPOKE = (to_firewall("route-all-to-afw", "0.0.0.0/0"), to_firewall("route-hubvnet-to-afw", "10.0.0.0/16"))


@pytest.mark.parametrize(
    ("routes", "destination", "expected", "route_name", "reason"),
    [
        ((), "10.10.1.0/24", NextHopType.VNET_LOCAL, "VnetLocal", "no route table: the VNet's own prefix is local"),
        ((), "10.0.5.0/24", NextHopType.VNET_PEERING, "VNetPeering", "the peered hub's prefix is a system route"),
        ((), "10.20.0.0/24", NextHopType.NONE, "None", "10.0.0.0/8 outside every VNet is dropped by a system route"),
        ((), "52.1.2.0/24", NextHopType.INTERNET, "Internet", "public space takes the system 0.0.0.0/0"),
        (HUB_SPOKE, "10.10.1.0/24", NextHopType.VNET_LOCAL, "VnetLocal", "/16 VnetLocal is longer than the user /0"),
        (
            HUB_SPOKE,
            "10.0.5.0/24",
            NextHopType.VIRTUAL_APPLIANCE,
            "route-hubvnet-to-afw",
            "same prefix as the peering: the user route wins",
        ),
        (
            HUB_SPOKE,
            "10.20.0.0/24",
            NextHopType.NONE,
            "None",
            "an unpeered spoke: the system 10/8 is longer than the user /0",
        ),
        (
            HUB_SPOKE,
            "52.1.2.0/24",
            NextHopType.VIRTUAL_APPLIANCE,
            "route-all-to-afw",
            "the user /0 replaces the system /0",
        ),
        (
            (*HUB_SPOKE, to_firewall("route-spoke-to-afw", "10.10.0.0/16")),
            "10.10.1.0/24",
            NextHopType.VIRTUAL_APPLIANCE,
            "route-spoke-to-afw",
            "a user route for the VNet's own prefix overrides VnetLocal",
        ),
    ],
)
def test_longest_prefix_over_system_routes(
    routes: tuple[Route, ...], destination: str, expected: NextHopType, route_name: str, reason: str
) -> None:
    (hop,) = subnet_routes(*routes).lookup(Destination(network=net(destination)))
    assert (hop.next_hop, hop.route.name) == (expected, route_name), reason


def test_a_longer_route_inside_the_destination_is_named_as_a_part() -> None:
    routes = subnet_routes(*HUB_SPOKE, Route("blackhole-vm", NextHopType.NONE, prefix=net("10.10.1.4/32")))
    hops = routes.lookup(Destination(network=net("10.10.1.0/24")))
    assert [(str(h.destination.network), h.next_hop) for h in hops] == [
        ("10.10.1.0/24", NextHopType.VNET_LOCAL),
        ("10.10.1.4/32", NextHopType.NONE),  # the CycleCloud VM's own address is dropped
    ]


@pytest.mark.parametrize(
    ("extra", "tag", "expected", "reason"),
    [
        ((), "AzureResourceManager", "route-all-to-afw", "no tag route: the name takes the user /0"),
        (
            (Route("arm-direct", NextHopType.INTERNET, service_tag="AzureResourceManager"),),
            "AzureResourceManager",
            "arm-direct",
            "a tag route stands for the tag's prefixes, all longer than /0",
        ),
        (
            (
                Route("cloud-direct", NextHopType.INTERNET, service_tag="AzureCloud"),
                Route(
                    "arm-fw", NextHopType.VIRTUAL_APPLIANCE, service_tag="AzureResourceManager", next_hop_ip=FIREWALL
                ),
            ),
            "AzureResourceManager",
            "arm-fw",
            "a service's own tag ranks before AzureCloud",
        ),
        (
            (Route("arm-direct", NextHopType.INTERNET, service_tag="AzureResourceManager"),),
            None,
            "route-all-to-afw",
            "a name of unknown tag is routed by /0 only",
        ),
        (
            (Route("storage-direct", NextHopType.INTERNET, service_tag="Storage"),),
            "AzureResourceManager",
            "route-all-to-afw",
            "another service's tag route does not apply",
        ),
    ],
)
def test_names_are_routed_by_their_service_tag(
    extra: tuple[Route, ...], tag: str | None, expected: str, reason: str
) -> None:
    (hop,) = subnet_routes(*HUB_SPOKE, *extra).lookup(Destination(fqdn="management.azure.com", service_tag=tag))
    assert hop.route.name == expected, reason


def test_a_public_prefix_route_makes_a_name_uncertain() -> None:
    public = Route("to-52", NextHopType.INTERNET, prefix=net("52.0.0.0/8"))
    (hop,) = subnet_routes(*HUB_SPOKE, public).lookup(
        Destination(fqdn="management.azure.com", service_tag="AzureResourceManager")
    )
    assert hop.route.name == "route-all-to-afw"
    assert hop.uncertain == (public,)  # it may hold the name's address: said, not guessed
