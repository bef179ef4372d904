"""Azure Firewall, judged the way the firewall processes its rules.

What Microsoft documents (Azure Firewall "rule processing logic" and
"Firewall Policy rule sets"), and what this module does with it:

* Rules are terminating: the first rule that matches decides; when none
  does, the firewall denies (after its infrastructure collection, which
  holds Azure platform names only, none of CycleCloud's).
* DNAT rules come first, then network rules, then application rules,
  whatever the priorities. DNAT rules match traffic to the firewall's own
  public addresses, never a subnet's outbound traffic, so they decide none
  of the flows judged here.
* Within one rule type: rule collection groups by priority (100 first),
  inside a group the rule collections by priority. Groups of a parent
  (base) policy come before the child's, whatever their priority.
* The action (Allow or Deny) is the collection's: a deny collection at a
  higher priority than an allow collection wins.
* Classic rules (on the firewall resource itself, no policy): collections
  by priority within each type, same type order.
* Network rules match protocol, source (addresses, ranges, IP groups),
  destination port and destination (addresses, ranges, service tags, IP
  groups, FQDNs). Application rules match HTTP/HTTPS/MSSQL by protocol and
  port, then target FQDNs (a leading ``*`` matches anything to its left:
  ``*.microsoft.com`` holds ``watson.telemetry.microsoft.com``,
  ``*microsoft.com`` also ``notmicrosoft.com``; ``*`` holds every name) or
  FQDN tags.
* Left aside, and said so: TLS inspection (``targetUrls``), web categories,
  FQDN tags whose contents are not listed in :data:`FQDN_TAGS`, a literal
  public address or a service tag that may or may not hold a name's
  address. A rule like that "may match": when it stands before the deciding
  rule with the other action, the verdict is ``uncertain`` and names it.

Pure: no I/O; :mod:`remediation.parse_paths` builds these types from JSON.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

from remediation.model import IPNetwork, PortRange, Protocol
from remediation.tags import NON_INTERNET_TAGS, canonical_tag, tag_base, tag_contains

__all__ = [
    "FQDN_TAGS",
    "AzureFirewall",
    "CollectionAction",
    "Decision",
    "FirewallAddresses",
    "FirewallFlow",
    "FirewallPolicy",
    "FirewallRule",
    "IpGroup",
    "RuleCollection",
    "RuleCollectionGroup",
    "RuleKind",
    "fqdn_matches",
    "judge",
    "ordered_rules",
]

#: FQDN tags whose contents Microsoft publishes, for the names that matter here.
#: AzureKubernetesService: AKS's required outbound names (AKS "outbound network
#: and FQDN rules"), which include Azure Resource Manager and Entra ID login.
FQDN_TAGS: Mapping[str, frozenset[str]] = {
    "azurekubernetesservice": frozenset(
        {
            "management.azure.com",
            "login.microsoftonline.com",
            "mcr.microsoft.com",
            "*.data.mcr.microsoft.com",
            "packages.microsoft.com",
            "acs-mirror.azureedge.net",
        }
    ),
}


class RuleKind(StrEnum):
    DNAT = "dnat"
    NETWORK = "network"
    APPLICATION = "application"


class CollectionAction(StrEnum):
    ALLOW = "Allow"
    DENY = "Deny"
    DNAT = "Dnat"


#: Processing order of rule types (documented: DNAT, network, application).
_KIND_ORDER = {RuleKind.DNAT: 0, RuleKind.NETWORK: 1, RuleKind.APPLICATION: 2}

Match = Literal["yes", "no", "maybe"]


@dataclass(frozen=True, slots=True)
class FirewallAddresses:
    """One side of a firewall rule: ``*``, prefixes and ranges, service tags, IP groups (by id)."""

    any: bool = False
    networks: tuple[IPNetwork, ...] = ()
    tags: tuple[str, ...] = ()
    ip_groups: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.any or self.networks or self.tags or self.ip_groups)


@dataclass(frozen=True, slots=True)
class FirewallRule:
    name: str
    kind: RuleKind
    sources: FirewallAddresses = FirewallAddresses(any=True)
    destinations: FirewallAddresses = FirewallAddresses()
    #: Network rules: IP protocols and destination ports.
    protocols: tuple[Protocol, ...] = ()
    ports: tuple[PortRange, ...] = ()
    destination_fqdns: tuple[str, ...] = ()
    #: Application rules: (Http|Https|Mssql, port) pairs and their targets.
    app_protocols: tuple[tuple[str, int], ...] = ()
    target_fqdns: tuple[str, ...] = ()
    fqdn_tags: tuple[str, ...] = ()
    web_categories: tuple[str, ...] = ()
    target_urls: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RuleCollection:
    name: str
    priority: int
    action: CollectionAction
    rules: tuple[FirewallRule, ...] = ()


@dataclass(frozen=True, slots=True)
class RuleCollectionGroup:
    id: str
    name: str
    priority: int
    collections: tuple[RuleCollection, ...] = ()

    @property
    def policy_id(self) -> str:
        index = self.id.lower().rfind("/rulecollectiongroups/")
        return self.id[:index] if index >= 0 else ""


@dataclass(frozen=True, slots=True)
class FirewallPolicy:
    id: str
    name: str
    base_policy_id: str | None = None
    #: Rule collection groups the policy names (ids); their bodies are separate resources.
    group_ids: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return self.id.lower()


@dataclass(frozen=True, slots=True)
class AzureFirewall:
    id: str
    name: str
    private_ips: tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, ...] = ()
    policy_id: str | None = None
    #: Classic rules, on the firewall resource itself: (kind, collection).
    classic: tuple[tuple[RuleKind, RuleCollection], ...] = ()

    @property
    def key(self) -> str:
        return self.id.lower()


@dataclass(frozen=True, slots=True)
class IpGroup:
    id: str
    name: str
    networks: tuple[IPNetwork, ...] = ()


@dataclass(frozen=True, slots=True)
class FirewallFlow:
    """Traffic through the firewall: TCP/UDP from ``source`` to an address or a name.

    ``app_protocol`` is how an application rule sees it (``Https`` for TLS to
    a name); ``service_tag`` is the tag known to hold ``fqdn``'s address.
    """

    source: IPNetwork
    port: int
    protocol: Protocol = Protocol.TCP
    destination: IPNetwork | None = None
    fqdn: str | None = None
    service_tag: str | None = None
    app_protocol: str | None = "Https"

    def describe(self) -> str:
        target = self.fqdn or str(self.destination)
        return f"{self.protocol.value.upper()} {self.source} -> {target}:{self.port}"


@dataclass(frozen=True, slots=True)
class PlacedRule:
    """A rule where the firewall meets it: its group (None for classic rules) and collection."""

    kind: RuleKind
    group: str | None
    collection: RuleCollection
    rule: FirewallRule

    @property
    def label(self) -> str:
        where = f"{self.group}/" if self.group else ""
        return f"{where}{self.collection.name}/{self.rule.name}"

    @property
    def action(self) -> CollectionAction:
        return self.collection.action


@dataclass(frozen=True, slots=True)
class Decision:
    """The firewall's answer for one flow, with what decided it.

    ``outcome``: ``allowed`` or ``denied`` by ``decided_by``; ``no_rule``
    (denied by default: nothing matched); ``uncertain`` when a rule that may
    match (``uncertain``) stands before the decision with the other action;
    ``unjudged`` when the firewall's rules are not all known (``reason``).
    """

    outcome: Literal["allowed", "denied", "no_rule", "uncertain", "unjudged"]
    decided_by: PlacedRule | None = None
    uncertain: tuple[PlacedRule, ...] = ()
    reason: str = ""

    @property
    def blocked(self) -> bool:
        return self.outcome in ("denied", "no_rule")


@dataclass(frozen=True, slots=True)
class RuleSet:
    """A firewall's rules in processing order, or why they cannot be known."""

    rules: tuple[PlacedRule, ...] = ()
    missing: str = ""
    ip_groups: Mapping[str, IpGroup] = field(default_factory=dict)


