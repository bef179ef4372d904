"""Request validation with ARM's error codes, statuses and envelope."""

from __future__ import annotations

from typing import Any

import pytest

from devtools.emulator import Emulator
from tests.devtools.rest import NET, Rest, nsg_body, nsg_id, rule


def error_of(response: Any) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}, body
    assert {"code", "message"} <= set(body["error"]), body
    return dict(body["error"])


BAD_RULES = [
    ({"priority": 99}, "SecurityRuleInvalidPriority"),
    ({"priority": 4097}, "SecurityRuleInvalidPriority"),
    ({"priority": "100"}, "InvalidRequestFormat"),
    ({"destinationPortRange": "70000"}, "SecurityRuleInvalidPortRange"),
    ({"destinationPortRange": "80,443"}, "SecurityRuleInvalidPortRange"),
    ({"destinationPortRange": "443-80"}, "SecurityRuleInvalidPortRange"),
    ({"destinationPortRange": None, "destinationPortRanges": ["80", "x"]}, "SecurityRuleInvalidPortRange"),
    ({"destinationAddressPrefix": "10.0.0.256/24"}, "SecurityRuleInvalidAddressPrefix"),
    ({"destinationAddressPrefix": "10.0.0.5/24"}, "SecurityRuleInvalidAddressPrefix"),
    ({"sourceAddressPrefix": "not a prefix"}, "SecurityRuleInvalidAddressPrefix"),
    ({"protocol": "Gre"}, "InvalidRequestFormat"),
    ({"access": "Maybe"}, "InvalidRequestFormat"),
    ({"direction": "Sideways"}, "InvalidRequestFormat"),
    ({"protocol": None}, "SecurityRuleParametersMissing"),
    ({"sourceAddressPrefix": None}, "SecurityRuleParametersMissing"),
    ({"destinationPortRange": None}, "SecurityRuleParametersMissing"),
    (
        {"destinationAddressPrefix": None, "destinationAddressPrefixes": ["Storage", "10.0.0.0/24"]},
        "SecurityRuleParameterContainsUnsupportedValue",
    ),
    ({"destinationAddressPrefixes": ["10.1.0.0/24"]}, "SecurityRuleParameterContainsUnsupportedValue"),
    ({"description": "x" * 141}, "SecurityRuleDescriptionTooLong"),
]


@pytest.mark.parametrize(("overrides", "code"), BAD_RULES, ids=[c + "-" + str(i) for i, (_, c) in enumerate(BAD_RULES)])
def test_bad_rule_in_nsg_put_is_rejected_with_arms_code(rest: Rest, overrides: dict[str, Any], code: str) -> None:
    response = rest.put(nsg_id(), nsg_body(("r1", rule(**overrides))))
    assert response.status_code == 400
    assert error_of(response)["code"] == code
    assert rest.get(nsg_id()).status_code == 404, "a rejected PUT creates nothing"


def test_bad_rule_put_on_its_own_is_rejected_too(rest: Rest) -> None:
    assert rest.put(nsg_id(), nsg_body()).status_code == 201
    response = rest.put(f"{nsg_id()}/securityRules/r1", {"properties": rule(priority=5000)})
    assert response.status_code == 400
    assert error_of(response)["code"] == "SecurityRuleInvalidPriority"


def test_invalid_enum_answer_names_the_field(rest: Rest) -> None:
    error = error_of(rest.put(nsg_id(), nsg_body(("r1", rule(access="Maybe")))))
    assert error["details"][0]["code"] == "InvalidJson"
    assert "properties.securityRules[0].properties.access" in error["details"][0]["message"]


def test_enums_are_case_insensitive_and_answered_canonically_but_the_protocol_as_written(rest: Rest) -> None:
    response = rest.put(nsg_id(), nsg_body(("r1", rule(protocol="TCP", access="allow", direction="OUTBOUND"))))
    assert response.status_code == 201, response.text
    props = response.json()["properties"]["securityRules"][0]["properties"]
    # Real answers keep "TCP" as written (Cloud Custodian's recorded NSG lists).
    assert (props["protocol"], props["access"], props["direction"]) == ("TCP", "Allow", "Outbound")
    assert props["sourcePortRanges"] == []
    assert props["destinationAddressPrefixes"] == []


