"""Azure NSG evaluation over whole sets of flows, as Azure does it.

A flow is (protocol, source address, source port, destination address,
destination port). Sets of flows are unions of disjoint *cubes*: one bit mask
per dimension over a finite *universe* of atoms. The universe is cut from
everything the evaluation mentions (every prefix and port boundary, every
service tag and ASG), so two addresses fall in the same atom only if no rule
could tell them apart: the masks are exact, not sampled.

Semantics honoured (see ../shared/MISSION.md):

* custom rules 100-4096 then the six default rules; lower priority first;
  the first rule matching a flow decides it;
* inbound traffic passes the subnet NSG then the NIC NSG, outbound the NIC
  NSG then the subnet NSG; both must allow; no NSG at a level allows all;
* protocols Tcp, Udp, Icmp, Esp, Ah and ``*`` (which also covers every other
  IP protocol); port conditions apply to TCP and UDP only, so a rule with
  specific ports never matches ICMP, ESP or AH;
* service tags by :mod:`remediation.tags` (containment or exact), ASGs as
  opaque members of ``VirtualNetwork`` unless their members are known.

Every verdict names the rules that decided it.
"""

from __future__ import annotations

import ipaddress
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from operator import attrgetter

from remediation.model import (
    ANY_PORT,
    DEFAULT_RULES,
    MAX_PORT,
    Access,
    Address,
    AnyAddress,
    Asg,
    Direction,
    IPNetwork,
    NetworkSecurityGroup,
    PortRange,
    Prefix,
    Protocol,
    SecurityRule,
    ServiceTag,
)
from remediation.tags import (
    _NOT_AZURE_SERVICES,
    CONTAINMENT,
    NON_INTERNET_TAGS,
    TagModel,
    canonical_tag,
    tag_base,
    tag_contains,
    tag_region,
)

# --- protocols --------------------------------------------------------------

_TCP, _UDP, _ICMP, _ESP, _AH, _OTHER = 1, 2, 4, 8, 16, 32
ALL_PROTOCOLS = 63
_PORTED = _TCP | _UDP
_PROTOCOL_BITS: Mapping[Protocol, int] = {
    Protocol.TCP: _TCP,
    Protocol.UDP: _UDP,
    Protocol.ICMP: _ICMP,
    Protocol.ESP: _ESP,
    Protocol.AH: _AH,
    Protocol.ANY: ALL_PROTOCOLS,
}
_PROTOCOL_NAMES = ((_TCP, "TCP"), (_UDP, "UDP"), (_ICMP, "ICMP"), (_ESP, "ESP"), (_AH, "AH"), (_OTHER, "other"))

# --- the address line: IPv4 at [0, 2**32), IPv6 above it ---------------------

_V6_OFFSET = 1 << 32
_LINE_END = _V6_OFFSET + (1 << 128)
_PORT_END = MAX_PORT + 1

#: Address space that is not "Internet" even when no VNet says so.
_NOT_PUBLIC = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "224.0.0.0/4",
        "240.0.0.0/4",
    )
)
_PUBLIC_V6 = ipaddress.ip_network("2000::/3")

Interval = tuple[int, int]  # [low, high) on the address line


def _interval(net: IPNetwork) -> Interval:
    # 1 << host bits, not net.num_addresses: the same number, without ipaddress's slow path.
    if isinstance(net, ipaddress.IPv4Network):
        low = int(net.network_address)
        return low, low + (1 << (32 - net.prefixlen))
    low = int(net.network_address) + _V6_OFFSET
    return low, low + (1 << (128 - net.prefixlen))


def _subtract(intervals: Sequence[Interval], holes: Sequence[Interval]) -> list[Interval]:
    result = list(intervals)
    for h_low, h_high in holes:
        nxt: list[Interval] = []
        for low, high in result:
            if h_high <= low or high <= h_low:
                nxt.append((low, high))
                continue
            if low < h_low:
                nxt.append((low, h_low))
            if h_high < high:
                nxt.append((h_high, high))
        result = nxt
    return result


