"""Raw JSON -> the path model: route tables, Azure Firewalls, firewall policies, their groups, IP groups.

The companion of :mod:`remediation.parse` for what lies on CycleCloud's path
beyond the NSGs. It reads the same forms (ARM REST, ``az``, the SDK's
``as_dict()``; one object, a list or ``{"value": [...]}``) with parse.py's
forgiving field lookup, and its errors name the file and JSON path the same
way. From virtual networks and subnets it takes only what routing needs:
which route table a subnet uses, and the prefixes of connected peerings.
Resources of other types are skipped: ``parse_document`` reads the NSGs.

Pure: callers read the files and pass the decoded JSON in.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

from remediation.errors import InputError
from remediation.firewall import (
    AzureFirewall,
    CollectionAction,
    FirewallAddresses,
    FirewallPolicy,
    FirewallRule,
    IpGroup,
    RuleCollection,
    RuleCollectionGroup,
    RuleKind,
)
from remediation.model import AnyAddress, IPNetwork, Prefix, ServiceTag
from remediation.parse import (
    _fail,
    _kind,
    _name_and_id,
    _network,
    _Obj,
    _prefix_list,
    _resources,
    parse_address,
    parse_port_range,
    parse_protocol,
)
from remediation.paths import PathInventory
from remediation.routes import NextHopType, Route, RouteTable

__all__ = ["PATH_TYPES", "is_path_resource", "only_path_resources", "parse_path_document"]

_ROUTE_TABLE = "microsoft.network/routetables"
_FIREWALL = "microsoft.network/azurefirewalls"
_POLICY = "microsoft.network/firewallpolicies"
_GROUP = "microsoft.network/firewallpolicies/rulecollectiongroups"
_IP_GROUP = "microsoft.network/ipgroups"
_VNET = "microsoft.network/virtualnetworks"
_SUBNET = "microsoft.network/virtualnetworks/subnets"

#: The resource types this module reads for itself (``parse_document`` has nothing to say about them).
PATH_TYPES = frozenset({_ROUTE_TABLE, _FIREWALL, _POLICY, _GROUP, _IP_GROUP})

_NEXT_HOPS: Mapping[str, NextHopType] = {h.value.lower(): h for h in NextHopType} | {
    "vnetpeering": NextHopType.VNET_PEERING,
    "virtualnetworkgateway": NextHopType.GATEWAY,
}
_ACTIONS: Mapping[str, CollectionAction] = {a.value.lower(): a for a in CollectionAction}
_RULE_TYPES: Mapping[str, RuleKind] = {
    "networkrule": RuleKind.NETWORK,
    "applicationrule": RuleKind.APPLICATION,
    "natrule": RuleKind.DNAT,
}


def _type_of(obj: _Obj) -> str:
    """The resource type, lower-case; from the id when the object has none (a rule collection group GET)."""
    type_value = obj.value("type")
    if isinstance(type_value, str) and type_value:
        return type_value.lower()
    resource_id = obj.text("id").lower() if isinstance(obj.value("id"), str) else ""
    if "/rulecollectiongroups/" in resource_id or obj.has("ruleCollections"):
        return _GROUP
    if "/providers/microsoft.network/routetables/" in resource_id and "/routes/" not in resource_id:
        return _ROUTE_TABLE
    if "/providers/microsoft.network/azurefirewalls/" in resource_id:
        return _FIREWALL
    if "/providers/microsoft.network/firewallpolicies/" in resource_id:
        return _POLICY
    if "/providers/microsoft.network/ipgroups/" in resource_id:
        return _IP_GROUP
    return ""


def is_path_resource(raw: object) -> bool:
    """True for a route table, firewall, firewall policy, rule collection group or IP group."""
    if not isinstance(raw, Mapping):
        return False
    return _type_of(_Obj(raw, where="", path="", what="a resource")) in PATH_TYPES


def only_path_resources(obj: object) -> bool:
    """True when a document holds resources and every one is a path resource (no NSG, VNet, NIC)."""
    found = False
    try:
        for _, item in _resources(obj, where="", path=""):
            if not is_path_resource(item):
                return False
            found = True
    except InputError:
        return False  # parse_document reports the shape error with its path
    return found


def parse_path_document(obj: object, *, where: str) -> PathInventory:
    """The path resources of one decoded JSON document, and the route tables its subnets name."""
    tables: list[RouteTable] = []
    firewalls: list[AzureFirewall] = []
    policies: list[FirewallPolicy] = []
    groups: list[RuleCollectionGroup] = []
    ip_groups: list[IpGroup] = []
    associations: dict[str, str] = {}
    peerings: dict[str, tuple[IPNetwork, ...]] = {}
    for path, item in _resources(obj, where=where, path=""):
        resource = _Obj(item, where=where, path=path, what="a resource")
        kind = _type_of(resource)
        if kind == _ROUTE_TABLE:
            tables.append(_route_table(resource))
        elif kind == _FIREWALL:
            firewalls.append(_firewall(resource))
        elif kind == _POLICY:
            policies.append(_policy(resource))
        elif kind == _GROUP:
            groups.append(_group(resource))
        elif kind == _IP_GROUP:
            ip_groups.append(_ip_group(resource))
        elif kind == _VNET or (not kind and resource.has("addressSpace")):
            _vnet_paths(resource, associations, peerings)
        elif kind == _SUBNET:
            _subnet_table(resource, associations)
    return PathInventory(
        route_tables=tuple(tables),
        firewalls=tuple(firewalls),
        policies=tuple(policies),
        groups=tuple(groups),
        ip_groups=tuple(ip_groups),
        route_table_of=associations,
        peered_prefixes=peerings,
    )


# --------------------------------------------------------------------------- routes


def _route_table(obj: _Obj) -> RouteTable:
    name, resource_id = _name_and_id(obj, "route table")
    routes = tuple(_route(_Obj(item, where=obj.where, path=p, what="a route")) for p, item in obj.items("routes"))
    return RouteTable(id=resource_id, name=name, routes=routes, subnet_ids=obj.ref_ids("subnets"))


def _route(obj: _Obj) -> Route:
    name = obj.text("name", required=True)
    prefix_path, prefix_value = obj.get("addressPrefix")
    if not isinstance(prefix_value, str) or not prefix_value.strip():
        raise _fail(
            obj.where,
            prefix_path,
            f"a route needs an addressPrefix (a CIDR or a service tag), not {_kind(prefix_value)}",
        )
    address = parse_address(prefix_value, where=obj.where, path=prefix_path)
    hop_path, hop_value = obj.get("nextHopType")
    hop = _NEXT_HOPS.get(hop_value.strip().lower()) if isinstance(hop_value, str) else None
    if hop is None:
        valid = ", ".join(h.value for h in NextHopType if h is not NextHopType.VNET_PEERING)
        raise _fail(obj.where, hop_path, f"invalid nextHopType {hop_value!r} (valid: {valid})")
    ip_path, ip_value = obj.get("nextHopIpAddress")
    next_hop_ip = None
    if hop is NextHopType.VIRTUAL_APPLIANCE:
        try:
            next_hop_ip = ipaddress.ip_address(str(ip_value).strip())
        except ValueError:
            raise _fail(
                obj.where, ip_path, f"a VirtualAppliance route needs a nextHopIpAddress, not {_kind(ip_value)}"
            ) from None
    if isinstance(address, Prefix):
        return Route(name, hop, prefix=address.network, next_hop_ip=next_hop_ip)
    if isinstance(address, ServiceTag):
        return Route(name, hop, service_tag=address.name, next_hop_ip=next_hop_ip)
    raise _fail(obj.where, prefix_path, f"{prefix_value!r} is not a route prefix: give a CIDR or a service tag")


def _vnet_paths(obj: _Obj, associations: dict[str, str], peerings: dict[str, tuple[IPNetwork, ...]]) -> None:
    resource_id = obj.text("id")
    for p, item in obj.items("subnets"):
        _subnet_table(_Obj(item, where=obj.where, path=p, what="a subnet"), associations)
    found: list[IPNetwork] = []
    for p, item in obj.items("virtualNetworkPeerings"):
        peering = _Obj(item, where=obj.where, path=p, what="a peering")
        state = peering.value("peeringState")
        if isinstance(state, str) and state.lower() != "connected":
            continue  # an initiated or disconnected peering routes nothing
        space_path, space = peering.get("remoteAddressSpace")
        if space is not None:
            found.extend(
                _prefix_list(
                    _Obj(space, where=obj.where, path=space_path, what="an address space"),
                    "addressPrefix",
                    "addressPrefixes",
                )
            )
    if resource_id and found:
        peerings[resource_id.lower()] = tuple(found)


def _subnet_table(obj: _Obj, associations: dict[str, str]) -> None:
    table_id = obj.ref_id("routeTable")
    subnet_id = obj.text("id")
    if table_id and subnet_id:
        associations[subnet_id.lower()] = table_id


# --------------------------------------------------------------------------- firewalls


def _firewall(obj: _Obj) -> AzureFirewall:
    name, resource_id = _name_and_id(obj, "Azure Firewall")
    ips: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
    for p, item in obj.items("ipConfigurations"):
        config = _Obj(item, where=obj.where, path=p, what="an IP configuration")
        ip_path, ip_value = config.get("privateIPAddress")
        if ip_value not in (None, ""):
            ips.append(_ip(ip_value, obj.where, ip_path))
    hub_path, hub = obj.get("hubIPAddresses")
    if isinstance(hub, Mapping):  # a firewall in a Virtual WAN hub
        hub_obj = _Obj(hub, where=obj.where, path=hub_path, what="hub IP addresses")
        ip_path, ip_value = hub_obj.get("privateIPAddress")
        if ip_value not in (None, ""):
            ips.append(_ip(ip_value, obj.where, ip_path))
    classic: list[tuple[RuleKind, RuleCollection]] = []
    for field_name, kind in (
        ("natRuleCollections", RuleKind.DNAT),
        ("networkRuleCollections", RuleKind.NETWORK),
        ("applicationRuleCollections", RuleKind.APPLICATION),
    ):
        for p, item in obj.items(field_name):
            classic.append((kind, _collection(_Obj(item, where=obj.where, path=p, what="a rule collection"), kind)))
    return AzureFirewall(
        id=resource_id,
        name=name,
        private_ips=tuple(ips),
        policy_id=obj.ref_id("firewallPolicy"),
        classic=tuple(classic),
    )


def _ip(value: object, where: str, path: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        return ipaddress.ip_address(str(value).strip())
    except ValueError:
        raise _fail(where, path, f"not an IP address: {value!r}") from None


def _policy(obj: _Obj) -> FirewallPolicy:
    name, resource_id = _name_and_id(obj, "firewall policy")
    return FirewallPolicy(
        id=resource_id,
        name=name,
        base_policy_id=obj.ref_id("basePolicy"),
        group_ids=obj.ref_ids("ruleCollectionGroups"),
    )


def _group(obj: _Obj) -> RuleCollectionGroup:
    name, resource_id = _name_and_id(obj, "rule collection group")
    if "/rulecollectiongroups/" not in resource_id.lower():
        raise obj.fail(
            "id",
            f"{resource_id!r} is not a rule collection group id (.../firewallPolicies/<policy>/ruleCollectionGroups/<name>)",
        )
    collections = tuple(
        _collection(_Obj(item, where=obj.where, path=p, what="a rule collection"), None)
        for p, item in obj.items("ruleCollections")
    )
    return RuleCollectionGroup(id=resource_id, name=name, priority=_priority(obj), collections=collections)


def _priority(obj: _Obj) -> int:
    path, value = obj.get("priority")
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(obj.where, path, f"priority must be an integer, not {_kind(value)}")
    if not 100 <= value <= 65000:
        raise _fail(obj.where, path, f"priority must be between 100 and 65000, not {value}")
    return value


def _collection(obj: _Obj, kind: RuleKind | None) -> RuleCollection:
    """A rule collection: classic (``kind`` given by the field it sits in) or a policy's (by its rules' types)."""
    name = obj.text("name", required=True)
    action_path, action_value = obj.get("action")
    action_text = action_value.get("type") if isinstance(action_value, Mapping) else action_value
    action = _ACTIONS.get(action_text.strip().lower()) if isinstance(action_text, str) else None
    if action is None:
        collection_type = obj.value("ruleCollectionType")
        if (
            action_value is None
            and kind is None
            and isinstance(collection_type, str)
            and "nat" in collection_type.lower()
        ):
            action = CollectionAction.DNAT
        else:
            raise _fail(obj.where, action_path, f"invalid action {action_text!r} (valid: Allow, Deny, Dnat)")
    rules = tuple(
        _rule(_Obj(item, where=obj.where, path=p, what="a firewall rule"), kind) for p, item in obj.items("rules")
    )
    return RuleCollection(name=name, priority=_priority(obj), action=action, rules=rules)


def _rule(obj: _Obj, kind: RuleKind | None) -> FirewallRule:
    name = obj.text("name", required=True)
    if kind is None:
        type_path, type_value = obj.get("ruleType")
        kind = _RULE_TYPES.get(type_value.strip().lower()) if isinstance(type_value, str) else None
        if kind is None:
            raise _fail(
                obj.where, type_path, f"invalid ruleType {type_value!r} (valid: NetworkRule, ApplicationRule, NatRule)"
            )
    sources = _addresses(obj, "sourceAddresses", "sourceIpGroups")
    destinations = _addresses(obj, "destinationAddresses", "destinationIpGroups")
    if kind is RuleKind.APPLICATION:
        return FirewallRule(
            name=name,
            kind=kind,
            sources=sources,
            destinations=destinations,
            app_protocols=_app_protocols(obj),
            target_fqdns=_texts(obj, "targetFqdns"),
            fqdn_tags=_texts(obj, "fqdnTags"),
            web_categories=_texts(obj, "webCategories"),
            target_urls=_texts(obj, "targetUrls"),
        )
    protocols_field = "ipProtocols" if obj.has("ipProtocols") else "protocols"
    protocols = tuple(parse_protocol(v, where=obj.where, path=p) for p, v in obj.items(protocols_field))
    ports = tuple(parse_port_range(v, where=obj.where, path=p) for p, v in obj.items("destinationPorts"))
    return FirewallRule(
        name=name,
        kind=kind,
        sources=sources,
        destinations=destinations,
        protocols=protocols,
        ports=ports,
        destination_fqdns=_texts(obj, "destinationFqdns"),
    )


def _texts(obj: _Obj, name: str) -> tuple[str, ...]:
    found: list[str] = []
    for p, value in obj.items(name):
        if not isinstance(value, str):
            raise _fail(obj.where, p, f"expected a string, not {_kind(value)}")
        found.append(value.strip())
    return tuple(found)


def _app_protocols(obj: _Obj) -> tuple[tuple[str, int], ...]:
    found: list[tuple[str, int]] = []
    for p, item in obj.items("protocols"):
        protocol = _Obj(item, where=obj.where, path=p, what="an application protocol")
        kind = protocol.text("protocolType", required=True)
        port_path, port = protocol.get("port")
        if isinstance(port, str) and port.strip().isdigit():
            port = int(port.strip())
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise _fail(obj.where, port_path, f"expected a port 0-65535, not {_kind(port)}")
        found.append((kind, port))
    return tuple(found)


def _addresses(obj: _Obj, addresses: str, ip_groups: str) -> FirewallAddresses:
    any_address = False
    networks: list[IPNetwork] = []
    tags: list[str] = []
    for p, value in obj.items(addresses):
        if isinstance(value, str) and "-" in value and _range(value) is not None:
            networks.extend(_range(value) or ())
            continue
        address = parse_address(value, where=obj.where, path=p)
        if isinstance(address, AnyAddress):
            any_address = True
        elif isinstance(address, Prefix):
            networks.append(address.network)
        elif isinstance(address, ServiceTag):
            tags.append(address.name)
    groups = obj.ref_ids(ip_groups) if _refs_are_objects(obj, ip_groups) else _texts(obj, ip_groups)
    return FirewallAddresses(any=any_address, networks=tuple(networks), tags=tuple(tags), ip_groups=tuple(groups))


def _refs_are_objects(obj: _Obj, name: str) -> bool:
    return any(isinstance(v, Mapping) for _, v in obj.items(name))


def _range(text: str) -> tuple[IPNetwork, ...] | None:
    """``10.1.4.12-10.1.4.255``: the networks that cover the range exactly."""
    low_text, _, high_text = text.strip().partition("-")
    low, high = _network(low_text.strip()), _network(high_text.strip())
    if low is None or high is None or low.num_addresses != 1 or high.num_addresses != 1 or low.version != high.version:
        return None
    if int(low.network_address) > int(high.network_address):
        return None
    return tuple(ipaddress.summarize_address_range(low.network_address, high.network_address))


def _ip_group(obj: _Obj) -> IpGroup:
    name, resource_id = _name_and_id(obj, "IP group")
    networks: list[IPNetwork] = []
    for p, value in obj.items("ipAddresses"):
        ranged = _range(value) if isinstance(value, str) and "-" in value else None
        if ranged is not None:
            networks.extend(ranged)
            continue
        network = _network(value.strip()) if isinstance(value, str) else None
        if network is None:
            raise InputError(f"expected an IP address, CIDR or range, not {_kind(value)}", where=f"{obj.where}: {p}")
        networks.append(network)
    return IpGroup(id=resource_id, name=name, networks=tuple(networks))