def ordered_rules(
    firewall: AzureFirewall,
    policies: Mapping[str, FirewallPolicy],
    groups: Iterable[RuleCollectionGroup],
    ip_groups: Mapping[str, IpGroup],
) -> RuleSet:
    """The firewall's rules as it processes them: type, then (parent first) group and collection priority."""
    if firewall.policy_id is None:
        placed = [
            (_KIND_ORDER[kind], 0, 0, collection.priority, index, PlacedRule(kind, None, collection, rule))
            for index, (kind, collection) in enumerate(firewall.classic)
            for rule in collection.rules
        ]
        return RuleSet(tuple(p[-1] for p in sorted(placed, key=lambda p: p[:5])), ip_groups=ip_groups)
    chain: list[FirewallPolicy] = []
    policy_id: str | None = firewall.policy_id
    while policy_id is not None:
        policy = policies.get(policy_id.lower())
        if policy is None:
            return RuleSet(missing=f"firewall policy {_short(policy_id)} is not in the input")
        if policy in chain:
            return RuleSet(missing=f"firewall policy {policy.name} inherits from itself")
        chain.append(policy)
        policy_id = policy.base_policy_id
    by_policy: dict[str, list[RuleCollectionGroup]] = {}
    for group in groups:
        by_policy.setdefault(group.policy_id.lower(), []).append(group)
    placed_rules: list[tuple[int, int, int, int, int, PlacedRule]] = []
    # The root of the inheritance chain is processed first.
    for depth, policy in enumerate(reversed(chain)):
        known = {g.id.lower() for g in by_policy.get(policy.key, [])}
        absent = [gid for gid in policy.group_ids if gid.lower() not in known]
        if absent:
            names = ", ".join(_short(g) for g in absent)
            return RuleSet(missing=f"rule collection group(s) {names} of policy {policy.name} are not in the input")
        for group in by_policy.get(policy.key, []):
            for index, collection in enumerate(group.collections):
                for rule in collection.rules:
                    placed_rules.append(
                        (
                            _KIND_ORDER[rule.kind],
                            depth,
                            group.priority,
                            collection.priority,
                            index,
                            PlacedRule(rule.kind, group.name, collection, rule),
                        )
                    )
    placed_rules.sort(key=lambda p: p[:5])
    return RuleSet(tuple(p[-1] for p in placed_rules), ip_groups=ip_groups)