@pytest.mark.parametrize("protocol", ["Tcp", "Udp", "Icmp", "Esp", "Ah", "*"])
def test_every_spec_protocol_is_accepted(rest: Rest, protocol: str) -> None:
    assert rest.put(nsg_id(), nsg_body(("r1", rule(protocol=protocol)))).status_code == 201


def test_augmented_rules_and_service_tags_are_accepted(rest: Rest) -> None:
    augmented = rule(
        destinationPortRange=None,
        destinationPortRanges=["5672", "9443", "20-22"],
        sourceAddressPrefix=None,
        sourceAddressPrefixes=["10.1.0.0/24", "10.2.0.0/24", "2001:db8::/64"],
        destinationAddressPrefix="Storage.WestEurope",
    )
    response = rest.put(nsg_id(), nsg_body(("aug", augmented)))
    assert response.status_code == 201, response.text
    props = response.json()["properties"]["securityRules"][0]["properties"]
    assert props["destinationPortRanges"] == ["5672", "9443", "20-22"]


def test_same_priority_and_direction_conflict(rest: Rest) -> None:
    response = rest.put(nsg_id(), nsg_body(("a", rule(200)), ("b", rule(200))))
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "SecurityRuleConflict"
    assert "rule b conflicts with rule a" in error["message"]


def test_same_priority_in_other_direction_is_fine(rest: Rest) -> None:
    assert rest.put(nsg_id(), nsg_body(("a", rule(200)), ("b", rule(200, "Outbound")))).status_code == 201


def test_rule_put_conflicting_with_an_existing_rule(rest: Rest) -> None:
    rest.put(nsg_id(), nsg_body(("a", rule(200))))
    response = rest.put(f"{nsg_id()}/securityRules/b", {"properties": rule(200)})
    assert response.status_code == 400
    assert error_of(response)["code"] == "SecurityRuleConflict"
    # Replacing the same rule at its own priority is not a conflict.
    assert (
        rest.put(f"{nsg_id()}/securityRules/a", {"properties": rule(200, destinationPortRange="22")}).status_code == 200
    )


def test_location_is_required_and_normalised(rest: Rest) -> None:
    assert error_of(rest.put(nsg_id(), {"properties": {}}))["code"] == "LocationRequired"
    assert rest.put(nsg_id(), {"location": "West Europe"}).json()["location"] == "westeurope"


def test_body_must_be_json(rest: Rest) -> None:
    response = rest.put(nsg_id(), raw=b"{not json")
    assert response.status_code == 400
    assert error_of(response)["code"] == "InvalidRequestContent"


def test_api_version_is_required_and_checked(rest: Rest) -> None:
    missing = rest.get(nsg_id(), api_version=None)
    assert missing.status_code == 400
    assert error_of(missing)["code"] == "MissingApiVersionParameter"
    anonymous = rest.get(nsg_id(), api_version=None, auth=False)
    assert (anonymous.status_code, error_of(anonymous)["code"]) == (400, "MissingApiVersionParameter")
    invalid = rest.get(nsg_id(), api_version="yesterday")
    assert invalid.status_code == 400
    assert error_of(invalid)["code"] == "InvalidApiVersionParameter"


def test_calls_without_a_valid_bearer_token_are_rejected(rest: Rest, arm_emulator: Emulator) -> None:
    response = rest.get(nsg_id(), auth=False)
    assert response.status_code == 401
    assert error_of(response)["code"] == "AuthenticationFailed"
    assert "WWW-Authenticate" in response.headers
    garbage = rest.get(nsg_id(), auth=False, headers={"Authorization": "Bearer nonsense"})
    assert (garbage.status_code, error_of(garbage)["code"]) == (401, "InvalidAuthenticationToken")
    wrong_aud = arm_emulator.token_for("human", resource="https://vault.azure.net")
    other = rest.get(nsg_id(), auth=False, headers={"Authorization": f"Bearer {wrong_aud}"})
    assert (other.status_code, error_of(other)["code"]) == (401, "InvalidAuthenticationTokenAudience")


