"""parse.py: every input form an operator has, and errors that name file and field."""

from __future__ import annotations

import copy
import ipaddress
import json
from itertools import islice
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from remediation.errors import InputError
from remediation.model import (
    ANY_PORT,
    DEFAULT_RULES,
    Access,
    AnyAddress,
    Asg,
    Direction,
    PortRange,
    Prefix,
    Protocol,
    SecurityRule,
    ServiceTag,
)
from remediation.parse import (
    merge_inventories,
    parse_address,
    parse_document,
    parse_nic,
    parse_nsg,
    parse_port_range,
    parse_rule,
    parse_subnet,
    parse_vnet,
)
from remediation.parse_paths import only_path_resources

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
REST = ROOT / "reference" / "arm-rest-spec"
SUB = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-cyclecloud/providers/Microsoft.Network"
NSG_ID = f"{SUB}/networkSecurityGroups/nsg-cyclecloud"


def load(path: str) -> Any:
    return json.loads((FIXTURES / path).read_text())


def arm_rule(**props: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "protocol": "Tcp",
        "sourcePortRange": "*",
        "destinationPortRange": "443",
        "sourceAddressPrefix": "*",
        "destinationAddressPrefix": "Storage",
        "access": "Allow",
        "priority": 100,
        "direction": "Outbound",
    }
    base.update(props)
    return {"name": "AllowAzureStorage", "properties": {k: v for k, v in base.items() if v is not None}}


STORAGE_RULE = SecurityRule(
    name="AllowAzureStorage",
    priority=100,
    direction=Direction.OUTBOUND,
    access=Access.ALLOW,
    protocol=Protocol.TCP,
    sources=(AnyAddress(),),
    destinations=(ServiceTag("Storage"),),
    destination_ports=(PortRange(443, 443),),
)


# --------------------------------------------------------------------------- input forms


def test_arm_form_nsg_reads_rules_defaults_tags_attachments_and_etag() -> None:
    nsg = parse_nsg(load("compliant/arm/nsg-cyclecloud.json"), where="nsg.json")
    assert nsg.id == NSG_ID
    assert nsg.name == "nsg-cyclecloud"
    assert nsg.location == "westeurope"
    assert dict(nsg.tags) == {"cyclecloud-lockdown": "cyclecloud"}
    assert nsg.etag == 'W/"00000000-0000-0000-0000-000000000001"'
    assert [r.name for r in nsg.security_rules] == [
        "AllowAzureStorage",
        "AllowActiveDirectory",
        "AllowAzureMonitor",
        "AllowAzureRM",
        "BlockOutbound",
    ]
    assert nsg.subnet_ids == (f"{SUB}/virtualNetworks/vnet-cyclecloud/subnets/cyclecloud",)
    assert len(nsg.default_rules) == 6
    assert all(r.is_default for r in nsg.default_rules)
    block = nsg.security_rules[-1]
    assert (block.priority, block.access, block.protocol) == (4000, Access.DENY, Protocol.ANY)
    assert block.destinations == (ServiceTag("Internet"),)
    assert block.destination_ports == (ANY_PORT,)


@pytest.mark.parametrize("name", ["nsg-cyclecloud.json", "nsg-cluster.json", "vnet.json", "nics.json"])
def test_az_cli_form_parses_to_the_same_model_as_arm_form(name: str) -> None:
    arm = parse_document(load(f"compliant/arm/{name}"), where=name)
    az = parse_document(load(f"compliant/az/{name}"), where=name)
    assert arm == az
    assert arm.nsgs or arm.vnets or arm.nics


def to_snake(value: Any) -> Any:
    """The SDK's ``as_dict()`` shape: flattened, snake_case keys."""
    if isinstance(value, list):
        return [to_snake(v) for v in value]
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for key, item in value.items():
        if key == "properties" and isinstance(item, dict):
            out.update(to_snake(item))
            continue
        snake = "".join("_" + c.lower() if c.isupper() else c for c in key).lstrip("_")
        # "privateIPAddress" -> the SDK says "private_ip_address"
        snake = snake.replace("i_p_", "ip_")
        out[snake] = to_snake(item)
    return out


@pytest.mark.parametrize("name", ["nsg-cyclecloud.json", "vnet.json", "nics.json"])
def test_sdk_as_dict_snake_case_form(name: str) -> None:
    arm_doc = load(f"compliant/arm/{name}")
    snake = to_snake(arm_doc)
    assert "properties" not in json.dumps(snake)
    assert parse_document(snake, where=name) == parse_document(arm_doc, where=name)


def test_sdk_keys_really_are_snake_case() -> None:
    snake = to_snake(load("compliant/arm/nsg-cyclecloud.json"))
    assert "security_rules" in snake
    assert "destination_address_prefix" in snake["security_rules"][0]
    nic = to_snake(load("compliant/arm/nics.json"))["value"][0]
    assert "private_ip_address" in nic["ip_configurations"][0]


def test_single_object_list_and_value_wrapper_are_one_inventory() -> None:
    nsg = load("compliant/arm/nsg-cyclecloud.json")
    single = parse_document(nsg, where="a")
    listed = parse_document([nsg], where="a")
    wrapped = parse_document({"value": [nsg], "nextLink": "https://management.azure.com/next"}, where="a")
    assert single == listed == wrapped
    assert len(single.nsgs) == 1


