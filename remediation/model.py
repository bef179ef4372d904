"""The NSG model: what Azure holds, as frozen, typed values.

Built from raw JSON only by :mod:`remediation.parse`; everything downstream
works on these types and never sees a raw dict. Serialising back to the ARM
REST form (for plans and PUT bodies) lives here too, so a rule read and
written again keeps the text the operator gave it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeAlias

IPNetwork: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network

MIN_CUSTOM_PRIORITY = 100
MAX_CUSTOM_PRIORITY = 4096
MAX_PORT = 65535


class Direction(StrEnum):
    INBOUND = "Inbound"
    OUTBOUND = "Outbound"


class Access(StrEnum):
    ALLOW = "Allow"
    DENY = "Deny"


class Protocol(StrEnum):
    """Protocols an NSG rule may name; ``ANY`` is ARM's ``*``."""

    TCP = "Tcp"
    UDP = "Udp"
    ICMP = "Icmp"
    ESP = "Esp"
    AH = "Ah"
    ANY = "*"


@dataclass(frozen=True, slots=True)
class PortRange:
    """An inclusive port range; ``0-65535`` is ARM's ``*``."""

    low: int
    high: int

    def __post_init__(self) -> None:
        if not (0 <= self.low <= self.high <= MAX_PORT):
            raise ValueError(f"invalid port range {self.low}-{self.high}")

    @property
    def is_any(self) -> bool:
        return self.low == 0 and self.high == MAX_PORT

    def to_arm(self) -> str:
        if self.is_any:
            return "*"
        if self.low == self.high:
            return str(self.low)
        return f"{self.low}-{self.high}"


ANY_PORT = PortRange(0, MAX_PORT)


@dataclass(frozen=True, slots=True)
class AnyAddress:
    """ARM's ``*`` (also written ``0.0.0.0/0`` by some, which stays a Prefix)."""

    def to_arm(self) -> str:
        return "*"


@dataclass(frozen=True, slots=True)
class Prefix:
    """A literal IPv4/IPv6 address or CIDR; ``text`` keeps the operator's spelling.

    Hashed on the text only: ``ipaddress`` hashing is slow Python and the
    evaluator looks prefixes up in its caches many times per NSG. Equality
    still compares the network, so this only costs a collision for two
    spellings of one prefix. A prefix built without text (a subnet's) hashes
    its network: otherwise every such prefix would collide, and a cache of
    thousands of subnets would turn into a linear scan.
    """

    network: IPNetwork = field(hash=False)
    text: str = ""

    def __hash__(self) -> int:
        return hash(self.text) if self.text else hash(self.network)

    def to_arm(self) -> str:
        return self.text or str(self.network)


@dataclass(frozen=True, slots=True)
class ServiceTag:
    """A service tag such as ``Storage``, ``Storage.WestEurope``, ``Internet``."""

    name: str

    @property
    def base(self) -> str:
        """The global tag: ``Storage`` for ``Storage.WestEurope``."""
        return self.name.split(".", 1)[0]

    @property
    def region(self) -> str | None:
        parts = self.name.split(".", 1)
        return parts[1] if len(parts) == 2 else None

    def to_arm(self) -> str:
        return self.name


@dataclass(frozen=True, slots=True)
class Asg:
    """An application security group, by resource id (compared case-insensitively)."""

    id: str

    @property
    def key(self) -> str:
        return self.id.lower()

    def to_arm(self) -> str:
        return self.id


Address: TypeAlias = AnyAddress | Prefix | ServiceTag | Asg


@dataclass(frozen=True, slots=True)
class SecurityRule:
    """One NSG rule, custom or default, with ARM's singular/plural fields merged.

    ``sources``/``destinations`` hold every prefix, tag or ASG of the rule
    (ARM keeps ASGs in separate fields; here they are one union, which is how
    Azure matches them).
    """

    name: str
    priority: int
    direction: Direction
    access: Access
    protocol: Protocol
    sources: tuple[Address, ...]
    destinations: tuple[Address, ...]
    source_ports: tuple[PortRange, ...] = (ANY_PORT,)
    destination_ports: tuple[PortRange, ...] = (ANY_PORT,)
    description: str = ""
    id: str | None = None
    is_default: bool = False

    def to_arm(self) -> dict[str, Any]:
        """The ARM REST form (``{"name", "properties": {...}}``) of this rule."""
        props: dict[str, Any] = {
            "protocol": self.protocol.value,
            "access": self.access.value,
            "priority": self.priority,
            "direction": self.direction.value,
        }
        if self.description:
            props["description"] = self.description
        _put_addresses(props, "source", self.sources)
        _put_addresses(props, "destination", self.destinations)
        _put_ports(props, "sourcePortRange", self.source_ports)
        _put_ports(props, "destinationPortRange", self.destination_ports)
        body: dict[str, Any] = {"name": self.name, "properties": props}
        if self.id:
            body["id"] = self.id
        return body


