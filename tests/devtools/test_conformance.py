"""Conformance on the REST examples in reference/arm-rest-spec/: each example request, sent to the
emulator, gives the example response's status code and shape. Generated values (etag,
resourceGuid) are not compared; everything else the example shows must be there and equal."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from devtools.emulator import Emulator
from devtools.emulator._routes import parse as parse_route
from tests.devtools.rest import Rest

SPEC = Path(__file__).resolve().parents[2] / "reference" / "arm-rest-spec"
GENERATED = {"etag", "resourceGuid"}
#: Where the spec's examples and recorded real answers differ, the emulator follows the recordings
#: (../shared/reference/arm-recordings): NSGs that never set flushConnection answer without it.
RECORDED_OVER_SPEC = {"flushConnection"}


def example(name: str) -> dict[str, Any]:
    return dict(json.loads((SPEC / f"{name}.json").read_text()))


def nsg_path(p: dict[str, Any], name_key: str = "networkSecurityGroupName") -> str:
    return (
        f"/subscriptions/{p['subscriptionId']}/resourceGroups/{p['resourceGroupName']}"
        f"/providers/Microsoft.Network/networkSecurityGroups/{p[name_key]}"
    )


def vnet_path(p: dict[str, Any]) -> str:
    name = p.get("virtualNetworkName")
    return (
        f"/subscriptions/{p['subscriptionId']}/resourceGroups/{p['resourceGroupName']}"
        f"/providers/Microsoft.Network/virtualNetworks/{name}"
    )


def assert_shape(expected: Any, actual: Any, where: str, ignore: set[str]) -> None:
    """Every key and value of ``expected`` is in ``actual``; lists of named items match by name."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{where}: expected an object, got {actual!r:.80}"
        for key, value in expected.items():
            if key in GENERATED | RECORDED_OVER_SPEC or f"{where}.{key}".lstrip(".") in ignore or key in ignore:
                continue
            assert key in actual, f"{where}.{key} is missing"
            assert_shape(value, actual[key], f"{where}.{key}", ignore)
    elif isinstance(expected, list):
        assert isinstance(actual, list), f"{where}: expected a list"
        if expected and all(isinstance(e, dict) and "name" in e for e in expected):
            by_name = {a.get("name"): a for a in actual}
            assert set(by_name) >= {e["name"] for e in expected}, f"{where}: names {sorted(by_name)}"
            for e in expected:
                assert_shape(e, by_name[e["name"]], f"{where}[{e['name']}]", ignore)
        else:
            assert len(actual) == len(expected), f"{where}: {actual} != {expected}"
            for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
                assert_shape(e, a, f"{where}[{i}]", ignore)
    else:
        assert actual == expected, f"{where}: {actual!r} != {expected!r}"


def seed_from(em: Emulator, *docs: dict[str, Any]) -> None:
    em.seed([{k: v for k, v in d.items() if k in ("id", "location", "tags", "properties")} for d in docs])


@dataclass
class Case:
    name: str
    method: str
    path: Callable[[dict[str, Any]], str]
    body_key: str | None = None
    setup: Callable[[Emulator, dict[str, Any]], None] = lambda em, ex: None
    ignore: set[str] = field(default_factory=set)
    wrap_value: bool = False  # the response is {"value": [...]}


def _seed_response(em: Emulator, ex: dict[str, Any]) -> None:
    seed_from(em, ex["responses"]["200"]["body"])


def _seed_list(em: Emulator, ex: dict[str, Any]) -> None:
    seed_from(em, *ex["responses"]["200"]["body"]["value"])


def _seed_nsg_with_rules(em: Emulator, ex: dict[str, Any]) -> None:
    p = ex["parameters"]
    body = ex["responses"]["200"]["body"]
    rules = body.get("value", [body])
    if rules and "defaultSecurityRules" in rules[0]["id"]:
        rules = []
    em.seed(
        [
            {
                "id": nsg_path(p),
                "location": "westus",
                "properties": {"securityRules": [{"name": r["name"], "properties": r["properties"]} for r in rules]},
            }
        ]
    )


def _seed_empty_nsg(em: Emulator, ex: dict[str, Any]) -> None:
    em.seed([{"id": nsg_path(ex["parameters"]), "location": "westus", "properties": {}}])


