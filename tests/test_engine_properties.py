"""Property tests of the engine (hypothesis).

1. The set-based evaluator against a brute-force packet-by-packet oracle
   written here from ../shared/MISSION.md, independently of evaluate.py:
   one NSG (evaluate_rules), and subnet + NIC NSGs together (evaluate_path).
2. Remediation plans: applying one leaves nothing remediable, plans are
   idempotent, never widen access beyond what the baseline requires, keep
   every human rule, and never put two rules on one priority and direction.

Deterministic: ``derandomize=True`` and no example database, so CI sees the
same examples every run.
"""

from __future__ import annotations

import ipaddress
import itertools
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from remediation.assess import assess
from remediation.baseline import Baseline
from remediation.evaluate import (
    EvaluationContext,
    Flows,
    Universe,
    allowed_flows,
    evaluate_path,
    evaluate_rules,
    ordered_rules,
)
from remediation.model import (
    ANY_PORT,
    Access,
    Address,
    AnyAddress,
    Asg,
    Direction,
    Inventory,
    IPNetwork,
    NetworkSecurityGroup,
    PortRange,
    Prefix,
    Protocol,
    SecurityRule,
    ServiceTag,
)
from remediation.parse import merge_inventories, parse_document
from remediation.plan import planned_nsg
from remediation.tags import TagModel
from tests.support.core import BASELINE_RULES, cyclecloud_baseline, ports


def profile(max_examples: int) -> settings:
    return settings(
        max_examples=max_examples,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# =========================================================================== 1. evaluator vs oracle

VNET = ipaddress.ip_network("10.0.0.0/16")
ASG_OPAQUE = "/subscriptions/s/resourcegroups/rg/providers/microsoft.network/applicationsecuritygroups/asg-opaque"
ASG_KNOWN = "/subscriptions/s/resourcegroups/rg/providers/microsoft.network/applicationsecuritygroups/asg-known"
ASG_KNOWN_MEMBERS = (ipaddress.ip_network("10.0.0.17/32"),)
STORAGE = (ipaddress.ip_network("52.1.1.0/28"),)
STORAGE_WE = (ipaddress.ip_network("52.1.1.0/29"),)
TAGS = TagModel(prefixes={"storage": STORAGE, "storage.westeurope": STORAGE_WE}, source="test")
CTX = EvaluationContext(tags=TAGS, vnet_prefixes=(VNET,), asg_members={ASG_KNOWN: ASG_KNOWN_MEMBERS})

# The oracle's own idea of "public" (the Internet tag): everything but private,
# shared, loopback, link-local, multicast and reserved space, and the VNet.
_NOT_INTERNET_V4 = [
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "224.0.0.0/3",
    )
]
_GLOBAL_UNICAST_V6 = ipaddress.ip_network("2000::/3")


@dataclass(frozen=True)
class Point:
    """One endpoint of a packet: a concrete IP, or a thing with no literal address here."""

    label: str
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None = None

    def as_address(self) -> Address:
        if self.ip is not None:
            return Prefix(ipaddress.ip_network(self.ip))
        if self.label == "alb":
            return ServiceTag("AzureLoadBalancer")
        return Asg(ASG_OPAQUE)


def _ip(text: str) -> Point:
    return Point(text, ipaddress.ip_address(text))


POINTS = [
    _ip("10.0.0.1"),
    _ip("10.0.0.17"),  # the known ASG's member
    _ip("10.0.1.5"),
    _ip("10.1.0.1"),  # private, outside the VNet
    _ip("52.1.1.3"),  # Storage.WestEurope
    _ip("52.1.1.12"),  # Storage, not West Europe
    _ip("52.1.1.200"),  # public, in no tag
    _ip("8.8.8.8"),
    _ip("192.168.5.5"),
    _ip("2001:db8::5"),  # public IPv6
    _ip("fd00::1"),  # private IPv6
    Point("alb"),  # AzureLoadBalancer (168.63.129.16, but only the tag names it here)
    Point("asg-opaque"),  # a NIC of an ASG whose members are unknown
]
PROTOCOL_NAMES = ["Tcp", "Udp", "Icmp", "Esp", "Ah"]
DPORTS = [22, 443, 1000, 5672, 65535]
SPORTS = [80, 40000]