def test_mixed_document_holds_every_kind() -> None:
    doc = [
        load("compliant/arm/nsg-cyclecloud.json"),
        load("compliant/az/nsg-cluster.json"),
        load("compliant/arm/vnet.json"),
        *load("compliant/az/nics.json"),
        {"id": "/subscriptions/x/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm", "type": "Microsoft.Compute/virtualMachines"},
    ]  # fmt: skip
    inventory = parse_document(doc, where="mixed.json")
    assert sorted(n.name for n in inventory.nsgs) == ["nsg-cluster", "nsg-cyclecloud"]
    assert [s.name for s in inventory.subnets] == ["cyclecloud", "compute", "hpc"]
    assert len(inventory.nics) == 2


def test_vnet_address_space_subnets_nsg_and_service_endpoints() -> None:
    vnet = parse_vnet(load("compliant/arm/vnet.json"), where="vnet.json")
    assert vnet.address_space == (ipaddress.ip_network("10.10.0.0/16"),)
    by_name = {s.name: s for s in vnet.subnets}
    assert by_name["compute"].address_prefixes == (ipaddress.ip_network("10.10.2.0/24"),)
    assert by_name["compute"].nsg_id == f"{SUB}/networkSecurityGroups/nsg-cluster"
    assert all(s.service_endpoints == ("Microsoft.Storage",) for s in vnet.subnets)
    assert all(s.vnet_id == vnet.id for s in vnet.subnets)


def test_standalone_subnets_are_grouped_into_their_vnet() -> None:
    vnet_doc = load("compliant/az/vnet.json")
    subnets = vnet_doc["subnets"]  # what `az network vnet subnet list` prints
    inventory = parse_document(subnets, where="subnets.json")
    assert len(inventory.vnets) == 1
    vnet = inventory.vnets[0]
    assert vnet.id == vnet_doc["id"]
    assert vnet.name == "vnet-cyclecloud"
    assert vnet.address_space == ()
    assert [s.name for s in vnet.subnets] == ["cyclecloud", "compute", "hpc"]


def test_standalone_subnet_merges_into_a_vnet_from_another_file() -> None:
    vnet = parse_document(load("compliant/arm/vnet.json"), where="vnet.json")
    changed = copy.deepcopy(load("compliant/az/vnet.json")["subnets"][1])
    changed["serviceEndpoints"] = []
    subnet = parse_document(changed, where="subnet.json")
    merged = merge_inventories(vnet, subnet)
    assert len(merged.vnets) == 1
    assert merged.vnets[0].address_space == (ipaddress.ip_network("10.10.0.0/16"),)
    by_name = {s.name: s for s in merged.subnets}
    assert len(by_name) == 3
    assert by_name["compute"].service_endpoints == ()  # the later export wins


def test_subnet_with_plural_prefixes_and_no_nsg() -> None:
    subnet = parse_subnet(
        {
            "id": f"{SUB}/virtualNetworks/v/Subnets/dual",
            "name": "dual",
            "properties": {"addressPrefixes": ["10.0.0.0/24", "fd00::/64"]},
        },
        where="s.json",
    )
    assert subnet.address_prefixes == (ipaddress.ip_network("10.0.0.0/24"), ipaddress.ip_network("fd00::/64"))
    assert subnet.nsg_id is None
    assert subnet.vnet_id == f"{SUB}/virtualNetworks/v"


def test_nic_configs_subnets_ips_asgs_and_nsg() -> None:
    asg = f"{SUB}/applicationSecurityGroups/asg-nodes"
    nic = parse_nic(
        {
            "id": f"{SUB}/networkInterfaces/n1",
            "name": "n1",
            "type": "Microsoft.Network/networkInterfaces",
            "properties": {
                "networkSecurityGroup": {"id": NSG_ID},
                "ipConfigurations": [
                    {
                        "name": "a",
                        "properties": {
                            "privateIPAddress": "10.10.2.5",
                            "subnet": {"id": f"{SUB}/virtualNetworks/v/subnets/compute"},
                            "applicationSecurityGroups": [{"id": asg}],
                        },
                    },
                    {
                        "name": "b",
                        "properties": {
                            "privateIPAddress": "fd00::5",
                            "subnet": {"id": f"{SUB}/virtualNetworks/v/subnets/compute"},
                            "applicationSecurityGroups": [{"id": asg.upper()}],
                        },
                    },
                ],
            },
        },
        where="nic.json",
    )
    assert nic.nsg_id == NSG_ID
    assert nic.subnet_ids == (f"{SUB}/virtualNetworks/v/subnets/compute",)
    assert nic.private_ips == (ipaddress.ip_address("10.10.2.5"), ipaddress.ip_address("fd00::5"))
    assert nic.asg_ids == (asg,)


def test_defaults_are_synthesised_when_absent() -> None:
    nsg = parse_nsg(
        {"id": NSG_ID, "properties": {"securityRules": [arm_rule()]}},
        where="n.json",
    )
    assert nsg.name == "nsg-cyclecloud"  # from the id
    assert nsg.default_rules == DEFAULT_RULES
    assert nsg.tags == {}
    assert nsg.etag is None