def test_not_found_codes(rest: Rest) -> None:
    missing = rest.get(nsg_id("ghost"))
    assert (missing.status_code, error_of(missing)["code"]) == (404, "ResourceNotFound")
    rest.put(nsg_id(), nsg_body())
    rule_missing = rest.get(f"{nsg_id()}/securityRules/ghost")
    assert (rule_missing.status_code, error_of(rule_missing)["code"]) == (404, "NotFound")
    unknown_type = rest.get(f"{NET}/loadBalancers/lb1")
    assert unknown_type.status_code == 404
    assert error_of(unknown_type)["code"] == "InvalidResourceType"


def test_ids_are_case_insensitive_and_keep_their_first_spelling(rest: Rest) -> None:
    rest.put(nsg_id("Nsg-CC"), nsg_body(("Rule1", rule())))
    got = rest.get(nsg_id("nsg-cc").upper().replace("API-VERSION", "api-version"))
    assert got.status_code == 200, got.text
    assert got.json()["id"] == nsg_id("Nsg-CC")
    assert rest.get(f"{nsg_id('NSG-CC')}/securityRules/RULE1").json()["name"] == "Rule1"
    # A PUT in other casing updates the same resource.
    assert rest.put(nsg_id("nsg-cc"), nsg_body()).status_code == 200


def test_default_rules_cannot_be_written(rest: Rest) -> None:
    rest.put(nsg_id(), nsg_body())
    response = rest.put(f"{nsg_id()}/defaultSecurityRules/DenyAllInBound", {"properties": rule()})
    assert response.status_code == 405
    assert rest.get(f"{nsg_id()}/defaultSecurityRules/DenyAllInBound").json()["properties"]["priority"] == 65500


VNET = f"{NET}/virtualNetworks/vnet1"


def _vnet(*subnets: dict[str, Any]) -> dict[str, Any]:
    return {
        "location": "westeurope",
        "properties": {"addressSpace": {"addressPrefixes": ["10.0.0.0/16"]}, "subnets": list(subnets)},
    }


def test_subnet_nsg_reference_must_exist(rest: Rest) -> None:
    subnet = {
        "name": "s1",
        "properties": {"addressPrefix": "10.0.1.0/24", "networkSecurityGroup": {"id": nsg_id("ghost")}},
    }
    response = rest.put(VNET, _vnet(subnet))
    assert (response.status_code, error_of(response)["code"]) == (400, "InvalidResourceReference")


def test_subnet_must_lie_in_the_address_space_and_not_overlap(rest: Rest) -> None:
    outside = rest.put(VNET, _vnet({"name": "s1", "properties": {"addressPrefix": "10.9.0.0/24"}}))
    assert error_of(outside)["code"] == "NetcfgSubnetRangeOutsideVnet"
    overlap = rest.put(
        VNET,
        _vnet(
            {"name": "s1", "properties": {"addressPrefix": "10.0.0.0/23"}},
            {"name": "s2", "properties": {"addressPrefix": "10.0.1.0/24"}},
        ),
    )
    assert error_of(overlap)["code"] == "NetcfgSubnetRangesOverlap"