def _regional_parts(atoms: set[str], tags: TagModel) -> set[str]:
    """Atoms for the regional parts of global service tags that a regional AzureCloud tag cuts.

    ``AzureCloud.WestEurope`` holds West Europe's part of every Azure service
    tag, so it meets ``Storage`` in ``Storage.WestEurope``. Without an atom
    for that part, the opaque ``Storage`` atom would lie wholly outside
    ``AzureCloud.WestEurope`` and a rule on one would never match flows to
    the other.
    """
    regions = {tag_region(a) for a in atoms if tag_base(a) == "azurecloud"} - {None}
    parts: set[str] = set()
    for atom in atoms:
        base = tag_base(atom)
        if atom.startswith("asg:") or tag_region(atom) is not None or base in _NOT_AZURE_SERVICES:
            continue
        for region in regions:
            part = f"{base}.{region}"
            if tags.prefixes_of(part) is None:
                parts.add(part)
    return parts


#: The public address line before any VNet's prefixes are taken out.
_PUBLIC = _subtract([(0, _V6_OFFSET), _interval(_PUBLIC_V6)], [_interval(n) for n in _NOT_PUBLIC])


@dataclass(frozen=True, slots=True)
class EvaluationContext:
    """What the tags mean here: tag data, the VNet's address space, ASG members."""

    tags: TagModel = CONTAINMENT
    vnet_prefixes: tuple[IPNetwork, ...] = ()
    asg_members: Mapping[str, tuple[IPNetwork, ...]] = field(default_factory=dict, hash=False)


DEFAULT_CONTEXT = EvaluationContext()


@dataclass(frozen=True, slots=True)
class Flows:
    """A query: every flow of ``protocol`` from ``sources`` to ``destinations`` on the ports."""

    protocol: Protocol
    sources: tuple[Address, ...]
    destinations: tuple[Address, ...]
    destination_ports: tuple[PortRange, ...] = (ANY_PORT,)
    source_ports: tuple[PortRange, ...] = (ANY_PORT,)

    def describe(self) -> str:
        proto = "any protocol" if self.protocol is Protocol.ANY else self.protocol.value.upper()
        ports = ",".join(p.to_arm() for p in self.destination_ports)
        src = ",".join(a.to_arm() for a in self.sources)
        dst = ",".join(a.to_arm() for a in self.destinations)
        return f"{proto}/{ports} from {src} to {dst}"


Cube = tuple[int, int, int, int, int]  # protocol, source, source port, destination, destination port