def test_kind_is_detected_by_shape_without_type() -> None:
    nsg = load("compliant/az/nsg-cyclecloud.json")
    vnet = load("compliant/az/vnet.json")
    nic = load("compliant/az/nics.json")[0]
    subnet = vnet["subnets"][0]
    for doc in (nsg, vnet, nic, subnet):
        doc.pop("type", None)
    inventory = parse_document([nsg, vnet, nic, subnet], where="x")
    assert (len(inventory.nsgs), len(inventory.vnets), len(inventory.nics)) == (1, 1, 1)


# --------------------------------------------------------------------------- rules


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Tcp", Protocol.TCP),
        ("TCP", Protocol.TCP),
        ("tcp", Protocol.TCP),
        ("Udp", Protocol.UDP),
        ("ICMP", Protocol.ICMP),
        ("esp", Protocol.ESP),
        ("Ah", Protocol.AH),
        ("*", Protocol.ANY),
        ("Any", Protocol.ANY),
        ("any", Protocol.ANY),
    ],
)
def test_protocol_casing(raw: str, expected: Protocol) -> None:
    assert parse_rule(arm_rule(protocol=raw), where="r").protocol is expected


@pytest.mark.parametrize(("access", "direction"), [("allow", "outbound"), ("ALLOW", "OUTBOUND"), ("Allow", "Outbound")])
def test_access_and_direction_casing(access: str, direction: str) -> None:
    rule = parse_rule(arm_rule(access=access, direction=direction), where="r")
    assert (rule.access, rule.direction) == (Access.ALLOW, Direction.OUTBOUND)


def test_plural_fields_and_asgs_are_one_union() -> None:
    asg = f"{SUB}/applicationSecurityGroups/asg-cc"
    rule = parse_rule(
        arm_rule(
            sourceAddressPrefix="",
            sourceAddressPrefixes=["10.10.2.0/24", "10.10.3.0/24"],
            destinationAddressPrefix=None,
            destinationApplicationSecurityGroups=[{"id": asg}],
            destinationPortRange="",
            destinationPortRanges=["5672", "9443", "8000-8100"],
        ),
        where="r",
    )
    assert rule.sources == (
        Prefix(ipaddress.ip_network("10.10.2.0/24"), "10.10.2.0/24"),
        Prefix(ipaddress.ip_network("10.10.3.0/24"), "10.10.3.0/24"),
    )
    assert rule.destinations == (Asg(asg),)
    assert rule.destination_ports == (PortRange(5672, 5672), PortRange(9443, 9443), PortRange(8000, 8100))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("*", AnyAddress()),
        ("Any", AnyAddress()),
        ("any", AnyAddress()),
        ("10.0.0.0/8", Prefix(ipaddress.ip_network("10.0.0.0/8"), "10.0.0.0/8")),
        ("10.0.0.5", Prefix(ipaddress.ip_network("10.0.0.5/32"), "10.0.0.5")),
        ("10.0.0.5/24", Prefix(ipaddress.ip_network("10.0.0.0/24"), "10.0.0.5/24")),  # host bits: as Azure
        ("0.0.0.0/0", Prefix(ipaddress.ip_network("0.0.0.0/0"), "0.0.0.0/0")),
        ("2001:db8::/32", Prefix(ipaddress.ip_network("2001:db8::/32"), "2001:db8::/32")),
        ("2001:db8::1", Prefix(ipaddress.ip_network("2001:db8::1/128"), "2001:db8::1")),
        ("Internet", ServiceTag("Internet")),
        ("Storage.WestEurope", ServiceTag("Storage.WestEurope")),
        ("AzureCloud", ServiceTag("AzureCloud")),
        ("AzureFrontDoor.Backend", ServiceTag("AzureFrontDoor.Backend")),
        ("VIRTUAL_NETWORK", ServiceTag("VIRTUAL_NETWORK")),
    ],
)
def test_address_forms(text: str, expected: object) -> None:
    address = parse_address(text, where="r")
    assert address == expected
    assert address.to_arm() == ("*" if isinstance(expected, AnyAddress) else text)


@pytest.mark.parametrize("text", ["10.0.0.300", "10.0.0.0/33", "not a tag", "", "1.2.3.4-1.2.3.9", "Storage..West"])
def test_bad_addresses(text: str) -> None:
    with pytest.raises(InputError, match=r"nsg\.json: x\.sourceAddressPrefix"):
        parse_address(text, where="nsg.json", path="x.sourceAddressPrefix")


@pytest.mark.parametrize(
    ("text", "expected"),
    [("*", ANY_PORT), ("80", PortRange(80, 80)), ("8000-8100", PortRange(8000, 8100)), (443, PortRange(443, 443)),
     ("0-65535", ANY_PORT), ("Any", ANY_PORT)],
)  # fmt: skip
def test_port_specs(text: object, expected: PortRange) -> None:
    assert parse_port_range(text, where="r") == expected


@pytest.mark.parametrize("text", ["65536", "100-50", "http", "", "-1", "80,443", True, None, 1.5])
def test_bad_port_specs(text: object) -> None:
    with pytest.raises(InputError, match="r: p"):
        parse_port_range(text, where="r", path="p")


