"""Raw JSON -> model: the only place that reads raw dicts.

Accepts every form an operator has at hand, in one file or mixed:

* the ARM REST form (``{"name", "id", "type", "properties": {...}}``),
* the flattened form ``az network ... show/list`` prints (camelCase, no
  ``properties``),
* the SDK's ``as_dict()`` form (snake_case),
* a single object, a list, or a list response ``{"value": [...], "nextLink"}``.

Field names are compared after lowercasing and dropping underscores, so
``sourceAddressPrefixes`` and ``source_address_prefixes`` are one field, and
fields are looked up both on the object and under its ``properties``.

Every error is an :class:`InputError` whose ``where`` names the file and the
JSON path, e.g. ``nsg.json: [0].properties.securityRules[3].properties.priority``.
Pure: callers read the files and pass the decoded JSON in.

What ARM refuses is refused here too (a priority written as a string, ports
in non-ASCII digits or padded with spaces, rule names ARM would not take).
What ARM accepts but nobody can read (a bare number as an address prefix)
makes that rule unreadable, kept apart in ``unreadable_rules``, not an error.

One reader, no fast path beside it: a second parser for the common shapes
made a 2,000-NSG sweep about 0.2 s faster (docs/benchmarks.md), not worth
keeping every rule change in two places.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import TypeVar

from remediation.errors import InputError
from remediation.model import (
    ANY_PORT,
    DEFAULT_RULES,
    MAX_CUSTOM_PRIORITY,
    MIN_CUSTOM_PRIORITY,
    Access,
    Address,
    AnyAddress,
    Asg,
    Direction,
    Inventory,
    IPNetwork,
    NetworkInterface,
    NetworkSecurityGroup,
    PortRange,
    Prefix,
    Protocol,
    SecurityRule,
    ServiceTag,
    Subnet,
    UnreadableRule,
    VirtualNetwork,
    build_rule,
)

__all__ = [
    "merge_inventories",
    "parse_address",
    "parse_document",
    "parse_nic",
    "parse_nsg",
    "parse_port_range",
    "parse_protocol",
    "parse_rule",
    "parse_subnet",
    "parse_vnet",
    "unreadable_nsg",
]

# A service tag name: `Storage`, `Storage.WestEurope`, `AzureFrontDoor.Backend`,
# and ARM's legacy spellings such as `VIRTUAL_NETWORK`. It must start with a
# letter, which keeps a mistyped address (`10.0.0.300`) from passing as a tag.
_TAG_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*$")
# ASCII digits only: Arabic-Indic or fullwidth digits are digits to Python, not to ARM.
_PORT_RANGE = re.compile(r"([0-9]{1,5})(?:-([0-9]{1,5}))?")
_OCTETS: Mapping[str, int] = {str(n): n for n in range(256)}
_IPV4_LENGTHS: Mapping[str, int] = {str(n): n for n in range(33)}

_NSG_TYPE = "microsoft.network/networksecuritygroups"
_RULE_TYPES = frozenset({_NSG_TYPE + "/securityrules", _NSG_TYPE + "/defaultsecurityrules"})
_VNET_TYPE = "microsoft.network/virtualnetworks"
_SUBNET_TYPE = "microsoft.network/virtualnetworks/subnets"
_NIC_TYPE = "microsoft.network/networkinterfaces"

_T = TypeVar("_T")

_ANY_WORDS = frozenset({"*", "any"})
_PROTOCOLS: Mapping[str, Protocol] = {p.value.lower(): p for p in Protocol} | {"any": Protocol.ANY}
_DIRECTIONS: Mapping[str, Direction] = {d.value.lower(): d for d in Direction}
_ACCESSES: Mapping[str, Access] = {a.value.lower(): a for a in Access}


# --------------------------------------------------------------------------- paths and lookups


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _fail(where: str, path: str, message: str) -> InputError:
    return InputError(message, where=f"{where}: {path}" if path else where)


@functools.lru_cache(maxsize=4096)  # field names repeat in every rule of every NSG
def _norm(key: str) -> str:
    return key.replace("_", "").lower()


class _Obj:
    """A JSON object with forgiving field lookup and the JSON path of each field.

    Looks a field up on the object itself and under ``properties`` (ARM
    nests most fields there; ``az`` and the SDK flatten them), comparing
    names lowercased with underscores removed.
    """

    __slots__ = ("_fields", "_missing_path", "path", "where")

    def __init__(self, raw: object, *, where: str, path: str, what: str) -> None:
        if not isinstance(raw, Mapping):
            raise _fail(where, path, f"expected a JSON object ({what}), not {_kind(raw)}")
        self.where = where
        self.path = path
        # (path of the object holding the field, the field's own spelling, value):
        # the field's path is joined only when asked for, mostly for an error.
        self._fields: dict[str, tuple[str, str, object]] = {}
        # A field that is missing is reported where it belongs: under "properties" in the ARM form.
        self._missing_path = path
        for key, value in raw.items():
            self._fields.setdefault(_norm(str(key)), (path, str(key), value))
        props = raw.get("properties")
        if isinstance(props, Mapping):
            props_path = self._missing_path = _join(path, "properties")
            for key, value in props.items():
                # Fields under "properties" win: that is where ARM keeps the real ones.
                self._fields[_norm(str(key))] = (props_path, str(key), value)

    def has(self, name: str) -> bool:
        found = self._fields.get(_norm(name))
        return found is not None and found[2] is not None

    def get(self, name: str) -> tuple[str, object]:
        """(path, value) of a field; value ``None`` when absent or null."""
        found = self._fields.get(_norm(name))
        if found is None:
            return _join(self._missing_path, name), None
        return _join(found[0], found[1]), found[2]

    def value(self, name: str) -> object:
        """A field's value (``None`` when absent or null), when its path is not needed."""
        found = self._fields.get(_norm(name))
        return None if found is None else found[2]

    def fail(self, name: str, message: str) -> InputError:
        return _fail(self.where, self.get(name)[0], message)

    def text(self, name: str, *, required: bool = False) -> str:
        path, value = self.get(name)
        if value is None:
            if required:
                raise _fail(self.where, path, f"missing field {name!r}")
            return ""
        if not isinstance(value, str):
            raise _fail(self.where, path, f"expected a string, not {_kind(value)}")
        return value

    def items(self, name: str) -> Iterator[tuple[str, object]]:
        """(path, item) of a list field; nothing when absent or null."""
        path, value = self.get(name)
        if value is None:
            return
        if not isinstance(value, list):
            raise _fail(self.where, path, f"expected a list, not {_kind(value)}")
        for i, item in enumerate(value):
            yield _join(path, i), item

    def ref_id(self, name: str) -> str | None:
        """The ``id`` of a reference field such as ``networkSecurityGroup: {"id": ...}``."""
        path, value = self.get(name)
        if value is None:
            return None
        return _ref(value, where=self.where, path=path)

    def ref_ids(self, name: str) -> tuple[str, ...]:
        return tuple(_ref(item, where=self.where, path=p) for p, item in self.items(name))