class Universe:
    """The atoms of one evaluation: address and port segments, tags, ASGs.

    Build one per assessment from every rule, address and port it involves;
    FlowSets of different universes do not mix.
    """

    def __init__(
        self,
        ctx: EvaluationContext,
        addresses: Iterable[Address],
        ports: Iterable[PortRange],
    ) -> None:
        self.ctx = ctx
        # Deduplicated by identity, not equality: parsing shares one object per spelling,
        # and hashing a Prefix is Python code; a duplicate only adds the same points again.
        addresses = {id(a): a for a in addresses}.values()
        atoms: set[str] = {"internet", "virtualnetwork", "azureloadbalancer"}
        self._exact_tags: dict[str, tuple[IPNetwork, ...]] = {}
        points: set[int] = {0, _V6_OFFSET, _LINE_END}
        prefixes: list[tuple[Prefix, Interval]] = []
        for addr in addresses:
            if isinstance(addr, ServiceTag):
                name = canonical_tag(addr.name).lower()
                exact = ctx.tags.prefixes_of(name)
                if exact is None or name in NON_INTERNET_TAGS:
                    atoms.add(name)
                else:
                    self._exact_tags[name] = exact
                    for net in exact:
                        points.update(_interval(net))
            elif isinstance(addr, Asg):
                members = ctx.asg_members.get(addr.key)
                if members is None:
                    atoms.add("asg:" + addr.key)
                else:
                    for net in members:
                        points.update(_interval(net))
            elif isinstance(addr, Prefix):
                low, high = interval = _interval(addr.network)
                points.add(low)
                points.add(high)
                prefixes.append((addr, interval))
        for net in ctx.vnet_prefixes:
            points.update(_interval(net))
        for members in ctx.asg_members.values():
            for net in members:
                points.update(_interval(net))
        self._public = _subtract(_PUBLIC, [_interval(n) for n in ctx.vnet_prefixes])
        for low, high in self._public:
            points.update((low, high))
        atoms |= _regional_parts(atoms, ctx.tags)
        self._atoms = sorted(atoms)
        self._atom_bit = {a: 1 << i for i, a in enumerate(self._atoms)}
        self._points = sorted(points)
        self._point_index = {p: i for i, p in enumerate(self._points)}
        self._seg_shift = len(self._atoms)
        self.all_atoms = (1 << len(self._atoms)) - 1
        self.all_addresses = (1 << (len(self._atoms) + len(self._points) - 1)) - 1
        self._v4_all = self._intervals_mask([(0, _V6_OFFSET)])
        self._v6_all = self._intervals_mask([(_V6_OFFSET, _LINE_END)])
        port_points = {0, _PORT_END}
        for p in {id(p): p for p in ports}.values():  # by identity, as the addresses
            port_points.add(p.low)
            port_points.add(p.high + 1)
        port_points.update((ANY_PORT.low, ANY_PORT.high + 1))
        self._port_points = sorted(port_points)
        self.all_ports = (1 << (len(self._port_points) - 1)) - 1
        # Masks by object id, the object kept alongside so its id stays unique: rules share
        # their address and port objects, and hashing those dataclasses is Python code.
        self._address_cache: dict[int, tuple[Address, int]] = {}
        self._port_cache: dict[int, tuple[PortRange, int]] = {}
        # A prefix's mask is its run of segments: known now, without a second lookup later.
        # (A /0 also covers every tag and ASG: address_mask computes that one.)
        index, shift = self._point_index, self._seg_shift
        for prefix, (low, high) in prefixes:
            if high - low < (_V6_OFFSET if low < _V6_OFFSET else _LINE_END - _V6_OFFSET):  # not a /0
                i = index[low]
                self._address_cache[id(prefix)] = (prefix, (((1 << (index[high] - i)) - 1) << i) << shift)
        # Rule cubes by object id (the rule is kept alongside, so its id stays unique):
        # a review evaluates the same rules many times, and hashing a rule costs more.
        self._rule_cache: dict[int, tuple[SecurityRule, Cube]] = {}
        self._order_cache: dict[tuple[int, Direction], tuple[tuple[SecurityRule, ...], tuple[SecurityRule, ...]]] = {}
        self._interned: dict[tuple[int, ...], tuple[SecurityRule, ...]] = {}
        self.everything: Cube = (ALL_PROTOCOLS, self.all_addresses, self.all_ports, self.all_addresses, self.all_ports)

    @classmethod
    def of(
        cls,
        ctx: EvaluationContext,
        rules: Iterable[SecurityRule] = (),
        flows: Iterable[Flows] = (),
        addresses: Iterable[Address] = (),
    ) -> Universe:
        """A universe for these rules (plus the default rules) and queries."""
        addr: list[Address] = list(addresses)
        ports: list[PortRange] = []
        for rule in (*rules, *DEFAULT_RULES):
            addr.extend(rule.sources)
            addr.extend(rule.destinations)
            ports.extend(rule.source_ports)
            ports.extend(rule.destination_ports)
        for f in flows:
            addr.extend(f.sources)
            addr.extend(f.destinations)
            ports.extend(f.source_ports)
            ports.extend(f.destination_ports)
        return cls(ctx, addr, ports)

    # -- masks -----------------------------------------------------------------

    def _intervals_mask(self, intervals: Iterable[Interval]) -> int:
        mask = 0
        index = self._point_index
        for low, high in intervals:
            i, j = index.get(low), index.get(high)
            if i is None or j is None:
                raise ValueError(f"interval {low}-{high} is not aligned with this universe")
            mask |= ((1 << (j - i)) - 1) << i
        return mask << self._seg_shift

    def address_mask(self, addr: Address) -> int:
        cached = self._address_cache.get(id(addr))
        if cached is None or cached[0] is not addr:
            cached = self._address_cache[id(addr)] = (addr, self._compute_address_mask(addr))
        return cached[1]

    def _compute_address_mask(self, addr: Address) -> int:
        if isinstance(addr, AnyAddress):
            return self.all_addresses
        if isinstance(addr, Prefix):
            net = addr.network
            if net.prefixlen == 0:
                # A /0 covers every tag and ASG: whatever they hold is some address.
                return (self._v4_all if net.version == 4 else self._v6_all) | self.all_atoms
            return self._intervals_mask([_interval(net)])
        if isinstance(addr, Asg):
            members = self.ctx.asg_members.get(addr.key)
            if members is None:
                return self._atom_bit["asg:" + addr.key]
            return self._intervals_mask(_interval(n) for n in members)
        return self._tag_mask(canonical_tag(addr.name).lower())

    def _tag_mask(self, name: str) -> int:
        if name == "virtualnetwork":
            mask = self._atom_bit["virtualnetwork"]
            mask |= self._intervals_mask(_interval(n) for n in self.ctx.vnet_prefixes)
            for atom, bit in self._atom_bit.items():
                if atom.startswith("asg:"):
                    mask |= bit
            for members in self.ctx.asg_members.values():
                mask |= self._intervals_mask(_interval(n) for n in members)
            return mask
        mask = 0
        for atom, bit in self._atom_bit.items():
            if not atom.startswith("asg:") and tag_contains(name, atom):
                mask |= bit
        for tag, nets in self._exact_tags.items():
            if tag_contains(name, tag):
                mask |= self._intervals_mask(_interval(n) for n in nets)
        if name == "internet":
            mask |= self._intervals_mask(self._public)
        return mask

    def port_mask(self, port: PortRange) -> int:
        cached = self._port_cache.get(id(port))
        if cached is None or cached[0] is not port:
            points = self._port_points
            i = bisect_left(points, port.low)
            j = bisect_left(points, port.high + 1)
            cached = self._port_cache[id(port)] = (port, ((1 << (j - i)) - 1) << i)
        return cached[1]

    def addresses_mask(self, addresses: Iterable[Address]) -> int:
        mask = 0
        for a in addresses:
            mask |= self.address_mask(a)
        return mask

    def ports_mask(self, ports: Iterable[PortRange]) -> int:
        mask = 0
        for p in ports:
            mask |= self.port_mask(p)
        return mask

    def cube(
        self,
        protocol: Protocol,
        sources: Iterable[Address],
        source_ports: Iterable[PortRange],
        destinations: Iterable[Address],
        destination_ports: Iterable[PortRange],
    ) -> Cube:
        sport = self.ports_mask(source_ports)
        dport = self.ports_mask(destination_ports)
        proto = _PROTOCOL_BITS[protocol]
        if sport != self.all_ports or dport != self.all_ports:
            # Ports exist only for TCP and UDP: a port condition cannot match ICMP, ESP, AH.
            proto &= _PORTED
        return (proto, self.addresses_mask(sources), sport, self.addresses_mask(destinations), dport)

    # -- flow sets -------------------------------------------------------------

    def flows(self, query: Flows) -> FlowSet:
        cube = self.cube(query.protocol, query.sources, query.source_ports, query.destinations, query.destination_ports)
        return FlowSet(self, (cube,) if _nonempty(cube) else ())

    def rule_cube(self, rule: SecurityRule) -> Cube:
        """The flows ``rule`` matches, as one cube (possibly empty), computed once per rule."""
        cached = self._rule_cache.get(id(rule))
        if cached is None or cached[0] is not rule:
            cube = self.cube(rule.protocol, rule.sources, rule.source_ports, rule.destinations, rule.destination_ports)
            cached = self._rule_cache[id(rule)] = (rule, cube)
        return cached[1]

    def ordered(self, custom: tuple[SecurityRule, ...], direction: Direction) -> tuple[SecurityRule, ...]:
        """:func:`ordered_rules`, remembered per rule list (a review asks many questions of one NSG)."""
        key = (id(custom), direction)
        cached = self._order_cache.get(key)
        if cached is None or cached[0] is not custom:
            ordered = ordered_rules(custom, direction)
            # One tuple per distinct ordering: a planned NSG whose inbound rules are those
            # read gets the very same tuple, so callers may key caches on its identity.
            ordered = self._interned.setdefault(tuple(map(id, ordered)), ordered)
            cached = self._order_cache[key] = (custom, ordered)
        return cached[1]

    def rule_flows(self, rule: SecurityRule) -> FlowSet:
        cube = self.rule_cube(rule)
        return FlowSet(self, (cube,) if _nonempty(cube) else ())

    def all_flows(self) -> FlowSet:
        return FlowSet(self, (self.everything,))

    def empty(self) -> FlowSet:
        return FlowSet(self, ())

    # -- describing masks for people ------------------------------------------

    def describe_ports(self, mask: int) -> str:
        if mask == self.all_ports:
            return "*"
        ranges: list[str] = []
        points = self._port_points
        bits = bin(mask)[:1:-1]  # bit i at index i
        i, n = 0, len(bits)
        while i < n:
            if bits[i] == "1":
                start = i
                while i < n and bits[i] == "1":
                    i += 1
                low, high = points[start], points[i] - 1
                ranges.append(str(low) if low == high else f"{low}-{high}")
            else:
                i += 1
        return ",".join(ranges)


