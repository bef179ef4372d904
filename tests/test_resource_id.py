"""ResourceId: the one parser of ARM ids (arm.py, service.py and events.py use it)."""

from __future__ import annotations

import pytest

from remediation.errors import InputError
from remediation.resource_id import NIC, NIC_IP_CONFIGURATION, NSG, SECURITY_RULE, SUBNET, VNET, ResourceId

SUB = "00000000-0000-0000-0000-000000000001"
RG = f"/subscriptions/{SUB}/resourceGroups/rg-cc"
VNET_ID = f"{RG}/providers/Microsoft.Network/virtualNetworks/vnet-hpc"
SUBNET_ID = f"{VNET_ID}/subnets/compute"


def test_a_subnet_id_gives_its_parts_and_its_vnet() -> None:
    subnet = ResourceId.parse(SUBNET_ID)
    assert (subnet.subscription, subnet.resource_group, subnet.namespace) == (SUB, "rg-cc", "Microsoft.Network")
    assert subnet.is_a(SUBNET)
    assert not subnet.is_a(VNET)  # a child is not its parent's type
    assert subnet.name == "compute"
    assert subnet.name_of("virtualNetworks") == "vnet-hpc"
    assert subnet.parent is not None
    assert str(subnet.parent) == VNET_ID
    assert subnet.parent.is_a(VNET)
    assert subnet.parent.parent is None  # a top-level resource has no parent resource


def test_comparison_ignores_case_and_the_text_keeps_it() -> None:
    shouted = ResourceId.parse(SUBNET_ID.upper() + "/")
    assert shouted.is_a("microsoft.network/VIRTUALNETWORKS/subnets")  # ARM's types are case-insensitive
    assert shouted.key == SUBNET_ID.lower()  # the trailing slash is not part of the id
    assert str(shouted) == SUBNET_ID.upper()  # requests and messages keep the case given


@pytest.mark.parametrize(
    ("text", "kind", "parent"),
    [
        (f"{RG}/providers/Microsoft.Network/networkSecurityGroups/nsg/securityRules/r1", SECURITY_RULE, NSG),
        (
            f"{RG}/providers/Microsoft.Network/networkInterfaces/nic-1/ipConfigurations/ipconfig1",
            NIC_IP_CONFIGURATION,
            NIC,
        ),
    ],
)
def test_a_child_resource_leads_to_its_parent(text: str, kind: str, parent: str) -> None:
    rid = ResourceId.parse(text)
    assert rid.is_a(kind)
    assert rid.parent is not None
    assert rid.parent.is_a(parent)


def test_a_vmss_nic_configuration_is_no_network_interface_configuration() -> None:
    # VMSS NICs live under Microsoft.Compute: reading them as Microsoft.Network NICs would send wrong GETs.
    vmss = f"{RG}/providers/Microsoft.Compute/virtualMachineScaleSets/ss/virtualMachines/0/networkInterfaces/n/ipConfigurations/c"
    rid = ResourceId.parse(vmss)
    assert not rid.is_a(NIC_IP_CONFIGURATION)


def test_subscription_and_group_scopes_parse_without_a_type() -> None:
    group = ResourceId.parse(RG)
    assert (group.resource_group, group.type, group.name) == ("rg-cc", "", "rg-cc")
    assert not group.is_a(NSG)
    assert ResourceId.parse(f"/subscriptions/{SUB}").name == SUB


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not-an-id",
        f"/subscriptions/{SUB}/resourceGroups",  # a group with no name
        f"{RG}/providers/Microsoft.Network/virtualNetworks",  # a type with no name
        f"{RG}/providers/Microsoft.Network",  # a namespace with no type
        f"{RG}/Microsoft.Network/virtualNetworks/v",  # no providers segment
        "/subscriptions//resourceGroups/rg",  # an empty segment
        f"/tenants/{SUB}",
    ],
)
def test_what_is_no_resource_id_is_refused(text: str) -> None:
    assert ResourceId.try_parse(text) is None
    with pytest.raises(InputError, match="acceptDetached"):
        ResourceId.parse(text, where="acceptDetached[0]")


def test_a_non_text_value_is_none() -> None:
    assert ResourceId.try_parse(None) is None
    assert ResourceId.try_parse(42) is None