def _ref(value: object, *, where: str, path: str) -> str:
    if isinstance(value, str) and value:
        return value
    if isinstance(value, Mapping):
        ref = value.get("id")
        if isinstance(ref, str) and ref:
            return ref
        raise _fail(where, _join(path, "id"), "a reference needs a non-empty string 'id'")
    raise _fail(where, path, f"expected a reference {{'id': ...}}, not {_kind(value)}")


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {value!r}".lower()
    if isinstance(value, int | float):
        return f"number {value!r}"
    if isinstance(value, str):
        return f"string {value!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


def _name_and_id(obj: _Obj, what: str) -> tuple[str, str]:
    resource_id = obj.text("id")
    name = obj.text("name") or resource_id.rstrip("/").rsplit("/", 1)[-1]
    if not resource_id:
        raise obj.fail("id", f"{what} {name!r} has no resource 'id'" if name else f"{what} has no resource 'id'")
    return name, resource_id


# --------------------------------------------------------------------------- scalar helpers (shared with baseline_file)


def parse_protocol(value: object, *, where: str, path: str = "") -> Protocol:
    """``Tcp``/``TCP``/``tcp``, ``Udp``, ``Icmp``, ``Esp``, ``Ah``, ``*`` or ``Any``."""
    if isinstance(value, str):
        found = _PROTOCOLS.get(value.strip().lower())
        if found is not None:
            return found
    raise _fail(where, path, f"unknown protocol {value!r} (valid: Tcp, Udp, Icmp, Esp, Ah, *)")