def test_back_references_follow_subnet_and_nic_associations(rest: Rest) -> None:
    rest.put(nsg_id(), nsg_body())
    ref = {"id": nsg_id()}
    subnet = {"name": "s1", "properties": {"addressPrefix": "10.0.1.0/24", "networkSecurityGroup": ref}}
    assert rest.put(VNET, _vnet(subnet)).status_code == 201
    nic_id = f"{NET}/networkInterfaces/nic1"
    nic = {
        "location": "westeurope",
        "properties": {
            "networkSecurityGroup": ref,
            "ipConfigurations": [{"name": "ipconfig1", "properties": {"subnet": {"id": f"{VNET}/subnets/s1"}}}],
        },
    }
    created = rest.put(nic_id, nic)
    assert created.status_code == 201, created.text
    ipc = created.json()["properties"]["ipConfigurations"][0]
    assert ipc["properties"]["privateIPAddress"] == "10.0.1.4", "Azure's first usable address"
    props = rest.get(nsg_id()).json()["properties"]
    assert props["subnets"] == [{"id": f"{VNET}/subnets/s1"}]
    assert props["networkInterfaces"] == [{"id": nic_id}]
    got_subnet = rest.get(f"{VNET}/subnets/s1").json()
    assert got_subnet["properties"]["ipConfigurations"] == [{"id": f"{nic_id}/ipConfigurations/ipconfig1"}]

    in_use = rest.delete(nsg_id())
    assert (in_use.status_code, error_of(in_use)["code"]) == (400, "InUseNetworkSecurityGroupCannotBeDeleted")
    subnet_in_use = rest.delete(f"{VNET}/subnets/s1")
    assert error_of(subnet_in_use)["code"] == "InUseSubnetCannotBeDeleted"

    assert rest.delete(nic_id).status_code == 202
    detached = {"name": "s1", "properties": {"addressPrefix": "10.0.1.0/24"}}
    assert rest.put(f"{VNET}/subnets/s1", {"properties": detached["properties"]}).status_code == 200
    assert "subnets" not in rest.get(nsg_id()).json()["properties"]
    assert rest.delete(nsg_id()).status_code == 202


def test_nic_needs_an_ip_configuration_in_an_existing_subnet(rest: Rest) -> None:
    nic_id = f"{NET}/networkInterfaces/nic1"
    empty = rest.put(nic_id, {"location": "westeurope", "properties": {"ipConfigurations": []}})
    assert error_of(empty)["code"] == "NetworkInterfaceMustHaveAtLeastOneIpConfiguration"
    dangling = {"ipConfigurations": [{"name": "c", "properties": {"subnet": {"id": f"{VNET}/subnets/none"}}}]}
    assert (
        error_of(rest.put(nic_id, {"location": "westeurope", "properties": dangling}))["code"]
        == "InvalidResourceReference"
    )


def test_subnet_put_honours_if_match_and_keeps_service_endpoints(rest: Rest) -> None:
    """What service-endpoint repair relies on: a stale etag is refused, endpoints are kept and checked."""
    subnet = {
        "name": "s1",
        "properties": {
            "addressPrefix": "10.0.1.0/24",
            "serviceEndpoints": [{"service": "Microsoft.KeyVault", "locations": ["westeurope", "northeurope"]}],
            "routeTable": {"id": f"{NET}/routeTables/rt1"},
        },
    }
    assert rest.put(VNET, _vnet(subnet)).status_code == 201
    read = rest.get(f"{VNET}/subnets/s1").json()
    stale = read["etag"]
    assert (
        rest.put(
            VNET, {"location": "westeurope", "tags": {"a": "b"}, "properties": rest.get(VNET).json()["properties"]}
        ).status_code
        == 200
    )
    props = dict(read["properties"])
    props["serviceEndpoints"] = [*props["serviceEndpoints"], {"service": "Microsoft.Storage"}]
    refused = rest.put(f"{VNET}/subnets/s1", {"properties": props}, headers={"If-Match": stale})
    assert refused.status_code == 412
    assert error_of(refused)["code"] == "PreconditionFailed"
    current = rest.get(f"{VNET}/subnets/s1").json()["etag"]
    done = rest.put(f"{VNET}/subnets/s1", {"properties": props}, headers={"If-Match": current})
    assert done.status_code == 200, done.text
    got = rest.get(f"{VNET}/subnets/s1").json()["properties"]
    assert [(e["service"], e["locations"]) for e in got["serviceEndpoints"]] == [
        ("Microsoft.KeyVault", ["westeurope", "northeurope"]),
        ("Microsoft.Storage", ["*"]),  # no locations given: ARM answers ["*"] (azure-cli's recording)
    ]
    assert got["routeTable"] == {"id": f"{NET}/routeTables/rt1"}
    bad = rest.put(f"{VNET}/subnets/s1", {"properties": {**props, "serviceEndpoints": [{"service": 7}]}})
    assert bad.status_code == 400