ADDRESS_SPECS = [
    "*",
    "10.0.0.0/24",
    "10.0.0.16/28",
    "10.0.0.17",
    "10.0.1.0/24",
    "10.0.0.0/16",
    "10.0.0.99/8",  # host bits set
    "52.1.1.0/24",
    "8.8.8.8",
    "0.0.0.0/0",
    "2001:db8::/64",
    "::/0",
    "VirtualNetwork",
    "Internet",
    "AzureLoadBalancer",
    "Storage",
    "Storage.WestEurope",
    "asg:opaque",
    "asg:known",
]
TAG_OR_ASG = {
    "VirtualNetwork",
    "Internet",
    "AzureLoadBalancer",
    "Storage",
    "Storage.WestEurope",
    "asg:opaque",
    "asg:known",
}
PORT_SPECS = ["*", "22", "443", "1000-2000", "1024-65535", "22,443", "5000-6000,65535"]
SPORT_SPECS = ["*", "*", "*", "80", "1024-65535"]


def to_address(spec: str) -> Address:
    if spec == "*":
        return AnyAddress()
    if spec == "asg:opaque":
        return Asg(ASG_OPAQUE)
    if spec == "asg:known":
        return Asg(ASG_KNOWN.upper())  # ids compare case-insensitively
    try:
        return Prefix(ipaddress.ip_network(spec, strict=False), spec)
    except ValueError:
        return ServiceTag(spec)


def _in_any(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, nets: Iterable[IPNetwork]) -> bool:
    return any(ip.version == n.version and ip in n for n in nets)


def oracle_in(point: Point, spec: str) -> bool:
    """Is this endpoint inside this rule address? Written from the mission's facts, not the engine."""
    if spec == "*":
        return True
    ip = point.ip
    if spec == "VirtualNetwork":
        # The VNet's space, plus every NIC (so every ASG member).
        return point.label == "asg-opaque" or (
            ip is not None and (_in_any(ip, [VNET]) or _in_any(ip, ASG_KNOWN_MEMBERS))
        )
    if spec == "Internet":
        if ip is None or _in_any(ip, [VNET]):
            return False
        if ip.version == 4:
            return not _in_any(ip, _NOT_INTERNET_V4)
        return ip in _GLOBAL_UNICAST_V6
    if spec == "AzureLoadBalancer":
        return point.label == "alb"
    if spec == "Storage":
        return ip is not None and _in_any(ip, STORAGE + STORAGE_WE)
    if spec == "Storage.WestEurope":
        return ip is not None and _in_any(ip, STORAGE_WE)
    if spec == "asg:opaque":
        return point.label == "asg-opaque"
    if spec == "asg:known":
        return ip is not None and _in_any(ip, ASG_KNOWN_MEMBERS)
    net = ipaddress.ip_network(spec, strict=False)
    if ip is None:
        # No literal address is known for these, not even its family: a /0 of either family holds it.
        return net.prefixlen == 0
    return ip.version == net.version and ip in net


def oracle_port_in(port: int, spec: str) -> bool:
    return any(p.low <= port <= p.high for p in ports(spec))


@dataclass(frozen=True)
class ORule:
    """The oracle's view of a rule: the text specs it was generated from."""

    name: str
    priority: int
    direction: str
    access: str
    protocol: str
    sources: tuple[str, ...]
    destinations: tuple[str, ...]
    dports: str
    sports: str

    def to_model(self) -> SecurityRule:
        return SecurityRule(
            name=self.name,
            priority=self.priority,
            direction=Direction(self.direction),
            access=Access(self.access),
            protocol=Protocol(self.protocol),
            sources=tuple(to_address(s) for s in self.sources),
            destinations=tuple(to_address(d) for d in self.destinations),
            source_ports=ports(self.sports),
            destination_ports=ports(self.dports),
        )