def parse_port_range(value: object, *, where: str, path: str = "") -> PortRange:
    """``*`` (or ``Any``), ``80``, ``8000-8100``; an integer is one port."""
    if isinstance(value, bool):
        raise _fail(where, path, f"invalid port {value!r}")
    if isinstance(value, int):
        text = str(value)
    elif isinstance(value, str):
        text = value  # " 5672 " is refused, as ARM refuses it
    else:
        raise _fail(where, path, f"expected a port or port range, not {_kind(value)}")
    found = _port_range(text)
    if found is None:
        shown = printable(value) if isinstance(value, str) else repr(value)
        raise _fail(where, path, f"invalid port range {shown} (expected '*', a port 0-65535 or 'low-high')")
    return found


@functools.lru_cache(maxsize=4096)  # a handful of port specs recur in every NSG; results are immutable
def _port_range(text: str) -> PortRange | None:
    """The range ``text`` names, or ``None`` when it names none."""
    if text.lower() in _ANY_WORDS:
        return ANY_PORT
    match = _PORT_RANGE.fullmatch(text)
    if match:
        low = int(match.group(1))
        high = int(match.group(2)) if match.group(2) else low
        try:
            return PortRange(low, high)
        except ValueError:
            pass
    return None


def parse_address(value: object, *, where: str, path: str = "") -> Address:
    """``*``/``Any``, an IPv4/IPv6 address or CIDR, or a service tag name.

    A CIDR with host bits set (``10.0.0.5/24``) is accepted, as Azure does,
    and its text is kept so writing it back changes nothing.
    """
    if not isinstance(value, str) or not value.strip():
        raise _fail(where, path, f"expected an address, CIDR, service tag or '*', not {_kind(value)}")
    found = _address(value.strip())
    if found is None:
        raise _fail(where, path, f"{value.strip()!r} is not an IP address, CIDR, service tag or '*'")
    return found


@functools.lru_cache(maxsize=8192)  # the same prefixes and tags recur across rules and NSGs; results are immutable
def _address(text: str) -> Address | None:
    return _read_address(text)


def _read_address(text: str) -> Address | None:
    """The address ``text`` (already stripped) names, or ``None`` when it names none."""
    if text.lower() in _ANY_WORDS:
        return AnyAddress()
    network = _network(text)
    if network is not None:
        return Prefix(network, text)
    if _TAG_NAME.match(text):
        return ServiceTag(text)
    return None


def _network(text: str) -> IPNetwork | None:
    # Most prefixes are plain IPv4 CIDRs: reading the octets here and handing
    # ipaddress the (address, prefix length) pair skips its slow string parser.
    # The tables hold only the canonical spellings that parser accepts (0-255
    # and 0-32, no leading zeros), so the network is the one it would build;
    # anything else (IPv6, netmask forms, errors) goes to the parser itself.
    head, slash, tail = text.partition("/")
    octets = head.split(".")
    if len(octets) == 4:
        a = _OCTETS.get(octets[0])
        b = _OCTETS.get(octets[1])
        c = _OCTETS.get(octets[2])
        d = _OCTETS.get(octets[3])
        length = _IPV4_LENGTHS.get(tail) if slash else 32
        if a is not None and b is not None and c is not None and d is not None and length is not None:
            return ipaddress.IPv4Network(((a << 24) | (b << 16) | (c << 8) | d, length), strict=False)
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None


def _prefix_list(obj: _Obj, single: str, plural: str) -> tuple[IPNetwork, ...]:
    """Subnet/VNet prefixes from ``addressPrefix`` and ``addressPrefixes``."""
    found: list[IPNetwork] = []
    entries: list[tuple[str, object]] = []
    path, value = obj.get(single)
    if value not in (None, ""):
        entries.append((path, value))
    entries.extend(obj.items(plural))
    for entry_path, entry in entries:
        network = _network(entry) if isinstance(entry, str) else None
        if network is None:
            raise _fail(obj.where, entry_path, f"expected an IP prefix such as 10.0.0.0/24, not {_kind(entry)}")
        found.append(network)
    return tuple(found)


# --------------------------------------------------------------------------- rules


def parse_rule(raw: object, *, where: str, path: str = "", default: bool = False) -> SecurityRule:
    """One security rule (custom, or one of ``defaultSecurityRules`` when ``default``).

    A rule ARM accepts but whose meaning is unknown (see :func:`_unknown_address`)
    is an error here; :func:`parse_nsg` keeps such a rule as unreadable instead.
    """
    rule, unknown = _rule(raw, where=where, path=path, default=default)
    if unknown:
        raise _fail(where, unknown[0][0], unknown[0][1])
    return rule


