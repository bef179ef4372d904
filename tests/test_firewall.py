"""Azure Firewall judged as documented: DNAT, network, then application rules; group then collection priority.

Each expected verdict is written by hand from Azure Firewall's "rule
processing logic" page, with its reason beside it.
"""

from __future__ import annotations

import ipaddress

import pytest

from remediation.firewall import (
    AzureFirewall,
    CollectionAction,
    FirewallAddresses,
    FirewallFlow,
    FirewallPolicy,
    FirewallRule,
    IpGroup,
    RuleCollection,
    RuleCollectionGroup,
    RuleKind,
    fqdn_matches,
    judge,
    ordered_rules,
)
from remediation.model import PortRange, Protocol

POLICY = "/subscriptions/s/resourceGroups/hub/providers/Microsoft.Network/firewallPolicies/child"
PARENT = "/subscriptions/s/resourceGroups/hub/providers/Microsoft.Network/firewallPolicies/parent"
CYCLECLOUD = ipaddress.ip_network("10.10.1.0/24")
NODES = ipaddress.ip_network("10.10.2.0/24")
ARM = FirewallFlow(source=CYCLECLOUD, port=443, fqdn="management.azure.com", service_tag="AzureResourceManager")
AMQP = FirewallFlow(source=NODES, port=5672, destination=CYCLECLOUD, app_protocol=None)
ALLOW, DENY = CollectionAction.ALLOW, CollectionAction.DENY


def app(name: str, *fqdns: str, tags: tuple[str, ...] = (), port: int = 443) -> FirewallRule:
    return FirewallRule(
        name, RuleKind.APPLICATION, app_protocols=(("Https", port),), target_fqdns=fqdns, fqdn_tags=tags
    )


def network(name: str, *, to: FirewallAddresses, ports: str = "443", fqdns: tuple[str, ...] = ()) -> FirewallRule:
    low, _, high = ports.partition("-")
    return FirewallRule(
        name,
        RuleKind.NETWORK,
        destinations=to,
        protocols=(Protocol.TCP,),
        ports=(PortRange(int(low), int(high or low)),),
        destination_fqdns=fqdns,
    )


def group(name: str, priority: int, *collections: RuleCollection, policy: str = POLICY) -> RuleCollectionGroup:
    return RuleCollectionGroup(f"{policy}/ruleCollectionGroups/{name}", name, priority, collections)


def verdict(
    flow: FirewallFlow,
    *groups: RuleCollectionGroup,
    ip_groups: dict[str, IpGroup] | None = None,
    policies: tuple[FirewallPolicy, ...] = (),
) -> tuple[str, str]:
    known = policies or (FirewallPolicy(POLICY, "child", group_ids=tuple(g.id for g in groups)),)
    firewall = AzureFirewall("/fw", "fw", policy_id=POLICY)
    rules = ordered_rules(firewall, {p.key: p for p in known}, groups, ip_groups or {})
    decision = judge(rules, flow)
    return decision.outcome, decision.decided_by.label if decision.decided_by else ""


ALLOW_LIST = RuleCollection("allow-cc", 300, ALLOW, (app("cc", "management.azure.com", "login.microsoftonline.com"),))


@pytest.mark.parametrize(
    ("groups", "expected", "reason"),
    [
        (
            (group("apps", 300, ALLOW_LIST),),
            ("allowed", "apps/allow-cc/cc"),
            "the name is listed in an allow collection",
        ),
        (
            (group("apps", 300, RuleCollection("allow", 300, ALLOW, (app("cc", "login.microsoftonline.com"),))),),
            ("no_rule", ""),
            "nothing matches: the firewall's default deny",
        ),
        (
            (group("apps", 300, RuleCollection("deny", 200, DENY, (app("no-azure", "*.azure.com"),)), ALLOW_LIST),),
            ("denied", "apps/deny/no-azure"),
            "a deny collection at a higher priority (200 < 300) in the same group decides first",
        ),
        (
            (
                group("late", 400, RuleCollection("deny", 100, DENY, (app("no-azure", "*.azure.com"),))),
                group("apps", 300, ALLOW_LIST),
            ),
            ("allowed", "apps/allow-cc/cc"),
            "group priority first: group 300 before group 400, whatever the collections' priorities",
        ),
        (
            (
                group("apps", 100, ALLOW_LIST),
                group(
                    "net",
                    60000,
                    RuleCollection(
                        "deny-arm", 100, DENY, (network("arm", to=FirewallAddresses(tags=("AzureResourceManager",))),)
                    ),
                ),
            ),
            ("denied", "net/deny-arm/arm"),
            "network rules are processed before application rules, whatever the group priority",
        ),
        (
            (
                group(
                    "net",
                    200,
                    RuleCollection(
                        "allow-azurecloud", 100, ALLOW, (network("cloud", to=FirewallAddresses(tags=("AzureCloud",))),)
                    ),
                ),
            ),
            ("allowed", "net/allow-azurecloud/cloud"),
            "a network rule to AzureCloud holds Azure Resource Manager's addresses",
        ),
        (
            (
                group(
                    "net",
                    200,
                    RuleCollection(
                        "allow-storage", 100, ALLOW, (network("st", to=FirewallAddresses(tags=("Storage",))),)
                    ),
                ),
            ),
            ("no_rule", ""),
            "a network rule to another service's tag does not hold the name",
        ),
        (
            (
                group(
                    "net",
                    200,
                    RuleCollection(
                        "allow-fqdn",
                        100,
                        ALLOW,
                        (network("arm", to=FirewallAddresses(), fqdns=("management.azure.com",)),),
                    ),
                ),
            ),
            ("allowed", "net/allow-fqdn/arm"),
            "network rules match destination FQDNs (resolved by the firewall's DNS proxy)",
        ),
        (
            (group("apps", 300, RuleCollection("aks", 100, ALLOW, (app("aks", tags=("AzureKubernetesService",)),))),),
            ("allowed", "apps/aks/aks"),
            "the AzureKubernetesService FQDN tag lists management.azure.com",
        ),
        (
            (group("apps", 300, RuleCollection("wu", 100, ALLOW, (app("wu", tags=("SomeNewTag",)),))),),
            ("uncertain", ""),
            "an FQDN tag whose contents are not known may allow it: not guessed",
        ),
        (
            (
                group(
                    "apps", 300, RuleCollection("http-only", 100, ALLOW, (app("web", "management.azure.com", port=80),))
                ),
            ),
            ("no_rule", ""),
            "an application rule for Https:80 does not match HTTPS on 443",
        ),
        (
            (
                group(
                    "dnat",
                    100,
                    RuleCollection(
                        "dnat",
                        100,
                        CollectionAction.DNAT,
                        (
                            FirewallRule(
                                "in",
                                RuleKind.DNAT,
                                protocols=(Protocol.TCP,),
                                ports=(PortRange(443, 443),),
                                destinations=FirewallAddresses(any=True),
                            ),
                        ),
                    ),
                ),
            ),
            ("no_rule", ""),
            "DNAT rules match traffic to the firewall's public address, never outbound traffic",
        ),
    ],
)
def test_a_name_over_https(groups: tuple[RuleCollectionGroup, ...], expected: tuple[str, str], reason: str) -> None:
    assert verdict(ARM, *groups) == expected, reason