#: Azure's default rules, as the mission lists them (all protocols, all ports).
ORACLE_DEFAULTS = [
    ORule("AllowVnetInBound", 65000, "Inbound", "Allow", "*", ("VirtualNetwork",), ("VirtualNetwork",), "*", "*"),
    ORule("AllowAzureLoadBalancerInBound", 65001, "Inbound", "Allow", "*", ("AzureLoadBalancer",), ("*",), "*", "*"),
    ORule("DenyAllInBound", 65500, "Inbound", "Deny", "*", ("*",), ("*",), "*", "*"),
    ORule("AllowVnetOutBound", 65000, "Outbound", "Allow", "*", ("VirtualNetwork",), ("VirtualNetwork",), "*", "*"),
    ORule("AllowInternetOutBound", 65001, "Outbound", "Allow", "*", ("*",), ("Internet",), "*", "*"),
    ORule("DenyAllOutBound", 65500, "Outbound", "Deny", "*", ("*",), ("*",), "*", "*"),
]


Packet = tuple[str, int, int, int, int]  # protocol, source point, source port, destination point, destination port


def oracle_decide(rules: Sequence[ORule], direction: str, packet: Packet) -> ORule:
    return Oracle(rules, direction).decide(packet)


class Oracle:
    """First match over the sorted rules then the default rules, one packet at a time.

    Each rule's address and port tests are tabulated per sample endpoint and
    port first (the same tests, done once) so thousands of packets stay fast.
    """

    def __init__(self, rules: Sequence[ORule], direction: str) -> None:
        chosen = sorted((r for r in rules if r.direction == direction), key=lambda r: r.priority)
        self.rules = [*chosen, *(d for d in ORACLE_DEFAULTS if d.direction == direction)]
        self.src = [[any(oracle_in(p, s) for s in r.sources) for p in POINTS] for r in self.rules]
        self.dst = [[any(oracle_in(p, d) for d in r.destinations) for p in POINTS] for r in self.rules]
        self.sport = [[oracle_port_in(p, r.sports) for p in SPORTS] for r in self.rules]
        self.dport = [[oracle_port_in(p, r.dports) for p in DPORTS] for r in self.rules]

    def decide(self, packet: Packet) -> ORule:
        proto, src, sport, dst, dport = packet
        for i, r in enumerate(self.rules):
            if r.protocol not in ("*", proto):
                continue
            if proto in ("Tcp", "Udp"):
                if not (self.sport[i][sport] and self.dport[i][dport]):
                    continue
            elif r.sports != "*" or r.dports != "*":
                continue  # ICMP, ESP and AH have no ports: a port condition never matches them
            if self.src[i][src] and self.dst[i][dst]:
                return r
        raise AssertionError("the default rules match every packet")


def _side(draw: st.DrawFn) -> tuple[str, ...]:
    """One tag, ASG or "*", or one to three literal prefixes (as ARM allows)."""
    if draw(st.booleans()):
        return (draw(st.sampled_from(["*", *sorted(TAG_OR_ASG)])),)
    literals = [s for s in ADDRESS_SPECS if s not in TAG_OR_ASG and s != "*"]
    return tuple(draw(st.lists(st.sampled_from(literals), min_size=1, max_size=3, unique=True)))


@st.composite
def rule_sets(draw: st.DrawFn) -> list[ORule]:
    count = draw(st.integers(0, 7))
    priorities = draw(st.lists(st.integers(100, 130), min_size=count, max_size=count, unique=True))
    out: list[ORule] = []
    for i, priority in enumerate(priorities):
        out.append(
            ORule(
                name=f"r{i}",
                priority=priority,
                direction=draw(st.sampled_from(["Inbound", "Outbound"])),
                access=draw(st.sampled_from(["Allow", "Deny"])),
                protocol=draw(st.sampled_from(["Tcp", "Udp", "Icmp", "Esp", "Ah", "*", "*"])),
                sources=_side(draw),
                destinations=_side(draw),
                dports=draw(st.sampled_from(PORT_SPECS)),
                sports=draw(st.sampled_from(SPORT_SPECS)),
            )
        )
    return out


ALL_PACKETS: list[Packet] = [
    (proto, s, sp, d, dp)
    for proto in PROTOCOL_NAMES
    for s in range(len(POINTS))
    for d in range(len(POINTS))
    for sp in range(len(SPORTS))
    for dp in range(len(DPORTS))
]


