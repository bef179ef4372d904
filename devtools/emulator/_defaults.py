"""The six default security rules ARM adds to every NSG (names, priorities, descriptions as ARM shows them)."""

from __future__ import annotations

from typing import Any


def _rule(
    name: str, description: str, access: str, direction: str, priority: int, src: str, dst: str
) -> dict[str, Any]:
    return {
        "name": name,
        "properties": {
            "description": description,
            "protocol": "*",
            "sourcePortRange": "*",
            "destinationPortRange": "*",
            "sourceAddressPrefix": src,
            "destinationAddressPrefix": dst,
            "access": access,
            "priority": priority,
            "direction": direction,
            "sourcePortRanges": [],
            "destinationPortRanges": [],
            "sourceAddressPrefixes": [],
            "destinationAddressPrefixes": [],
        },
    }


DEFAULT_SECURITY_RULES: tuple[dict[str, Any], ...] = (
    _rule(
        "AllowVnetInBound",
        "Allow inbound traffic from all VMs in VNET",
        "Allow",
        "Inbound",
        65000,
        "VirtualNetwork",
        "VirtualNetwork",
    ),
    _rule(
        "AllowAzureLoadBalancerInBound",
        "Allow inbound traffic from azure load balancer",
        "Allow",
        "Inbound",
        65001,
        "AzureLoadBalancer",
        "*",
    ),
    _rule("DenyAllInBound", "Deny all inbound traffic", "Deny", "Inbound", 65500, "*", "*"),
    _rule(
        "AllowVnetOutBound",
        "Allow outbound traffic from all VMs to all VMs in VNET",
        "Allow",
        "Outbound",
        65000,
        "VirtualNetwork",
        "VirtualNetwork",
    ),
    _rule(
        "AllowInternetOutBound",
        "Allow outbound traffic from all VMs to Internet",
        "Allow",
        "Outbound",
        65001,
        "*",
        "Internet",
    ),
    _rule("DenyAllOutBound", "Deny all outbound traffic", "Deny", "Outbound", 65500, "*", "*"),
)