def test_round_trip_of_the_fixture_rules() -> None:
    nsg = parse_nsg(load("compliant/arm/nsg-cyclecloud.json"), where="n")
    for rule in nsg.security_rules + nsg.default_rules:
        assert parse_rule(rule.to_arm(), where="n", default=rule.is_default) == rule


_addresses = st.one_of(
    st.just("*"),
    st.sampled_from(["Internet", "Storage", "Storage.WestEurope", "VirtualNetwork", "AzureLoadBalancer"]),
    st.builds(
        lambda a, n: str(ipaddress.ip_network(f"{a}/{n}", strict=False)), st.ip_addresses(v=4), st.integers(8, 32)
    ),
    st.builds(lambda a, n: f"{a}/{n}", st.ip_addresses(v=6), st.integers(16, 128)),
    st.builds(lambda a: f"{SUB}/applicationSecurityGroups/asg-{a}", st.integers(0, 3)),
)
_ports = st.one_of(
    st.just("*"),
    st.integers(0, 65535).map(str),
    st.tuples(st.integers(0, 65535), st.integers(0, 65535)).map(lambda t: f"{min(t)}-{max(t)}"),
)


def _side(values: list[str], side: str) -> dict[str, Any]:
    asgs = [{"id": v} for v in values if v.startswith("/")]
    others = [v for v in values if not v.startswith("/")]
    props: dict[str, Any] = {}
    if asgs:
        props[f"{side}ApplicationSecurityGroups"] = asgs
    if len(others) == 1:
        props[f"{side}AddressPrefix"] = others[0]
    elif others:
        props[f"{side}AddressPrefixes"] = others
    return props


@given(
    protocol=st.sampled_from(["Tcp", "udp", "ICMP", "Esp", "Ah", "*", "Any"]),
    access=st.sampled_from(["Allow", "deny"]),
    direction=st.sampled_from(["Inbound", "outbound"]),
    priority=st.integers(100, 4096),
    sources=st.lists(_addresses, min_size=1, max_size=4, unique=True),
    destinations=st.lists(_addresses, min_size=1, max_size=4, unique=True),
    sports=st.lists(_ports, min_size=1, max_size=3),
    dports=st.lists(_ports, min_size=1, max_size=3),
)
def test_round_trip_property(
    protocol: str,
    access: str,
    direction: str,
    priority: int,
    sources: list[str],
    destinations: list[str],
    sports: list[str],
    dports: list[str],
) -> None:
    props: dict[str, Any] = {"protocol": protocol, "access": access, "direction": direction, "priority": priority}
    props |= _side(sources, "source") | _side(destinations, "destination")
    props["sourcePortRanges" if len(sports) > 1 else "sourcePortRange"] = sports if len(sports) > 1 else sports[0]
    props["destinationPortRanges" if len(dports) > 1 else "destinationPortRange"] = (
        dports if len(dports) > 1 else dports[0]
    )
    rule = parse_rule({"name": "r", "properties": props}, where="r")
    arm = rule.to_arm()
    assert parse_rule(arm, where="r") == rule
    assert parse_rule(arm, where="r").to_arm() == arm


# --------------------------------------------------------------------------- REST examples


def _rest_bodies() -> list[tuple[str, Any]]:
    found = []
    for path in sorted(REST.glob("*.json")):
        doc = json.loads(path.read_text())
        for code, response in doc.get("responses", {}).items():
            if isinstance(response, dict) and response.get("body") is not None:
                found.append((f"{path.name}:{code}", response["body"]))
    return found


def _holds(body: Any, *kinds: str) -> bool:
    text = json.dumps(body).lower()
    return any(k in text for k in kinds)


REST_BODIES = _rest_bodies()
# Route tables and firewalls name subnets too; they are parse_paths' (tests/test_parse_paths.py).
RESOURCE_BODIES = [
    (n, b)
    for n, b in REST_BODIES
    if _holds(b, "networksecuritygroups", "virtualnetworks") and not only_path_resources(b)
]


def test_rest_examples_were_found() -> None:
    names = {n.split(":")[0] for n, _ in RESOURCE_BODIES}
    assert {
        "NetworkSecurityGroupGet.json",
        "VirtualNetworkGet.json",
        "SubnetGet.json",
        "DefaultSecurityRuleList.json",
    } <= names


@pytest.mark.parametrize(("name", "body"), RESOURCE_BODIES, ids=[n for n, _ in RESOURCE_BODIES])
def test_every_rest_example_parses(name: str, body: Any) -> None:
    items = body["value"] if isinstance(body, dict) and "value" in body else [body]
    rule_like = [
        i for i in items if "/securityrules/" in i["id"].lower() or "/defaultsecurityrules/" in i["id"].lower()
    ]
    if rule_like:
        # Rules on their own: parse each; as a document they are refused with a clear message.
        for i, item in enumerate(rule_like):
            rule = parse_rule(item, where=name, path=f"[{i}]", default="/defaultsecurityrules/" in item["id"].lower())
            assert parse_rule(rule.to_arm(), where=name, default=rule.is_default) == rule
        with pytest.raises(InputError, match="on its own"):
            parse_document(body, where=name)
        return
    inventory = parse_document(body, where=name)
    assert inventory.nsgs or inventory.vnets
    for nsg in inventory.nsgs:
        assert len(nsg.default_rules) == 6
        for rule in nsg.security_rules:
            assert parse_rule(rule.to_arm(), where=name) == rule