def _seed_flows() -> Flows:
    """A query naming every sample endpoint and port, so the universe gives each its own atom."""
    addresses = tuple(p.as_address() for p in POINTS)
    port_ranges = tuple(PortRange(p, p) for p in DPORTS + SPORTS)
    return Flows(Protocol.ANY, addresses, addresses, port_ranges, port_ranges)


def _packet_flows(packet: Packet) -> Flows:
    proto, s, sp, d, dp = packet
    ported = proto in ("Tcp", "Udp")
    return Flows(
        Protocol(proto),
        (POINTS[s].as_address(),),
        (POINTS[d].as_address(),),
        (PortRange(DPORTS[dp], DPORTS[dp]),) if ported else (ANY_PORT,),
        (PortRange(SPORTS[sp], SPORTS[sp]),) if ported else (ANY_PORT,),
    )


def _atoms(u: Universe) -> tuple[list[int], list[int], list[int], list[int]]:
    """The atom bit of each sample protocol, endpoint, source port and destination port."""
    protos = [
        u.cube(Protocol(p), (AnyAddress(),), (ANY_PORT,), (AnyAddress(),), (ANY_PORT,))[0] for p in PROTOCOL_NAMES
    ]
    points = [u.address_mask(p.as_address()) for p in POINTS]
    sports = [u.port_mask(PortRange(p, p)) for p in SPORTS]
    dports = [u.port_mask(PortRange(p, p)) for p in DPORTS]
    for mask in [*protos, *points, *sports, *dports]:
        assert mask, "each sample must be in the universe"
        assert mask & (mask - 1) == 0, "each sample must be one atom of the universe"
    return protos, points, sports, dports


def _covered(cube: tuple[int, int, int, int, int], atoms: tuple[list[int], ...]) -> Iterable[Packet]:
    """The sample packets inside one cube. ICMP, ESP and AH have no ports: every sample port stands in."""
    protos, points, sports, dports = atoms
    pr = [PROTOCOL_NAMES[i] for i, b in enumerate(protos) if cube[0] & b]
    ss = [i for i, b in enumerate(points) if cube[1] & b]
    sp = [i for i, b in enumerate(sports) if cube[2] & b]
    ds = [i for i, b in enumerate(points) if cube[3] & b]
    dp = [i for i, b in enumerate(dports) if cube[4] & b]
    return itertools.product(pr, ss, sp, ds, dp)


@profile(120)
@given(rules=rule_sets(), direction=st.sampled_from(["Inbound", "Outbound"]), probes=st.data())
def test_evaluator_matches_packet_oracle(rules: list[ORule], direction: str, probes: st.DataObject) -> None:
    model_rules = [r.to_model() for r in rules]
    u = Universe.of(CTX, model_rules, [_seed_flows()])
    ordered = ordered_rules(model_rules, Direction(direction))
    verdict = evaluate_rules(u, ordered, u.all_flows())
    atoms = _atoms(u)

    # The engine's answer for every sample packet: the decision whose flows hold it.
    engine: dict[Packet, tuple[str, Access]] = {}
    for decision in verdict.decisions:
        for cube in decision.flows:
            for packet in _covered(cube, atoms):
                assert packet not in engine, ("decided twice", packet)
                engine[packet] = (decision.rule.name, decision.access)
    allowed = {p for c in verdict.allowed for p in _covered(c, atoms)}
    denied = {p for c in verdict.denied for p in _covered(c, atoms)}

    oracle = Oracle(rules, direction)
    for packet in ALL_PACKETS:
        expected = oracle.decide(packet)
        assert engine.get(packet) == (expected.name, Access(expected.access)), (packet, engine.get(packet), expected)
        assert (packet in allowed, packet in denied) == (expected.access == "Allow", expected.access == "Deny"), packet
    assert len(engine) == len(ALL_PACKETS)

    # The same answers through single-packet queries (the path reviews and checks use).
    for packet in probes.draw(st.lists(st.sampled_from(ALL_PACKETS), min_size=1, max_size=25)):
        expected = oracle.decide(packet)
        single = evaluate_rules(u, ordered, u.flows(_packet_flows(packet)))
        assert single.verdict.value == ("allowed" if expected.access == "Allow" else "denied"), packet
        assert single.deciding_rule is not None
        assert single.deciding_rule.name == expected.name, packet