def judge(rules: RuleSet, flow: FirewallFlow) -> Decision:
    """What the firewall does with ``flow``: the first matching rule decides, else the default deny."""
    if rules.missing:
        return Decision("unjudged", reason=rules.missing)
    maybes: list[PlacedRule] = []
    for placed in rules.rules:
        match = _match(placed, flow, rules.ip_groups)
        if match == "no":
            continue
        if match == "maybe":
            maybes.append(placed)
            continue
        other = tuple(m for m in maybes if m.action is not placed.action)
        if other:
            return Decision("uncertain", decided_by=placed, uncertain=other)
        outcome: Literal["allowed", "denied"] = "allowed" if placed.action is CollectionAction.ALLOW else "denied"
        return Decision(outcome, decided_by=placed, uncertain=tuple(maybes))
    allowing = tuple(m for m in maybes if m.action is CollectionAction.ALLOW)
    if allowing:
        return Decision("uncertain", uncertain=allowing)
    return Decision("no_rule", uncertain=tuple(maybes))


# --------------------------------------------------------------------------- matching


def _match(placed: PlacedRule, flow: FirewallFlow, ip_groups: Mapping[str, IpGroup]) -> Match:
    rule = placed.rule
    if placed.kind is RuleKind.DNAT or placed.action is CollectionAction.DNAT:
        return "no"  # DNAT matches traffic to the firewall's public addresses only
    source = _source_match(rule.sources, flow.source, ip_groups)
    if source == "no":
        return "no"
    target = _network_match(rule, flow, ip_groups) if rule.kind is RuleKind.NETWORK else _application_match(rule, flow)
    return _both(source, target)


def _both(first: Match, second: Match) -> Match:
    if "no" in (first, second):
        return "no"
    return "maybe" if "maybe" in (first, second) else "yes"


def _any_of(matches: Iterable[Match]) -> Match:
    found: Match = "no"
    for match in matches:
        if match == "yes":
            return "yes"
        if match == "maybe":
            found = "maybe"
    return found


def _source_match(sources: FirewallAddresses, source: IPNetwork, ip_groups: Mapping[str, IpGroup]) -> Match:
    if sources.any:
        return "yes"
    matches: list[Match] = [_network_in(source, sources.networks)]
    for group_id in sources.ip_groups:
        group = ip_groups.get(group_id.lower())
        matches.append("maybe" if group is None else _network_in(source, group.networks))
    if sources.tags:
        matches.append("maybe")
    return _any_of(matches)