def test_rest_default_rule_list_matches_model_defaults() -> None:
    body = dict(REST_BODIES)["DefaultSecurityRuleList.json:200"]
    parsed = {
        (r.name, r.priority, r.direction, r.access, r.sources, r.destinations)
        for r in (parse_rule(item, where="d", default=True) for item in body["value"])
    }
    expected = {(r.name, r.priority, r.direction, r.access, r.sources, r.destinations) for r in DEFAULT_RULES}
    assert parsed == expected


def test_rest_nsg_get_rule1() -> None:
    body = dict(REST_BODIES)["NetworkSecurityGroupGet.json:200"]
    rule = parse_nsg(body, where="g").security_rules[0]
    assert (rule.name, rule.priority, rule.direction, rule.destination_ports) == (
        "rule1",
        130,
        Direction.INBOUND,
        (PortRange(80, 80),),
    )


def test_rest_subnet_service_endpoint() -> None:
    body = dict(REST_BODIES)["SubnetCreateServiceEndpoint.json:200"]
    assert parse_subnet(body, where="s").service_endpoints == ("Microsoft.Storage",)


# --------------------------------------------------------------------------- errors name file and field


def _broken_priority() -> list[Any]:
    doc = load("compliant/arm/nsg-cyclecloud.json")
    doc["properties"]["securityRules"][3]["properties"]["priority"] = "high"
    return [doc]


