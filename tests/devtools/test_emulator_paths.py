"""The emulator serves what lies on the path beyond the NSGs: route tables, firewalls, policies, groups."""

from __future__ import annotations

from devtools.emulator import Emulator
from tests.devtools.rest import NET, Rest

TABLE = f"{NET}/routeTables/rt-spoke"
POLICY = f"{NET}/firewallPolicies/fwp"
VNET = f"{NET}/virtualNetworks/vnet1"


def route(prefix: str, hop: str, ip: str | None = None) -> dict[str, object]:
    props: dict[str, object] = {"addressPrefix": prefix, "nextHopType": hop}
    if ip:
        props["nextHopIpAddress"] = ip
    return {"properties": props}


def test_a_route_table_shows_its_routes_and_the_subnets_that_use_it(arm_emulator: Emulator, rest: Rest) -> None:
    arm_emulator.config.lro_polls = 0
    put = rest.put(
        TABLE,
        {
            "location": "westeurope",
            "properties": {"routes": [{"name": "all", **route("0.0.0.0/0", "virtualappliance", "10.0.1.4")}]},
        },
    )
    assert put.status_code == 201, put.text
    subnet = {"name": "cc", "properties": {"addressPrefix": "10.10.1.0/24", "routeTable": {"id": TABLE}}}
    vnet = {
        "location": "westeurope",
        "properties": {"addressSpace": {"addressPrefixes": ["10.10.0.0/16"]}, "subnets": [subnet]},
    }
    assert rest.put(VNET, vnet).status_code == 201
    body = rest.get(TABLE).json()
    assert body["type"] == "Microsoft.Network/routeTables"
    (shown,) = body["properties"]["routes"]
    assert shown["id"] == f"{TABLE}/routes/all"
    assert shown["properties"]["nextHopType"] == "VirtualAppliance"  # answered in canonical case
    assert body["properties"]["subnets"] == [{"id": f"{VNET}/subnets/cc"}]  # read-only back-reference
    listed = rest.get(f"/subscriptions/{TABLE.split('/')[2]}/providers/Microsoft.Network/routeTables").json()
    assert [t["id"] for t in listed["value"]] == [TABLE]


def test_a_bad_route_is_refused_and_changes_nothing(arm_emulator: Emulator, rest: Rest) -> None:
    arm_emulator.config.lro_polls = 0
    no_ip = rest.put(
        TABLE,
        {"location": "westeurope", "properties": {"routes": [{"name": "r", **route("0.0.0.0/0", "VirtualAppliance")}]}},
    )
    assert no_ip.status_code == 400
    assert no_ip.json()["error"]["code"] == "InvalidNextHopIpAddress"
    bad_hop = rest.put(f"{TABLE}/routes/r", route("0.0.0.0/0", "Firewall"))
    assert bad_hop.status_code == 404  # the table was never created
    assert rest.get(TABLE).status_code == 404


def test_rule_collection_groups_are_children_of_the_policy(arm_emulator: Emulator, rest: Rest) -> None:
    arm_emulator.config.lro_polls = 0
    assert rest.put(POLICY, {"location": "westeurope", "properties": {}}).status_code == 201
    group = {"properties": {"priority": 300, "ruleCollections": []}}
    response = rest.put(f"{POLICY}/ruleCollectionGroups/apps", group)
    assert response.status_code == 201, response.text
    assert rest.put(f"{POLICY}/ruleCollectionGroups/bad", {"properties": {"priority": 50}}).status_code == 400
    # A PUT of the policy itself keeps its groups: they are separate resources.
    assert rest.put(POLICY, {"location": "westeurope", "properties": {"threatIntelMode": "Alert"}}).status_code == 200
    policy = rest.get(POLICY).json()
    assert policy["properties"]["ruleCollectionGroups"] == [{"id": f"{POLICY}/ruleCollectionGroups/apps"}]
    listed = rest.get(f"{POLICY}/ruleCollectionGroups").json()["value"]
    assert [(g["name"], g["properties"]["priority"]) for g in listed] == [("apps", 300)]


def test_writes_raise_events_with_the_path_operation(arm_emulator: Emulator, rest: Rest) -> None:
    arm_emulator.config.lro_polls = 0
    seen: list[dict[str, object]] = []
    arm_emulator.set_event_subscriber(seen.extend)
    rest.put(POLICY, {"location": "westeurope", "properties": {}})
    rest.put(f"{POLICY}/ruleCollectionGroups/apps", {"properties": {"priority": 300, "ruleCollections": []}})
    arm_emulator.events.wait_idle()
    operations = [e["data"]["operationName"] for e in seen]  # type: ignore[index]
    assert operations == [
        "Microsoft.Network/firewallPolicies/write",
        "Microsoft.Network/firewallPolicies/ruleCollectionGroups/write",
    ]
