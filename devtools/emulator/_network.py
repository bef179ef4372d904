"""The Microsoft.Network state and its rules: NSGs with security rules, virtual networks with
subnets, network interfaces; ARM-shaped rendering with etags and read-only back-references.

Everything here runs under :attr:`Network.lock`. Writes are computed first and committed only
when ``commit`` is true, so a write whose long-running operation is doomed to fail (the
``lro_failed`` fault) is validated exactly like any other and then leaves the state untouched.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from devtools.emulator import _paths
from devtools.emulator import _validate as v
from devtools.emulator._defaults import DEFAULT_SECURITY_RULES
from devtools.emulator._errors import ArmError, bad_request, child_not_found, not_found
from devtools.emulator._routes import PROVIDER, Route, parse_id

NSG, VNET, NIC = "networkSecurityGroups", "virtualNetworks", "networkInterfaces"
SUBNETS, RULES, DEFAULT_RULES = "subnets", "securityRules", "defaultSecurityRules"
# Properties the server computes; dropped from request bodies like NRP does.
_READ_ONLY = {
    "provisioningState",
    "resourceGuid",
    "defaultSecurityRules",
    "subnets",
    "networkInterfaces",
    "flowLogs",
    "ipConfigurations",
    "macAddress",
    "virtualMachine",
    "etag",
}


def copy_json(value: Any) -> Any:
    """A copy of JSON data; several times faster than copy.deepcopy on rule-sized dicts."""
    if isinstance(value, dict):
        return {k: copy_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [copy_json(v) for v in value]
    return value


def new_etag() -> str:
    return f'W/"{uuid.uuid4()}"'


@dataclass
class Record:
    """A top-level resource. ``props`` holds the writable properties; children (rules, subnets,
    IP configurations) are lists of ``{"name", "properties"}`` inside it. Children share the
    parent's etag, as in NRP."""

    id: str
    name: str
    type: str
    subscription: str
    resource_group: str
    location: str
    tags: dict[str, str]
    props: dict[str, Any]
    etag: str = field(default_factory=new_etag)
    guid: str = field(default_factory=lambda: str(uuid.uuid4()))
    state: str = "Succeeded"
    pending_op: str = ""
    # (etag, state, references version) -> rendered form; lists of 2,000 NSGs re-use it.
    cache: tuple[tuple[str, str, int], dict[str, Any]] | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class WriteResult:
    """What a write did: HTTP status, the rendered body, and what the event/LRO should name."""

    status: int
    body: dict[str, Any]
    resource_id: str
    operation: str  # e.g. Microsoft.Network/networkSecurityGroups/securityRules/write
    top_key: str  # lower-case id of the top-level record the operation settles


def _key(resource_id: str) -> str:
    return resource_id.rstrip("/").lower()


def _same_etag(a: str, b: str) -> bool:
    def norm(s: str) -> str:
        return s.strip().removeprefix("W/").strip('"')

    return norm(a) == norm(b)


def check_preconditions(if_match: str | None, if_none_match: str | None, current_etag: str | None) -> None:
    """Honour If-Match (``*`` matches any existing resource) and ``If-None-Match: *``; 412 otherwise."""
    failed = False
    if if_match is not None:
        wanted = [t.strip() for t in if_match.split(",") if t.strip()]
        if current_etag is None or ("*" not in wanted and not any(_same_etag(t, current_etag) for t in wanted)):
            failed = True
    if if_none_match is not None and current_etag is not None:
        wanted = [t.strip() for t in if_none_match.split(",") if t.strip()]
        if "*" in wanted or any(_same_etag(t, current_etag) for t in wanted):
            failed = True
    if failed:
        raise ArmError(
            412,
            "PreconditionFailed",
            "The condition specified using HTTP conditional header(s) is not met.",
        )


