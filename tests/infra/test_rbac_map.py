"""The ARM-request-to-RBAC-action mapper, and the custom role against it."""

from __future__ import annotations

import json

import pytest

from tests.infra.rbac_map import ROLE_ACTIONS_FILE, RbacMapError, action_for, is_covered, role_actions, uncovered

SUB = "/subscriptions/00000000-0000-0000-0000-000000000001"
RG = f"{SUB}/resourceGroups/rg-cc"
NET = f"{RG}/providers/Microsoft.Network"

# (method, path, action): the requests the ARM adapter makes, plus shapes
# that must not be mapped by accident (collections, POST actions, nesting).
TABLE = [
    ("GET", f"{SUB}/providers/Microsoft.Network/networkSecurityGroups", "Microsoft.Network/networkSecurityGroups/read"),
    ("GET", f"{NET}/networkSecurityGroups", "Microsoft.Network/networkSecurityGroups/read"),
    ("GET", f"{NET}/networkSecurityGroups/nsg-cc", "Microsoft.Network/networkSecurityGroups/read"),
    ("PUT", f"{NET}/networkSecurityGroups/nsg-cc", "Microsoft.Network/networkSecurityGroups/write"),
    ("PATCH", f"{NET}/networkSecurityGroups/nsg-cc", "Microsoft.Network/networkSecurityGroups/write"),
    ("DELETE", f"{NET}/networkSecurityGroups/nsg-cc", "Microsoft.Network/networkSecurityGroups/delete"),
    (
        "GET",
        f"{NET}/networkSecurityGroups/nsg-cc/securityRules/AllowAzureRM",
        "Microsoft.Network/networkSecurityGroups/securityRules/read",
    ),
    (
        "PUT",
        f"{NET}/networkSecurityGroups/nsg-cc/securityRules/AllowAzureRM",
        "Microsoft.Network/networkSecurityGroups/securityRules/write",
    ),
    (
        "GET",
        f"{NET}/networkSecurityGroups/nsg-cc/defaultSecurityRules",
        "Microsoft.Network/networkSecurityGroups/defaultSecurityRules/read",
    ),
    ("GET", f"{SUB}/providers/Microsoft.Network/virtualNetworks", "Microsoft.Network/virtualNetworks/read"),
    ("GET", f"{NET}/virtualNetworks/vnet-cc", "Microsoft.Network/virtualNetworks/read"),
    ("GET", f"{NET}/virtualNetworks/vnet-cc/subnets", "Microsoft.Network/virtualNetworks/subnets/read"),
    ("GET", f"{NET}/virtualNetworks/vnet-cc/subnets/compute", "Microsoft.Network/virtualNetworks/subnets/read"),
    ("PUT", f"{NET}/virtualNetworks/vnet-cc/subnets/compute", "Microsoft.Network/virtualNetworks/subnets/write"),
    ("GET", f"{SUB}/providers/Microsoft.Network/networkInterfaces", "Microsoft.Network/networkInterfaces/read"),
    ("GET", f"{NET}/networkInterfaces/nic-node-1", "Microsoft.Network/networkInterfaces/read"),
    (
        "GET",
        f"{SUB}/providers/Microsoft.Network/locations/westeurope/operations/6f1c?api-version=2024-05-01",
        "Microsoft.Network/locations/operations/read",
    ),
    (
        "GET",
        f"https://management.azure.com{SUB}/providers/Microsoft.Network/locations/westeurope/operationResults/6f1c"
        "?api-version=2024-05-01",
        "Microsoft.Network/locations/operationResults/read",
    ),
    (
        "POST",
        f"{NET}/networkWatchers/nw-westeurope/ipFlowVerify",
        "Microsoft.Network/networkWatchers/ipFlowVerify/action",
    ),
    (
        "GET",
        f"{SUB}/providers/Microsoft.Network/locations/westeurope/serviceTags",
        "Microsoft.Network/locations/serviceTags/read",
    ),
    # Extension resources: the last /providers/ decides.
    (
        "GET",
        f"{NET}/networkSecurityGroups/nsg-cc/providers/Microsoft.Insights/diagnosticSettings/d",
        "Microsoft.Insights/diagnosticSettings/read",
    ),
    ("GET", SUB, "Microsoft.Resources/subscriptions/read"),
    ("GET", RG, "Microsoft.Resources/subscriptions/resourceGroups/read"),
    # Lower-case spelling (emulator logs, Event Grid subjects) maps to the same action.
    (
        "put",
        "/subscriptions/x/resourcegroups/rg/providers/microsoft.network/networksecuritygroups/n",
        "Microsoft.Network/networkSecurityGroups/write",
    ),
]


@pytest.mark.parametrize(("method", "path", "action"), TABLE)
def test_action_for_maps_request_to_rbac_action(method: str, path: str, action: str) -> None:
    assert action_for(method, path) == action


@pytest.mark.parametrize(
    ("method", "path", "message"),
    [
        ("GET", "/providers/Microsoft.Network/operations", "not an ARM path"),
        ("GET", "", "not an ARM path"),
        ("GET", f"{RG}/providers/", "nothing after /providers/"),
        ("GET", f"{RG}/providers/Microsoft.Network", "no resource type"),
        ("PUT", f"{NET}/networkSecurityGroups", "on a collection"),
        ("POST", f"{NET}/networkSecurityGroups/nsg-cc", "action segment"),
        ("OPTIONS", f"{NET}/networkSecurityGroups/nsg-cc", "unknown HTTP method"),
    ],
)
def test_action_for_rejects_what_is_not_an_arm_operation(method: str, path: str, message: str) -> None:
    with pytest.raises(RbacMapError, match=message) as caught:
        action_for(method, path)
    assert path in str(caught.value)


