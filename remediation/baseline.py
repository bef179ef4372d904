"""The required locked-down state, as data.

These are the types the engine consumes. The shipped default lives in
``remediation/baselines/cyclecloud.yaml``; :func:`load_baseline` (in
``remediation/baseline_file.py``) reads and validates a file into them.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from remediation.errors import InputError
from remediation.model import Address, PortRange, Protocol, SecurityRule


class Role(StrEnum):
    """What an NSG guards, from its ``cyclecloud-lockdown`` tag."""

    CYCLECLOUD = "cyclecloud"
    CLUSTER = "cluster"


@functools.cache  # pure, and asked for every NSG on every event and sweep
def roles_from_tag(value: str, *, where: str = "") -> frozenset[Role]:
    """Parse a tag value: ``cyclecloud``, ``cluster`` or ``cyclecloud,cluster``."""
    roles: set[Role] = set()
    for part in value.replace(";", ",").split(","):
        token = part.strip().lower()
        if not token:
            continue
        try:
            roles.add(Role(token))
        except ValueError:
            valid = ", ".join(r.value for r in Role)
            raise InputError(f"unknown role {token!r} in tag value {value!r} (valid: {valid})", where=where) from None
    if not roles:
        raise InputError(f"empty role tag value {value!r}", where=where)
    return frozenset(roles)


def roles_of(tags: Mapping[str, str], tag_name: str) -> frozenset[Role]:
    """The roles of an NSG from its tags (tag name compared case-insensitively).

    Empty when the NSG is not managed, and when its tag names no role
    (``none``, ``""``): such an NSG is not guarded, and :func:`role_tag_problem`
    says why, so one mistyped tag never stops the guard for the others.
    """
    value = _role_tag(tags, tag_name)
    if value is None:
        return frozenset()
    try:
        return roles_from_tag(value)
    except InputError:
        return frozenset()


def role_tag_problem(tags: Mapping[str, str], tag_name: str) -> str:
    """Why the lockdown tag in ``tags`` names no role; empty when it is absent or valid."""
    value = _role_tag(tags, tag_name)
    if value is None:
        return ""
    try:
        roles_from_tag(value)
    except InputError as exc:
        return str(exc)
    return ""


def _role_tag(tags: Mapping[str, str], tag_name: str) -> str | None:
    for key, value in tags.items():
        if key.lower() == tag_name.lower():
            return value
    return None


@dataclass(frozen=True, slots=True)
class RuleRequirement:
    """A rule every NSG of ``roles`` must hold (by meaning, not by name).

    ``rule`` is the rule the remediator writes when it is missing; its flows
    (protocol x addresses x ports) are what "equivalent" is judged on.
    """

    rule: SecurityRule
    roles: frozenset[Role]
    description: str = ""

    @property
    def name(self) -> str:
        return self.rule.name


@dataclass(frozen=True, slots=True)
class FlowEndpoint:
    """One end of a required flow: the subnets of a role, or literal addresses."""

    role: Role | None = None
    addresses: tuple[Address, ...] = ()

    def describe(self) -> str:
        if self.role is not None:
            return f"{self.role.value} subnets"
        return ", ".join(a.to_arm() for a in self.addresses)


@dataclass(frozen=True, slots=True)
class FlowRequirement:
    """Traffic that must pass end to end (e.g. amqp_5672: cluster -> CycleCloud TCP 5672)."""

    name: str
    protocol: Protocol
    ports: tuple[PortRange, ...]
    source: FlowEndpoint
    destination: FlowEndpoint
    description: str = ""


@dataclass(frozen=True, slots=True)
class ServiceEndpointRequirement:
    """A VNet service endpoint the subnets of ``roles`` must have."""

    service: str
    roles: frozenset[Role]


@dataclass(frozen=True, slots=True)
class RequiredFqdn:
    """A name the subnets of ``roles`` must reach through the firewall on their path (HTTPS by default).

    ``service_tag`` is the tag known to hold the name's addresses: routes and
    network rules naming that tag apply to it. ``critical`` marks CycleCloud's
    own names (the document's list): without them it cannot create a node.
    """

    fqdn: str
    port: int = 443
    app_protocol: str = "Https"
    service_tag: str | None = None
    critical: bool = True
    roles: frozenset[Role] = frozenset({Role.CYCLECLOUD})


@dataclass(frozen=True, slots=True)
class Baseline:
    """The effective baseline after options (ReturnProxy, HTTPS proxy) are applied.

    The outbound allow rules of a role are its Internet allow-list: anything
    else allowed to the Internet where an outbound deny rule applies is a
    ``lockdown_breach``.
    """

    name: str
    rules: tuple[RuleRequirement, ...]
    flows: tuple[FlowRequirement, ...] = ()
    service_endpoints: tuple[ServiceEndpointRequirement, ...] = ()
    #: Names that must pass the Azure Firewall on the path (the baseline's ``firewall:`` section).
    firewall_fqdns: tuple[RequiredFqdn, ...] = ()
    lockdown_tag: str = "cyclecloud-lockdown"
    source: str = "<built-in>"
    #: CycleCloud's own addresses, for networks whose export has no NIC tagged as CycleCloud's.
    cyclecloud_addresses: tuple[Address, ...] = ()
    _owned: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # owns() is asked of every rule that decides a finding
        object.__setattr__(self, "_owned", frozenset(r.name.lower() for r in self.rules))

    def rules_for(self, roles: frozenset[Role]) -> tuple[RuleRequirement, ...]:
        return tuple(r for r in self.rules if r.roles & roles)

    def owns(self, rule_name: str) -> bool:
        """True when a rule of this name belongs to the baseline (case-insensitive, as ARM)."""
        return rule_name.lower() in self._owned