def describe_protocols(mask: int) -> str:
    if mask == ALL_PROTOCOLS:
        return "*"
    return ",".join(name for bit, name in _PROTOCOL_NAMES if mask & bit)


def _nonempty(c: Cube) -> bool:
    return bool(c[0] and c[1] and c[2] and c[3] and c[4])


def _intersect(a: Cube, b: Cube) -> Cube | None:
    c = (a[0] & b[0], a[1] & b[1], a[2] & b[2], a[3] & b[3], a[4] & b[4])
    return c if _nonempty(c) else None


def _split_off(a: Cube, b: Cube) -> list[Cube]:
    """``a - b`` for cubes known to overlap."""
    out: list[Cube] = []
    cur = list(a)
    for i in range(5):
        outside = cur[i] & ~b[i]
        if outside:
            piece = cur.copy()
            piece[i] = outside
            out.append((piece[0], piece[1], piece[2], piece[3], piece[4]))
        cur[i] &= b[i]
    return out


class FlowSet:
    """A set of flows: a union of disjoint cubes of one universe. Immutable.

    A plain slotted class rather than a frozen dataclass: a review builds a few
    hundred of these per NSG, and a frozen dataclass's ``__init__`` (one
    ``object.__setattr__`` per field) costs twice as much as setting the slots
    directly. Equality and hashing are the cubes', as before.
    """

    __slots__ = ("cubes", "universe")
    universe: Universe
    cubes: tuple[Cube, ...]

    def __init__(self, universe: Universe, cubes: tuple[Cube, ...]) -> None:
        _set_universe(self, universe)
        _set_cubes(self, cubes)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"FlowSet is immutable: cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"FlowSet is immutable: cannot delete {name!r}")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FlowSet):
            return NotImplemented
        return self.cubes == other.cubes

    def __hash__(self) -> int:
        return hash(self.cubes)

    def __repr__(self) -> str:
        return f"FlowSet(cubes={self.cubes!r})"

    def __iter__(self) -> Iterator[Cube]:
        return iter(self.cubes)

    @property
    def is_empty(self) -> bool:
        return not self.cubes

    def _check(self, other: FlowSet) -> None:
        if other.universe is not self.universe:
            raise ValueError("flow sets of different universes cannot be combined")

    def __and__(self, other: FlowSet) -> FlowSet:
        self._check(other)
        out: list[Cube] = []
        o0, o1, o2, o3, o4 = _bounds(other.cubes)
        for a in self.cubes:
            a0, a1, a2, a3, a4 = a
            if not (a0 & o0 and a1 & o1 and a2 & o2 and a3 & o3 and a4 & o4):
                continue  # misses all of ``other``: skip the pairwise work
            for b in other.cubes:
                # _intersect, inlined: restrict() makes this a hot loop.
                c0, c1, c2, c3, c4 = a0 & b[0], a1 & b[1], a2 & b[2], a3 & b[3], a4 & b[4]
                if c0 and c1 and c2 and c3 and c4:
                    out.append((c0, c1, c2, c3, c4))
        return FlowSet(self.universe, tuple(out))

    def __sub__(self, other: FlowSet) -> FlowSet:
        self._check(other)
        remaining = list(self.cubes)
        for b in other.cubes:
            b0, b1, b2, b3, b4 = b
            nxt: list[Cube] = []
            for a in remaining:
                # Split only the cubes ``b`` overlaps; the rest stay whole.
                if a[0] & b0 and a[1] & b1 and a[2] & b2 and a[3] & b3 and a[4] & b4:
                    nxt.extend(_split_off(a, b))
                else:
                    nxt.append(a)
            remaining = nxt
            if not remaining:
                break
        return FlowSet(self.universe, tuple(remaining))

    def __or__(self, other: FlowSet) -> FlowSet:
        self._check(other)
        extra = (other - self).cubes
        # ``self`` itself when ``other`` adds nothing: callers may then recognise the
        # union as one of its parts (a review's Internet question is its whole cover).
        return FlowSet(self.universe, self.cubes + extra) if extra else self

    def issubset(self, other: FlowSet) -> bool:
        return (self - other).is_empty

    def overlaps(self, other: FlowSet) -> bool:
        self._check(other)
        return any(_intersect(a, b) is not None for a in self.cubes for b in other.cubes)

    def protocols(self) -> int:
        mask = 0
        for c in self.cubes:
            mask |= c[0]
        return mask

    def destination_ports(self) -> int:
        mask = 0
        for c in self.cubes:
            mask |= c[4]
        return mask

    def describe(self) -> str:
        """Protocols and destination ports, for messages ("TCP/9443")."""
        if self.is_empty:
            return "nothing"
        protocols = describe_protocols(self.protocols())
        ports = self.universe.describe_ports(self.destination_ports())
        if protocols == "*" and ports == "*":
            return "all traffic"
        return f"{'any protocol' if protocols == '*' else protocols}/{'any port' if ports == '*' else ports}"