def _network_in(network: IPNetwork, candidates: Iterable[IPNetwork]) -> Match:
    found: Match = "no"
    for candidate in candidates:
        if candidate.version != network.version:
            continue
        if network.subnet_of(candidate):  # type: ignore[arg-type]
            return "yes"
        if network.overlaps(candidate):  # part of the range: the rest goes on to later rules
            found = "maybe"
    return found


def _protocol_match(protocols: tuple[Protocol, ...], protocol: Protocol) -> bool:
    return any(p in (Protocol.ANY, protocol) for p in protocols)


def _network_match(rule: FirewallRule, flow: FirewallFlow, ip_groups: Mapping[str, IpGroup]) -> Match:
    if not _protocol_match(rule.protocols, flow.protocol):
        return "no"
    if not any(r.low <= flow.port <= r.high for r in rule.ports):
        return "no"
    destinations = rule.destinations
    if destinations.any:
        return "yes"
    if flow.destination is not None:
        matches: list[Match] = [_network_in(flow.destination, destinations.networks)]
        for group_id in destinations.ip_groups:
            group = ip_groups.get(group_id.lower())
            matches.append("maybe" if group is None else _network_in(flow.destination, group.networks))
        # A private address lies in no Azure service tag; VirtualNetwork-like tags may hold it.
        matches.extend(
            "maybe" for tag in destinations.tags if tag_base(canonical_tag(tag)).lower() in NON_INTERNET_TAGS
        )
        if rule.destination_fqdns:
            matches.append("maybe")  # a name could resolve to this address
        return _any_of(matches)
    fqdn = (flow.fqdn or "").lower()
    matches = ["yes" if any(f.lower().rstrip(".") == fqdn for f in rule.destination_fqdns) else "no"]
    for tag in destinations.tags:
        matches.append(_tag_holds_name(tag, flow.service_tag))
    # A literal public prefix or an IP group may hold the name's address; a private one does not.
    matches.extend("maybe" for n in destinations.networks if not n.is_private)
    matches.extend("maybe" for _ in destinations.ip_groups)
    return _any_of(matches)


def _tag_holds_name(rule_tag: str, name_tag: str | None) -> Match:
    if tag_base(canonical_tag(rule_tag)).lower() in NON_INTERNET_TAGS:
        return "no"
    if name_tag is None:
        return "maybe"
    if tag_contains(rule_tag, name_tag):
        return "yes"
    # A regional tag inside the name's global tag may or may not hold this name's address.
    return "maybe" if tag_contains(name_tag, rule_tag) else "no"


def _application_match(rule: FirewallRule, flow: FirewallFlow) -> Match:
    if not any(
        kind.lower() == (flow.app_protocol or "").lower() and port == flow.port for kind, port in rule.app_protocols
    ):
        return "no"
    if flow.fqdn is None:
        # A client connecting to an address sends no name this rule lists; only "*" holds it.
        return "yes" if "*" in rule.target_fqdns else "no"
    matches: list[Match] = ["yes" if any(fqdn_matches(p, flow.fqdn) for p in rule.target_fqdns) else "no"]
    for tag in rule.fqdn_tags:
        contents = FQDN_TAGS.get(tag.lower())
        if contents is None:
            matches.append("maybe")
        else:
            matches.append("yes" if any(fqdn_matches(p, flow.fqdn) for p in contents) else "no")
    if rule.web_categories or rule.target_urls:
        matches.append("maybe")  # categories and URLs (TLS inspection) are left aside
    if rule.destinations.any:
        matches.append("yes")
    elif not rule.destinations.empty:
        matches.append("maybe")
    return _any_of(matches)


def fqdn_matches(pattern: str, fqdn: str) -> bool:
    """Azure Firewall's target FQDN match: exact, or a leading ``*`` standing for anything to its left."""
    pattern = pattern.strip().lower().rstrip(".")
    name = fqdn.strip().lower().rstrip(".")
    if pattern == "*":
        return True
    if pattern.startswith("*"):
        return name.endswith(pattern[1:])
    return pattern == name


def _short(resource_id: str) -> str:
    return resource_id.rstrip("/").rsplit("/", 1)[-1]