def _rule(raw: object, *, where: str, path: str, default: bool) -> tuple[SecurityRule, list[tuple[str, str]]]:
    """The rule, and (path, reason) of each address in it that ARM accepts but nobody can read.

    Such an address is read as ``*`` (the widest reading); every other
    problem raises :class:`InputError` with its JSON path.
    """
    obj = _Obj(raw, where=where, path=path, what="a security rule")
    name = _rule_name(obj)
    priority = _priority(obj, default=default)
    direction = _choice(obj, "direction", _DIRECTIONS)
    access = _choice(obj, "access", _ACCESSES)
    protocol_path, protocol_value = obj.get("protocol")
    if protocol_value is None:
        raise _fail(where, protocol_path, "missing field 'protocol'")
    protocol = parse_protocol(protocol_value, where=where, path=protocol_path)
    unknown: list[tuple[str, str]] = []
    rule = build_rule(
        name=name,
        priority=priority,
        direction=direction,
        access=access,
        protocol=protocol,
        sources=_addresses(obj, "source", unknown),
        destinations=_addresses(obj, "destination", unknown),
        source_ports=_ports(obj, "sourcePortRange"),
        destination_ports=_ports(obj, "destinationPortRange"),
        description=obj.text("description"),
        id=obj.text("id") or None,
        is_default=default,
    )
    return rule, unknown


# ARM's rule names (Microsoft.Network/networkSecurityGroups/securityRules, the
# template reference): 1 to 80 characters; alphanumerics, underscores, periods
# and hyphens; starting with an alphanumeric, ending with one or an underscore.
MAX_RULE_NAME = 80


def _rule_name(obj: _Obj) -> str:
    name = obj.text("name", required=True)
    if not name:
        raise obj.fail("name", "a rule name cannot be empty (ARM: 1 to 80 characters)")
    if len(name) > MAX_RULE_NAME:
        raise obj.fail("name", f"a rule name of {len(name)} characters (ARM allows at most {MAX_RULE_NAME})")
    if not _valid_rule_name(name):
        raise obj.fail(
            "name",
            f"invalid rule name {printable(name)} (ARM: letters, digits, '_', '.' and '-', starting with a letter "
            "or digit and ending with one or '_')",
        )
    return name


@functools.lru_cache(maxsize=4096)  # the same names recur in every NSG
def _valid_rule_name(name: str) -> bool:
    return (
        all(c.isalnum() or c in "_.-" for c in name) and name[0].isalnum() and (name[-1].isalnum() or name[-1] == "_")
    )


def printable(text: str, limit: int = 100) -> str:
    """``text`` quoted for a message or a terminal: control, format and bidi characters escaped, bounded."""
    shown = text if len(text) <= limit else text[:limit] + "..."
    return repr(shown) if shown.isprintable() else ascii(shown)


def _priority(obj: _Obj, *, default: bool) -> int:
    path, value = obj.get("priority")
    if value is None:
        raise _fail(obj.where, path, "missing field 'priority'")
    # A JSON number only, as ARM's schema has it: "150" or true are not priorities.
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(obj.where, path, f"priority must be an integer, not {_kind(value)}")
    if not default and not MIN_CUSTOM_PRIORITY <= value <= MAX_CUSTOM_PRIORITY:
        raise _fail(
            obj.where, path, f"priority must be between {MIN_CUSTOM_PRIORITY} and {MAX_CUSTOM_PRIORITY}, not {value}"
        )
    return value


def _choice(obj: _Obj, name: str, choices: Mapping[str, _T]) -> _T:
    path, value = obj.get(name)
    if value is None:
        raise _fail(obj.where, path, f"missing field {name!r}")
    found = choices.get(value.strip().lower()) if isinstance(value, str) else None
    if found is None:
        valid = ", ".join(str(c) for c in choices.values())
        raise _fail(obj.where, path, f"invalid {name} {value!r} (valid: {valid})")
    return found


def _addresses(obj: _Obj, side: str, unknown: list[tuple[str, str]]) -> tuple[Address, ...]:
    """Singular prefix, plural prefixes, then ASGs: one union, as Azure matches them.

    An address ARM accepts without documenting what it means is read as
    ``*`` and reported in ``unknown``.
    """
    found: list[Address] = []
    path, value = obj.get(f"{side}AddressPrefix")
    entries = [(path, value)] if value not in (None, "") else []
    entries.extend(obj.items(f"{side}AddressPrefixes"))
    for entry_path, entry in entries:
        reason = _unknown_address(entry)
        if reason:
            unknown.append((entry_path, reason))
            found.append(AnyAddress())
        else:
            found.append(parse_address(entry, where=obj.where, path=entry_path))
    found.extend(Asg(asg_id) for asg_id in obj.ref_ids(f"{side}ApplicationSecurityGroups"))
    if not found:
        raise _fail(
            obj.where,
            path,
            f"no {side} address: give {side}AddressPrefix, {side}AddressPrefixes or {side}ApplicationSecurityGroups",
        )
    return tuple(found)