def _put_addresses(props: dict[str, Any], side: str, addresses: tuple[Address, ...]) -> None:
    asgs = [a for a in addresses if isinstance(a, Asg)]
    others = [a.to_arm() for a in addresses if not isinstance(a, Asg)]
    if asgs:
        props[f"{side}ApplicationSecurityGroups"] = [{"id": a.id} for a in asgs]
    if len(others) == 1:
        props[f"{side}AddressPrefix"] = others[0]
    elif others:
        props[f"{side}AddressPrefixes"] = others


def _put_ports(props: dict[str, Any], field_name: str, ports: tuple[PortRange, ...]) -> None:
    if len(ports) == 1:
        props[field_name] = ports[0].to_arm()
    else:
        props[field_name + "s"] = [p.to_arm() for p in ports]


# SecurityRule(...) for parse's hot path, which builds tens of thousands of rules
# per sweep. A frozen dataclass's generated __init__ writes every field through
# object.__setattr__; writing the slots directly builds the same rule in about
# a third of the time. Nothing is skipped: SecurityRule has no __post_init__
# (tests/test_parse.py checks that, and that both build equal rules).
_new_object = object.__new__
_slots: dict[str, Any] = {name: SecurityRule.__dict__[name].__set__ for name in SecurityRule.__slots__}
_set_name = _slots["name"]
_set_priority = _slots["priority"]
_set_direction = _slots["direction"]
_set_access = _slots["access"]
_set_protocol = _slots["protocol"]
_set_sources = _slots["sources"]
_set_destinations = _slots["destinations"]
_set_source_ports = _slots["source_ports"]
_set_destination_ports = _slots["destination_ports"]
_set_description = _slots["description"]
_set_id = _slots["id"]
_set_is_default = _slots["is_default"]


def build_rule(
    name: str,
    priority: int,
    direction: Direction,
    access: Access,
    protocol: Protocol,
    sources: tuple[Address, ...],
    destinations: tuple[Address, ...],
    source_ports: tuple[PortRange, ...],
    destination_ports: tuple[PortRange, ...],
    description: str,
    id: str | None,
    is_default: bool,
) -> SecurityRule:
    """``SecurityRule(...)`` with every field given, built faster (see above)."""
    rule: SecurityRule = _new_object(SecurityRule)
    _set_name(rule, name)
    _set_priority(rule, priority)
    _set_direction(rule, direction)
    _set_access(rule, access)
    _set_protocol(rule, protocol)
    _set_sources(rule, sources)
    _set_destinations(rule, destinations)
    _set_source_ports(rule, source_ports)
    _set_destination_ports(rule, destination_ports)
    _set_description(rule, description)
    _set_id(rule, id)
    _set_is_default(rule, is_default)
    return rule


@dataclass(frozen=True, slots=True)
class UnreadableRule:
    """A rule ARM accepted but whose meaning the guard cannot know (``sourceAddressPrefix: "789"``).

    ``widest`` is the rule with each address it cannot read taken as ``*``:
    whatever ARM makes of it, the rule matches no more than ``widest`` and no
    less than nothing, so judging both readings guesses nothing as fine.
    """

    widest: SecurityRule
    reason: str

    @property
    def name(self) -> str:
        return self.widest.name


@dataclass(frozen=True, slots=True)
class NetworkSecurityGroup:
    """An NSG as read from ARM: custom rules, default rules and attachments.

    ``unreadable_rules`` are custom rules ARM holds that the guard cannot read
    (kept apart from ``security_rules``); ``unreadable`` says why the whole NSG
    could not be read, when it could not (its rules then stand for the widest
    and narrowest readings, see :func:`remediation.parse.unreadable_nsg`).
    """

    id: str
    name: str
    location: str = ""
    tags: Mapping[str, str] = field(default_factory=dict, hash=False)
    security_rules: tuple[SecurityRule, ...] = ()
    default_rules: tuple[SecurityRule, ...] = ()
    subnet_ids: tuple[str, ...] = ()
    nic_ids: tuple[str, ...] = ()
    etag: str | None = None
    unreadable_rules: tuple[UnreadableRule, ...] = ()
    unreadable: str = ""

    @property
    def key(self) -> str:
        """Resource ids are case-insensitive in ARM; compare on this."""
        return self.id.lower()

    @property
    def judgeable(self) -> bool:
        """False when part of this NSG (or all of it) could not be read."""
        return not (self.unreadable or self.unreadable_rules)

    @property
    def subscription_id(self) -> str:
        return resource_id_part(self.id, "subscriptions")

    @property
    def resource_group(self) -> str:
        return resource_id_part(self.id, "resourcegroups")

    def rules(self, direction: Direction) -> tuple[SecurityRule, ...]:
        """Custom then default rules of one direction, in evaluation order."""
        chosen = [r for r in self.security_rules + self.default_rules if r.direction is direction]
        return tuple(sorted(chosen, key=lambda r: r.priority))