def _seed_vnet_for_subnet(em: Emulator, ex: dict[str, Any]) -> None:
    p = ex["parameters"]
    subnets = []
    if "subnetParameters" not in p:  # a GET: the subnet exists already
        subnets = [{"name": p["subnetName"], "properties": ex["responses"]["200"]["body"]["properties"]}]
    em.seed(
        [
            {
                "id": vnet_path(p),
                "location": "westus",
                "properties": {"addressSpace": {"addressPrefixes": ["10.0.0.0/16"]}, "subnets": subnets},
            }
        ]
    )


def _seed_vnet(em: Emulator, ex: dict[str, Any]) -> None:
    doc = json.loads(json.dumps(ex["responses"]["200"]["body"]))
    for subnet in doc["properties"]["subnets"]:
        subnet["properties"].pop("ipConfigurations", None)  # a load balancer the emulator does not model
    doc["properties"].pop("defaultPublicNatGateway", None)
    seed_from(em, doc)


def network_path(p: dict[str, Any], rtype: str, name_key: str) -> str:
    return (
        f"/subscriptions/{p['subscriptionId']}/resourceGroups/{p['resourceGroupName']}"
        f"/providers/Microsoft.Network/{rtype}/{p[name_key]}"
    )


def _seed_policy_with_group(em: Emulator, ex: dict[str, Any]) -> None:
    p = ex["parameters"]
    group = ex["responses"]["200"]["body"]
    policy = network_path(p, "firewallPolicies", "firewallPolicyName")
    em.seed([{"id": policy, "location": "westus", "properties": {}}])
    # A rule collection group is its own PUT (a child of the policy), as in ARM.
    em.network.put(parse_route(group["id"]), {"properties": group["properties"]}, state="Succeeded")