def _unknown_address(value: object) -> str:
    """Why ``value`` is an address ARM accepts but nobody can read (for a message); empty when it is not one.

    ARM accepts and returns bare numbers such as ``"789"`` and ``"1234"`` as
    address prefixes (recorded in Azure CLI's test_network_nsg), while its
    documentation names only IP addresses, CIDRs, service tags and ``*``, and
    nothing says what such a prefix matches. So the rule cannot be judged.
    """
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return f"address prefix {value!r} is a bare number, which ARM accepts but documents no meaning for"
    return ""


def _ports(obj: _Obj, single: str) -> tuple[PortRange, ...]:
    found: list[PortRange] = []
    path, value = obj.get(single)
    if value not in (None, ""):
        found.append(parse_port_range(value, where=obj.where, path=path))
    for item_path, item in obj.items(single + "s"):
        found.append(parse_port_range(item, where=obj.where, path=item_path))
    if not found:
        raise _fail(obj.where, path, f"no port: give {single} or {single}s ('*' for any)")
    return tuple(found)


# --------------------------------------------------------------------------- resources


def parse_nsg(raw: object, *, where: str, path: str = "") -> NetworkSecurityGroup:
    """An NSG with its rules; Azure's default rules are synthesised when the input omits them."""
    return _nsg(_Obj(raw, where=where, path=path, what="a network security group"))


def _nsg(obj: _Obj) -> NetworkSecurityGroup:
    name, resource_id = _name_and_id(obj, "network security group")
    rules, unreadable = _custom_rules(obj)
    defaults = _default_rules(obj)
    return NetworkSecurityGroup(
        id=resource_id,
        name=name,
        location=obj.text("location"),
        tags=_tags(obj),
        security_rules=rules,
        default_rules=defaults or DEFAULT_RULES,
        subnet_ids=obj.ref_ids("subnets"),
        nic_ids=obj.ref_ids("networkInterfaces"),
        etag=obj.text("etag") or None,
        unreadable_rules=unreadable,
    )


def unreadable_nsg(raw: object, *, where: str, error: InputError) -> NetworkSecurityGroup:
    """What stands for an NSG ARM returned but this module cannot read (``error`` says why).

    Its id, name, tags and attachments are read where they can be, so it is
    still found, reported and counted in the flows through it. Its rules are
    the two extremes of what it might do: denying everything
    (``security_rules``) and, as its one "unreadable rule" per direction,
    allowing everything; the engine judges both. It has no etag, so nothing
    is ever written to it.
    """
    fields: Mapping[str, object] = raw if isinstance(raw, Mapping) else {}
    props = fields.get("properties")
    props = props if isinstance(props, Mapping) else {}
    resource_id = str(fields.get("id") or where)
    name = str(fields.get("name") or resource_id.rstrip("/").rsplit("/", 1)[-1])
    tags = fields.get("tags")
    reason = str(error)
    rules = [
        build_rule(
            name=f"unreadable-{access.value.lower()}-all-{direction.value.lower()}",
            priority=priority,
            direction=direction,
            access=access,
            protocol=Protocol.ANY,
            sources=(AnyAddress(),),
            destinations=(AnyAddress(),),
            source_ports=(ANY_PORT,),
            destination_ports=(ANY_PORT,),
            description=reason,
            id=None,
            is_default=False,
        )
        for access, priority in ((Access.DENY, MAX_CUSTOM_PRIORITY), (Access.ALLOW, MIN_CUSTOM_PRIORITY))
        for direction in Direction
    ]
    return NetworkSecurityGroup(
        id=resource_id,
        name=name,
        location=str(fields.get("location") or ""),
        tags={str(k): v for k, v in tags.items() if isinstance(v, str)} if isinstance(tags, Mapping) else {},
        security_rules=tuple(r for r in rules if r.access is Access.DENY),
        default_rules=DEFAULT_RULES,
        subnet_ids=_ids_in(props.get("subnets")),
        nic_ids=_ids_in(props.get("networkInterfaces")),
        unreadable_rules=tuple(UnreadableRule(widest=r, reason=reason) for r in rules if r.access is Access.ALLOW),
        unreadable=reason,
    )


