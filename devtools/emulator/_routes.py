"""Parse ARM request paths into routes; resource ids are case-insensitive as in ARM."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote

from devtools.emulator._errors import ArmError

# Canonical spelling of the types served, keyed by their lower-case form.
TOP_TYPES: dict[str, str] = {
    "networksecuritygroups": "networkSecurityGroups",
    "virtualnetworks": "virtualNetworks",
    "networkinterfaces": "networkInterfaces",
    # The path beyond the NSGs (devtools/emulator/_paths.py).
    "routetables": "routeTables",
    "azurefirewalls": "azureFirewalls",
    "firewallpolicies": "firewallPolicies",
    "ipgroups": "ipGroups",
}
CHILD_TYPES: dict[str, dict[str, str]] = {
    "networkSecurityGroups": {"securityrules": "securityRules", "defaultsecurityrules": "defaultSecurityRules"},
    "virtualNetworks": {"subnets": "subnets"},
    "networkInterfaces": {},
    "routeTables": {"routes": "routes"},
    "azureFirewalls": {},
    "firewallPolicies": {"rulecollectiongroups": "ruleCollectionGroups"},
    "ipGroups": {},
}
PROVIDER = "Microsoft.Network"


@dataclass(frozen=True, slots=True)
class Route:
    """What a request path names.

    kind: ``item`` (a top-level resource), ``child`` (a rule or subnet), ``list`` (a resource
    group's resources of a type), ``list_all`` (a subscription's), ``child_list``, ``operation``
    (an Azure-AsyncOperation status), ``operation_result`` (a Location header target) or
    ``service_tags`` (the Service Tags API of a location).
    """

    kind: str
    subscription: str
    resource_group: str = ""
    type: str = ""
    name: str = ""
    child_type: str = ""
    child_name: str = ""
    location: str = ""
    operation_id: str = ""

    @property
    def parent_id(self) -> str:
        return (
            f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}"
            f"/providers/{PROVIDER}/{self.type}/{self.name}"
        )

    @property
    def resource_id(self) -> str:
        if self.kind == "child":
            return f"{self.parent_id}/{self.child_type}/{self.child_name}"
        return self.parent_id


def _no_route(path: str) -> ArmError:
    return ArmError(404, "InvalidResourceType", f"The emulator serves no resource at '{path}'.")


def parse(path: str) -> Route:
    """Map an ARM path (without query) to a :class:`Route`; raises :class:`ArmError` 404/400."""
    parts = [unquote(p) for p in path.strip("/").split("/")]
    lower = [p.lower() for p in parts]
    if len(parts) < 2 or lower[0] != "subscriptions" or not parts[1]:
        raise _no_route(path)
    sub = parts[1]
    rest, rest_lower = parts[2:], lower[2:]
    rg = ""
    if rest_lower[:1] == ["resourcegroups"]:
        if len(rest) < 2 or not rest[1]:
            raise _no_route(path)
        rg, rest, rest_lower = rest[1], rest[2:], rest_lower[2:]
    if len(rest) < 3 or rest_lower[0] != "providers":
        raise _no_route(path)
    if rest_lower[1] != PROVIDER.lower():
        raise ArmError(
            404,
            "NoRegisteredProviderFound",
            f"The emulator serves only the {PROVIDER} namespace; '{rest[1]}' was requested.",
        )
    tail, tail_lower = rest[2:], rest_lower[2:]
    if not rg and tail_lower[:1] == ["locations"] and len(tail) == 3 and tail_lower[2] == "servicetags":
        return Route(kind="service_tags", subscription=sub, location=tail[1])
    if not rg and tail_lower[:1] == ["locations"] and len(tail) == 4:
        kind = {"operations": "operation", "operationresults": "operation_result"}.get(tail_lower[2])
        if kind:
            return Route(kind=kind, subscription=sub, location=tail[1], operation_id=tail[3])
        raise _no_route(path)
    rtype = TOP_TYPES.get(tail_lower[0])
    if rtype is None:
        raise ArmError(
            404,
            "InvalidResourceType",
            f"The resource type '{tail[0]}' could not be found in the namespace '{PROVIDER}' in the emulator.",
        )
    if len(tail) == 1:
        return Route(kind="list" if rg else "list_all", subscription=sub, resource_group=rg, type=rtype)
    if not rg:
        raise _no_route(path)
    name = tail[1]
    if len(tail) == 2:
        return Route(kind="item", subscription=sub, resource_group=rg, type=rtype, name=name)
    child = CHILD_TYPES[rtype].get(tail_lower[2])
    if child is None or len(tail) > 4:
        raise _no_route(path)
    if len(tail) == 3:
        return Route(kind="child_list", subscription=sub, resource_group=rg, type=rtype, name=name, child_type=child)
    return Route(
        kind="child",
        subscription=sub,
        resource_group=rg,
        type=rtype,
        name=name,
        child_type=child,
        child_name=tail[3],
    )


def parse_id(resource_id: str) -> Route:
    """Parse a resource id given in a body (e.g. a subnet's NSG reference)."""
    route = parse(resource_id)
    if route.kind not in ("item", "child"):
        raise ArmError(400, "InvalidResourceReference", f"'{resource_id}' is not a resource id.")
    return route