CASES = [
    Case("RouteTableGet", "GET", lambda p: network_path(p, "routeTables", "routeTableName"), setup=_seed_response),
    Case(
        "AzureFirewallGet",
        "GET",
        lambda p: network_path(p, "azureFirewalls", "azureFirewallName"),
        setup=_seed_response,
        # Zones are not modelled; the example's location is the display name ("West US"), which the
        # emulator, like ARM, answers in canonical form (westus). The rest is stored and shown as given.
        ignore={"zones", "location"},
    ),
    Case(
        "FirewallPolicyRuleCollectionGroupGet",
        "GET",
        lambda p: (
            f"{network_path(p, 'firewallPolicies', 'firewallPolicyName')}/ruleCollectionGroups/{p['ruleCollectionGroupName']}"
        ),
        setup=_seed_policy_with_group,
        ignore={"size"},  # a read-only figure NRP computes
    ),
    Case("NetworkSecurityGroupCreate", "PUT", nsg_path, "parameters"),
    Case("NetworkSecurityGroupCreateWithRule", "PUT", nsg_path, "parameters"),
    Case("NetworkSecurityGroupGet", "GET", nsg_path, setup=_seed_response),
    Case(
        "NetworkSecurityGroupList",
        "GET",
        lambda p: (
            f"/subscriptions/{p['subscriptionId']}/resourceGroups/{p['resourceGroupName']}"
            "/providers/Microsoft.Network/networkSecurityGroups"
        ),
        setup=_seed_list,
    ),
    Case(
        "NetworkSecurityGroupListAll",
        "GET",
        lambda p: f"/subscriptions/{p['subscriptionId']}/providers/Microsoft.Network/networkSecurityGroups",
        setup=_seed_list,
    ),
    Case(
        "NetworkSecurityGroupRuleCreate",
        "PUT",
        lambda p: f"{nsg_path(p)}/securityRules/{p['securityRuleName']}",
        "securityRuleParameters",
        setup=_seed_empty_nsg,
    ),
    Case(
        "NetworkSecurityGroupRuleGet",
        "GET",
        lambda p: f"{nsg_path(p)}/securityRules/{p['securityRuleName']}",
        setup=_seed_nsg_with_rules,
    ),
    Case("NetworkSecurityGroupRuleList", "GET", lambda p: f"{nsg_path(p)}/securityRules", setup=_seed_nsg_with_rules),
    Case("DefaultSecurityRuleList", "GET", lambda p: f"{nsg_path(p)}/defaultSecurityRules", setup=_seed_nsg_with_rules),
    Case(
        "SubnetCreateServiceEndpoint",
        "PUT",
        lambda p: f"{vnet_path(p)}/subnets/{p['subnetName']}",
        "subnetParameters",
        setup=_seed_vnet_for_subnet,
        # The example's locations ("eastus2(stage)") are test-ring values; the emulator answers the VNet's region.
        ignore={"locations"},
    ),
    Case("SubnetGet", "GET", lambda p: f"{vnet_path(p)}/subnets/{p['subnetName']}", setup=_seed_vnet_for_subnet),
    Case(
        "VirtualNetworkGet",
        "GET",
        vnet_path,
        setup=_seed_vnet,
        # References to a load balancer and NAT gateway: resource types the emulator does not serve.
        ignore={"ipConfigurations", "defaultPublicNatGateway"},
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_example(case: Case, arm_emulator: Emulator, rest: Rest) -> None:
    arm_emulator.config.lro_polls = 0  # examples show the settled state
    ex = example(case.name)
    params = ex["parameters"]
    case.setup(arm_emulator, ex)
    body = params[case.body_key] if case.body_key else None
    path = case.path(params)
    expected_statuses = sorted(ex["responses"], key=lambda s: s != "201")  # a PUT creates (201) first
    for status in expected_statuses:
        response = rest.request(case.method, path, body, api_version=params["api-version"])
        assert response.status_code == int(status), response.text
        assert_shape(ex["responses"][status]["body"], response.json(), case.name, case.ignore)


def test_every_example_is_covered() -> None:
    served = {c.name for c in CASES}
    # Not Microsoft.Network resources the product reads through this emulator.
    out_of_scope = {"ServiceTagsList", "NetworkWatcherIpFlowVerify", "networkSecurityGroup"}
    assert {p.stem for p in SPEC.glob("*.json")} == served | out_of_scope


def test_service_tags_list_has_the_rest_examples_shape(arm_emulator: Emulator, rest: Rest) -> None:
    """ServiceTags_List: the example's top-level fields, each value shaped like the example's values.

    The example's tags (ApiManagement ...) are not in reference/service-tags/, so values are
    compared by shape, and the emulator's by content against the per-tag files."""
    ex = example("ServiceTagsList")
    params = ex["parameters"]
    expected = ex["responses"]["200"]["body"]
    path = f"/subscriptions/{params['subscriptionId']}/providers/Microsoft.Network/locations/{params['location']}/serviceTags"
    response = rest.request("GET", path, None, api_version=params["api-version"])
    assert response.status_code == 200, response.text
    got = response.json()
    assert set(got) == set(expected) - {"nextLink"}  # one page: all eight tags fit
    assert (got["type"], got["cloud"]) == (expected["type"], expected["cloud"])
    assert (
        got["id"] == f"/subscriptions/{params['subscriptionId']}/providers/Microsoft.Network/serviceTags/{got['name']}"
    )
    assert isinstance(got["changeNumber"], str)
    assert got["changeNumber"].isdigit()
    example_props = {k for v in expected["values"] for k in v["properties"]}
    for value in got["values"]:
        assert set(value) == {"name", "id", "properties"}, value["name"]
        assert set(value["properties"]) <= example_props | {"state", "networkFeatures"}, value["name"]
        assert isinstance(value["properties"]["changeNumber"], str)
        assert value["properties"]["addressPrefixes"], value["name"]
    files = Path(__file__).resolve().parents[2] / "reference" / "service-tags"
    storage = json.loads((files / "Storage.WestEurope.json").read_text())
    served = next(v for v in got["values"] if v["name"] == "Storage.WestEurope")
    assert served["properties"]["addressPrefixes"] == storage["properties"]["addressPrefixes"]
    assert served["properties"]["region"] == "westeurope"
    assert {v["name"] for v in got["values"]} == {p.stem for p in files.glob("*.json")}


def test_service_tags_are_paged_with_next_link(arm_emulator: Emulator, rest: Rest) -> None:
    arm_emulator.config.page_size = 3
    path = f"/subscriptions/{arm_emulator.subscription_id}/providers/Microsoft.Network/locations/westeurope/serviceTags"
    names: list[str] = []
    response = rest.request("GET", path, None, api_version="2025-05-01")
    while True:
        assert response.status_code == 200, response.text
        page = response.json()
        names += [v["name"] for v in page["values"]]
        if not page.get("nextLink"):
            break
        response = rest.get(page["nextLink"], api_version=None)
    assert len(names) == len(set(names)) == len(arm_emulator.service_tags.values)