def _ids_in(refs: object) -> tuple[str, ...]:
    """The string ``id`` of each reference in a list, skipping what is not one."""
    if not isinstance(refs, list):
        return ()
    return tuple(r["id"] for r in refs if isinstance(r, Mapping) and isinstance(r.get("id"), str) and r["id"])


def _rule_items(obj: _Obj, name: str) -> tuple[str, list[object]]:
    path, value = obj.get(name)
    if value is None:
        return path, []
    if not isinstance(value, list):
        raise _fail(obj.where, path, f"expected a list, not {_kind(value)}")
    return path, value


def _custom_rules(obj: _Obj) -> tuple[tuple[SecurityRule, ...], tuple[UnreadableRule, ...]]:
    """``securityRules``: those read, and those ARM accepts but nobody can read (each with its reason)."""
    path, items = _rule_items(obj, "securityRules")
    rules: list[SecurityRule] = []
    unreadable: list[UnreadableRule] = []
    every: list[SecurityRule] = []
    for i, item in enumerate(items):
        rule, unknown = _rule(item, where=obj.where, path=_join(path, i), default=False)
        every.append(rule)
        if unknown:
            reasons = "; ".join(f"{p.rsplit('.', 1)[-1]}: {reason}" for p, reason in unknown)
            reasons += " (ARM documents IP addresses, CIDRs, service tags and '*')"
            unreadable.append(UnreadableRule(widest=rule, reason=reasons))
        else:
            rules.append(rule)
    _check_unique(every, obj.where, path)
    return tuple(rules), tuple(unreadable)


def _default_rules(obj: _Obj) -> tuple[SecurityRule, ...]:
    path, items = _rule_items(obj, "defaultSecurityRules")
    return tuple(parse_rule(item, where=obj.where, path=_join(path, i), default=True) for i, item in enumerate(items))


def _check_unique(rules: list[SecurityRule], where: str, path: str) -> None:
    """ARM never holds two rules of one name, or of one priority and direction: such input is not an NSG."""
    if len({r.name.lower() for r in rules}) == len({(r.direction, r.priority) for r in rules}) == len(rules):
        return  # the common case, in one pass each; the loop below finds the culprit otherwise
    names: dict[str, SecurityRule] = {}
    slots: dict[tuple[Direction, int], SecurityRule] = {}
    for i, rule in enumerate(rules):
        if names.setdefault(rule.name.lower(), rule) is not rule:
            raise _fail(
                where, _join(path, i), f"a second rule named {rule.name!r} (ARM rule names are unique, ignoring case)"
            )
        holder = slots.setdefault((rule.direction, rule.priority), rule)
        if holder is not rule:
            raise _fail(
                where,
                _join(path, i),
                f"rule {rule.name!r} shares priority {rule.priority} {rule.direction.value} with {holder.name!r} "
                "(ARM refuses this: SecurityRuleConflict)",
            )


def _tags(obj: _Obj) -> dict[str, str]:
    path, value = obj.get("tags")
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _fail(obj.where, path, f"tags must be an object, not {_kind(value)}")
    tags: dict[str, str] = {}
    for key, tag_value in value.items():
        if not isinstance(tag_value, str):
            raise _fail(obj.where, _join(path, str(key)), f"a tag value must be a string, not {_kind(tag_value)}")
        tags[str(key)] = tag_value
    return tags


def parse_subnet(raw: object, *, where: str, path: str = "") -> Subnet:
    """A subnet (inline in a VNet, or ``az network vnet subnet show``)."""
    return _subnet(_Obj(raw, where=where, path=path, what="a subnet"))


def _subnet(obj: _Obj) -> Subnet:
    where = obj.where
    name, resource_id = _name_and_id(obj, "subnet")
    if "/subnets/" not in resource_id.lower():
        raise obj.fail("id", f"{resource_id!r} is not a subnet id (.../virtualNetworks/<vnet>/subnets/<name>)")
    endpoints: list[str] = []
    for item_path, item in obj.items("serviceEndpoints"):
        endpoint = _Obj(item, where=where, path=item_path, what="a service endpoint")
        endpoints.append(endpoint.text("service", required=True))
    delegations: list[str] = []
    for item_path, item in obj.items("delegations"):
        delegation = _Obj(item, where=where, path=item_path, what="a delegation")
        service = delegation.text("serviceName")
        if service:
            delegations.append(service)
    return Subnet(
        id=_subnet_id(resource_id),
        name=name,
        address_prefixes=_prefix_list(obj, "addressPrefix", "addressPrefixes"),
        nsg_id=obj.ref_id("networkSecurityGroup"),
        service_endpoints=tuple(endpoints),
        delegations=tuple(delegations),
    )


