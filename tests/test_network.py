"""Network: which NSG guards which subnet and NIC, with which roles."""

from __future__ import annotations

import ipaddress
from dataclasses import replace

import pytest

from remediation.baseline import Role, roles_from_tag
from remediation.errors import InputError
from remediation.model import Inventory, NetworkInterface, NetworkSecurityGroup, Subnet, VirtualNetwork
from remediation.network import Network
from tests.support.core import RG, nsg

VNET_ID = f"{RG}/providers/Microsoft.Network/virtualNetworks/vnet"
CC_SUBNET = f"{VNET_ID}/subnets/cyclecloud"
NODE_SUBNET = f"{VNET_ID}/subnets/nodes"
ASG = f"{RG}/providers/Microsoft.Network/applicationSecurityGroups/asg-nodes"

CC = nsg(name="nsg-cc", role="cyclecloud", attached=False)
NODES = nsg(name="nsg-nodes", role="cluster", attached=False)
OTHER = nsg(name="nsg-other", role=None, attached=False)


def inventory() -> Inventory:
    vnet = VirtualNetwork(
        id=VNET_ID,
        name="vnet",
        address_space=(ipaddress.ip_network("10.30.0.0/16"),),
        subnets=(
            Subnet(CC_SUBNET, "cyclecloud", (ipaddress.ip_network("10.30.1.0/24"),), CC.id.upper()),
            Subnet(NODE_SUBNET, "nodes", (ipaddress.ip_network("10.30.2.0/24"),), NODES.id),
        ),
    )
    nics = (
        NetworkInterface(f"{RG}/nic/cc", "cc", None, (CC_SUBNET,), (ipaddress.ip_address("10.30.1.4"),)),
        NetworkInterface(
            f"{RG}/nic/n1", "n1", OTHER.id, (NODE_SUBNET.upper(),), (ipaddress.ip_address("10.30.2.4"),), (ASG,)
        ),
        NetworkInterface(
            f"{RG}/nic/n2", "n2", None, (NODE_SUBNET,), (ipaddress.ip_address("10.30.2.5"),), (ASG.upper(),)
        ),
    )
    return Inventory(nsgs=(CC, NODES, OTHER, CC), vnets=(vnet,), nics=nics)


def test_managed_nsgs_with_roles_in_order_without_duplicates() -> None:
    net = Network(inventory())
    assert [(n.name, roles) for n, roles in net.managed()] == [
        ("nsg-cc", frozenset({Role.CYCLECLOUD})),
        ("nsg-nodes", frozenset({Role.CLUSTER})),
    ]


def test_role_override_manages_every_nsg() -> None:
    net = Network(inventory(), role_override=frozenset({Role.CLUSTER}))
    assert [n.name for n, _ in net.managed()] == ["nsg-cc", "nsg-nodes", "nsg-other"]
    assert net.roles(CC) == frozenset({Role.CLUSTER})


@pytest.mark.parametrize(
    ("tags", "roles"),
    [
        ({"cyclecloud-lockdown": "cyclecloud,cluster"}, {Role.CYCLECLOUD, Role.CLUSTER}),
        ({"CycleCloud-Lockdown": " Cluster "}, {Role.CLUSTER}),
        ({"cyclecloud-lockdown": "cluster;cyclecloud"}, {Role.CYCLECLOUD, Role.CLUSTER}),
        ({"other": "cyclecloud"}, set()),
    ],
)
def test_roles_from_the_tag(tags: dict[str, str], roles: set[Role]) -> None:
    assert Network(Inventory()).roles(replace(CC, tags=tags)) == roles


@pytest.mark.parametrize("value", ["nodes", "none", "", " , "])
def test_a_role_tag_naming_no_role_is_unmanaged_and_named_as_misconfigured(value: str) -> None:
    # It used to raise, which stopped every sweep and event of the subscription (issue 11 item 2).
    bad = replace(CC, tags={"cyclecloud-lockdown": value})
    network = Network(Inventory(nsgs=(bad, OTHER)))
    assert network.roles(bad) == frozenset()
    assert [n for n, _ in network.managed()] == [n for n in (OTHER,) if network.roles(n)]
    [(nsg, problem)] = network.misconfigured()
    assert nsg is bad
    assert f"tag value {value!r}" in problem
    assert "valid: cyclecloud, cluster" in problem or "empty role tag value" in problem


def test_an_unknown_role_still_names_the_valid_values() -> None:
    with pytest.raises(InputError, match=r"unknown role 'nodes'.*valid: cyclecloud, cluster"):
        roles_from_tag("nodes")


def test_custom_lockdown_tag() -> None:
    group = replace(CC, tags={"guard": "cluster"})
    assert Network(Inventory(nsgs=(group,)), lockdown_tag="guard").managed() == [(group, frozenset({Role.CLUSTER}))]


def test_subnets_of_from_subnet_side_case_insensitive_and_back_references() -> None:
    net = Network(inventory())
    assert [s.name for s in net.subnets_of(CC)] == ["cyclecloud"]
    # An NSG whose back-reference names a subnet not in the inventory still knows it.
    stray = replace(OTHER, subnet_ids=(f"{VNET_ID}/subnets/elsewhere",))
    assert [s.name for s in net.subnets_of(stray)] == ["elsewhere"]
    # A back-reference to a known subnet that now has another NSG does not count as attached.
    moved = replace(OTHER, subnet_ids=(CC_SUBNET,))
    assert net.subnets_of(moved) == []


def test_subnets_with_role_and_nics_in() -> None:
    net = Network(inventory())
    assert [s.name for s in net.subnets_with_role(Role.CLUSTER)] == ["nodes"]
    nodes = net.subnets[NODE_SUBNET.lower()]
    assert sorted(n.name for n in net.nics_in(nodes)) == ["n1", "n2"]


def test_nsg_by_id_is_case_insensitive() -> None:
    net = Network(inventory())
    assert net.nsg_by_id(CC.id.upper()) is CC
    assert net.nsg_by_id(None) is None
    assert net.nsg_by_id("/nope") is None


def test_vnet_prefixes_for_subnets_and_fallbacks() -> None:
    net = Network(inventory())
    assert net.vnet_prefixes_for(net.subnets_of(CC)) == (ipaddress.ip_network("10.30.0.0/16"),)
    # No known subnet: every VNet's space.
    assert net.vnet_prefixes_for([]) == (ipaddress.ip_network("10.30.0.0/16"),)
    # A VNet without an address space (built from subnets alone): its subnets' prefixes.
    inv = inventory()
    bare = replace(inv.vnets[0], address_space=())
    net2 = Network(replace(inv, vnets=(bare,)))
    assert set(net2.vnet_prefixes_for(net2.subnets_of(CC))) == {
        ipaddress.ip_network("10.30.1.0/24"),
        ipaddress.ip_network("10.30.2.0/24"),
    }


def test_asg_members_from_nics() -> None:
    members = Network(inventory()).asg_members()
    assert set(members) == {ASG.lower()}
    assert set(members[ASG.lower()]) == {ipaddress.ip_network("10.30.2.4/32"), ipaddress.ip_network("10.30.2.5/32")}


def test_empty_inventory() -> None:
    net = Network(Inventory())
    assert net.managed() == []
    assert net.asg_members() == {}
    assert isinstance(OTHER, NetworkSecurityGroup)
