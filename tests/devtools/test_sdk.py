"""The REAL azure-mgmt-network SDK with DefaultAzureCredential, through the emulator."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.network.models import NetworkSecurityGroup, SecurityRule

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
