"""Helpers for core tests: a baseline built in code (mirrors the shipped YAML)
and small NSG builders, so engine tests do not depend on the file loader."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from remediation.baseline import (
    Baseline,
    FlowEndpoint,
    FlowRequirement,
    Role,
    RuleRequirement,
    ServiceEndpointRequirement,
)
from remediation.model import (
    ANY_PORT,
    Access,
    Address,
    AnyAddress,
    Direction,
    NetworkSecurityGroup,
    PortRange,
    Prefix,
    Protocol,
    SecurityRule,
    ServiceTag,
)

SUB = "00000000-0000-0000-0000-000000000001"
RG = f"/subscriptions/{SUB}/resourceGroups/rg-cyclecloud"
NSG_ID = f"{RG}/providers/Microsoft.Network/networkSecurityGroups/nsg-cyclecloud"


def addr(text: str) -> Address:
    if text == "*":
        return AnyAddress()
    try:
        return Prefix(ipaddress.ip_network(text, strict=False), text)
    except ValueError:
        return ServiceTag(text)


def ports(text: str) -> tuple[PortRange, ...]:
    out = []
    for part in text.split(","):
        if part == "*":
            out.append(ANY_PORT)
        elif "-" in part:
            low, high = part.split("-")
            out.append(PortRange(int(low), int(high)))
        else:
            out.append(PortRange(int(part), int(part)))
    return tuple(out)


def rule(
    name: str,
    priority: int,
    direction: str = "Outbound",
    access: str = "Allow",
    protocol: str = "Tcp",
    src: str | Sequence[str] = "*",
    dst: str | Sequence[str] = "*",
    dport: str = "*",
    sport: str = "*",
) -> SecurityRule:
    srcs = [src] if isinstance(src, str) else list(src)
    dsts = [dst] if isinstance(dst, str) else list(dst)
    return SecurityRule(
        name=name,
        priority=priority,
        direction=Direction(direction),
        access=Access(access),
        protocol=Protocol(protocol),
        sources=tuple(addr(s) for s in srcs),
        destinations=tuple(addr(d) for d in dsts),
        source_ports=ports(sport),
        destination_ports=ports(dport),
    )


def nsg(
    *rules: SecurityRule, name: str = "nsg-cyclecloud", role: str | None = "cyclecloud", attached: bool = True
) -> NetworkSecurityGroup:
    """An NSG as ARM returns it; ``attached`` gives it a back-reference to a subnet of its own
    name (outside any VNet of the test), as an NSG in use has: one attached to nothing is
    reported as guarding nothing."""
    return NetworkSecurityGroup(
        id=f"{RG}/providers/Microsoft.Network/networkSecurityGroups/{name}",
        name=name,
        location="westeurope",
        tags={"cyclecloud-lockdown": role} if role else {},
        security_rules=tuple(rules),
        subnet_ids=(f"{RG}/providers/Microsoft.Network/virtualNetworks/vnet-unread/subnets/{name}",)
        if attached
        else (),
    )


BASELINE_RULES = (
    rule("AllowAzureStorage", 100, dst="Storage", dport="443"),
    rule("AllowActiveDirectory", 101, dst="AzureActiveDirectory", dport="443"),
    rule("AllowAzureMonitor", 102, dst="AzureMonitor", dport="443"),
    rule("AllowAzureRM", 103, dst="AzureResourceManager", dport="443"),
    rule("BlockOutbound", 4000, access="Deny", protocol="*", dst="Internet"),
)


def cyclecloud_baseline() -> Baseline:
    cc = frozenset({Role.CYCLECLOUD})
    cluster, cyclecloud = FlowEndpoint(role=Role.CLUSTER), FlowEndpoint(role=Role.CYCLECLOUD)
    return Baseline(
        name="cyclecloud (test copy)",
        rules=tuple(RuleRequirement(r, cc) for r in BASELINE_RULES),
        flows=(
            FlowRequirement("amqp_5672", Protocol.TCP, ports("5672"), cluster, cyclecloud),
            FlowRequirement("https_9443", Protocol.TCP, ports("9443"), cluster, cyclecloud),
        ),
        service_endpoints=(
            ServiceEndpointRequirement("Microsoft.Storage", frozenset({Role.CYCLECLOUD, Role.CLUSTER})),
        ),
    )