def _level(rules: list[ORule] | None, name: str) -> NetworkSecurityGroup | None:
    if rules is None:
        return None
    return NetworkSecurityGroup(id=f"/x/{name}", name=name, security_rules=tuple(r.to_model() for r in rules))


@profile(100)
@given(
    subnet_rules=st.one_of(st.none(), rule_sets()),
    nic_rules=st.one_of(st.none(), rule_sets()),
    direction=st.sampled_from(["Inbound", "Outbound"]),
)
def test_subnet_and_nic_match_packet_oracle(
    subnet_rules: list[ORule] | None, nic_rules: list[ORule] | None, direction: str
) -> None:
    """Both levels must allow; inbound the subnet NSG decides first, outbound the NIC NSG; no NSG allows."""
    subnet, nic = _level(subnet_rules, "subnet"), _level(nic_rules, "nic")
    model_rules = [*(subnet.security_rules if subnet else ()), *(nic.security_rules if nic else ())]
    u = Universe.of(CTX, model_rules, [_seed_flows()])
    path = evaluate_path(u, u.all_flows(), Direction(direction), subnet, nic)
    atoms = _atoms(u)
    allowed = {p for c in path.allowed for p in _covered(c, atoms)}
    order = [("subnet", subnet_rules), ("nic", nic_rules)]
    if direction == "Outbound":
        order.reverse()
    oracles = [(level, None if rules is None else Oracle(rules, direction)) for level, rules in order]
    # The first level that denies a packet, in traffic order, with its rule; None when both allow.
    first_block: dict[str, tuple[str, str]] = {}
    for packet in ALL_PACKETS:
        blocked_by = None
        for level, oracle in oracles:
            if oracle is None:
                continue  # no NSG at this level: everything passes it
            decided = oracle.decide(packet)
            if decided.access == "Deny":
                blocked_by = (level, decided.name)
                break
        assert (packet in allowed) == (blocked_by is None), (packet, blocked_by)
        if blocked_by is not None:
            first_block.setdefault(blocked_by[0], blocked_by)
    # PathVerdict.blocking names the first level (traffic order) denying anything, and a deny rule there.
    blocking = path.blocking
    if not first_block:
        assert blocking is None
    else:
        assert blocking is not None
        expected_level = next(level for level, _ in order if level in first_block)
        assert blocking[0].level == expected_level
        assert blocking[1].access is Access.DENY


def test_oracle_sanity() -> None:
    # The oracle itself, on facts stated in the mission.
    tcp_out = ("Tcp", POINTS.index(_ip("10.0.0.1")), 0, POINTS.index(_ip("8.8.8.8")), 1)
    assert oracle_decide([], "Outbound", tcp_out).name == "AllowInternetOutBound"
    private_out = ("Tcp", 0, 0, POINTS.index(_ip("10.1.0.1")), 1)
    assert oracle_decide([], "Outbound", private_out).name == "DenyAllOutBound"
    lb_in = ("Udp", POINTS.index(Point("alb")), 0, 0, 0)
    assert oracle_decide([], "Inbound", lb_in).name == "AllowAzureLoadBalancerInBound"
    icmp = ORule("x", 100, "Outbound", "Deny", "*", ("*",), ("*",), "443", "*")
    assert oracle_decide([icmp], "Outbound", ("Icmp", 0, 0, 7, 1)).name == "AllowInternetOutBound"
    assert len(ALL_PACKETS) == 5 * 13 * 13 * 2 * 5


# =========================================================================== 2. plan properties

FIXTURES = Path(__file__).resolve().parent / "fixtures"
BASELINE = cyclecloud_baseline()
BASELINE_BY_NAME = {r.name: r for r in BASELINE_RULES}


def _load(*paths: str) -> Inventory:
    return merge_inventories(*(parse_document(json.loads((FIXTURES / p).read_text()), where=p) for p in paths))