_set_universe = FlowSet.__dict__["universe"].__set__
_set_cubes = FlowSet.__dict__["cubes"].__set__


# --- verdicts -------------------------------------------------------------------


class Verdict(StrEnum):
    ALLOWED = "allowed"
    DENIED = "denied"
    PARTIAL = "partial"


@dataclass(frozen=True, slots=True)
class Decision:
    """One rule deciding part of a query: which rule, which NSG, which flows."""

    rule: SecurityRule
    flows: FlowSet
    nsg_id: str | None = None

    @property
    def access(self) -> Access:
        return self.rule.access


def _verdict(allowed: FlowSet, denied: FlowSet) -> Verdict:
    if denied.is_empty:
        return Verdict.ALLOWED
    if allowed.is_empty:
        return Verdict.DENIED
    return Verdict.PARTIAL


@dataclass(frozen=True, slots=True)
class FlowVerdict:
    """How one NSG (one direction) treats a set of flows, and which rules decided."""

    verdict: Verdict
    decisions: tuple[Decision, ...]
    allowed: FlowSet
    denied: FlowSet

    @property
    def deciding_rule(self) -> SecurityRule | None:
        """The highest-priority rule that decided the verdict's side.

        For ``denied`` and ``partial`` that is the first rule denying any of
        the flows (the one an operator must look at); for ``allowed`` the
        first rule allowing them.
        """
        want = Access.ALLOW if self.verdict is Verdict.ALLOWED else Access.DENY
        for d in self.decisions:
            if d.access is want:
                return d.rule
        return None

    def rules(self, access: Access) -> tuple[SecurityRule, ...]:
        return tuple(d.rule for d in self.decisions if d.access is access)