@pytest.mark.parametrize(
    ("action", "allowed", "denied", "expected"),
    [
        ("Microsoft.Network/networkSecurityGroups/write", ["Microsoft.Network/networkSecurityGroups/write"], [], True),
        ("Microsoft.Network/networkSecurityGroups/write", ["microsoft.network/NETWORKSECURITYGROUPS/write"], [], True),
        ("Microsoft.Network/networkSecurityGroups/write", ["Microsoft.Network/networkSecurityGroups/read"], [], False),
        ("Microsoft.Network/networkSecurityGroups/write", ["Microsoft.Network/*"], [], True),
        ("Microsoft.Network/networkSecurityGroups/write", ["*/read"], [], False),
        ("Microsoft.Network/virtualNetworks/subnets/read", ["*/read"], [], True),
        ("Microsoft.Network/networkSecurityGroups/write", ["*"], ["Microsoft.Network/*/write"], False),
        # A literal action is not a prefix: securityRules/write does not cover NSG write.
        (
            "Microsoft.Network/networkSecurityGroups/write",
            ["Microsoft.Network/networkSecurityGroups/securityRules/write"],
            [],
            False,
        ),
    ],
)
def test_is_covered_honours_rbac_wildcards_and_not_actions(
    action: str, allowed: list[str], denied: list[str], expected: bool
) -> None:
    assert is_covered(action, allowed, denied) is expected


# The ARM operations the adapter performs (the brief's list): every one must
# be allowed by the role as deployed by default.
ADAPTER_REQUESTS = [
    ("GET", f"{SUB}/providers/Microsoft.Network/networkSecurityGroups?api-version=2024-05-01"),
    ("GET", f"{NET}/networkSecurityGroups/nsg-cc"),
    ("PUT", f"{NET}/networkSecurityGroups/nsg-cc"),
    ("GET", f"{SUB}/providers/Microsoft.Network/virtualNetworks"),
    ("GET", f"{NET}/virtualNetworks"),
    ("GET", f"{NET}/virtualNetworks/vnet-cc"),
    ("GET", f"{SUB}/providers/Microsoft.Network/networkInterfaces"),
    ("GET", f"{NET}/networkInterfaces"),
    ("GET", f"{NET}/networkInterfaces/nic-cc"),
    ("GET", f"{SUB}/providers/Microsoft.Network/locations/westeurope/operations/op-1"),
    ("GET", f"{SUB}/providers/Microsoft.Network/locations/westeurope/serviceTags"),
    # The path beyond the NSGs (ArmNetwork.paths): list pages only.
    ("GET", f"{SUB}/providers/Microsoft.Network/routeTables"),
    ("GET", f"{SUB}/providers/Microsoft.Network/azureFirewalls"),
    ("GET", f"{SUB}/providers/Microsoft.Network/firewallPolicies"),
    ("GET", f"{NET}/firewallPolicies/fwp/ruleCollectionGroups"),
    ("GET", f"{SUB}/providers/Microsoft.Network/ipGroups"),
    ("GET", f"{SUB}/providers/Microsoft.Network/virtualNetworks"),
]
# Subnets come inline with their VNet; only the repair reads (for its etag) and writes one alone.
REPAIR_REQUESTS = [
    ("GET", f"{NET}/virtualNetworks/vnet-cc/subnets/compute"),
    ("PUT", f"{NET}/virtualNetworks/vnet-cc/subnets/compute"),
]


def test_role_covers_every_adapter_operation() -> None:
    assert uncovered(ADAPTER_REQUESTS, role_actions()) == []


def test_service_endpoint_repair_needs_the_opt_in_actions() -> None:
    # Off by default: a subnet write is refused unless repair is enabled.
    assert uncovered(REPAIR_REQUESTS, role_actions()) == [
        ("GET", REPAIR_REQUESTS[0][1], "Microsoft.Network/virtualNetworks/subnets/read"),
        ("PUT", REPAIR_REQUESTS[1][1], "Microsoft.Network/virtualNetworks/subnets/write"),
    ]
    assert uncovered(REPAIR_REQUESTS, role_actions(service_endpoint_repair=True)) == []


def test_role_grants_no_delete_and_no_wildcard() -> None:
    actions = role_actions(service_endpoint_repair=True)
    assert not [a for a in actions if "*" in a]
    assert not [a for a in actions if a.lower().endswith("/delete")]
    assert all(a.startswith("Microsoft.Network/") for a in actions)
    assert len(set(actions)) == len(actions)


def test_every_role_action_has_a_written_reason() -> None:
    doc = json.loads(ROLE_ACTIONS_FILE.read_text(encoding="utf-8"))
    every = doc["actions"] + doc["serviceEndpointRepairActions"]
    assert sorted(doc["reasons"]) == sorted(every)
    assert all(doc["reasons"][a].strip() for a in every)


def test_role_does_not_allow_more_than_it_needs() -> None:
    actions = role_actions()
    for denied in [
        "Microsoft.Network/networkSecurityGroups/delete",
        "Microsoft.Network/virtualNetworks/write",
        "Microsoft.Network/virtualNetworks/subnets/write",
        "Microsoft.Network/networkInterfaces/write",
        "Microsoft.Network/publicIPAddresses/write",
        "Microsoft.Network/routeTables/write",
        "Microsoft.Network/routeTables/routes/write",
        "Microsoft.Network/azureFirewalls/write",
        "Microsoft.Network/firewallPolicies/ruleCollectionGroups/write",
        "Microsoft.Compute/virtualMachines/read",
    ]:
        assert not is_covered(denied, actions), denied
