"""Azure's NSG semantics, one table row per fact of ../shared/MISSION.md "How Azure evaluates".

Each row is (rules, direction, query, expected verdict, expected deciding rule).
Queries are sets of flows (a tag, a prefix, a port range), answered whole.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

import pytest

from remediation.evaluate import (
    DEFAULT_CONTEXT,
    EvaluationContext,
    Flows,
    FlowVerdict,
    Universe,
    Verdict,
    allowed_flows,
    evaluate_nsg,
    evaluate_path,
    evaluate_rules,
    ordered_rules,
)
from remediation.model import (
    DEFAULT_RULES,
    Access,
    Asg,
    Direction,
    NetworkSecurityGroup,
    PortRange,
    Prefix,
    Protocol,
    SecurityRule,
)
from tests.support.core import addr, nsg, ports, rule

VNET_CTX = EvaluationContext(vnet_prefixes=(ipaddress.ip_network("10.0.0.0/16"),))


def q(protocol: str, src: str | Sequence[str], dst: str | Sequence[str], dport: str = "*", sport: str = "*") -> Flows:
    srcs = [src] if isinstance(src, str) else list(src)
    dsts = [dst] if isinstance(dst, str) else list(dst)
    return Flows(
        Protocol(protocol), tuple(addr(s) for s in srcs), tuple(addr(d) for d in dsts), ports(dport), ports(sport)
    )


def judge(
    rules: Sequence[SecurityRule], direction: str, query: Flows, ctx: EvaluationContext = DEFAULT_CONTEXT
) -> FlowVerdict:
    universe = Universe.of(ctx, rules, [query])
    return evaluate_rules(universe, ordered_rules(rules, Direction(direction)), universe.flows(query))


@dataclass(frozen=True)
class Row:
    id: str
    rules: tuple[SecurityRule, ...]
    direction: str
    query: Flows
    verdict: Verdict
    decider: str | None
    ctx: EvaluationContext = DEFAULT_CONTEXT


def row(
    id: str,
    rules: Sequence[SecurityRule],
    direction: str,
    query: Flows,
    verdict: str,
    decider: str | None,
    ctx: EvaluationContext = DEFAULT_CONTEXT,
) -> Row:
    return Row(id, tuple(rules), direction, query, Verdict(verdict), decider, ctx)


def check(r: Row) -> None:
    v = judge(r.rules, r.direction, r.query, r.ctx)
    assert v.verdict is r.verdict, [(d.rule.name, d.access.value, d.flows.describe()) for d in v.decisions]
    assert (v.deciding_rule.name if v.deciding_rule else None) == r.decider


OUT, IN = "Outbound", "Inbound"
TCP443_OUT = q("Tcp", "10.0.0.4", "203.0.113.9", "443")

# --------------------------------------------------------------------------- priority, first match

PRIORITY = [
    row(
        "lower-number-first-allow",
        [rule("A", 100, dport="443"), rule("D", 200, access="Deny", dport="443")],
        OUT,
        TCP443_OUT,
        "allowed",
        "A",
    ),
    row(
        "lower-number-first-deny",
        [rule("A", 200, dport="443"), rule("D", 100, access="Deny", dport="443")],
        OUT,
        TCP443_OUT,
        "denied",
        "D",
    ),
    row(
        "list-order-does-not-matter",
        [rule("D", 4096, access="Deny", dport="443"), rule("A", 100, dport="443")],
        OUT,
        TCP443_OUT,
        "allowed",
        "A",
    ),
    row(
        "non-matching-rule-skipped",
        [rule("Other", 100, access="Deny", dport="80"), rule("A", 200, dport="443")],
        OUT,
        TCP443_OUT,
        "allowed",
        "A",
    ),
    row(
        "other-direction-ignored",
        [rule("InDeny", 100, direction=IN, access="Deny", dport="443")],
        OUT,
        TCP443_OUT,
        "allowed",
        "AllowInternetOutBound",
    ),
    row(
        "first-match-per-flow-partial",
        [rule("D80", 100, access="Deny", dport="80"), rule("A", 200, dport="*")],
        OUT,
        q("Tcp", "10.0.0.4", "203.0.113.9", "80-443"),
        "partial",
        "D80",
    ),
    row(
        "custom-rule-beats-default",
        [rule("NoVnet", 4096, direction=IN, access="Deny", protocol="*", src="VirtualNetwork", dst="VirtualNetwork")],
        IN,
        q("Tcp", "VirtualNetwork", "VirtualNetwork", "22"),
        "denied",
        "NoVnet",
    ),
]

# --------------------------------------------------------------------------- the six default rules

DEFAULTS = [
    row("in-vnet-to-vnet-allowed", [], IN, q("*", "VirtualNetwork", "VirtualNetwork"), "allowed", "AllowVnetInBound"),
    row(
        "in-vnet-prefixes-allowed",
        [],
        IN,
        q("Udp", "10.0.1.5", "10.0.2.6", "53"),
        "allowed",
        "AllowVnetInBound",
        VNET_CTX,
    ),
    row(
        "in-load-balancer-allowed",
        [],
        IN,
        q("Tcp", "AzureLoadBalancer", "10.0.0.4", "80"),
        "allowed",
        "AllowAzureLoadBalancerInBound",
        VNET_CTX,
    ),
    row("in-internet-denied", [], IN, q("*", "Internet", "VirtualNetwork"), "denied", "DenyAllInBound"),
    row("in-public-ip-denied", [], IN, q("Tcp", "8.8.8.8", "10.0.0.4", "22"), "denied", "DenyAllInBound", VNET_CTX),
    row("in-any-source-partial", [], IN, q("Tcp", "*", "10.0.0.4", "22"), "partial", "DenyAllInBound", VNET_CTX),
    row(
        "out-vnet-to-vnet-allowed", [], OUT, q("*", "VirtualNetwork", "VirtualNetwork"), "allowed", "AllowVnetOutBound"
    ),
    row("out-internet-allowed", [], OUT, q("*", "VirtualNetwork", "Internet"), "allowed", "AllowInternetOutBound"),
    row("out-public-ip-allowed", [], OUT, TCP443_OUT, "allowed", "AllowInternetOutBound", VNET_CTX),
    row("out-service-tag-allowed", [], OUT, q("Tcp", "*", "Storage", "443"), "allowed", "AllowInternetOutBound"),
    row(
        "out-private-outside-vnet-denied",
        [],
        OUT,
        q("Tcp", "10.0.0.4", "192.168.1.1", "443"),
        "denied",
        "DenyAllOutBound",
        VNET_CTX,
    ),
    row("out-load-balancer-denied", [], OUT, q("Tcp", "10.0.0.4", "AzureLoadBalancer"), "denied", "DenyAllOutBound"),
]

# --------------------------------------------------------------------------- protocols

PROTOCOLS = ["Tcp", "Udp", "Icmp", "Esp", "Ah"]


def _protocol_rows() -> list[Row]:
    rows: list[Row] = []
    for rule_proto in [*PROTOCOLS, "*"]:
        for query_proto in PROTOCOLS:
            hit = rule_proto in ("*", query_proto)
            rows.append(
                row(
                    f"rule-{rule_proto}-query-{query_proto}",
                    [rule("D", 100, access="Deny", protocol=rule_proto)],
                    OUT,
                    q(query_proto, "10.0.0.4", "203.0.113.9"),
                    "denied" if hit else "allowed",
                    "D" if hit else "AllowInternetOutBound",
                )
            )
    rows.append(
        row(
            "any-protocol-query-vs-tcp-rule-partial",
            [rule("D", 100, access="Deny", protocol="Tcp")],
            OUT,
            q("*", "10.0.0.4", "203.0.113.9"),
            "partial",
            "D",
        )
    )
    # The engine's documented interpretation: ports exist only for TCP and UDP,
    # so a rule with specific ports never matches ICMP, ESP or AH, even with protocol "*".
    for query_proto in PROTOCOLS:
        ported = query_proto in ("Tcp", "Udp")
        rows.append(
            row(
                f"port-specific-any-protocol-rule-vs-{query_proto}",
                [rule("D443", 100, access="Deny", protocol="*", dport="443")],
                OUT,
                q(query_proto, "10.0.0.4", "203.0.113.9", "443" if ported else "*"),
                "denied" if ported else "allowed",
                "D443" if ported else "AllowInternetOutBound",
            )
        )
        rows.append(
            row(
                f"source-port-specific-rule-vs-{query_proto}",
                [rule("DSrc", 100, access="Deny", protocol="*", sport="1024-65535")],
                OUT,
                q(query_proto, "10.0.0.4", "203.0.113.9", "*", "2000" if ported else "*"),
                "denied" if ported else "allowed",
                "DSrc" if ported else "AllowInternetOutBound",
            )
        )
    return rows


# --------------------------------------------------------------------------- ports


def _port_rows() -> list[Row]:
    rows: list[Row] = []
    listed = [rule("D", 100, access="Deny", dport="1000-2000,3000,4000-4001")]
    for port, hit in [
        ("999", False),
        ("1000", True),
        ("1500", True),
        ("2000", True),
        ("2001", False),
        ("2999", False),
        ("3000", True),
        ("3001", False),
        ("4001", True),
        ("65535", False),
        ("0", False),
    ]:
        rows.append(
            row(
                f"dport-list-{port}",
                listed,
                OUT,
                q("Tcp", "10.0.0.4", "203.0.113.9", port),
                "denied" if hit else "allowed",
                "D" if hit else "AllowInternetOutBound",
            )
        )
    rows.append(
        row(
            "dport-range-straddling-partial",
            listed,
            OUT,
            q("Tcp", "10.0.0.4", "203.0.113.9", "1990-2010"),
            "partial",
            "D",
        )
    )
    rows.append(
        row("dport-star-covers-all", [rule("D", 100, access="Deny")], OUT, q("Tcp", "*", "*", "0-65535"), "denied", "D")
    )
    src = [rule("D", 100, access="Deny", sport="80,8080")]
    for sport, hit in [("80", True), ("81", False), ("8080", True), ("443", False)]:
        rows.append(
            row(
                f"sport-{sport}",
                src,
                OUT,
                q("Tcp", "10.0.0.4", "203.0.113.9", "443", sport),
                "denied" if hit else "allowed",
                "D" if hit else "AllowInternetOutBound",
            )
        )
    return rows


# --------------------------------------------------------------------------- prefixes (IPv4, IPv6, host bits set)


def _prefix_rows() -> list[Row]:
    rows: list[Row] = []
    cases = [
        # rule destination (host bits set on purpose), query destination, matched
        ("10.1.2.77/24", "10.1.2.200", True),
        ("10.1.2.77/24", "10.1.2.0/25", True),
        ("10.1.2.77/24", "10.1.3.1", False),
        ("10.1.2.77/24", "10.1.0.0/16", None),  # partial
        ("10.1.2.77", "10.1.2.77", True),
        ("10.1.2.77", "10.1.2.78", False),
        ("2001:db8::1/64", "2001:db8::ffff", True),
        ("2001:db8::1/64", "2001:db8:0:1::1", False),
        ("2001:db8::1/64", "2001:db8::/63", None),
        ("2001:db8::1/64", "10.1.2.3", False),  # v6 rule never matches v4
        ("10.0.0.0/8", "2001:db8::1", False),  # v4 rule never matches v6
        ("*", "2001:db8::1", True),
        ("*", "10.1.2.3", True),
        ("0.0.0.0/0", "10.1.2.3", True),
        ("0.0.0.0/0", "2001:db8::1", False),
        ("::/0", "2001:db8::1", True),
    ]
    for rule_dst, query_dst, hit in cases:
        verdict = "partial" if hit is None else ("denied" if hit else "allowed")
        decider = "AllowVnetOutBound" if hit is False else "D"
        rows.append(
            row(
                f"dst-{rule_dst}-query-{query_dst}",
                [rule("D", 100, access="Deny", protocol="*", dst=rule_dst), rule("A", 4096, protocol="*")],
                OUT,
                q("*", "VirtualNetwork", query_dst),
                verdict,
                "A" if hit is False else decider,
            )
        )
    rows.append(
        row(
            "several-prefixes-one-rule",
            [rule("D", 100, direction=IN, access="Deny", protocol="*", src=["10.0.1.0/24", "10.0.3.0/24"])],
            IN,
            q("Tcp", "10.0.0.0/22", "10.0.9.9", "22"),
            "partial",
            "D",
            VNET_CTX,
        )
    )
    return rows


# --------------------------------------------------------------------------- service tags, containment model


def _tag_rows() -> list[Row]:
    rows: list[Row] = []
    cases = [
        # rule destination tag, query destination tag, matched (None: partly)
        ("Storage", "Storage", True),
        ("Storage", "Storage.WestEurope", True),
        ("Storage", "storage.westeurope", True),  # case-insensitive as ARM
        ("Storage.WestEurope", "Storage", None),
        ("Storage.WestEurope", "Storage.EastUS", False),
        ("Storage", "AzureActiveDirectory", False),
        ("Internet", "Storage", True),
        ("Internet", "Storage.WestEurope", True),
        ("Internet", "AzureActiveDirectory", True),
        ("Internet", "AzureMonitor", True),
        ("Internet", "AzureResourceManager", True),
        ("Internet", "AzureCloud", True),
        ("Internet", "VirtualNetwork", False),
        ("Internet", "AzureLoadBalancer", False),
        ("AzureCloud", "Storage", True),
        ("AzureCloud", "AzureActiveDirectory", True),
        ("AzureCloud", "Storage.WestEurope", True),
        ("AzureCloud", "Internet", None),
        ("AzureCloud", "VirtualNetwork", False),
        ("AzureCloud.WestEurope", "Storage.WestEurope", True),
        ("AzureCloud.WestEurope", "Storage.EastUS", False),
        ("AzureCloud.WestEurope", "Storage", None),
        ("Storage", "Internet", None),
        ("VirtualNetwork", "Internet", False),
        ("INTERNET", "Storage", True),  # legacy / upper-case spelling
        # Without data a literal public address is not known to be in a tag.
        ("Storage", "13.69.40.17", False),
        ("*", "Storage", True),
    ]
    for rule_dst, query_dst, hit in cases:
        rows.append(
            row(
                f"tag-{rule_dst}-query-{query_dst}",
                [rule("D", 100, access="Deny", protocol="*", dst=rule_dst), rule("A", 4096, protocol="*")],
                OUT,
                q("*", "10.0.0.4", query_dst),
                "partial" if hit is None else ("denied" if hit else "allowed"),
                "A" if hit is False else "D",
            )
        )
    return rows


ROWS = [*PRIORITY, *DEFAULTS, *_protocol_rows(), *_port_rows(), *_prefix_rows(), *_tag_rows()]


@pytest.mark.parametrize("r", ROWS, ids=[r.id for r in ROWS])
def test_semantics(r: Row) -> None:
    check(r)


def test_row_ids_are_unique() -> None:
    assert len({r.id for r in ROWS}) == len(ROWS)


# --------------------------------------------------------------------------- the default rules themselves


def test_default_rules_are_azures_six() -> None:
    table = {(r.direction.value, r.priority, r.name, r.access.value) for r in DEFAULT_RULES}
    assert table == {
        ("Inbound", 65000, "AllowVnetInBound", "Allow"),
        ("Inbound", 65001, "AllowAzureLoadBalancerInBound", "Allow"),
        ("Inbound", 65500, "DenyAllInBound", "Deny"),
        ("Outbound", 65000, "AllowVnetOutBound", "Allow"),
        ("Outbound", 65001, "AllowInternetOutBound", "Allow"),
        ("Outbound", 65500, "DenyAllOutBound", "Deny"),
    }
    assert all(r.protocol is Protocol.ANY and r.is_default for r in DEFAULT_RULES)


def test_ordered_rules_appends_defaults_after_custom_and_drops_other_direction() -> None:
    rules = [rule("B", 300), rule("A", 100), rule("In", 100, direction=IN)]
    names = [r.name for r in ordered_rules(rules, Direction.OUTBOUND)]
    assert names == ["A", "B", "AllowVnetOutBound", "AllowInternetOutBound", "DenyAllOutBound"]


def test_default_rules_in_an_nsgs_list_are_not_evaluated_twice() -> None:
    # An NSG read from ARM carries its default rules; custom evaluation uses the model's copy.
    group = NetworkSecurityGroup(id="/x/nsg", name="nsg", default_rules=DEFAULT_RULES)
    u = Universe.of(DEFAULT_CONTEXT, [], [q("*", "*", "*")])
    v = evaluate_nsg(u, group, Direction.OUTBOUND, u.flows(q("*", "VirtualNetwork", "Internet")))
    assert [d.rule.name for d in v.decisions] == ["AllowInternetOutBound"]


# --------------------------------------------------------------------------- ASGs

ASG_A = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/applicationSecurityGroups/asg-a"
ASG_B = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/applicationSecurityGroups/asg-b"


def asg_rule(name: str, priority: int, access: str, dst: str) -> SecurityRule:
    base = rule(name, priority, direction=IN, access=access, protocol="Tcp", src="*", dport="22")
    return SecurityRule(
        name=base.name,
        priority=base.priority,
        direction=base.direction,
        access=base.access,
        protocol=base.protocol,
        sources=base.sources,
        destinations=(Asg(dst),),
        destination_ports=base.destination_ports,
    )


def asg_query(dst: str | Asg, src: str = "VirtualNetwork") -> Flows:
    dest = dst if isinstance(dst, Asg) else addr(dst)
    return Flows(Protocol.TCP, (addr(src),), (dest,), ports("22"))


@pytest.mark.parametrize(
    ("query_dst", "verdict", "decider"),
    [
        (Asg(ASG_A), Verdict.DENIED, "DenyA"),
        (Asg(ASG_A.upper()), Verdict.DENIED, "DenyA"),  # resource ids are case-insensitive
        (Asg(ASG_B), Verdict.ALLOWED, "AllowVnetInBound"),  # opaque ASGs lie inside VirtualNetwork
        ("10.0.0.4", Verdict.ALLOWED, "AllowVnetInBound"),  # unknown members: no literal address is in it
    ],
)
def test_opaque_asg(query_dst: str | Asg, verdict: Verdict, decider: str) -> None:
    rules = [asg_rule("DenyA", 100, "Deny", ASG_A)]
    query = asg_query(query_dst)
    v = judge(rules, IN, query, VNET_CTX)
    assert v.verdict is verdict
    assert v.deciding_rule is not None
    assert v.deciding_rule.name == decider


@pytest.mark.parametrize(
    ("query_dst", "verdict", "decider"),
    [
        ("10.0.0.4", Verdict.DENIED, "DenyA"),
        ("10.0.0.5", Verdict.DENIED, "DenyA"),
        ("10.0.0.6", Verdict.ALLOWED, "AllowVnetInBound"),
        ("10.0.0.0/29", Verdict.PARTIAL, "DenyA"),
    ],
)
def test_asg_with_known_members(query_dst: str, verdict: Verdict, decider: str) -> None:
    members = (ipaddress.ip_network("10.0.0.4/32"), ipaddress.ip_network("10.0.0.5/32"))
    ctx = EvaluationContext(vnet_prefixes=VNET_CTX.vnet_prefixes, asg_members={ASG_A.lower(): members})
    v = judge([asg_rule("DenyA", 100, "Deny", ASG_A)], IN, asg_query(query_dst), ctx)
    assert v.verdict is verdict
    assert v.deciding_rule is not None
    assert v.deciding_rule.name == decider


def test_asg_members_are_inside_virtual_network_tag() -> None:
    members = (ipaddress.ip_network("172.16.9.9/32"),)  # outside the VNet prefixes on purpose
    ctx = EvaluationContext(vnet_prefixes=VNET_CTX.vnet_prefixes, asg_members={ASG_A.lower(): members})
    rules = [rule("DenyVnet", 100, direction=IN, access="Deny", protocol="*", dst="VirtualNetwork")]
    v = judge(rules, IN, asg_query(Asg(ASG_A), src="*"), ctx)
    assert v.verdict is Verdict.DENIED
    assert v.deciding_rule is not None
    assert v.deciding_rule.name == "DenyVnet"


# --------------------------------------------------------------------------- subnet + NIC order


def _path(
    direction: str,
    subnet_rules: Sequence[SecurityRule] | None,
    nic_rules: Sequence[SecurityRule] | None,
    query: Flows,
) -> tuple[Verdict, list[str], tuple[str, str] | None]:
    subnet = None if subnet_rules is None else nsg(*subnet_rules, name="nsg-subnet")
    nic = None if nic_rules is None else nsg(*nic_rules, name="nsg-nic")
    rules = [*(subnet_rules or ()), *(nic_rules or ())]
    u = Universe.of(VNET_CTX, rules, [query])
    pv = evaluate_path(u, u.flows(query), Direction(direction), subnet, nic)
    blocking = pv.blocking
    levels = [s.level for s in pv.steps]
    return pv.verdict, levels, (blocking[0].level, blocking[1].name) if blocking else None


IN_443 = q("Tcp", "203.0.113.9", "10.0.1.4", "443")
OUT_443 = q("Tcp", "10.0.1.4", "203.0.113.9", "443")
ALLOW_IN = rule("AllowWeb", 100, direction=IN, dport="443")
DENY_IN = rule("DenyWeb", 100, direction=IN, access="Deny", dport="443")
ALLOW_OUT = rule("AllowOut", 100, dport="443")
DENY_OUT = rule("DenyOut", 100, access="Deny", dport="443")


@pytest.mark.parametrize(
    ("direction", "subnet_rules", "nic_rules", "query", "verdict", "blocking"),
    [
        # inbound: subnet first, then NIC; both must allow
        ("Inbound", [ALLOW_IN], [DENY_IN], IN_443, Verdict.DENIED, ("nic", "DenyWeb")),
        ("Inbound", [ALLOW_IN], [], IN_443, Verdict.DENIED, ("nic", "DenyAllInBound")),
        ("Inbound", [DENY_IN], [ALLOW_IN], IN_443, Verdict.DENIED, ("subnet", "DenyWeb")),
        ("Inbound", [ALLOW_IN], [ALLOW_IN], IN_443, Verdict.ALLOWED, None),
        ("Inbound", None, [ALLOW_IN], IN_443, Verdict.ALLOWED, None),  # no subnet NSG allows all
        ("Inbound", [ALLOW_IN], None, IN_443, Verdict.ALLOWED, None),  # no NIC NSG allows all
        ("Inbound", None, None, IN_443, Verdict.ALLOWED, None),
        ("Inbound", None, [DENY_IN], IN_443, Verdict.DENIED, ("nic", "DenyWeb")),
        # outbound: NIC first, then subnet
        ("Outbound", [ALLOW_OUT], [DENY_OUT], OUT_443, Verdict.DENIED, ("nic", "DenyOut")),
        ("Outbound", [DENY_OUT], [ALLOW_OUT], OUT_443, Verdict.DENIED, ("subnet", "DenyOut")),
        ("Outbound", [DENY_OUT], [DENY_OUT], OUT_443, Verdict.DENIED, ("nic", "DenyOut")),
        ("Outbound", [ALLOW_OUT], [ALLOW_OUT], OUT_443, Verdict.ALLOWED, None),
        ("Outbound", None, None, OUT_443, Verdict.ALLOWED, None),
        ("Outbound", [], None, OUT_443, Verdict.ALLOWED, None),  # AllowInternetOutBound
        (
            "Inbound",
            [rule("A", 100, direction=IN, dport="443-444")],
            [rule("D", 100, direction=IN, access="Deny", dport="444"), rule("A", 200, direction=IN, dport="443")],
            q("Tcp", "203.0.113.9", "10.0.1.4", "443-444"),
            Verdict.PARTIAL,
            ("nic", "D"),
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_subnet_and_nic(
    direction: str,
    subnet_rules: list[SecurityRule] | None,
    nic_rules: list[SecurityRule] | None,
    query: Flows,
    verdict: Verdict,
    blocking: tuple[str, str] | None,
) -> None:
    got, levels, block = _path(direction, subnet_rules, nic_rules, query)
    assert levels == (["subnet", "nic"] if direction == "Inbound" else ["nic", "subnet"])
    assert got is verdict
    assert block == blocking


def test_denied_at_first_level_never_reaches_second() -> None:
    subnet, nic = nsg(DENY_IN, name="s"), nsg(DENY_IN, name="n")
    u = Universe.of(VNET_CTX, [DENY_IN], [IN_443])
    pv = evaluate_path(u, u.flows(IN_443), Direction.INBOUND, subnet, nic)
    assert pv.steps[0].verdict.verdict is Verdict.DENIED
    assert pv.steps[1].verdict.decisions == ()  # nothing left to judge
    assert pv.allowed.is_empty


# --------------------------------------------------------------------------- verdicts explain themselves


def test_partial_verdict_names_rules_and_splits_flows() -> None:
    rules = [rule("Deny80", 100, access="Deny", dport="80"), rule("Allow443", 200, dport="443")]
    query = q("Tcp", "10.0.0.4", "203.0.113.9", "80,443,8080")
    v = judge(rules, OUT, query)
    assert v.verdict is Verdict.PARTIAL
    assert v.deciding_rule is not None
    assert v.deciding_rule.name == "Deny80"
    assert [(d.rule.name, d.flows.describe()) for d in v.decisions] == [
        ("Deny80", "TCP/80"),
        ("Allow443", "TCP/443"),
        ("AllowInternetOutBound", "TCP/8080"),
    ]
    assert [r.name for r in v.rules(Access.ALLOW)] == ["Allow443", "AllowInternetOutBound"]
    assert v.denied.describe() == "TCP/80"
    assert v.allowed.describe() == "TCP/443,8080"


def test_allowed_verdict_names_first_allowing_rule() -> None:
    v = judge([rule("Allow443", 200, dport="443")], OUT, TCP443_OUT)
    assert v.verdict is Verdict.ALLOWED
    assert v.deciding_rule is not None
    assert v.deciding_rule.name == "Allow443"
    assert v.denied.is_empty


def test_decisions_carry_the_nsg_id() -> None:
    group = nsg(rule("D", 100, access="Deny", dport="443"))
    u = Universe.of(DEFAULT_CONTEXT, group.security_rules, [TCP443_OUT])
    v = evaluate_nsg(u, group, Direction.OUTBOUND, u.flows(TCP443_OUT))
    assert {d.nsg_id for d in v.decisions} == {group.id}


def test_no_nsg_allows_everything_with_no_decision() -> None:
    u = Universe.of(DEFAULT_CONTEXT, [], [TCP443_OUT])
    v = evaluate_nsg(u, None, Direction.INBOUND, u.flows(TCP443_OUT))
    assert v.verdict is Verdict.ALLOWED
    assert v.deciding_rule is None
    assert v.decisions == ()


def test_decisions_partition_the_query() -> None:
    rules = [
        rule("D1", 100, access="Deny", dport="22"),
        rule("A1", 110, protocol="Udp", dst="10.0.0.0/8"),
        rule("D2", 120, access="Deny", protocol="*", dst="Storage"),
    ]
    query = q("*", "*", "*")
    u = Universe.of(VNET_CTX, rules, [query])
    v = evaluate_rules(u, ordered_rules(rules, Direction.OUTBOUND), u.flows(query))
    everything = u.flows(query)
    union = u.empty()
    for d in v.decisions:
        assert not d.flows.overlaps(union)
        union = union | d.flows
    assert union.issubset(everything)
    assert everything.issubset(union)
    assert (v.allowed | v.denied).issubset(everything)
    assert not v.allowed.overlaps(v.denied)


# --------------------------------------------------------------------------- flow-set algebra and queries


def test_allowed_flows_of_no_nsg_is_everything_and_of_empty_nsg_is_defaults() -> None:
    u = Universe.of(VNET_CTX, [], [q("*", "*", "*")])
    assert allowed_flows(u, None, Direction.INBOUND).issubset(u.all_flows())
    assert u.all_flows().issubset(allowed_flows(u, None, Direction.INBOUND))
    empty = nsg()
    inbound = allowed_flows(u, empty, Direction.INBOUND)
    assert u.flows(q("*", "VirtualNetwork", "VirtualNetwork")).issubset(inbound)
    assert not u.flows(q("*", "Internet", "*")).overlaps(inbound)


def test_flows_of_different_universes_do_not_mix() -> None:
    a = Universe.of(DEFAULT_CONTEXT, [], [])
    b = Universe.of(DEFAULT_CONTEXT, [], [])
    with pytest.raises(ValueError, match="different universes"):
        _ = a.all_flows() & b.all_flows()


def test_flow_sets_are_immutable_and_compare_by_their_cubes() -> None:
    query = q("Tcp", "*", "Storage", "443")
    u = Universe.of(DEFAULT_CONTEXT, [], [query])
    flows = u.flows(query)
    with pytest.raises(AttributeError, match="immutable"):
        flows.cubes = ()
    with pytest.raises(AttributeError, match="immutable"):
        del flows.universe
    again = u.flows(query)
    assert again is not flows
    assert again == flows
    assert hash(again) == hash(flows)
    assert flows != u.all_flows()
    assert (flows | u.empty()) is flows
    assert (u.empty() | flows) == flows


def test_query_not_aligned_with_universe_is_refused() -> None:
    u = Universe.of(DEFAULT_CONTEXT, [], [])
    with pytest.raises(ValueError, match="not aligned"):
        u.flows(Flows(Protocol.TCP, (Prefix(ipaddress.ip_network("10.9.9.0/24")),), (addr("*"),)))


def test_flows_describe_and_query_describe() -> None:
    query = q("Tcp", "*", "Storage", "443,8443-8444")
    assert query.describe() == "TCP/443,8443-8444 from * to Storage"
    u = Universe.of(DEFAULT_CONTEXT, [], [query])
    assert u.flows(query).describe() == "TCP/443,8443-8444"
    assert u.all_flows().describe() == "all traffic"
    assert u.empty().describe() == "nothing"


def test_port_specific_query_for_icmp_is_empty() -> None:
    # Consistent with the rule side: ICMP has no ports, so "ICMP port 443" is no flow at all.
    query = q("Icmp", "*", "*", "443")
    u = Universe.of(DEFAULT_CONTEXT, [], [query])
    assert u.flows(query).is_empty


def test_port_range_validation() -> None:
    with pytest.raises(ValueError, match="invalid port range"):
        PortRange(10, 9)
    with pytest.raises(ValueError, match="invalid port range"):
        PortRange(0, 65536)


# --------------------------------------------------------------------------- regression: regional AzureCloud


@pytest.mark.parametrize(
    ("rule_dst", "query_dst"),
    [("AzureCloud.WestEurope", "Storage"), ("Storage", "AzureCloud.WestEurope")],
)
def test_regional_azurecloud_meets_global_service_tag(rule_dst: str, query_dst: str) -> None:
    # Bug fixed in evaluate.py (_regional_parts): without an atom for Storage's
    # West Europe part, "Deny AzureCloud.WestEurope" never touched flows to
    # "Storage", so such a rule could silently shadow AllowAzureStorage.
    rules = [rule("D", 90, access="Deny", protocol="*", dst=rule_dst)]
    v = judge(rules, OUT, q("Tcp", "*", query_dst, "443"))
    assert v.verdict is Verdict.PARTIAL
    assert v.deciding_rule is not None
    assert v.deciding_rule.name == "D"
    assert v.allowed.describe() == "TCP/443"  # the other regions pass


def test_regional_azurecloud_shadows_storage_requirement() -> None:
    from remediation.assess import assess
    from remediation.findings import FindingKind
    from remediation.model import Inventory
    from tests.support.core import BASELINE_RULES, cyclecloud_baseline

    group = nsg(rule("DenyWE", 90, access="Deny", protocol="*", dst="AzureCloud.WestEurope"), *BASELINE_RULES)
    kinds = {(f.kind, f.requirement, f.rule) for f in assess(Inventory(nsgs=(group,)), cyclecloud_baseline()).findings}
    assert (FindingKind.SHADOWED_RULE, "AllowAzureStorage", "DenyWE") in kinds