def evaluate_rules(
    universe: Universe, rules: Sequence[SecurityRule], query: FlowSet, nsg_id: str | None = None
) -> FlowVerdict:
    """First match over ``rules`` (already in priority order) for every flow of ``query``."""
    remaining = list(query.cubes)
    decisions: list[Decision] = []
    allowed: list[Cube] = []
    denied: list[Cube] = []
    b0, b1, b2, b3, b4 = _bounds(remaining)
    rule_cache = universe._rule_cache
    for rule in rules:
        if not remaining:
            break
        known = rule_cache.get(id(rule))  # rule_cube's own lookup, inlined: the hottest loop
        rc = known[1] if known is not None and known[0] is rule else universe.rule_cube(rule)
        r0, r1, r2, r3, r4 = rc
        # A rule missing the bounding box of what is left matches none of it: most
        # rules of an NSG miss most questions, so this skips the per-cube work.
        if not (r0 & b0 and r1 & b1 and r2 & b2 and r3 & b3 and r4 & b4):
            continue
        matched: list[Cube] = []
        nxt: list[Cube] = []
        for c in remaining:
            # _intersect, inlined: this loop is the evaluator's hot spot.
            h0, h1, h2, h3, h4 = c[0] & r0, c[1] & r1, c[2] & r2, c[3] & r3, c[4] & r4
            if not (h0 and h1 and h2 and h3 and h4):
                nxt.append(c)
                continue
            matched.append((h0, h1, h2, h3, h4))
            nxt.extend(_split_off(c, rc))
        if matched:
            decisions.append(Decision(rule, FlowSet(universe, tuple(matched)), nsg_id))
            (allowed if rule.access is Access.ALLOW else denied).extend(matched)
            remaining = nxt
            b0, b1, b2, b3, b4 = _bounds(remaining)
    if remaining:  # only reachable with a custom rule list lacking the default rules
        denied.extend(remaining)
    a, d = FlowSet(universe, tuple(allowed)), FlowSet(universe, tuple(denied))
    return FlowVerdict(_verdict(a, d), tuple(decisions), a, d)


