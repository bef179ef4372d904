"""An index over an inventory: which NSG guards which subnet and NIC, with which roles.

Pure: answers the topology questions findings need (the subnets of a role,
the NICs inside a subnet, the NSG of a NIC) without touching Azure.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field

from remediation.baseline import Role, role_tag_problem, roles_of
from remediation.model import (
    Inventory,
    IPNetwork,
    NetworkInterface,
    NetworkSecurityGroup,
    Subnet,
    VirtualNetwork,
)


@dataclass(frozen=True, slots=True)
class Network:
    """The inventory, indexed. ``role_override`` replaces every NSG's tag roles."""

    inventory: Inventory
    lockdown_tag: str = "cyclecloud-lockdown"
    role_override: frozenset[Role] | None = None
    nsgs: Mapping[str, NetworkSecurityGroup] = field(init=False)
    subnets: Mapping[str, Subnet] = field(init=False)
    vnets: Mapping[str, VirtualNetwork] = field(init=False)
    nics: Mapping[str, NetworkInterface] = field(init=False)
    # Indexes, so a subscription-wide review is linear, not quadratic, in its subnets and NICs.
    _subnets_by_nsg: Mapping[str, list[Subnet]] = field(init=False, repr=False, compare=False)
    _nics_by_subnet: Mapping[str, list[NetworkInterface]] = field(init=False, repr=False, compare=False)
    _by_role: dict[Role, list[Subnet]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        inv = self.inventory
        object.__setattr__(self, "nsgs", {n.key: n for n in inv.nsgs})
        object.__setattr__(self, "vnets", {v.key: v for v in inv.vnets})
        object.__setattr__(self, "subnets", {s.key: s for v in inv.vnets for s in v.subnets})
        object.__setattr__(self, "nics", {n.key: n for n in inv.nics})
        by_nsg: dict[str, list[Subnet]] = {}
        for subnet in self.subnets.values():
            if subnet.nsg_id:
                by_nsg.setdefault(subnet.nsg_id.lower(), []).append(subnet)
        by_subnet: dict[str, list[NetworkInterface]] = {}
        for nic in self.nics.values():
            for key in dict.fromkeys(s.lower() for s in nic.subnet_ids):
                by_subnet.setdefault(key, []).append(nic)
        object.__setattr__(self, "_subnets_by_nsg", by_nsg)
        object.__setattr__(self, "_nics_by_subnet", by_subnet)
        object.__setattr__(self, "_by_role", {})

    def roles(self, nsg: NetworkSecurityGroup) -> frozenset[Role]:
        if self.role_override is not None:
            return self.role_override
        return roles_of(nsg.tags, self.lockdown_tag)

    def managed(self) -> list[tuple[NetworkSecurityGroup, frozenset[Role]]]:
        """Managed NSGs with their roles, in inventory order (duplicates by id dropped)."""
        seen: set[str] = set()
        out: list[tuple[NetworkSecurityGroup, frozenset[Role]]] = []
        for nsg in self.inventory.nsgs:
            if nsg.key in seen:
                continue
            seen.add(nsg.key)
            roles = self.roles(nsg)
            if roles:
                out.append((nsg, roles))
        return out

    def misconfigured(self) -> list[tuple[NetworkSecurityGroup, str]]:
        """NSGs whose lockdown tag names no role (``none``, ``""``), each with the problem: not guarded."""
        if self.role_override is not None:
            return []
        out: list[tuple[NetworkSecurityGroup, str]] = []
        for nsg in self.nsgs.values():
            problem = role_tag_problem(nsg.tags, self.lockdown_tag)
            if problem:
                out.append((nsg, problem))
        return out

    def subnets_of(self, nsg: NetworkSecurityGroup) -> list[Subnet]:
        """Subnets this NSG is attached to: from the subnets' side when known, else its back-references."""
        found = {s.key: s for s in self._subnets_by_nsg.get(nsg.key, ())}
        for sid in nsg.subnet_ids:
            if sid.lower() not in found and sid.lower() not in self.subnets:
                found[sid.lower()] = Subnet(id=sid, name=sid.rsplit("/", 1)[-1])
        return list(found.values())

    def subnets_with_role(self, role: Role) -> list[Subnet]:
        cached = self._by_role.get(role)
        if cached is None:
            cached = []
            for nsg, roles in self.managed():
                if role in roles:
                    cached.extend(self.subnets_of(nsg))
            self._by_role[role] = cached
        return list(cached)

    def nics_in(self, subnet: Subnet) -> list[NetworkInterface]:
        return list(self._nics_by_subnet.get(subnet.key, ()))

    def nsg_by_id(self, nsg_id: str | None) -> NetworkSecurityGroup | None:
        return self.nsgs.get(nsg_id.lower()) if nsg_id else None

    def nsg_of_subnet(self, subnet: Subnet) -> NetworkSecurityGroup | None:
        """The NSG guarding ``subnet``: from the subnet's side when known, else an NSG's back-reference."""
        if subnet.key in self.subnets:
            return self.nsg_by_id(self.subnets[subnet.key].nsg_id)
        return next((n for n in self.nsgs.values() if subnet.key in {s.lower() for s in n.subnet_ids}), None)

    def nics_of(self, nsg: NetworkSecurityGroup) -> list[NetworkInterface]:
        """The NICs (in the inventory) this NSG is attached to, from either side."""
        referenced = {i.lower() for i in nsg.nic_ids}
        return [n for n in self.nics.values() if (n.nsg_id or "").lower() == nsg.key or n.key in referenced]

    def guards_anything(self, nsg: NetworkSecurityGroup) -> bool:
        """Attached to a subnet or a NIC, as far as the inventory says (from either side)."""
        return bool(nsg.subnet_ids or nsg.nic_ids or self._subnets_by_nsg.get(nsg.key) or self.nics_of(nsg))

    def vnet_prefixes_for(self, subnets: list[Subnet]) -> tuple[IPNetwork, ...]:
        """The address space of the VNets these subnets are in (all VNets when none is known)."""
        keys = {s.vnet_id.lower() for s in subnets}
        chosen = [v for v in self.vnets.values() if v.key in keys] or list(self.vnets.values())
        prefixes: list[IPNetwork] = []
        for v in chosen:
            prefixes.extend(v.address_space or tuple(p for s in v.subnets for p in s.address_prefixes))
        return tuple(prefixes)

    def asg_members(self) -> dict[str, tuple[IPNetwork, ...]]:
        """ASG id -> the /32 (/128) of each NIC in it, when the inventory holds NICs."""
        members: dict[str, list[IPNetwork]] = {}
        for nic in self.nics.values():
            for asg in nic.asg_ids:
                nets = members.setdefault(asg.lower(), [])
                nets.extend(ipaddress.ip_network(ip) for ip in nic.private_ips)
        return {k: tuple(v) for k, v in members.items()}
