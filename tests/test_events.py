"""Event Grid parsing: the published samples and the variants real senders produce."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from remediation.errors import InputError, ScopeError
from remediation.events import (
    OwnIdentity,
    ResourceKind,
    affected_ids,
    caller,
    is_own_write,
    is_relevant,
    parse_event,
    resource_kind,
)

SAMPLES = Path(__file__).resolve().parents[1] / "reference" / "eventgrid"
SUB = "00000000-0000-0000-0000-000000000001"
OTHER_SUB = "00000000-0000-0000-0000-000000000002"
NSG_ID = f"/subscriptions/{SUB}/resourceGroups/rg-cc/providers/Microsoft.Network/networkSecurityGroups/nsg-cc"
MI_OID = "11111111-2222-3333-4444-555555555555"
MI_CLIENT = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"


def sample(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((SAMPLES / name).read_text())
    return data


def nsg_event(
    *,
    resource: str = NSG_ID,
    operation: str = "Microsoft.Network/networkSecurityGroups/write",
    event_type: str = "Microsoft.Resources.ResourceWriteSuccess",
    claims: Any = None,
    event_id: str = "ev-1",
) -> dict[str, Any]:
    """A write event shaped like the published sample, for a network resource."""
    event = sample("resource_write_success.json")
    event["id"] = event_id
    event["eventType"] = event_type
    event["subject"] = resource
    event["data"]["resourceUri"] = resource
    event["data"]["operationName"] = operation
    event["data"]["authorization"]["action"] = operation
    event["data"]["authorization"]["scope"] = resource
    event["data"]["subscriptionId"] = SUB
    event["data"]["resourceProvider"] = "Microsoft.Network"
    if claims is not None:
        event["data"]["claims"] = claims
    return event


def test_published_write_sample_parses() -> None:
    event = parse_event(sample("resource_write_success.json"))
    assert event.id == "4db48cba-50a2-455a-93b4-de41a3b5b7f6"
    assert event.event_type == "Microsoft.Resources.ResourceWriteSuccess"
    assert event.operation_name == "Microsoft.Storage/storageAccounts/write"
    assert event.event_time is not None
    assert event.event_time.year == 2018
    # A storage account is not ours to watch.
    assert not is_relevant(event)
    assert affected_ids(event) == ()
    who = caller(event)
    assert who.upn == "{user-name}"
    assert who.object_id == "{ID}"
    assert who.app_id == "{ID}"


def test_published_delete_sample_parses() -> None:
    event = parse_event(sample("resource_delete_success.json"))
    assert event.event_type == "Microsoft.Resources.ResourceDeleteSuccess"
    assert event.id == "19a69642-1aad-4a96-a5ab-8d05494513ce"
    assert not is_relevant(event)


@pytest.mark.parametrize(
    ("operation", "resource", "kind", "expected"),
    [
        ("Microsoft.Network/networkSecurityGroups/write", NSG_ID, ResourceKind.NSG, NSG_ID),
        ("Microsoft.Network/networkSecurityGroups/delete", NSG_ID, ResourceKind.NSG, NSG_ID),
        (
            "Microsoft.Network/networkSecurityGroups/securityRules/write",
            NSG_ID + "/securityRules/AllowAzureStorage",
            ResourceKind.SECURITY_RULE,
            NSG_ID,
        ),
        (
            "MICROSOFT.NETWORK/NETWORKSECURITYGROUPS/SECURITYRULES/DELETE",
            NSG_ID + "/SecurityRules/AllowAzureStorage",
            ResourceKind.SECURITY_RULE,
            NSG_ID,
        ),
        (
            "Microsoft.Network/virtualNetworks/subnets/write",
            f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/vnet/subnets/cluster",
            ResourceKind.SUBNET,
            f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/vnet/subnets/cluster",
        ),
        (
            "Microsoft.Network/virtualNetworks/write",
            f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/vnet",
            ResourceKind.VNET,
            f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/vnet",
        ),
        (
            "Microsoft.Network/networkInterfaces/write",
            f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Network/networkInterfaces/cc-nic",
            ResourceKind.NIC,
            f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Network/networkInterfaces/cc-nic",
        ),
        # The path beyond the NSGs: the resource itself is named; the service judges the subscription.
        (
            "Microsoft.Network/routeTables/routes/delete",
            f"/subscriptions/{SUB}/resourceGroups/hub/providers/Microsoft.Network/routeTables/rt/routes/all",
            ResourceKind.ROUTE_TABLE,
            f"/subscriptions/{SUB}/resourceGroups/hub/providers/Microsoft.Network/routeTables/rt/routes/all",
        ),
        (
            "Microsoft.Network/firewallPolicies/ruleCollectionGroups/write",
            f"/subscriptions/{SUB}/resourceGroups/hub/providers/Microsoft.Network/firewallPolicies/p/ruleCollectionGroups/g",
            ResourceKind.FIREWALL_POLICY,
            f"/subscriptions/{SUB}/resourceGroups/hub/providers/Microsoft.Network/firewallPolicies/p/ruleCollectionGroups/g",
        ),
        (
            "Microsoft.Network/azureFirewalls/write",
            f"/subscriptions/{SUB}/resourceGroups/hub/providers/Microsoft.Network/azureFirewalls/fw",
            ResourceKind.FIREWALL,
            f"/subscriptions/{SUB}/resourceGroups/hub/providers/Microsoft.Network/azureFirewalls/fw",
        ),
    ],
)
def test_network_events_are_relevant_with_their_affected_id(
    operation: str, resource: str, kind: ResourceKind, expected: str
) -> None:
    event = parse_event(nsg_event(resource=resource, operation=operation), subscription_id=SUB)
    assert resource_kind(event) is kind
    assert is_relevant(event)
    assert affected_ids(event) == (expected,)


@pytest.mark.parametrize(
    "operation",
    [
        "Microsoft.Network/networkSecurityGroups/join/action",
        "Microsoft.Network/virtualNetworks/subnets/join/action",
        "Microsoft.Network/publicIPAddresses/write",
        "Microsoft.Network/networkWatchers/ipFlowVerify/action",
        "Microsoft.Compute/virtualMachines/write",
        "",
    ],
)
def test_other_operations_are_not_relevant(operation: str) -> None:
    event = parse_event(nsg_event(operation=operation))
    assert not is_relevant(event)
    assert affected_ids(event) == ()


def test_other_event_types_are_not_relevant_even_for_nsgs() -> None:
    for event_type in ("Microsoft.Resources.ResourceWriteFailure", "Microsoft.Resources.ResourceActionSuccess"):
        assert not is_relevant(parse_event(nsg_event(event_type=event_type)))


def test_claims_and_authorization_as_json_strings() -> None:
    raw = nsg_event()
    raw["data"]["claims"] = json.dumps({"OID": MI_OID, "appid": MI_CLIENT})
    raw["data"]["authorization"] = json.dumps(raw["data"]["authorization"])
    raw["data"].pop("operationName")  # fall back to authorization.action
    event = parse_event(raw)
    assert event.operation_name == "Microsoft.Network/networkSecurityGroups/write"
    assert caller(event).object_id == MI_OID
    assert is_relevant(event)


def test_missing_optional_fields_are_tolerated() -> None:
    raw = {
        "id": "e-min",
        "eventType": "Microsoft.Resources.ResourceDeleteSuccess",
        "subject": NSG_ID + "/securityRules/x",
        "data": {"operationName": "Microsoft.Network/networkSecurityGroups/securityRules/delete"},
    }
    event = parse_event(raw, subscription_id=SUB.upper())
    assert event.event_time is None
    assert event.subscription_id == SUB
    assert caller(event).describe() == "unknown caller"
    assert affected_ids(event) == (NSG_ID,)


def test_case_variants_of_field_names() -> None:
    raw = nsg_event()
    data = raw.pop("data")
    raw["Data"] = {k[0].upper() + k[1:]: v for k, v in data.items()}
    raw["EventType"] = raw.pop("eventType")
    event = parse_event(raw)
    assert is_relevant(event)
    assert event.resource_uri == NSG_ID


def test_a_cloudevents_event_is_refused_naming_the_schema_the_subscription_uses() -> None:
    raw = {
        "specversion": "1.0",
        "type": "Microsoft.Resources.ResourceWriteSuccess",
        "source": f"/subscriptions/{SUB}/resourceGroups/rg-cc",
        "subject": NSG_ID,
        "id": "ce-1",
        "time": "2026-11-26T07:00:00.1234567Z",
        "data": nsg_event()["data"],
    }
    # infra/app/eventgrid-subscription.bicep asks for EventGridSchema; a second schema would be dead code.
    bicep = (Path(__file__).resolve().parents[1] / "infra" / "app" / "eventgrid-subscription.bicep").read_text()
    assert "eventDeliverySchema: 'EventGridSchema'" in bicep
    with pytest.raises(InputError, match=r"event ce-1: a CloudEvents 1\.0 event; .*EventGridSchema"):
        parse_event(raw, subscription_id=SUB)


def test_event_for_another_subscription_is_rejected() -> None:
    raw = nsg_event(resource=NSG_ID.replace(SUB, OTHER_SUB))
    raw["data"]["subscriptionId"] = OTHER_SUB
    with pytest.raises(ScopeError, match=OTHER_SUB):
        parse_event(raw, subscription_id=SUB)


def test_subscription_disagreement_inside_the_event_is_malformed() -> None:
    raw = nsg_event()
    raw["data"]["subscriptionId"] = OTHER_SUB
    with pytest.raises(InputError, match="ev-1"):
        parse_event(raw)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"eventType": "x", "subject": NSG_ID}, "no id"),
        ({"id": "e9", "subject": NSG_ID, "data": {}}, "e9.*eventType"),
        ({"id": "e9", "eventType": "x", "data": {}}, "e9.*names no resource"),
        ({"id": "e9", "eventType": "x", "subject": NSG_ID, "data": {"claims": "{not json"}}, "e9.*claims"),
        ({"id": "e9", "eventType": "x", "subject": NSG_ID, "data": ["a"]}, "e9.*data must be an object"),
        (["not", "an", "object"], "must be a JSON object"),
        ("{broken", "not JSON"),
    ],
)
def test_malformed_events_name_the_event(raw: Any, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_event(raw)


def test_json_text_is_accepted() -> None:
    assert parse_event(json.dumps(nsg_event())).id == "ev-1"


def test_own_write_by_object_id_or_client_id() -> None:
    own = OwnIdentity(principal_id=MI_OID, client_id=MI_CLIENT)
    by_oid = parse_event(nsg_event(claims={"http://schemas.microsoft.com/identity/claims/objectidentifier": MI_OID}))
    by_short_oid = parse_event(nsg_event(claims={"oid": MI_OID.upper()}))
    by_appid = parse_event(nsg_event(claims={"appid": MI_CLIENT}))
    human = parse_event(nsg_event(claims={"oid": "99999999-0000-0000-0000-000000000000", "upn": "ann@contoso.com"}))
    assert is_own_write(by_oid, own)
    assert is_own_write(by_short_oid, own)
    assert is_own_write(by_appid, own)
    assert not is_own_write(human, own)
    assert caller(human).describe() == "ann@contoso.com"


def test_own_write_needs_a_configured_identity() -> None:
    event = parse_event(nsg_event(claims={"oid": "", "appid": ""}))
    assert not is_own_write(event, OwnIdentity())


def test_parse_does_not_mutate_input() -> None:
    raw = nsg_event(claims=json.dumps({"oid": MI_OID}))
    before = copy.deepcopy(raw)
    parse_event(raw)
    assert raw == before


def test_an_event_id_that_is_not_valid_unicode_is_malformed_and_named_escaped() -> None:
    # Issue 11 item 6: "bad\ud800id" went on to the state store, which raised UnicodeEncodeError out
    # of the handler (so Event Grid retried it for a day). Event Grid's own ids are GUIDs: drop it here.
    with pytest.raises(InputError, match=r"event 'bad\\ud800id': event id is not valid Unicode") as caught:
        parse_event(nsg_event(event_id="bad\ud800id"), subscription_id=SUB)
    str(caught.value).encode("utf-8")  # the message itself can be logged anywhere
    assert parse_event(nsg_event(event_id="ev-\u00e9\u4e2d"), subscription_id=SUB).id == "ev-\u00e9\u4e2d"