@pytest.mark.parametrize(
    ("doc", "where"),
    [
        (_broken_priority(), "nsg.json: [0].properties.securityRules[3].properties.priority"),
        ({"value": [{"id": NSG_ID, "properties": {"securityRules": [arm_rule(priority=5000)]}}]},
         "nsg.json: value[0].properties.securityRules[0].properties.priority"),
        ({"id": NSG_ID, "securityRules": [arm_rule(protocol="Tpc")]}, "nsg.json: securityRules[0].properties.protocol"),
        ({"id": NSG_ID, "securityRules": [arm_rule(access="Permit")]}, "nsg.json: securityRules[0].properties.access"),
        ({"id": NSG_ID, "securityRules": [arm_rule(direction="Sideways")]},
         "nsg.json: securityRules[0].properties.direction"),
        ({"id": NSG_ID, "securityRules": [arm_rule(destinationPortRange="99999")]},
         "nsg.json: securityRules[0].properties.destinationPortRange"),
        ({"id": NSG_ID, "securityRules": [arm_rule(destinationPortRange=None, destinationPortRanges=["80", "x"])]},
         "nsg.json: securityRules[0].properties.destinationPortRanges[1]"),
        ({"id": NSG_ID, "securityRules": [arm_rule(sourceAddressPrefixes=["10.0.0.0/8", "10.1.0.0/99"])]},
         "nsg.json: securityRules[0].properties.sourceAddressPrefixes[1]"),
        ({"id": NSG_ID, "securityRules": [arm_rule(destinationAddressPrefix=None)]},
         "nsg.json: securityRules[0].properties.destinationAddressPrefix"),
        ({"id": NSG_ID, "securityRules": [arm_rule(priority=None)]}, "nsg.json: securityRules[0].properties.priority"),
        ({"id": NSG_ID, "securityRules": {"a": 1}}, "nsg.json: securityRules"),
        ({"id": NSG_ID, "securityRules": ["rule"]}, "nsg.json: securityRules[0]"),
        ({"type": "Microsoft.Network/networkSecurityGroups", "name": "x"}, "nsg.json: id"),
        ({"id": NSG_ID, "tags": {"cyclecloud-lockdown": 1}, "securityRules": []}, "nsg.json: tags.cyclecloud-lockdown"),
        ({"id": NSG_ID, "securityRules": [], "subnets": [{"name": "no id"}]}, "nsg.json: subnets[0].id"),
        ({"id": f"{SUB}/virtualNetworks/v", "properties": {"addressSpace": {"addressPrefixes": ["10.0.0.0/x"]}}},
         "nsg.json: properties.addressSpace.addressPrefixes[0]"),
        ([{"hello": "world"}], "nsg.json: [0]: cannot tell"),
        ([1], "nsg.json: [0]"),
        ("text", "nsg.json"),
        ({"id": "/x", "type": "Microsoft.Compute/virtualMachines"}, "nsg.json: holds no NSG"),
    ],
)  # fmt: skip
def test_errors_name_the_file_and_json_path(doc: Any, where: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_document(doc, where="nsg.json")
    assert str(caught.value).startswith(where), str(caught.value)


def test_error_message_says_what_is_wrong() -> None:
    with pytest.raises(InputError) as caught:
        parse_document(_broken_priority(), where="nsg.json")
    assert str(caught.value) == (
        "nsg.json: [0].properties.securityRules[3].properties.priority: priority must be an integer, not string 'high'"
    )
    assert caught.value.where == "nsg.json: [0].properties.securityRules[3].properties.priority"


def test_a_lone_rule_is_refused_with_advice() -> None:
    with pytest.raises(InputError, match="export the whole NSG"):
        parse_document(
            {"id": f"{NSG_ID}/securityRules/x", "type": "Microsoft.Network/networkSecurityGroups/securityRules"},
            where="r.json",
        )


def test_empty_list_is_an_empty_inventory() -> None:
    inventory = parse_document([], where="e.json")
    assert inventory.nsgs == inventory.vnets == inventory.nics == ()


# --------------------------------------------------------------------------- what ARM itself refuses


def _nsg_with(*rules: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/networkSecurityGroups/n",
        "name": "n",
        "properties": {"securityRules": list(rules)},
    }


def test_two_rules_on_one_priority_and_direction_are_refused_naming_both() -> None:
    other = arm_rule(destinationAddressPrefix="AzureMonitor")
    other["name"] = "Second"
    with pytest.raises(InputError) as caught:
        parse_nsg(_nsg_with(arm_rule(), other), where="nsg.json")
    message = str(caught.value)
    assert "nsg.json: properties.securityRules[1]" in message
    assert "'Second' shares priority 100 Outbound with 'AllowAzureStorage'" in message
    assert "SecurityRuleConflict" in message


def test_same_priority_in_the_other_direction_is_fine() -> None:
    inbound = arm_rule(direction="Inbound")
    inbound["name"] = "In100"
    nsg = parse_nsg(_nsg_with(arm_rule(), inbound), where="nsg.json")
    assert [r.name for r in nsg.security_rules] == ["AllowAzureStorage", "In100"]


def test_two_rules_with_one_name_are_refused_whatever_the_case() -> None:
    twin = arm_rule(priority=200)
    twin["name"] = "allowazurestorage"
    with pytest.raises(InputError, match=r"securityRules\[1\]: a second rule named 'allowazurestorage'"):
        parse_nsg(_nsg_with(arm_rule(), twin), where="nsg.json")
    identical = copy.deepcopy(arm_rule())
    with pytest.raises(InputError, match="a second rule named"):
        parse_nsg(_nsg_with(arm_rule(), identical), where="nsg.json")


# --------------------------------------------------------------------------- every form, one rule
#
# ARM REST, az's flattened camelCase and the SDK's snake_case give the same rule
# and the same errors (message and JSON path in that form's spelling).


def to_flat(value: Any) -> Any:
    """The ``az`` shape: camelCase, ``properties`` merged into the object."""
    if isinstance(value, list):
        return [to_flat(v) for v in value]
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for key, item in value.items():
        if key == "properties" and isinstance(item, dict):
            out.update(to_flat(item))
        else:
            out[key] = to_flat(item)
    return out


ASG_ID = f"{SUB}/applicationSecurityGroups/asg-cc"
VARIED_RULES: list[dict[str, Any]] = [
    arm_rule(),
    arm_rule(protocol="*", access="Deny", direction="Inbound", priority=4096, sourcePortRange="1024-65535"),
    arm_rule(
        sourceAddressPrefix=None,
        sourceAddressPrefixes=["10.10.2.0/24", "fd00::/64", "2001:db8::1", "VirtualNetwork"],
        destinationAddressPrefix="",
        destinationApplicationSecurityGroups=[{"id": ASG_ID}],
        destinationPortRange=None,
        destinationPortRanges=["5672", "9443", "8000-8100"],
    ),
    arm_rule(
        sourceAddressPrefix="10.0.0.5/24",
        sourceApplicationSecurityGroups=[{"id": ASG_ID}, {"id": ASG_ID.upper()}],
        destinationAddressPrefix="Storage.WestEurope",
        sourcePortRange="",
        sourcePortRanges=["*"],
    ),
    arm_rule(destinationAddressPrefix="Any", protocol="ICMP", access="allow", direction=" outbound", description="d"),
    arm_rule(destinationAddressPrefix="0.0.0.0/0", sourceAddressPrefix="52.10.20.30", protocol="esp"),
    arm_rule(destinationAddressPrefix="255.255.255.254/31", sourceAddressPrefix="fe80::1%eth0"),
    {**arm_rule(), "id": f"{NSG_ID}/securityRules/AllowAzureStorage", "etag": 'W/"1"', "type": "x"},
]


def _forms(raw: dict[str, Any]) -> list[dict[str, Any]]:
    return [raw, to_flat(raw), to_snake(raw)]


@pytest.mark.parametrize("default", [False, True])
@pytest.mark.parametrize("index", range(len(VARIED_RULES)))
def test_every_form_of_a_rule_is_the_same_rule(index: int, default: bool) -> None:
    expected = parse_rule(VARIED_RULES[index], where="r", default=default)
    for raw in _forms(VARIED_RULES[index]):
        assert parse_rule(raw, where="r", default=default) == expected, raw


def test_varied_rules_keep_every_kind_of_address() -> None:
    rules = [parse_rule(raw, where="r") for raw in VARIED_RULES]
    kinds = {type(a) for rule in rules for a in rule.sources + rule.destinations}
    assert kinds == {AnyAddress, Prefix, ServiceTag, Asg}
    v6 = [a for rule in rules for a in rule.sources if isinstance(a, Prefix) and a.network.version == 6]
    assert [a.text for a in v6] == ["fd00::/64", "2001:db8::1", "fe80::1%eth0"]
    assert rules[3].sources[1:] == (Asg(ASG_ID), Asg(ASG_ID.upper()))


# Bad values in every form: the same error, message and JSON path.
_FORM_ERRORS = [
    ({"priority": 5000}, "priority", "priority must be between 100 and 4096, not 5000"),
    ({"priority": True}, "priority", "priority must be an integer, not boolean true"),
    ({"destinationPortRange": "99999"}, "destinationPortRange", "invalid port range '99999'"),
    ({"destinationPortRange": None, "destinationPortRanges": ["80", "x"]}, "destinationPortRanges[1]",
     "invalid port range 'x'"),
    ({"sourceAddressPrefix": "10.0.0.0/33"}, "sourceAddressPrefix", "'10.0.0.0/33' is not an IP address"),
    ({"sourceAddressPrefix": "010.0.0.0/8"}, "sourceAddressPrefix", "'010.0.0.0/8' is not an IP address"),
    ({"sourceAddressPrefixes": ["10.0.0.0/8", "fd00::/129"]}, "sourceAddressPrefixes[1]", "'fd00::/129' is not"),
    ({"destinationAddressPrefix": None}, "destinationAddressPrefix", "no destination address"),
    ({"destinationApplicationSecurityGroups": [{"id": ""}]}, "destinationApplicationSecurityGroups[0].id",
     "a reference needs a non-empty string 'id'"),
    ({"protocol": "Tpc"}, "protocol", "unknown protocol 'Tpc'"),
    ({"direction": "Sideways"}, "direction", "invalid direction 'Sideways' (valid: Inbound, Outbound)"),
    ({"access": None}, "access", "missing field 'access'"),
]  # fmt: skip


def _snake_name(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in name)


@pytest.mark.parametrize(("change", "field", "message"), _FORM_ERRORS)
def test_errors_are_the_same_in_every_form(change: dict[str, Any], field: str, message: str) -> None:
    second = arm_rule(**({"priority": 200} | change))
    second["name"] = "Second"
    rest = {"id": NSG_ID, "properties": {"securityRules": [arm_rule(), second]}}
    expected = {
        "rest": f"nsg.json: properties.securityRules[1].properties.{field}: {message}",
        "az": f"nsg.json: securityRules[1].{field}: {message}",
        # A missing field is named as ARM spells it, whatever the form.
        "sdk": f"nsg.json: security_rules[1].{field if change.get(field, 0) is None else _snake_name(field)}: {message}",
    }
    docs = {"rest": rest, "az": to_flat(rest), "sdk": to_snake(rest)}
    for form, doc in docs.items():
        with pytest.raises(InputError) as caught:
            parse_document(doc, where="nsg.json")
        assert str(caught.value).startswith(expected[form]), (form, str(caught.value))


@given(st.ip_addresses(v=4), st.one_of(st.none(), st.integers(0, 32)))
def test_ipv4_shortcut_builds_ipaddress_own_network(address: ipaddress.IPv4Address, length: int | None) -> None:
    from remediation.parse import _network

    text = str(address) if length is None else f"{address}/{length}"
    network = _network(text)
    expected = ipaddress.ip_network(text, strict=False)
    assert network == expected
    assert isinstance(network, ipaddress.IPv4Network)
    assert (network.prefixlen, str(network), list(islice(network.hosts(), 2))) == (
        expected.prefixlen,
        str(expected),
        list(islice(expected.hosts(), 2)),
    )


@pytest.mark.parametrize(
    "text", ["1.2.3.04", "1.2.3.4/033", "1.2.3.4/33", "256.1.1.1", "1.2.3", "1.2.3.4/255.255.0.0", "1.2.3.4/0.0.255.255",
             "١.2.3.4", "1.2.3.4 ", "1.2.3.4/-1", "::ffff:1.2.3.4", "1.2.3.4/٢٤"]
)  # fmt: skip
def test_ipv4_shortcut_leaves_every_other_spelling_to_ipaddress(text: str) -> None:
    from remediation.parse import _network

    try:
        expected: object = ipaddress.ip_network(text, strict=False)
    except ValueError:
        expected = None
    assert _network(text) == expected


def test_build_rule_is_security_rule_with_every_field_given() -> None:
    # build_rule writes the slots directly, skipping SecurityRule's generated __init__:
    # that is only the same rule while the fields match and there is no __post_init__.
    import dataclasses
    import inspect

    from remediation.model import build_rule

    assert [f.name for f in dataclasses.fields(SecurityRule)] == list(inspect.signature(build_rule).parameters)
    assert not hasattr(SecurityRule, "__post_init__")
    values: dict[str, Any] = {
        "name": "n",
        "priority": 200,
        "direction": Direction.INBOUND,
        "access": Access.DENY,
        "protocol": Protocol.UDP,
        "sources": (ServiceTag("Internet"),),
        "destinations": (Asg(ASG_ID), AnyAddress()),
        "source_ports": (PortRange(1, 2),),
        "destination_ports": (ANY_PORT, PortRange(53, 53)),
        "description": "d",
        "id": "/x",
        "is_default": True,
    }
    built = build_rule(**values)
    assert built == SecurityRule(**values)
    assert hash(built) == hash(SecurityRule(**values))
    assert type(built) is SecurityRule
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.name = "m"  # type: ignore[misc]


# --------------------------------------------------------------------------- what ARM accepts, what it refuses


def test_the_recorded_list_with_bare_number_prefixes_is_read_and_that_rule_kept_unreadable() -> None:
    # ARM took and returned sourceAddressPrefix "789" and destinationAddressPrefix "1234" (Azure CLI's
    # recording); the parser refused the whole document, so check exited 2 and inventory() raised.
    from tests.support.recordings import recorded_nsg_list_with_bare_number

    inventory = parse_document(recorded_nsg_list_with_bare_number(), where="list.json")
    [nsg] = [n for n in inventory.nsgs if n.unreadable_rules]
    [web] = nsg.unreadable_rules
    assert web.name == "web"
    assert "'789'" in web.reason
    assert "'1234'" in web.reason
    # The widest reading: each unreadable address taken as '*', the rest as read.
    assert (web.widest.sources, web.widest.destinations) == ((AnyAddress(),), (AnyAddress(),))
    assert web.widest.destination_ports == (PortRange(4444, 4444),)
    assert "web" not in {r.name for r in nsg.security_rules}
    assert not nsg.judgeable
    assert all(n.judgeable for n in inventory.nsgs if n is not nsg)


def test_a_rule_with_a_bare_number_prefix_on_its_own_is_an_error_naming_the_field() -> None:
    with pytest.raises(InputError, match=r"r: properties\.sourceAddressPrefix: address prefix '789' is a bare number"):
        parse_rule(arm_rule(sourceAddressPrefix="789"), where="r")


def test_two_rules_on_one_priority_are_refused_even_when_one_is_unreadable() -> None:
    second = arm_rule(sourceAddressPrefix="789")
    second["name"] = "Other"
    with pytest.raises(InputError, match=r"securityRules\[1\]: rule 'Other' shares priority 100"):
        parse_nsg(_nsg_with(arm_rule(), second), where="nsg.json")


REFUSED = "nsg.json: properties.securityRules[0]"


@pytest.mark.parametrize(
    ("change", "where", "message"),
    [
        # Ports: ASCII digits only, nothing around them (issue 11 item 7).
        ({"destinationPortRange": "\u0665\u0666\u0667\u0662"}, ".properties.destinationPortRange", "invalid port range"),
        ({"destinationPortRange": "\uff15\uff16\uff17\uff12"}, ".properties.destinationPortRange", "invalid port range"),
        ({"destinationPortRange": " 5672 "}, ".properties.destinationPortRange", "invalid port range ' 5672 '"),
        ({"destinationPortRange": "5672\n"}, ".properties.destinationPortRange", "invalid port range"),
        ({"destinationPortRange": "8000 - 8100"}, ".properties.destinationPortRange", "invalid port range"),
        ({"destinationPortRange": None, "destinationPortRanges": ["5672", "\u0669\u0664\u0664\u0663"]},
         ".properties.destinationPortRanges[1]", "invalid port range"),
        # Priority: a JSON number, as ARM's schema has it.
        ({"priority": "150"}, ".properties.priority", "priority must be an integer, not string '150'"),
        ({"priority": " 150 "}, ".properties.priority", "priority must be an integer"),
    ],
)  # fmt: skip
def test_what_arm_refuses_in_a_rule_is_refused_with_its_path(change: dict[str, Any], where: str, message: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_nsg(_nsg_with(arm_rule(**change)), where="nsg.json")
    assert str(caught.value).startswith(f"{REFUSED}{where}: {message}"), str(caught.value)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "a rule name cannot be empty"),
        ("x" * 100_000, "a rule name of 100000 characters (ARM allows at most 80)"),
        ("x" * 81, "a rule name of 81 characters"),
        ("Allow\x1b]0;pwned\x07", "invalid rule name 'Allow\\x1b]0;pwned\\x07'"),
        ("Allow\u202eevil", "invalid rule name 'Allow\\u202eevil'"),
        ("Allow\x00", "invalid rule name"),
        ("Allow Storage", "invalid rule name 'Allow Storage'"),
        ("-Allow", "invalid rule name"),
        ("Allow.", "invalid rule name"),
    ],
)
def test_rule_names_arm_refuses_are_refused_escaped_and_bounded(name: str, message: str) -> None:
    rule = arm_rule()
    rule["name"] = name
    with pytest.raises(InputError) as caught:
        parse_nsg(_nsg_with(rule), where="nsg.json")
    text = str(caught.value)
    assert text.startswith(f"{REFUSED}.name: {message}"), text
    assert text.isprintable()
    assert len(text) < 400


@pytest.mark.parametrize("name", ["A", "x" * 80, "Allow_Storage-1.2_", "AllowÜbung", "9lives"])
def test_rule_names_arm_takes_are_taken(name: str) -> None:
    rule = arm_rule()
    rule["name"] = name
    assert parse_nsg(_nsg_with(rule), where="nsg.json").security_rules[0].name == name
