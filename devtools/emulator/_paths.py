"""The resources on the path beyond the NSGs: route tables (with routes), Azure Firewalls,
firewall policies (with rule collection groups) and IP groups.

Shapes follow reference/arm-rest-spec (RouteTableGet, AzureFirewallGet,
FirewallPolicyRuleCollectionGroupGet). The emulator stores what a PUT gives, checks what
the guard relies on (a route's addressPrefix and nextHopType, a VirtualAppliance route's
nextHopIpAddress, a rule collection group's priority 100-65000) and computes the read-only
back-references ARM shows: a route table's ``subnets``, a policy's ``ruleCollectionGroups``
and ``firewalls``.
"""

from __future__ import annotations

import copy
import ipaddress
from typing import TYPE_CHECKING, Any

from devtools.emulator import _validate as v
from devtools.emulator._errors import bad_request

if TYPE_CHECKING:
    from devtools.emulator._network import Network, Record

ROUTE_TABLES, FIREWALLS, POLICIES, IP_GROUPS = "routeTables", "azureFirewalls", "firewallPolicies", "ipGroups"
ROUTES, GROUPS = "routes", "ruleCollectionGroups"
PATH_TYPES = (ROUTE_TABLES, FIREWALLS, POLICIES, IP_GROUPS)
#: Children kept inside their parent record, as subnets are in a VNet.
PATH_CHILDREN = {ROUTE_TABLES: ROUTES, POLICIES: GROUPS}
_NEXT_HOPS = ("VirtualNetworkGateway", "VnetLocal", "Internet", "VirtualAppliance", "None")
# Read-only properties ARM computes; dropped from PUT bodies.
_READ_ONLY = {"provisioningState", "resourceGuid", "etag", "subnets", "firewalls", "childPolicies", "size"}


def top_props(rtype: str, raw: dict[str, Any], resource_id: str) -> dict[str, Any]:
    """The writable properties of a PUT body, checked."""
    props = {k: copy.deepcopy(val) for k, val in raw.items() if k not in _READ_ONLY}
    child = PATH_CHILDREN.get(rtype)
    if child is not None:
        items = props.get(child) or []
        if rtype == POLICIES:
            items = []  # groups are separate PUTs; the policy lists them read-only
        if not isinstance(items, list):
            raise v.invalid_json(f"properties.{child}", "Expected an array.")
        props[child] = [
            _named_child(rtype, item, f"{resource_id}/{child}", f"properties.{child}[{i}]")
            for i, item in enumerate(items)
        ]
    return props


def child_props(rtype: str, raw: dict[str, Any], child_id: str, path: str) -> dict[str, Any]:
    props = {k: copy.deepcopy(val) for k, val in raw.items() if k not in _READ_ONLY}
    if rtype == ROUTE_TABLES:
        _check_route(props, child_id, path)
    else:
        _check_group(props, path)
    return props


def _named_child(rtype: str, item: Any, parent: str, path: str) -> dict[str, Any]:
    obj = v.require_object(item, path)
    name = obj.get("name")
    if not isinstance(name, str) or not name:
        raise v.invalid_json(f"{path}.name", "A child resource needs a name.")
    raw = v.require_object(obj.get("properties") or {}, f"{path}.properties")
    return {"name": name, "properties": child_props(rtype, raw, f"{parent}/{name}", f"{path}.properties")}


def _check_route(props: dict[str, Any], route_id: str, path: str) -> None:
    prefix = props.get("addressPrefix")
    if not isinstance(prefix, str) or not prefix.strip():
        raise bad_request("InvalidRequestFormat", f"Route {route_id} must specify addressPrefix. Path {path}.")
    hop = props.get("nextHopType")
    canonical = {h.lower(): h for h in _NEXT_HOPS}.get(str(hop).lower()) if isinstance(hop, str) else None
    if canonical is None:
        raise v.invalid_json(f"{path}.nextHopType", f"Value '{hop}' is not one of {', '.join(_NEXT_HOPS)}.")
    props["nextHopType"] = canonical
    if canonical == "VirtualAppliance":
        try:
            ipaddress.ip_address(str(props.get("nextHopIpAddress")))
        except ValueError:
            raise bad_request(
                "InvalidNextHopIpAddress",
                f"Route {route_id} has next hop type VirtualAppliance and needs a valid nextHopIpAddress.",
            ) from None


def _check_group(props: dict[str, Any], path: str) -> None:
    priority = props.get("priority")
    if isinstance(priority, bool) or not isinstance(priority, int) or not 100 <= priority <= 65000:
        raise bad_request(
            "FirewallPolicyRuleCollectionGroupInvalidPriority",
            f"The rule collection group priority must be between 100 and 65000. Path {path}.priority.",
        )
    collections = props.get("ruleCollections") or []
    if not isinstance(collections, list):
        raise v.invalid_json(f"{path}.ruleCollections", "Expected an array.")


def render_props(network: Network, rec: Record) -> dict[str, Any]:
    """The properties a GET shows, with the back-references ARM computes."""
    child = PATH_CHILDREN.get(rec.type)
    props: dict[str, Any] = {k: copy.deepcopy(val) for k, val in rec.props.items() if k != child}
    if rec.type == ROUTE_TABLES:
        props[ROUTES] = [network.render_child(rec, ROUTES, r) for r in rec.props[ROUTES]]
        key = rec.id.lower()
        subnets = [
            f"{vnet.id}/subnets/{s['name']}"
            for vnet in network.records["virtualNetworks"].values()
            for s in vnet.props.get("subnets", [])
            if str((s["properties"].get("routeTable") or {}).get("id", "")).lower() == key
        ]
        if subnets:
            props["subnets"] = [{"id": s} for s in subnets]
    elif rec.type == POLICIES:
        props[GROUPS] = [{"id": f"{rec.id}/{GROUPS}/{g['name']}"} for g in rec.props[GROUPS]]
        key = rec.id.lower()
        firewalls = [
            fw.id
            for fw in network.records[FIREWALLS].values()
            if str((fw.props.get("firewallPolicy") or {}).get("id", "")).lower() == key
        ]
        if firewalls:
            props["firewalls"] = [{"id": f} for f in firewalls]
    return props