def restrict(verdict: FlowVerdict, query: FlowSet) -> FlowVerdict:
    """``verdict`` narrowed to ``query``, which must lie inside the flows it judged.

    First match decides each flow once, so the verdict over a large set
    answers every question inside it by intersection alone: one pass over the
    rules serves many questions.
    """
    universe = query.universe
    wanted = query.cubes
    q0, q1, q2, q3, q4 = _bounds(wanted)
    decisions: list[Decision] = []
    allowed: list[Cube] = []
    denied: list[Cube] = []
    rule_cube = universe.rule_cube
    for d in verdict.decisions:
        # A decision's flows lie inside its rule's cube: a rule missing the query's
        # bounding box decides none of it (most rules, for a narrow question).
        r0, r1, r2, r3, r4 = rule_cube(d.rule)
        if not (r0 & q0 and r1 & q1 and r2 & q2 and r3 & q3 and r4 & q4):
            continue
        # FlowSet.__and__, inlined with the query's bounding box computed once: a review
        # narrows a dozen decisions to each of its questions.
        part: list[Cube] = []
        for a0, a1, a2, a3, a4 in d.flows.cubes:
            if not (a0 & q0 and a1 & q1 and a2 & q2 and a3 & q3 and a4 & q4):
                continue
            for b0, b1, b2, b3, b4 in wanted:
                c0, c1, c2, c3, c4 = a0 & b0, a1 & b1, a2 & b2, a3 & b3, a4 & b4
                if c0 and c1 and c2 and c3 and c4:
                    part.append((c0, c1, c2, c3, c4))
        if not part:
            continue
        decisions.append(Decision(d.rule, FlowSet(universe, tuple(part)), d.nsg_id))
        (allowed if d.rule.access is Access.ALLOW else denied).extend(part)
    a, dn = FlowSet(universe, tuple(allowed)), FlowSet(universe, tuple(denied))
    return FlowVerdict(_verdict(a, dn), tuple(decisions), a, dn)


