"""parse_paths: the REST spec's own examples, the az/SDK spellings, and bad input named by file and JSON path."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Any

import pytest

from remediation.errors import InputError
from remediation.firewall import CollectionAction, RuleKind
from remediation.parse_paths import only_path_resources, parse_path_document
from remediation.routes import NextHopType

SPEC = Path(__file__).resolve().parents[1] / "reference" / "arm-rest-spec"


def example(name: str) -> Any:
    return json.loads((SPEC / name).read_text())["responses"]["200"]["body"]


def test_the_spec_route_table() -> None:
    (table,) = parse_path_document(example("RouteTableGet.json"), where="RouteTableGet.json").route_tables
    (route,) = table.routes
    assert (route.name, str(route.prefix), route.next_hop) == ("route1", "10.0.3.0/24", NextHopType.GATEWAY)


def test_the_spec_firewall_with_classic_rules() -> None:
    (firewall,) = parse_path_document(example("AzureFirewallGet.json"), where="f").firewalls
    assert firewall.private_ips == (ipaddress.ip_address("10.0.0.0"),)
    assert firewall.policy_id is None
    kinds = [(kind, c.name, c.priority, c.action) for kind, c in firewall.classic]
    assert kinds == [
        (RuleKind.DNAT, "natrulecoll", 112, CollectionAction.DNAT),
        (RuleKind.NETWORK, "netrulecoll", 112, CollectionAction.DENY),
        (RuleKind.APPLICATION, "apprulecoll", 110, CollectionAction.DENY),
    ]
    l4 = firewall.classic[1][1].rules[0]
    # "192.168.1.1-192.168.1.12" is a range: covered exactly by the networks it summarises to.
    assert sum(n.num_addresses for n in l4.sources.networks) == 12 + 244
    assert l4.destinations.any
    assert [p.to_arm() for p in l4.ports] == ["443-444", "8443"]
    assert firewall.classic[1][1].rules[1].destination_fqdns == ("www.amazon.com",)


def test_the_spec_rule_collection_group_has_no_type() -> None:
    (group,) = parse_path_document(example("FirewallPolicyRuleCollectionGroupGet.json"), where="g").groups
    assert (group.name, group.priority, group.policy_id.rsplit("/", 1)[-1]) == (
        "ruleCollectionGroup1",
        110,
        "firewallPolicy",
    )
    (collection,) = group.collections
    assert collection.action is CollectionAction.DENY
    assert collection.rules[0].kind is RuleKind.NETWORK


def test_sdk_snake_case() -> None:
    group = {
        "id": "/subscriptions/s/resourceGroups/r/providers/Microsoft.Network/firewallPolicies/p/ruleCollectionGroups/g",
        "name": "g",
        "priority": 300,
        "rule_collections": [
            {
                "rule_collection_type": "FirewallPolicyFilterRuleCollection",
                "name": "c",
                "priority": 100,
                "action": {"type": "Allow"},
                "rules": [
                    {
                        "rule_type": "ApplicationRule",
                        "name": "r",
                        "protocols": [{"protocol_type": "Https", "port": 443}],
                        "target_fqdns": ["management.azure.com"],
                        "source_addresses": ["10.10.1.0/24"],
                    }
                ],
            }
        ],
    }
    rule = parse_path_document(group, where="g").groups[0].collections[0].rules[0]
    assert rule.app_protocols == (("Https", 443),)
    assert rule.target_fqdns == ("management.azure.com",)


def test_subnets_name_their_route_table_and_peerings_are_read() -> None:
    spoke = json.loads((Path(__file__).parent / "fixtures" / "hub-spoke" / "spoke-vnet.json").read_text())
    paths = parse_path_document(spoke, where="spoke-vnet.json")
    assert len(paths.route_table_of) == 3
    assert all(v.endswith("/rt-cyclecloud-spoke") for v in paths.route_table_of.values())
    assert [str(p) for p in paths.peered_prefixes[spoke["id"].lower()]] == ["10.0.0.0/16"]
    assert not only_path_resources(spoke)  # the VNet is also the NSG reader's


@pytest.mark.parametrize(
    ("route", "where", "message"),
    [
        (
            {"name": "r", "properties": {"nextHopType": "Internet"}},
            "routes[0].properties.addressPrefix",
            "needs an addressPrefix",
        ),
        (
            {"name": "r", "properties": {"addressPrefix": "0.0.0.0/0", "nextHopType": "Firewall"}},
            "routes[0].properties.nextHopType",
            "invalid nextHopType",
        ),
        (
            {"name": "r", "properties": {"addressPrefix": "0.0.0.0/0", "nextHopType": "VirtualAppliance"}},
            "routes[0].properties.nextHopIpAddress",
            "needs a nextHopIpAddress",
        ),
    ],
)
def test_a_bad_route_is_named_by_file_and_path(route: dict[str, Any], where: str, message: str) -> None:
    table = {
        "id": "/subscriptions/s/resourceGroups/r/providers/Microsoft.Network/routeTables/rt",
        "type": "Microsoft.Network/routeTables",
        "properties": {"routes": [route]},
    }
    with pytest.raises(InputError) as caught:
        parse_path_document(table, where="rt.json")
    assert f"rt.json: properties.{where}" in str(caught.value)
    assert message in str(caught.value)


def test_a_bad_collection_action_is_named() -> None:
    group = {
        "id": "/subscriptions/s/resourceGroups/r/providers/Microsoft.Network/firewallPolicies/p/ruleCollectionGroups/g",
        "properties": {
            "priority": 200,
            "ruleCollections": [{"name": "c", "priority": 100, "action": {"type": "Permit"}, "rules": []}],
        },
    }
    with pytest.raises(InputError, match=r"g\.json: properties\.ruleCollections\[0\]\.action: invalid action 'Permit'"):
        parse_path_document(group, where="g.json")