def _subnet_id(resource_id: str) -> str:
    # Keep the casing ARM gave but make `Subnet.vnet_id` (a case-sensitive split) work
    # on ids spelt `/Subnets/`.
    index = resource_id.lower().rfind("/subnets/")
    return resource_id[:index] + "/subnets/" + resource_id[index + len("/subnets/") :]


def parse_vnet(raw: object, *, where: str, path: str = "") -> VirtualNetwork:
    """A virtual network with its address space and inline subnets."""
    return _vnet(_Obj(raw, where=where, path=path, what="a virtual network"))


def _vnet(obj: _Obj) -> VirtualNetwork:
    where = obj.where
    name, resource_id = _name_and_id(obj, "virtual network")
    space: tuple[IPNetwork, ...] = ()
    space_path, space_value = obj.get("addressSpace")
    if space_value is not None:
        space = _prefix_list(
            _Obj(space_value, where=where, path=space_path, what="an address space"), "addressPrefix", "addressPrefixes"
        )
    subnets = tuple(parse_subnet(item, where=where, path=p) for p, item in obj.items("subnets"))
    return VirtualNetwork(id=resource_id, name=name, address_space=space, subnets=subnets)


def parse_nic(raw: object, *, where: str, path: str = "") -> NetworkInterface:
    """A NIC: its NSG, and per IP configuration the subnet, private IP and ASGs."""
    return _nic(_Obj(raw, where=where, path=path, what="a network interface"))


def _nic(obj: _Obj) -> NetworkInterface:
    where = obj.where
    name, resource_id = _name_and_id(obj, "network interface")
    subnet_ids: list[str] = []
    ips: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
    asg_ids: list[str] = []
    for item_path, item in obj.items("ipConfigurations"):
        config = _Obj(item, where=where, path=item_path, what="an IP configuration")
        subnet_id = config.ref_id("subnet")
        if subnet_id and subnet_id.lower() not in {s.lower() for s in subnet_ids}:
            subnet_ids.append(subnet_id)
        ip_path, ip_value = config.get("privateIPAddress")
        if ip_value not in (None, ""):
            try:
                ips.append(ipaddress.ip_address(str(ip_value)))
            except ValueError:
                raise _fail(where, ip_path, f"not an IP address: {ip_value!r}") from None
        for asg_id in config.ref_ids("applicationSecurityGroups"):
            if asg_id.lower() not in {a.lower() for a in asg_ids}:
                asg_ids.append(asg_id)
    return NetworkInterface(
        id=resource_id,
        name=name,
        nsg_id=obj.ref_id("networkSecurityGroup"),
        subnet_ids=tuple(subnet_ids),
        private_ips=tuple(ips),
        asg_ids=tuple(asg_ids),
        tags=_tags(obj),
    )


# --------------------------------------------------------------------------- documents


def parse_document(obj: object, *, where: str) -> Inventory:
    """Everything in one decoded JSON document (object, list or ``{"value": [...]}``).

    Resources of other types (a VM in ``az resource list``) are skipped; a
    document with nothing this tool understands is an error, as is a lone
    security rule (the evaluation needs the whole NSG).
    """
    nsgs: list[NetworkSecurityGroup] = []
    vnets: list[VirtualNetwork] = []
    subnets: list[Subnet] = []
    nics: list[NetworkInterface] = []
    skipped: list[str] = []
    seen_any = False
    for path, item in _resources(obj, where=where, path=""):
        seen_any = True
        resource = _Obj(item, where=where, path=path, what="a resource")
        kind = _detect(resource)
        if kind == "nsg":
            nsgs.append(_nsg(resource))
        elif kind == "vnet":
            vnets.append(_vnet(resource))
        elif kind == "subnet":
            subnets.append(_subnet(resource))
        elif kind == "nic":
            nics.append(_nic(resource))
        elif kind == "rule":
            raise _fail(
                where,
                path,
                "a security rule on its own cannot be checked; export the whole NSG (az network nsg show)",
            )
        else:
            skipped.append(kind)
    if seen_any and not (nsgs or vnets or subnets or nics):
        found = ", ".join(sorted(set(skipped)))
        raise _fail(where, "", f"holds no NSG, virtual network, subnet or network interface (found: {found})")
    inventory = Inventory(nsgs=tuple(nsgs), vnets=tuple(vnets), nics=tuple(nics))
    return merge_inventories(inventory, _vnets_of(subnets))