def _bounds(cubes: Sequence[Cube]) -> Cube:
    """The smallest cube holding all of ``cubes`` (per dimension, the union of masks)."""
    b0 = b1 = b2 = b3 = b4 = 0
    for c in cubes:
        b0 |= c[0]
        b1 |= c[1]
        b2 |= c[2]
        b3 |= c[3]
        b4 |= c[4]
    return (b0, b1, b2, b3, b4)


def evaluate_nsg(
    universe: Universe, nsg: NetworkSecurityGroup | None, direction: Direction, query: FlowSet
) -> FlowVerdict:
    """How ``nsg`` treats ``query`` in ``direction``; no NSG allows everything."""
    if nsg is None:
        return FlowVerdict(Verdict.ALLOWED, (), query, universe.empty())
    return evaluate_rules(universe, universe.ordered(nsg.security_rules, direction), query, nsg.id)


_priority = attrgetter("priority")


def ordered_rules(custom: Iterable[SecurityRule], direction: Direction) -> tuple[SecurityRule, ...]:
    """Custom rules of ``direction`` by priority, then Azure's default rules."""
    chosen = [r for r in custom if r.direction is direction and not r.is_default]
    chosen.sort(key=_priority)
    return (*chosen, *(r for r in DEFAULT_RULES if r.direction is direction))


@dataclass(frozen=True, slots=True)
class PathStep:
    level: str  # "subnet" or "nic"
    nsg_id: str | None
    verdict: FlowVerdict


@dataclass(frozen=True, slots=True)
class PathVerdict:
    """Subnet and NIC NSGs combined for one direction."""

    verdict: Verdict
    steps: tuple[PathStep, ...]
    allowed: FlowSet
    denied: FlowSet

    @property
    def blocking(self) -> tuple[PathStep, SecurityRule] | None:
        """The first level, in traffic order, that denies any of the flows, and its rule."""
        for step in self.steps:
            if step.verdict.verdict is not Verdict.ALLOWED:
                rule = step.verdict.deciding_rule
                if rule is not None:
                    return step, rule
        return None


def evaluate_path(
    universe: Universe,
    query: FlowSet,
    direction: Direction,
    subnet_nsg: NetworkSecurityGroup | None,
    nic_nsg: NetworkSecurityGroup | None,
) -> PathVerdict:
    """Inbound: subnet NSG then NIC NSG; outbound: NIC then subnet. Both must allow."""
    levels: list[tuple[str, NetworkSecurityGroup | None]] = [("subnet", subnet_nsg), ("nic", nic_nsg)]
    if direction is Direction.OUTBOUND:
        levels.reverse()
    steps: list[PathStep] = []
    passing = query
    denied = universe.empty()
    for level, nsg in levels:
        v = evaluate_nsg(universe, nsg, direction, passing)
        steps.append(PathStep(level, nsg.id if nsg else None, v))
        denied = denied | v.denied
        passing = v.allowed
    return PathVerdict(_verdict(passing, denied), tuple(steps), passing, denied)


def allowed_flows(universe: Universe, nsg: NetworkSecurityGroup | None, direction: Direction) -> FlowSet:
    """Every flow ``nsg`` allows in ``direction``."""
    return evaluate_nsg(universe, nsg, direction, universe.all_flows()).allowed
