"""The REAL azure-mgmt-network SDK with DefaultAzureCredential, through the emulator."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.network.models import (
    AddressSpace,
    NetworkInterface,
    NetworkInterfaceIPConfiguration,
    NetworkSecurityGroup,
    SecurityRule,
    ServiceEndpointPropertiesFormat,
    Subnet,
    VirtualNetwork,
)

from devtools.emulator import REMEDIATOR, Emulator
from tests.integration.conftest import human_credential, network_client

pytestmark = pytest.mark.integration
RG = "rg-cyclecloud"


def test_sdk_create_rule_list_get_delete_with_default_credential(arm_env: Emulator) -> None:
    client = network_client(arm_env)
    created = client.network_security_groups.begin_create_or_update(
        RG, "nsg-cc", NetworkSecurityGroup(location="westeurope", tags={"cyclecloud-lockdown": "cyclecloud"})
    ).result()
    assert created.provisioning_state == "Succeeded"
    assert {r.name for r in created.default_security_rules} >= {"DenyAllInBound", "AllowInternetOutBound"}

    rule = client.security_rules.begin_create_or_update(
        RG,
        "nsg-cc",
        "AllowAzureStorage",
        SecurityRule(
            protocol="Tcp",
            access="Allow",
            direction="Outbound",
            priority=100,
            source_address_prefix="*",
            source_port_range="*",
            destination_address_prefix="Storage",
            destination_port_range="443",
        ),
    ).result()
    assert rule.id.endswith("/networkSecurityGroups/nsg-cc/securityRules/AllowAzureStorage")

    listed = list(client.network_security_groups.list_all())
    assert [n.name for n in listed] == ["nsg-cc"]
    got = client.network_security_groups.get(RG, "nsg-cc")
    assert [r.name for r in got.security_rules] == ["AllowAzureStorage"]
    assert got.etag != created.etag
    assert got.tags == {"cyclecloud-lockdown": "cyclecloud"}

    client.network_security_groups.begin_delete(RG, "nsg-cc").result()
    with pytest.raises(ResourceNotFoundError):
        client.network_security_groups.get(RG, "nsg-cc")

    log = arm_env.requests()
    arm_calls = [e for e in log if e["action"] != "identity/token"]
    assert {e["caller"] for e in arm_calls} == {REMEDIATOR}
    assert any(e["action"] == "identity/token" and e["status"] == 200 for e in log)
    assert all(e["status"] != 401 for e in arm_calls)


def test_sdk_surfaces_arm_validation_errors(arm_env: Emulator) -> None:
    client = network_client(arm_env, credential=human_credential(arm_env))
    client.network_security_groups.begin_create_or_update(
        RG, "nsg", NetworkSecurityGroup(location="westeurope")
    ).result()
    bad = SecurityRule(
        protocol="Tcp",
        access="Allow",
        direction="Inbound",
        priority=5000,
        source_address_prefix="*",
        source_port_range="*",
        destination_address_prefix="*",
        destination_port_range="22",
    )
    with pytest.raises(HttpResponseError) as info:
        client.security_rules.begin_create_or_update(RG, "nsg", "ssh", bad)
    assert info.value.status_code == 400
    assert info.value.error is not None
    assert info.value.error.code == "SecurityRuleInvalidPriority"
    assert {e["caller"] for e in arm_env.requests()} == {"human"}


def test_sdk_vnet_subnet_nic_associations_and_back_references(arm_env: Emulator) -> None:
    client = network_client(arm_env)
    nsg = client.network_security_groups.begin_create_or_update(
        RG, "nsg-cluster", NetworkSecurityGroup(location="westeurope")
    ).result()
    vnet = client.virtual_networks.begin_create_or_update(
        RG,
        "vnet-cc",
        VirtualNetwork(
            location="westeurope",
            address_space=AddressSpace(address_prefixes=["10.10.0.0/16"]),
            subnets=[Subnet(name="cluster", address_prefix="10.10.1.0/24", network_security_group=nsg)],
        ),
    ).result()
    assert vnet.subnets[0].network_security_group.id == nsg.id
    subnet = client.subnets.begin_create_or_update(
        RG,
        "vnet-cc",
        "cyclecloud",
        Subnet(
            address_prefix="10.10.0.0/24",
            service_endpoints=[ServiceEndpointPropertiesFormat(service="Microsoft.Storage")],
        ),
    ).result()
    assert subnet.service_endpoints[0].service == "Microsoft.Storage"
    nic = client.network_interfaces.begin_create_or_update(
        RG,
        "node-1-nic",
        NetworkInterface(
            location="westeurope",
            network_security_group=nsg,
            ip_configurations=[NetworkInterfaceIPConfiguration(name="ipconfig1", subnet=vnet.subnets[0])],
        ),
    ).result()
    assert nic.ip_configurations[0].private_ip_address == "10.10.1.4"

    nsg = client.network_security_groups.get(RG, "nsg-cluster")
    assert [s.id for s in nsg.subnets] == [vnet.subnets[0].id]
    assert [n.id for n in nsg.network_interfaces] == [nic.id]
    assert sorted(s.name for s in client.subnets.list(RG, "vnet-cc")) == ["cluster", "cyclecloud"]
    assert [n.name for n in client.network_interfaces.list_all()] == ["node-1-nic"]
    assert [v.name for v in client.virtual_networks.list_all()] == ["vnet-cc"]

    with pytest.raises(HttpResponseError, match="InUseNetworkSecurityGroupCannotBeDeleted"):
        client.network_security_groups.begin_delete(RG, "nsg-cluster").result()
    client.network_interfaces.begin_delete(RG, "node-1-nic").result()
    client.subnets.begin_delete(RG, "vnet-cc", "cyclecloud").result()
    assert [s.name for s in client.subnets.list(RG, "vnet-cc")] == ["cluster"]