@dataclass(frozen=True, slots=True)
class Subnet:
    id: str
    name: str
    address_prefixes: tuple[IPNetwork, ...] = ()
    nsg_id: str | None = None
    service_endpoints: tuple[str, ...] = ()
    #: Services the subnet is delegated to (``Microsoft.Netapp/volumes``): it holds no cluster nodes.
    delegations: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return self.id.lower()

    @property
    def vnet_id(self) -> str:
        return self.id.rsplit("/subnets/", 1)[0]


@dataclass(frozen=True, slots=True)
class VirtualNetwork:
    id: str
    name: str
    address_space: tuple[IPNetwork, ...] = ()
    subnets: tuple[Subnet, ...] = ()

    @property
    def key(self) -> str:
        return self.id.lower()


@dataclass(frozen=True, slots=True)
class NetworkInterface:
    id: str
    name: str
    nsg_id: str | None = None
    subnet_ids: tuple[str, ...] = ()
    private_ips: tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, ...] = ()
    asg_ids: tuple[str, ...] = ()
    #: The NIC's tags: ``cyclecloud-lockdown=cyclecloud`` marks the CycleCloud server's NIC.
    tags: Mapping[str, str] = field(default_factory=dict, hash=False)

    @property
    def key(self) -> str:
        return self.id.lower()


@dataclass(frozen=True, slots=True)
class Inventory:
    """Everything known about one scope: NSGs, VNets (with subnets) and NICs."""

    nsgs: tuple[NetworkSecurityGroup, ...] = ()
    vnets: tuple[VirtualNetwork, ...] = ()
    nics: tuple[NetworkInterface, ...] = ()

    @property
    def subnets(self) -> tuple[Subnet, ...]:
        return tuple(s for v in self.vnets for s in v.subnets)

    def merged(self, other: Inventory) -> Inventory:
        return Inventory(self.nsgs + other.nsgs, self.vnets + other.vnets, self.nics + other.nics)


def resource_id_part(resource_id: str, segment: str) -> str:
    """The value after ``/segment/`` in an ARM id (case-insensitive), or ``""``."""
    parts = resource_id.strip("/").split("/")
    for i in range(0, len(parts) - 1):
        if parts[i].lower() == segment.lower():
            return parts[i + 1]
    return ""


def _default(
    name: str, priority: int, direction: Direction, access: Access, src: Address, dst: Address
) -> SecurityRule:
    return SecurityRule(
        name=name,
        priority=priority,
        direction=direction,
        access=access,
        protocol=Protocol.ANY,
        sources=(src,),
        destinations=(dst,),
        is_default=True,
    )


_ANY = AnyAddress()
_VNET = ServiceTag("VirtualNetwork")

#: Azure's six default rules; they cannot be changed, so evaluation uses these.
DEFAULT_RULES: tuple[SecurityRule, ...] = (
    _default("AllowVnetInBound", 65000, Direction.INBOUND, Access.ALLOW, _VNET, _VNET),
    _default(
        "AllowAzureLoadBalancerInBound", 65001, Direction.INBOUND, Access.ALLOW, ServiceTag("AzureLoadBalancer"), _ANY
    ),
    _default("DenyAllInBound", 65500, Direction.INBOUND, Access.DENY, _ANY, _ANY),
    _default("AllowVnetOutBound", 65000, Direction.OUTBOUND, Access.ALLOW, _VNET, _VNET),
    _default("AllowInternetOutBound", 65001, Direction.OUTBOUND, Access.ALLOW, _ANY, ServiceTag("Internet")),
    _default("DenyAllOutBound", 65500, Direction.OUTBOUND, Access.DENY, _ANY, _ANY),
)