def _resources(obj: object, *, where: str, path: str) -> Iterator[tuple[str, object]]:
    """The resource objects of a document, with their paths (lists and list responses unwrapped)."""
    if isinstance(obj, list):
        for i, item in enumerate(obj):
            yield from _resources(item, where=where, path=_join(path, i))
        return
    if isinstance(obj, Mapping):
        value = obj.get("value")
        if (
            isinstance(value, list)
            and not obj.get("id")
            and set(obj) <= {"value", "nextLink", "next_link", "@odata.nextLink"}
        ):
            yield from _resources(value, where=where, path=_join(path, "value"))
            return
        yield path, obj
        return
    raise _fail(where, path, f"expected a JSON object or list of resources, not {_kind(obj)}")


def _detect(obj: _Obj) -> str:
    """``nsg``, ``vnet``, ``subnet``, ``nic`` or ``rule`` by ``type``, else by shape; else the type seen."""
    type_value = obj.value("type")
    if isinstance(type_value, str) and type_value:
        kind = {
            _NSG_TYPE: "nsg",
            _VNET_TYPE: "vnet",
            _SUBNET_TYPE: "subnet",
            _NIC_TYPE: "nic",
        }.get(type_value.lower())
        if kind is not None:
            return kind
        if type_value.lower() in _RULE_TYPES:
            return "rule"
        return type_value
    if obj.has("securityRules") or obj.has("defaultSecurityRules"):
        return "nsg"
    if obj.has("addressSpace"):
        return "vnet"
    if obj.has("ipConfigurations"):
        return "nic"
    if (obj.has("addressPrefix") or obj.has("addressPrefixes")) and "/subnets/" in obj.text("id").lower():
        return "subnet"
    if obj.has("priority") and obj.has("direction"):
        return "rule"
    if "/networksecuritygroups/" in obj.text("id").lower() and "/securityrules/" not in obj.text("id").lower():
        return "nsg"
    raise _fail(
        obj.where,
        obj.path,
        "cannot tell what this object is: expected an NSG, virtual network, subnet or network interface",
    )


def _vnets_of(subnets: list[Subnet]) -> Inventory:
    """Standalone subnets grouped into the VNets their ids name."""
    groups: dict[str, list[Subnet]] = {}
    ids: dict[str, str] = {}
    for subnet in subnets:
        vnet_id = subnet.vnet_id
        groups.setdefault(vnet_id.lower(), []).append(subnet)
        ids.setdefault(vnet_id.lower(), vnet_id)
    return Inventory(
        vnets=tuple(
            VirtualNetwork(id=ids[key], name=ids[key].rstrip("/").rsplit("/", 1)[-1], subnets=tuple(members))
            for key, members in groups.items()
        )
    )


def merge_inventories(*inventories: Inventory) -> Inventory:
    """One inventory from several, each resource once (ids compared case-insensitively).

    A later NSG or NIC with the same id replaces an earlier one (the newer
    export wins); VNets of the same id are merged: address spaces joined,
    subnets by id with the later one winning.
    """
    nsgs: dict[str, NetworkSecurityGroup] = {}
    nics: dict[str, NetworkInterface] = {}
    vnets: dict[str, VirtualNetwork] = {}
    for inventory in inventories:
        for nsg in inventory.nsgs:
            nsgs[nsg.key] = nsg
        for nic in inventory.nics:
            nics[nic.key] = nic
        for vnet in inventory.vnets:
            known = vnets.get(vnet.key)
            vnets[vnet.key] = vnet if known is None else _merge_vnet(known, vnet)
    return Inventory(nsgs=tuple(nsgs.values()), vnets=tuple(vnets.values()), nics=tuple(nics.values()))


def _merge_vnet(first: VirtualNetwork, second: VirtualNetwork) -> VirtualNetwork:
    space = first.address_space + tuple(p for p in second.address_space if p not in first.address_space)
    subnets = {s.key: s for s in first.subnets}
    for subnet in second.subnets:
        subnets[subnet.key] = subnet
    # A VNet derived from standalone subnets has no address space; keep the real one's name.
    name = first.name if first.address_space or not second.address_space else second.name
    return replace(first, name=name, address_space=space, subnets=tuple(subnets.values()))