@pytest.mark.parametrize(
    ("rule", "expected", "reason"),
    [
        (
            network("cc", to=FirewallAddresses(networks=(CYCLECLOUD,)), ports="5672"),
            "allowed",
            "destination subnet and port listed",
        ),
        (network("cc", to=FirewallAddresses(networks=(CYCLECLOUD,)), ports="9443"), "no_rule", "another port"),
        (
            network("cc", to=FirewallAddresses(ip_groups=("/ipgroups/cc",)), ports="5000-6000"),
            "allowed",
            "an IP group holding the subnet, a port range holding 5672",
        ),
        (
            network("cc", to=FirewallAddresses(ip_groups=("/ipgroups/unknown",)), ports="5672"),
            "uncertain",
            "an IP group not in the input may hold it",
        ),
        (
            network("cc", to=FirewallAddresses(networks=(ipaddress.ip_network("10.10.1.4/32"),)), ports="5672"),
            "uncertain",
            "the rule holds part of the subnet only",
        ),
        (app("any-web", "*", port=5672), "no_rule", "an application rule speaks Https, not AMQP"),
    ],
)
def test_nodes_to_cyclecloud(rule: FirewallRule, expected: str, reason: str) -> None:
    groups = {"/ipgroups/cc": IpGroup("/ipGroups/cc", "cc", (ipaddress.ip_network("10.10.0.0/16"),))}
    assert (
        verdict(AMQP, group("net", 200, RuleCollection("c", 100, ALLOW, (rule,))), ip_groups=groups)[0] == expected
    ), reason


def test_a_parent_policys_groups_come_first_whatever_their_priority() -> None:
    parent_group = group("base", 65000, RuleCollection("deny", 65000, DENY, (app("no", "*"),)), policy=PARENT)
    child_group = group("apps", 100, ALLOW_LIST)
    policies = (
        FirewallPolicy(POLICY, "child", base_policy_id=PARENT, group_ids=(child_group.id,)),
        FirewallPolicy(PARENT, "parent", group_ids=(parent_group.id,)),
    )
    assert verdict(ARM, child_group, parent_group, policies=policies) == ("denied", "base/deny/no"), (
        "rule collection groups of the parent policy always take precedence"
    )


def test_a_group_missing_from_the_input_leaves_the_firewall_unjudged() -> None:
    policy = FirewallPolicy(POLICY, "child", group_ids=(f"{POLICY}/ruleCollectionGroups/missing",))
    assert verdict(ARM, group("apps", 300, ALLOW_LIST), policies=(policy,))[0] == "unjudged"


def test_classic_rules_on_the_firewall_itself() -> None:
    firewall = AzureFirewall(
        "/fw",
        "fw",
        classic=(
            (RuleKind.APPLICATION, RuleCollection("allow", 100, ALLOW, (app("cc", "management.azure.com"),))),
            (RuleKind.APPLICATION, RuleCollection("deny", 50, DENY, (app("all", "*"),))),
        ),
    )
    decision = judge(ordered_rules(firewall, {}, (), {}), ARM)
    assert (decision.outcome, decision.decided_by and decision.decided_by.label) == ("denied", "deny/all"), (
        "classic collections by priority: 50 before 100"
    )


@pytest.mark.parametrize(
    ("pattern", "name", "expected"),
    [
        ("management.azure.com", "MANAGEMENT.azure.com.", True),  # names compare case-insensitively
        ("*.microsoft.com", "watson.telemetry.microsoft.com", True),  # any depth to the left
        ("*.microsoft.com", "microsoft.com", False),  # "*." needs something before the dot
        ("*microsoft.com", "notmicrosoft.com", True),  # a bare leading * matches anything to its left
        ("*", "ratecard.azure-api.net", True),
        ("azure.com", "management.azure.com", False),
    ],
)
def test_fqdn_wildcards(pattern: str, name: str, expected: bool) -> None:
    assert fqdn_matches(pattern, name) is expected