class Network:
    """The emulated Microsoft.Network resources of every subscription."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.records: dict[str, dict[str, Record]] = {NSG: {}, VNET: {}, NIC: {}, **{t: {} for t in _paths.PATH_TYPES}}
        self._refs_dirty = True
        self._refs_version = 0
        self._nsg_subnets: dict[str, list[str]] = {}
        self._nsg_nics: dict[str, list[str]] = {}
        self._subnet_ipconfigs: dict[str, list[str]] = {}
        self._ip_in_use: dict[str, set[str]] = {}

    # ----------------------------------------------------------------- lookup

    def clear(self) -> None:
        with self.lock:
            for bucket in self.records.values():
                bucket.clear()
            self._refs_dirty = True

    def record(self, rtype: str, resource_id: str) -> Record | None:
        return self.records[rtype].get(_key(resource_id))

    def _require(self, route: Route) -> Record:
        rec = self.record(route.type, route.parent_id)
        if rec is None:
            raise not_found(route.type, route.name, route.resource_group)
        return rec

    def find_child(self, rec: Record, kind: str, name: str) -> dict[str, Any] | None:
        for child in rec.props.get(kind, []):
            if child["name"].lower() == name.lower():
                return dict(child)
        return None

    def listing(self, rtype: str, subscription: str, resource_group: str = "") -> list[Record]:
        sub, rg = subscription.lower(), resource_group.lower()
        return [
            r
            for r in self.records[rtype].values()
            if r.subscription.lower() == sub and (not rg or r.resource_group.lower() == rg)
        ]

    # ------------------------------------------------------------- references

    def _refs(self) -> None:
        if not self._refs_dirty:
            return
        nsg_subnets: dict[str, list[str]] = {}
        nsg_nics: dict[str, list[str]] = {}
        subnet_ipconfigs: dict[str, list[str]] = {}
        ip_in_use: dict[str, set[str]] = {}
        for vnet in self.records[VNET].values():
            for subnet in vnet.props.get(SUBNETS, []):
                ref = (subnet["properties"].get("networkSecurityGroup") or {}).get("id")
                if ref:
                    nsg_subnets.setdefault(_key(ref), []).append(f"{vnet.id}/subnets/{subnet['name']}")
        for nic in self.records[NIC].values():
            ref = (nic.props.get("networkSecurityGroup") or {}).get("id")
            if ref:
                nsg_nics.setdefault(_key(ref), []).append(nic.id)
            for ipc in nic.props.get("ipConfigurations", []):
                subnet_id = ipc["properties"]["subnet"]["id"]
                subnet_ipconfigs.setdefault(_key(subnet_id), []).append(f"{nic.id}/ipConfigurations/{ipc['name']}")
                address = ipc["properties"].get("privateIPAddress")
                if address:
                    ip_in_use.setdefault(_key(subnet_id), set()).add(address)
        self._nsg_subnets, self._nsg_nics = nsg_subnets, nsg_nics
        self._subnet_ipconfigs, self._ip_in_use = subnet_ipconfigs, ip_in_use
        self._refs_dirty = False
        self._refs_version += 1

    def _canonical_ref(self, raw: Any, path: str, referrer: str, want: str, location: str) -> dict[str, str]:
        """Resolve ``{"id": ...}`` to an existing resource (NSG or subnet) in the referrer's region."""
        ref = v.require_object(raw, path)
        ref_id = ref.get("id")
        if not isinstance(ref_id, str):
            raise v.invalid_json(f"{path}.id", "Expected a resource id string.")
        missing = bad_request(
            "InvalidResourceReference",
            f"Resource {ref_id} referenced by resource {referrer} was not found. Please make sure that the "
            "referenced resource exists, and that both resources are in the same region.",
        )
        try:
            route = parse_id(ref_id)
        except ArmError:
            raise missing from None
        target = self.record(route.type, route.parent_id)
        if target is None or target.location != location:
            raise missing
        if want == NSG and route.kind == "item" and route.type == NSG:
            return {"id": target.id}
        if want == SUBNETS and route.kind == "child" and route.child_type == SUBNETS:
            child = self.find_child(target, SUBNETS, route.child_name)
            if child is None:
                raise missing
            return {"id": f"{target.id}/subnets/{child['name']}"}
        raise missing

    # -------------------------------------------------------------- rendering

    def render(self, rec: Record) -> dict[str, Any]:
        """The resource as GET shows it. The result is shared (cached): callers must not mutate it."""
        self._refs()
        key = (rec.etag, rec.state, self._refs_version)
        if rec.cache is not None and rec.cache[0] == key:
            return rec.cache[1]
        rendered = self._render(rec)
        rec.cache = (key, rendered)
        return rendered

    def _render(self, rec: Record) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": rec.name,
            "id": rec.id,
            "etag": rec.etag,
            "type": f"{PROVIDER}/{rec.type}",
            "location": rec.location,
        }
        if rec.tags:
            out["tags"] = dict(rec.tags)
        props: dict[str, Any] = {"provisioningState": rec.state, "resourceGuid": rec.guid}
        key = _key(rec.id)
        if rec.type == NSG:
            props.update({k: copy_json(val) for k, val in rec.props.items() if k != RULES})
            props[RULES] = [self.render_child(rec, RULES, r) for r in rec.props[RULES]]
            props[DEFAULT_RULES] = [self.render_child(rec, DEFAULT_RULES, r) for r in DEFAULT_SECURITY_RULES]
            if self._nsg_subnets.get(key):
                props["subnets"] = [{"id": s} for s in self._nsg_subnets[key]]
            if self._nsg_nics.get(key):
                props["networkInterfaces"] = [{"id": n} for n in self._nsg_nics[key]]
        elif rec.type == VNET:
            props.update({k: copy_json(val) for k, val in rec.props.items() if k != SUBNETS})
            props[SUBNETS] = [self.render_child(rec, SUBNETS, s) for s in rec.props[SUBNETS]]
            props.setdefault("virtualNetworkPeerings", [])
        elif rec.type in _paths.PATH_TYPES:
            props.update(_paths.render_props(self, rec))
        else:
            props.update({k: copy_json(val) for k, val in rec.props.items() if k != "ipConfigurations"})
            props["ipConfigurations"] = [
                self.render_child(rec, "ipConfigurations", c) for c in rec.props["ipConfigurations"]
            ]
        out["properties"] = props
        return out

    def render_child(self, rec: Record, kind: str, child: dict[str, Any]) -> dict[str, Any]:
        child_id = f"{rec.id}/{kind}/{child['name']}"
        props: dict[str, Any] = {"provisioningState": rec.state if kind != DEFAULT_RULES else "Succeeded"}
        props.update(copy_json(child["properties"]))
        if kind == SUBNETS:
            self._refs()
            ipcs = self._subnet_ipconfigs.get(_key(child_id))
            if ipcs:
                props["ipConfigurations"] = [{"id": i} for i in ipcs]
        return {
            "name": child["name"],
            "id": child_id,
            "etag": rec.etag,
            "type": f"{PROVIDER}/{rec.type}/{kind}",
            "properties": props,
        }

    # ------------------------------------------------------------------ reads

    def get(self, route: Route) -> dict[str, Any]:
        with self.lock:
            rec = self._require(route)
            if route.kind == "item":
                return self.render(rec)
            if route.child_type == DEFAULT_RULES:
                match = [r for r in DEFAULT_SECURITY_RULES if r["name"].lower() == route.child_name.lower()]
                if not match:
                    raise child_not_found(route.child_type, route.child_name, rec.id)
                return self.render_child(rec, DEFAULT_RULES, match[0])
            child = self.find_child(rec, route.child_type, route.child_name)
            if child is None:
                raise child_not_found(route.child_type, route.child_name, rec.id)
            return self.render_child(rec, route.child_type, child)

    def list_children(self, route: Route) -> list[dict[str, Any]]:
        with self.lock:
            rec = self._require(route)
            children = DEFAULT_SECURITY_RULES if route.child_type == DEFAULT_RULES else rec.props[route.child_type]
            return [self.render_child(rec, route.child_type, c) for c in children]

    def current_etag(self, route: Route) -> str | None:
        rec = self.record(route.type, route.parent_id)
        if rec is None:
            return None
        if route.kind == "child" and self.find_child(rec, route.child_type, route.child_name) is None:
            return None
        return rec.etag

    # ----------------------------------------------------------------- writes

    def put(self, route: Route, body: Any, *, state: str, commit: bool = True) -> WriteResult:
        """PUT a top-level resource or a child; ``state`` is the provisioningState to show until
        the operation settles."""
        with self.lock:
            body = v.require_object(body, "")
            if route.kind == "item":
                return self._put_top(route, body, state, commit)
            if route.child_type == DEFAULT_RULES:
                raise ArmError(405, "MethodNotAllowed", "Default security rules cannot be modified.")
            return self._put_child(route, body, state, commit)

    def _put_top(self, route: Route, body: dict[str, Any], state: str, commit: bool) -> WriteResult:
        v.resource_name(route.name, route.type)
        existing = self.record(route.type, route.parent_id)
        location = v.location(body, existing.location if existing else None)
        rid = existing.id if existing else route.resource_id
        raw_props = v.require_object(body.get("properties") or {}, "properties")
        if route.type == NSG:
            props = self._nsg_props(raw_props, rid)
        elif route.type in _paths.PATH_TYPES:
            props = _paths.top_props(route.type, raw_props, rid)
            if existing is not None and route.type == _paths.POLICIES:
                props[_paths.GROUPS] = existing.props[_paths.GROUPS]  # groups are their own PUTs
        elif route.type == VNET:
            props = self._vnet_props(raw_props, rid, location, existing)
        else:
            props = self._nic_props(raw_props, rid, location, existing)
        rec = Record(
            id=rid,
            name=existing.name if existing else route.name,
            type=route.type,
            subscription=existing.subscription if existing else route.subscription,
            resource_group=existing.resource_group if existing else route.resource_group,
            location=location,
            tags=v.tags(body),
            props=props,
            guid=existing.guid if existing else str(uuid.uuid4()),
            state=state,
        )
        if commit:
            self.records[route.type][_key(rid)] = rec
            self._refs_dirty = True
        return WriteResult(
            status=200 if existing else 201,
            body=self.render(rec) if commit else self._render_detached(rec),
            resource_id=rid,
            operation=f"{PROVIDER}/{route.type}/write",
            top_key=_key(rid),
        )

    def _render_detached(self, rec: Record) -> dict[str, Any]:
        # Render without the record in the store (back-references of the committed state apply).
        return self.render(rec)

    def _put_child(self, route: Route, body: dict[str, Any], state: str, commit: bool) -> WriteResult:
        parent = self._require(route)
        v.resource_name(route.child_name, route.child_type)
        existing = self.find_child(parent, route.child_type, route.child_name)
        name = existing["name"] if existing else route.child_name
        child_id = f"{parent.id}/{route.child_type}/{name}"
        raw = v.require_object(body.get("properties") or {}, "properties")
        new_props = copy_json(parent.props)
        others = [c for c in new_props[route.child_type] if c["name"].lower() != name.lower()]
        if route.child_type == RULES:
            child = {"name": name, "properties": v.security_rule(raw, child_id, "properties")}
            v.no_conflicts([(c["name"], c["properties"]) for c in [*others, child]], parent.id)
        elif route.type in _paths.PATH_TYPES:
            child = {"name": name, "properties": _paths.child_props(route.type, raw, child_id, "properties")}
        else:
            child = {"name": name, "properties": self._subnet_props(raw, child_id, parent.location, "properties")}
            self._check_subnets(parent, [*others, child], new_props.get("addressSpace"))
        # Keep the child's position when it is replaced, append it when it is new.
        children = new_props[route.child_type]
        index = next((i for i, c in enumerate(children) if c["name"].lower() == name.lower()), len(children))
        children[index : index + 1] = [child]
        if commit:
            parent.props = new_props
            parent.etag = new_etag()
            parent.state = state
            self._refs_dirty = True
            rendered = self.render_child(parent, route.child_type, child)
        else:
            shadow = dataclasses.replace(parent, cache=None)
            shadow.state = state
            rendered = self.render_child(shadow, route.child_type, child)
        return WriteResult(
            status=200 if existing else 201,
            body=rendered,
            resource_id=child_id,
            operation=f"{PROVIDER}/{route.type}/{route.child_type}/write",
            top_key=_key(parent.id),
        )

    def delete(self, route: Route, *, state: str, commit: bool = True) -> WriteResult | None:
        """DELETE; ``None`` when there is nothing to delete (ARM answers 204)."""
        with self.lock:
            self._refs()
            if route.kind == "item":
                rec = self.record(route.type, route.parent_id)
                if rec is None:
                    return None
                key = _key(rec.id)
                if route.type == NSG:
                    users = self._nsg_subnets.get(key, []) + self._nsg_nics.get(key, [])
                    if users:
                        raise bad_request(
                            "InUseNetworkSecurityGroupCannotBeDeleted",
                            f"Network security group {rec.id} cannot be deleted because it is in use by the "
                            f"following resources: {', '.join(users)}. In order to delete the Network security "
                            "group, remove the association with the resource(s).",
                        )
                if route.type == VNET:
                    for subnet in rec.props[SUBNETS]:
                        self._subnet_not_in_use(rec, subnet["name"])
                if commit:
                    del self.records[route.type][key]
                    self._refs_dirty = True
                return WriteResult(202, {}, rec.id, f"{PROVIDER}/{route.type}/delete", key)
            if route.child_type == DEFAULT_RULES:
                raise ArmError(405, "MethodNotAllowed", "Default security rules cannot be deleted.")
            parent = self._require(route)
            child = self.find_child(parent, route.child_type, route.child_name)
            if child is None:
                return None
            if route.child_type == SUBNETS:
                self._subnet_not_in_use(parent, child["name"])
            if commit:
                parent.props[route.child_type] = [
                    c for c in parent.props[route.child_type] if c["name"].lower() != child["name"].lower()
                ]
                parent.etag = new_etag()
                parent.state = state
                self._refs_dirty = True
            return WriteResult(
                202,
                {},
                f"{parent.id}/{route.child_type}/{child['name']}",
                f"{PROVIDER}/{route.type}/{route.child_type}/delete",
                _key(parent.id),
            )

    def settle(self, top_key: str, op_id: str, state: str) -> None:
        """An operation ended: the resource shows ``state`` unless a later write took over.

        The etag changes when the operation settles, as NRP's does (azure-cli's recorded
        test_network_nsg: the PUT answers one etag with ``Updating``, the GET after the
        operation another), so an If-Match on the etag a PUT answered fails with 412."""
        with self.lock:
            for bucket in self.records.values():
                rec = bucket.get(top_key)
                if rec is not None and rec.pending_op == op_id:
                    rec.state = state
                    rec.pending_op = ""
                    rec.etag = new_etag()

    def pending(self, top_key: str) -> str:
        """The id of the operation still writing this resource ("" when none)."""
        with self.lock:
            for bucket in self.records.values():
                rec = bucket.get(top_key)
                if rec is not None:
                    return rec.pending_op
        return ""

    def touch(self, top_key: str) -> None:
        """A write that leaves the content as it was (a superseding write of the same state): new etag."""
        with self.lock:
            for bucket in self.records.values():
                rec = bucket.get(top_key)
                if rec is not None:
                    rec.etag = new_etag()

    def mark_pending(self, top_key: str, op_id: str) -> None:
        with self.lock:
            for bucket in self.records.values():
                rec = bucket.get(top_key)
                if rec is not None:
                    rec.pending_op = op_id

    # ------------------------------------------------------------ validation

    def _nsg_props(self, raw: dict[str, Any], nsg_id: str) -> dict[str, Any]:
        rules_raw = raw.get(RULES) or []
        if not isinstance(rules_raw, list):
            raise v.invalid_json("properties.securityRules", "Expected an array.")
        rules: list[dict[str, Any]] = []
        for i, item in enumerate(rules_raw):
            path = f"properties.securityRules[{i}]"
            obj = v.require_object(item, path)
            name = obj.get("name")
            if not isinstance(name, str) or not name:
                raise bad_request(
                    "InvalidRequestFormat",
                    "Cannot parse the request.",
                    details=[
                        {
                            "code": "MissingJsonReferenceId",
                            "message": f"Value for reference id is missing. Path {path}.",
                        }
                    ],
                )
            v.resource_name(name, "securityRules")
            rule_id = f"{nsg_id}/securityRules/{name}"
            rules.append(
                {"name": name, "properties": v.security_rule(obj.get("properties"), rule_id, f"{path}.properties")}
            )
        v.no_conflicts([(r["name"], r["properties"]) for r in rules], nsg_id)
        props: dict[str, Any] = {RULES: rules}
        if "flushConnection" in raw:
            flush = raw["flushConnection"]
            if not isinstance(flush, bool):
                raise v.invalid_json("properties.flushConnection", "Expected a boolean.")
            props["flushConnection"] = flush
        # Recorded real answers (azure-cli 2022-01-01, Cloud Custodian's lists) carry no
        # flushConnection on NSGs that never set it: the adapter must not rely on it.
        return props

    def _subnet_props(self, raw: dict[str, Any], subnet_id: str, location: str, path: str) -> dict[str, Any]:
        props = {k: copy_json(val) for k, val in raw.items() if k not in _READ_ONLY}
        prefixes = ([props["addressPrefix"]] if props.get("addressPrefix") else []) + list(
            props.get("addressPrefixes") or []
        )
        if not prefixes:
            raise bad_request(
                "InvalidRequestFormat",
                "Cannot parse the request.",
                details=[
                    {
                        "code": "MissingAddressPrefix",
                        "message": f"Subnet {subnet_id} must specify addressPrefix. Path {path}.",
                    }
                ],
            )
        for i, prefix in enumerate(prefixes):
            v.address_prefix(prefix, f"{path}.addressPrefix[{i}]")
        if props.get("networkSecurityGroup") is not None:
            props["networkSecurityGroup"] = self._canonical_ref(
                props["networkSecurityGroup"], f"{path}.networkSecurityGroup", subnet_id, NSG, location
            )
        else:
            props.pop("networkSecurityGroup", None)
        endpoints = props.get("serviceEndpoints")
        if endpoints is not None:
            if not isinstance(endpoints, list):
                raise v.invalid_json(f"{path}.serviceEndpoints", "Expected an array.")
            rendered = []
            for i, ep in enumerate(endpoints):
                obj = v.require_object(ep, f"{path}.serviceEndpoints[{i}]")
                if not isinstance(obj.get("service"), str):
                    raise v.invalid_json(f"{path}.serviceEndpoints[{i}].service", "Expected a string.")
                rendered.append(
                    {
                        "service": obj["service"],
                        # ARM answers ["*"] for an endpoint written without locations
                        # (azure-cli's recorded test_network_subnet_endpoint_service).
                        "locations": list(obj.get("locations") or ["*"]),
                        "provisioningState": "Succeeded",
                    }
                )
            props["serviceEndpoints"] = rendered
        return props

    def _check_subnets(self, vnet: Record | None, subnets: list[dict[str, Any]], address_space: Any) -> None:
        space = [ipaddress.ip_network(p) for p in ((address_space or {}).get("addressPrefixes") or [])]
        seen: list[tuple[str, ipaddress.IPv4Network | ipaddress.IPv6Network]] = []
        names: set[str] = set()
        for subnet in subnets:
            if subnet["name"].lower() in names:
                raise bad_request(
                    "InvalidRequestFormat",
                    "Cannot parse the request.",
                    details=[{"code": "DuplicateResourceName", "message": f"Two subnets are named {subnet['name']}."}],
                )
            names.add(subnet["name"].lower())
            p = subnet["properties"]
            for text in ([p["addressPrefix"]] if p.get("addressPrefix") else []) + list(p.get("addressPrefixes") or []):
                net = ipaddress.ip_network(text)
                if space and not any(net.version == s.version and net.subnet_of(s) for s in space):  # type: ignore[arg-type]
                    raise bad_request(
                        "NetcfgSubnetRangeOutsideVnet",
                        f"Subnet '{subnet['name']}' is not valid because its IP address range is outside the IP "
                        "address range of virtual network.",
                    )
                for other_name, other in seen:
                    if other_name != subnet["name"] and net.overlaps(other):
                        raise bad_request(
                            "NetcfgSubnetRangesOverlap",
                            f"Subnet '{subnet['name']}' is not valid because its IP address range overlaps with "
                            f"that of an existing subnet '{other_name}' in virtual network.",
                        )
                seen.append((subnet["name"], net))
        if vnet is not None:
            # Subnets left out of a VNet PUT are deleted, which fails while NICs use them.
            kept = {s["name"].lower() for s in subnets}
            for old in vnet.props.get(SUBNETS, []):
                if old["name"].lower() not in kept:
                    self._subnet_not_in_use(vnet, old["name"])

    def _subnet_not_in_use(self, vnet: Record, name: str) -> None:
        self._refs()
        users = self._subnet_ipconfigs.get(_key(f"{vnet.id}/subnets/{name}"))
        if users:
            raise bad_request(
                "InUseSubnetCannotBeDeleted",
                f"Subnet {name} is in use by {users[0]} and cannot be deleted. In order to delete the subnet, "
                "delete all the resources within the subnet. See aka.ms/deletesubnet.",
            )

    def _vnet_props(self, raw: dict[str, Any], vnet_id: str, location: str, existing: Record | None) -> dict[str, Any]:
        props = {k: copy_json(val) for k, val in raw.items() if k not in _READ_ONLY or k == SUBNETS}
        space = v.require_object(props.get("addressSpace") or {}, "properties.addressSpace")
        prefixes = space.get("addressPrefixes") or []
        if not isinstance(prefixes, list):
            raise v.invalid_json("properties.addressSpace.addressPrefixes", "Expected an array.")
        for i, p in enumerate(prefixes):
            v.address_prefix(p, f"properties.addressSpace.addressPrefixes[{i}]")
        props["addressSpace"] = {"addressPrefixes": list(prefixes)}
        subnets_raw = props.get(SUBNETS) or []
        if not isinstance(subnets_raw, list):
            raise v.invalid_json("properties.subnets", "Expected an array.")
        subnets = []
        for i, item in enumerate(subnets_raw):
            obj = v.require_object(item, f"properties.subnets[{i}]")
            name = obj.get("name")
            if not isinstance(name, str) or not name:
                raise v.invalid_json(f"properties.subnets[{i}].name", "A subnet needs a name.")
            v.resource_name(name, "subnets")
            sub_props = self._subnet_props(
                v.require_object(obj.get("properties") or {}, f"properties.subnets[{i}].properties"),
                f"{vnet_id}/subnets/{name}",
                location,
                f"properties.subnets[{i}].properties",
            )
            subnets.append({"name": name, "properties": sub_props})
        self._check_subnets(existing, subnets, props["addressSpace"])
        props[SUBNETS] = subnets
        return props

    def _nic_props(self, raw: dict[str, Any], nic_id: str, location: str, existing: Record | None) -> dict[str, Any]:
        self._refs()
        props = {k: copy_json(val) for k, val in raw.items() if k not in _READ_ONLY or k == "ipConfigurations"}
        ipcs_raw = props.get("ipConfigurations") or []
        if not isinstance(ipcs_raw, list) or not ipcs_raw:
            raise bad_request(
                "NetworkInterfaceMustHaveAtLeastOneIpConfiguration",
                f"Network interface {nic_id} must have at least one IP configuration.",
            )
        old_addresses: dict[str, str] = {}
        if existing is not None:
            for ipc in existing.props["ipConfigurations"]:
                old_addresses[ipc["name"].lower()] = ipc["properties"].get("privateIPAddress", "")
        taken_now: dict[str, set[str]] = {}
        ipcs = []
        for i, item in enumerate(ipcs_raw):
            path = f"properties.ipConfigurations[{i}]"
            obj = v.require_object(item, path)
            name = obj.get("name")
            if not isinstance(name, str) or not name:
                raise v.invalid_json(f"{path}.name", "An IP configuration needs a name.")
            ipc_id = f"{nic_id}/ipConfigurations/{name}"
            p = {
                k: copy_json(val)
                for k, val in v.require_object(obj.get("properties") or {}, f"{path}.properties").items()
                if k not in _READ_ONLY
            }
            if p.get("subnet") is None:
                raise bad_request(
                    "IpConfigurationSubnetMissing",
                    f"IP configuration {ipc_id} must reference a subnet.",
                )
            p["subnet"] = self._canonical_ref(p["subnet"], f"{path}.properties.subnet", ipc_id, SUBNETS, location)
            subnet_key = _key(p["subnet"]["id"])
            subnet_net = self._subnet_network(p["subnet"]["id"])
            method = str(p.get("privateIPAllocationMethod") or "Dynamic")
            canonical = {"dynamic": "Dynamic", "static": "Static"}.get(method.lower())
            if canonical is None:
                raise v.invalid_json(f"{path}.properties.privateIPAllocationMethod", f"Unknown value {method}.")
            p["privateIPAllocationMethod"] = canonical
            in_use = set(self._ip_in_use.get(subnet_key, set())) | taken_now.setdefault(subnet_key, set())
            own = old_addresses.get(name.lower())
            if own:
                in_use.discard(own)
            address = p.get("privateIPAddress") if canonical == "Static" else (own or None)
            if address:
                try:
                    ok = ipaddress.ip_address(address) in subnet_net
                except ValueError:
                    ok = False
                if not ok:
                    raise bad_request(
                        "PrivateIPAddressNotInSubnet",
                        f"IP configuration {ipc_id} has private IP address {address} outside subnet "
                        f"{p['subnet']['id']}.",
                    )
                if address in in_use and address != own:
                    raise bad_request(
                        "PrivateIPAddressInUse",
                        f"IP configuration {ipc_id} is using the private IP address {address} which is already "
                        "allocated to resource in the subnet.",
                    )
            else:
                address = self._allocate(subnet_net, in_use, ipc_id)
            taken_now[subnet_key].add(address)
            p["privateIPAddress"] = address
            p.setdefault("privateIPAddressVersion", "IPv4" if subnet_net.version == 4 else "IPv6")
            p.setdefault("primary", i == 0)
            ipcs.append({"name": name, "properties": p})
        props["ipConfigurations"] = ipcs
        if props.get("networkSecurityGroup") is not None:
            props["networkSecurityGroup"] = self._canonical_ref(
                props["networkSecurityGroup"], "properties.networkSecurityGroup", nic_id, NSG, location
            )
        else:
            props.pop("networkSecurityGroup", None)
        return props

    def _subnet_network(self, subnet_id: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
        route = parse_id(subnet_id)
        vnet = self.record(VNET, route.parent_id)
        assert vnet is not None  # resolved by _canonical_ref just before
        child = self.find_child(vnet, SUBNETS, route.child_name)
        assert child is not None
        p = child["properties"]
        return ipaddress.ip_network(p.get("addressPrefix") or p["addressPrefixes"][0])

    @staticmethod
    def _allocate(net: ipaddress.IPv4Network | ipaddress.IPv6Network, in_use: set[str], ipc_id: str) -> str:
        # Azure keeps the first four addresses and the last one of every subnet.
        for offset in range(4, net.num_addresses - 1):
            candidate = str(net.network_address + offset)
            if candidate not in in_use:
                return candidate
        raise bad_request(
            "SubnetIsFull", f"Subnet {net} has no free private IP address left for IP configuration {ipc_id}."
        )