#: The compliant CycleCloud network (VNet, cluster NSG, NICs), the NSG under test swapped in per example.
NETWORK = _load("compliant/arm/vnet.json", "compliant/arm/nsg-cluster.json", "compliant/arm/nics.json")
CC_TEMPLATE = _load("compliant/arm/nsg-cyclecloud.json").nsgs[0]

HUMAN_DESTINATIONS = ["*", "Internet", "Storage", "AzureActiveDirectory", "AzureCloud", "10.10.2.0/24", "52.1.1.0/24"]
HUMAN_SOURCES = ["*", "VirtualNetwork", "10.10.2.0/24", "10.10.1.4", "Internet"]
HUMAN_PORTS = ["*", "443", "22", "80", "5672", "9443", "8000-9000", "443,5672"]
DRIFT_DESTINATIONS = [
    "Internet",
    "Storage",
    "AzureMonitor",
    "AzureCloud",
    "*",
    "52.1.1.0/24",
    "VirtualNetwork",
    "10.10.0.0/16",
]


@st.composite
def drifted_nsgs(draw: st.DrawFn) -> NetworkSecurityGroup:
    rules: list[SecurityRule] = []
    taken: set[tuple[Direction, int]] = set()
    for base in BASELINE_RULES:
        fate = draw(
            st.sampled_from(
                ["keep", "keep", "delete", "ports", "access", "destination", "source", "protocol", "priority", "rename"]
            )
        )
        if fate == "delete":
            continue
        r = base
        if fate == "ports":
            r = replace(base, destination_ports=ports(draw(st.sampled_from(HUMAN_PORTS))))
        elif fate == "access":
            r = replace(base, access=Access.DENY if base.access is Access.ALLOW else Access.ALLOW)
        elif fate == "destination":
            r = replace(base, destinations=(to_address(draw(st.sampled_from(DRIFT_DESTINATIONS))),))
        elif fate == "source":
            r = replace(base, sources=(to_address(draw(st.sampled_from(HUMAN_SOURCES))),))
        elif fate == "protocol":
            r = replace(base, protocol=draw(st.sampled_from([Protocol.TCP, Protocol.UDP, Protocol.ANY, Protocol.ICMP])))
        elif fate == "priority":
            r = replace(base, priority=draw(st.integers(100, 4096)))
        elif fate == "rename":
            r = replace(base, name=f"Equivalent{base.name}")  # the same rule under another name
        if (r.direction, r.priority) in taken:
            continue
        taken.add((r.direction, r.priority))
        rules.append(r)
    # Human rules, often on the baseline's priorities (100-103, 4000) to force conflicts.
    for i in range(draw(st.integers(0, 5))):
        direction = draw(st.sampled_from([Direction.OUTBOUND, Direction.OUTBOUND, Direction.INBOUND]))
        priority = draw(st.sampled_from([99 + 1, 101, 102, 103, 104, 150, 3999, 4000, 4001, 4096]))
        if (direction, priority) in taken:
            continue
        taken.add((direction, priority))
        rules.append(
            SecurityRule(
                name=f"Human{i}",
                priority=priority,
                direction=direction,
                access=draw(st.sampled_from([Access.ALLOW, Access.DENY])),
                protocol=draw(st.sampled_from([Protocol.TCP, Protocol.UDP, Protocol.ANY])),
                sources=(to_address(draw(st.sampled_from(HUMAN_SOURCES))),),
                destinations=(to_address(draw(st.sampled_from(HUMAN_DESTINATIONS))),),
                destination_ports=ports(draw(st.sampled_from(HUMAN_PORTS))),
            )
        )
    order = draw(st.permutations(rules))
    return replace(CC_TEMPLATE, security_rules=tuple(order))


def _inventory(group: NetworkSecurityGroup, with_network: bool) -> Inventory:
    if not with_network:
        return Inventory(nsgs=(group,))
    return Inventory(nsgs=(group, *NETWORK.nsgs), vnets=NETWORK.vnets, nics=NETWORK.nics)


def _plan_for(inventory: Inventory, group: NetworkSecurityGroup, baseline: Baseline) -> tuple[Any, Any]:
    result = assess(inventory, baseline)
    plan = next(p for p in result.plans if p.nsg_id.lower() == group.key)
    return result, plan


def _swap(inventory: Inventory, group: NetworkSecurityGroup) -> Inventory:
    return replace(inventory, nsgs=tuple(group if n.key == group.key else n for n in inventory.nsgs))


def _baseline_required(u: Universe, baseline: Baseline, direction: Direction) -> Any:
    required = u.empty()
    for req in baseline.rules:
        if req.rule.direction is direction and req.rule.access is Access.ALLOW:
            required = required | u.rule_flows(req.rule)
    return required


@profile(400)
@given(group=drifted_nsgs(), with_network=st.booleans())
def test_plan_properties(group: NetworkSecurityGroup, with_network: bool) -> None:
    inventory = _inventory(group, with_network)
    first, plan = _plan_for(inventory, group, BASELINE)
    after = planned_nsg(group, plan)
    event("plan adds rules" if plan.added else "plan empty")
    event("some finding unremediable" if plan.unremediable else "all remediable")
    if plan.added and any(a.priority != BASELINE_BY_NAME[a.name].priority for a in plan.added):
        event("a rule placed at another priority")

    # Applying the plan leaves nothing remediable, and planning again changes nothing.
    second, replan = _plan_for(_swap(inventory, after), after, BASELINE)
    assert not second.remediable, [f.to_json() for f in second.remediable]
    assert replan.is_empty, (replan.added, replan.replaced)
    assert replan.security_rules == plan.security_rules

    # "Remediable" was decided by re-checking the plan inside the first review, whose
    # caches reuse the verdicts of unchanged directions: a fresh review must agree.
    # "Gone" is by requirement: one still unmet, now decided by another rule, is not fixed.
    gone_after = {f.unmet for f in first.findings} - {f.unmet for f in second.findings}
    assert {f.unmet for f in first.findings if f.remediable} == gone_after

    # A compliant NSG's plan is empty; an empty plan means nothing remediable was found.
    if not first.findings:
        assert plan.is_empty
    if plan.is_empty:
        assert not first.remediable

    # Every human rule is kept exactly; no two rules share a priority and direction.
    for r in group.security_rules:
        if not BASELINE.owns(r.name):
            assert r in plan.security_rules, r.name
    slots = [(r.direction, r.priority) for r in plan.security_rules]
    assert len(slots) == len(set(slots)), slots
    assert all(100 <= p <= 4096 for _, p in slots)
    assert {r.name.lower() for r in plan.added} <= {r.name.lower() for r in BASELINE_RULES}

    # Never widen: what the NSG allows after is what it allowed before, or what the baseline requires.
    u = Universe.of(EvaluationContext(), [*group.security_rules, *after.security_rules, *BASELINE_RULES])
    for direction in Direction:
        before_allowed = allowed_flows(u, group, direction)
        after_allowed = allowed_flows(u, after, direction)
        assert after_allowed.issubset(before_allowed | _baseline_required(u, BASELINE, direction)), direction


@profile(15)
@given(extra=st.lists(st.sampled_from(["Human-in", "Human-out-vnet"]), max_size=2, unique=True))
def test_compliant_nsg_plan_is_empty(extra: list[str]) -> None:
    human = {
        "Human-in": SecurityRule(
            "Human-in",
            200,
            Direction.INBOUND,
            Access.ALLOW,
            Protocol.TCP,
            (AnyAddress(),),
            (ServiceTag("VirtualNetwork"),),
        ),
        "Human-out-vnet": SecurityRule(
            "Human-out-vnet",
            300,
            Direction.OUTBOUND,
            Access.ALLOW,
            Protocol.TCP,
            (AnyAddress(),),
            (Prefix(ipaddress.ip_network("10.10.2.0/24")),),
            destination_ports=ports("22"),
        ),
    }
    group = replace(CC_TEMPLATE, security_rules=(*CC_TEMPLATE.security_rules, *(human[n] for n in extra)))
    result, plan = _plan_for(_inventory(group, True), group, BASELINE)
    assert not result.findings, [f.to_json() for f in result.findings]
    assert plan.is_empty
    assert plan.security_rules == group.security_rules
