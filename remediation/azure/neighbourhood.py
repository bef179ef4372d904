"""What an event costs: the resources it names, and what their verdict depends on. Nothing else.

An event (or a coalesced batch of them) names NSGs, subnets, VNets and NICs. Their verdict
depends on:

- the named resources themselves, re-read from ARM (an event is never trusted as state);
- the VNet(s) of the subnets involved, and the NSGs on that VNet's subnets (the end-to-end
  node-to-CycleCloud check needs both ends, and a VNet's subnets are its cluster and CycleCloud
  subnets);
- the NICs that matter in those VNets (those with an NSG of their own or ASG memberships) and
  their NSGs;
- what locates CycleCloud: its tagged NIC(s) (``<LOCKDOWN_TAG>=cyclecloud``) and the NSGs with
  the cyclecloud role, with their VNets and NSGs.

Only the named resources are read; the rest comes from the :class:`~remediation.ports.TopologyCache`
(the sweep rebuilds it; every event stores what it re-read), and is read from ARM only when the
cache does not hold it. So an event's requests do not grow with the subscription: one GET of the
NSG for a rule change, then the write. A NIC that carries no NSG, is in no ASG, is not
CycleCloud's and did not before, changes no verdict: its event costs the one GET that shows it.

Many NIC events of one resource group in one batch (a cluster scaling up) are read with one
listing of the group's NICs instead of a GET each.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from remediation.baseline import Role, roles_of
from remediation.model import Inventory, NetworkInterface, NetworkSecurityGroup, VirtualNetwork
from remediation.parse import parse_nic
from remediation.ports import CachedResource, Gathered, TopologyCache
from remediation.resource_id import SUBNET, ResourceId

log = logging.getLogger(__name__)

#: NIC events of one resource group beyond which the group's NICs are listed (pages of 100)
#: rather than fetched one by one.
GROUP_LIST_THRESHOLD = 5


_KINDS = {"networksecuritygroups": "nsg", "virtualnetworks": "vnet", "networkinterfaces": "nic"}


def kind_of(resource_id: str) -> tuple[str, str] | None:
    """(kind, the id to read) for an affected id: a subnet is read through its VNet, a rule its NSG."""
    rid = ResourceId.try_parse(resource_id)
    if rid is None or rid.namespace.lower() != "microsoft.network" or not rid.types:
        return None
    kind = _KINDS.get(rid.types[0].lower())
    if kind is None:
        return None
    while rid.parent is not None:
        rid = rid.parent
    return kind, str(rid)


def vnet_of(subnet_id: str) -> str:
    """The VNet id of a subnet id ("" when it is none)."""
    rid = ResourceId.try_parse(subnet_id)
    return str(rid.parent) if rid is not None and rid.parent is not None and rid.is_a(SUBNET) else ""


@dataclass(slots=True)
class _Reads:
    nsgs: dict[str, dict[str, Any]] = field(default_factory=dict)
    vnets: dict[str, dict[str, Any]] = field(default_factory=dict)
    nics: dict[str, dict[str, Any]] = field(default_factory=dict)
    cached_vnets: set[str] = field(default_factory=set)
    fresh: list[CachedResource] = field(default_factory=list)
    gone: list[tuple[str, str]] = field(default_factory=list)
    reads: int = 0
    cached: int = 0


class NeighbourhoodReader:
    """Gathers an event's neighbourhood through ``read`` (one GET; None when ARM says 404) and
    ``list_group_nics`` (one listing of a resource group's NICs), with ``cache`` for the rest."""

    def __init__(
        self,
        *,
        read: Callable[[str, str], dict[str, Any] | None],
        list_group_nics: Callable[[str, str], list[dict[str, Any]]],
        parse_nsg: Callable[[dict[str, Any]], NetworkSecurityGroup],
        parse_vnet: Callable[[dict[str, Any]], VirtualNetwork],
        cache: TopologyCache,
        lockdown_tag: str,
        group_list_threshold: int = GROUP_LIST_THRESHOLD,
    ) -> None:
        self._read = read
        self._list_group_nics = list_group_nics
        self._parse_nsg = parse_nsg
        self._parse_vnet = parse_vnet
        self._cache = cache
        self._tag = lockdown_tag
        self._group_list_threshold = group_list_threshold

    # ------------------------------------------------------------------ entry

    def gather(self, affected: Collection[str], *, extra_subnet_ids: Collection[str] = ()) -> Gathered:
        r = _Reads()
        named: dict[str, dict[str, str]] = {"nsg": {}, "vnet": {}, "nic": {}}
        for resource_id in affected:
            found = kind_of(resource_id)
            if found is not None:
                named[found[0]].setdefault(found[1].lower(), found[1])
        for nsg_id in named["nsg"].values():
            self._fresh(r, "nsg", nsg_id, self._read("nsg", nsg_id))
        for vnet_id in named["vnet"].values():
            self._fresh(r, "vnet", vnet_id, self._read("vnet", vnet_id))
        nic_ids, left_vnets = self._read_nics(r, named["nic"])
        if not named["nsg"] and not named["vnet"] and not nic_ids and not left_vnets and not extra_subnet_ids:
            self._store(r)
            return Gathered(Inventory(), reads=r.reads, settled=True)

        # The VNets involved: of the named NSGs' subnets, of the NICs that matter, of remembered
        # subnets, and where CycleCloud is.
        vnet_ids: dict[str, str] = {k: str(v.get("id", k)) for k, v in r.vnets.items()}
        nsg_nic_ids: dict[str, str] = {}
        for raw in r.nsgs.values():
            nsg = self._parse_nsg(raw)
            for subnet_id in nsg.subnet_ids:
                _add(vnet_ids, vnet_of(subnet_id))
            for nic_id in nsg.nic_ids:
                nsg_nic_ids.setdefault(nic_id.lower(), nic_id)
        for subnet_id in extra_subnet_ids:
            _add(vnet_ids, vnet_of(subnet_id))
        for vnet_id in left_vnets:
            _add(vnet_ids, vnet_id)
        for key in nic_ids:
            for subnet_id in _nic(r.nics[key]).subnet_ids:
                _add(vnet_ids, vnet_of(subnet_id))
        for pointer in self._cache.cyclecloud():
            r.cached += 1
            if pointer.kind == "nic":
                r.nics.setdefault(pointer.key, pointer.body)
                _add(vnet_ids, pointer.vnet_id)
            elif pointer.kind == "nsg":
                r.nsgs.setdefault(pointer.key, pointer.body)
                for subnet_id in self._parse_nsg(pointer.body).subnet_ids:
                    _add(vnet_ids, vnet_of(subnet_id))
        # NICs an NSG is attached to (an NSG on CycleCloud's NIC), from the cache or ARM.
        self._nics_by_id(r, nsg_nic_ids)

        self._vnets(r, vnet_ids)
        self._reconcile_cached_vnets(r, named["nsg"])
        for nic in self._cache.nics_in(list(r.vnets)):
            r.cached += 1
            r.nics.setdefault(nic.key, nic.body)
        wanted_nsgs: dict[str, str] = {}
        for raw in r.vnets.values():
            for subnet in self._parse_vnet(raw).subnets:
                if subnet.nsg_id:
                    wanted_nsgs.setdefault(subnet.nsg_id.lower(), subnet.nsg_id)
        for raw in r.nics.values():
            nic_nsg = _nic(raw).nsg_id
            if nic_nsg:
                wanted_nsgs.setdefault(nic_nsg.lower(), nic_nsg)
        self._nsgs(r, wanted_nsgs)
        self._store(r)
        inventory = Inventory(
            nsgs=tuple(self._parse_nsg(raw) for raw in r.nsgs.values()),
            vnets=tuple(self._parse_vnet(raw) for raw in r.vnets.values()),
            nics=tuple(_nic(raw) for raw in r.nics.values()),
        )
        return Gathered(inventory, reads=r.reads, cached=r.cached, vnet_ids=frozenset(r.vnets))

    # ------------------------------------------------------------------ steps

    def _fresh(self, r: _Reads, kind: str, resource_id: str, raw: dict[str, Any] | None) -> None:
        """A resource read from ARM now: kept for this run and for the cache (or forgotten: gone)."""
        r.reads += 1
        if raw is None:
            r.gone.append((kind, resource_id))
            return
        key = str(raw.get("id", resource_id)).lower()
        if kind == "nsg":
            r.nsgs[key] = raw
            r.fresh.append(self.cached_nsg(raw))
        elif kind == "vnet":
            r.vnets[key] = raw
            r.fresh.append(self.cached_vnet(raw))
        else:
            r.nics[key] = raw
            entry = self.cached_nic(raw)
            if entry is not None:
                r.fresh.append(entry)
            else:
                r.gone.append(("nic", str(raw.get("id", resource_id))))  # no longer worth keeping, if it was

    def _read_nics(self, r: _Reads, wanted: Mapping[str, str]) -> tuple[list[str], list[str]]:
        """Read the named NICs (a group's listing when many share one): the keys of those that matter
        now or did, and the VNets of those that mattered and are gone."""
        if not wanted:
            return [], []
        by_group: dict[tuple[str, str], dict[str, str]] = {}
        for key, nic_id in wanted.items():
            rid = ResourceId.parse(nic_id, where="NIC id")
            by_group.setdefault((rid.subscription, rid.resource_group), {})[key] = nic_id
        raws: dict[str, dict[str, Any] | None] = {}
        for (subscription, resource_group), ids in by_group.items():
            if len(ids) > self._group_list_threshold:
                listed = self._list_group_nics(subscription, resource_group)
                r.reads += 1 + len(listed) // 100  # the pages of the listing
                by_id = {str(n.get("id", "")).lower(): n for n in listed}
                raws.update({key: by_id.get(key) for key in ids})
            else:
                for key, nic_id in ids.items():
                    raws[key] = self._read("nic", nic_id)
                    r.reads += 1
        # Which mattered before: those the cache holds (it keeps only NICs that matter), found by
        # their VNets (one query each), or by id for a NIC that is gone.
        vnets = {vnet_of(s) for raw in raws.values() if raw for s in _nic(raw).subnet_ids if vnet_of(s)}
        before = {n.key for n in self._cache.nics_in(vnets)} if vnets else set()
        deleted = self._cache.get("nic", [wanted[k] for k, raw in raws.items() if raw is None])
        interesting: list[str] = []
        left_vnets = [entry.vnet_id for entry in deleted.values() if entry.vnet_id]
        for key, raw in raws.items():
            if raw is None:
                r.gone.append(("nic", wanted[key]))  # deleted: what it leaves is judged from its VNet
                continue
            entry = self.cached_nic(raw)
            if entry is not None:
                r.nics[key] = raw
                r.fresh.append(entry)
                interesting.append(key)
            elif key in before:
                r.nics[key] = raw
                r.gone.append(("nic", wanted[key]))  # lost its NSG or its tag: the change is judged once
                interesting.append(key)
            # else: no NSG, not CycleCloud's, neither before: it changes no verdict
        return interesting, left_vnets

    def _nics_by_id(self, r: _Reads, ids: Mapping[str, str]) -> None:
        missing = {k: v for k, v in ids.items() if k not in r.nics}
        for key, entry in self._cache.get("nic", list(missing.values())).items():
            r.cached += 1
            r.nics[key] = entry.body
            missing.pop(key, None)
        for nic_id in missing.values():
            self._fresh(r, "nic", nic_id, self._read("nic", nic_id))

    def _vnets(self, r: _Reads, ids: Mapping[str, str]) -> None:
        missing = {k: v for k, v in ids.items() if k and k not in r.vnets}
        for key, entry in self._cache.get("vnet", list(missing.values())).items():
            r.cached += 1
            r.vnets[key] = entry.body
            r.cached_vnets.add(key)
            missing.pop(key, None)
        for vnet_id in missing.values():
            self._fresh(r, "vnet", vnet_id, self._read("vnet", vnet_id))

    def _reconcile_cached_vnets(self, r: _Reads, named_nsgs: Mapping[str, str]) -> None:
        """Re-read a cached VNet that contradicts a named NSG as ARM shows it now.

        Attaching or detaching is a write on the subnet, with its own event; if that event was
        missed (or is still on its way), the NSG's back-references (or its absence: ARM deletes
        only an NSG no subnet uses) disagree with the cached subnets. Then the VNet is read.
        """
        gone = {resource_id.lower() for kind, resource_id in r.gone if kind == "nsg"}
        stale: set[str] = set()
        for key in named_nsgs:
            if key in gone:
                says: set[str] = set()
            elif key in r.nsgs:
                says = {s.lower() for s in self._parse_nsg(r.nsgs[key]).subnet_ids}
            else:
                continue
            for vnet_key in r.cached_vnets:
                for subnet in self._parse_vnet(r.vnets[vnet_key]).subnets:
                    if ((subnet.nsg_id or "").lower() == key) != (subnet.key in says):
                        stale.add(vnet_key)
        for vnet_key in sorted(stale):
            r.cached_vnets.discard(vnet_key)
            vnet_id = str(r.vnets.pop(vnet_key).get("id", vnet_key))
            self._fresh(r, "vnet", vnet_id, self._read("vnet", vnet_id))

    def _nsgs(self, r: _Reads, ids: Mapping[str, str]) -> None:
        missing = {k: v for k, v in ids.items() if k not in r.nsgs}
        for key, entry in self._cache.get("nsg", list(missing.values())).items():
            r.cached += 1
            r.nsgs[key] = entry.body
            missing.pop(key, None)
        for nsg_id in missing.values():
            self._fresh(r, "nsg", nsg_id, self._read("nsg", nsg_id))

    def _store(self, r: _Reads) -> None:
        """What was read from ARM goes back to the cache; a cache failure costs reads later, nothing now."""
        if not r.fresh and not r.gone:
            return
        try:
            self._cache.put(r.fresh, forget=r.gone)
        except Exception:
            log.exception("storing %d fresh reads in the topology cache failed", len(r.fresh))

    # ------------------------------------------------------------------ cache entries

    def cached_nsg(self, raw: dict[str, Any]) -> CachedResource:
        nsg = self._parse_nsg(raw)
        cyclecloud = Role.CYCLECLOUD in roles_of(nsg.tags, self._tag)
        return CachedResource(nsg.id, "nsg", str(raw.get("etag") or ""), raw, cyclecloud=cyclecloud)

    def cached_vnet(self, raw: dict[str, Any]) -> CachedResource:
        vnet = self._parse_vnet(raw)
        return CachedResource(vnet.id, "vnet", str(raw.get("etag") or ""), raw, vnet_id=vnet.id)

    def cached_nic(self, raw: dict[str, Any]) -> CachedResource | None:
        """A NIC worth keeping (an NSG of its own, ASG memberships, or CycleCloud's tag), else None.

        ASG memberships decide ASG rules and which hosts are CycleCloud's clients.
        """
        nic = _nic(raw)
        tags = raw.get("tags") if isinstance(raw.get("tags"), dict) else {}
        cyclecloud = Role.CYCLECLOUD in roles_of({str(k): str(v) for k, v in (tags or {}).items()}, self._tag)
        if not nic.nsg_id and not cyclecloud and not nic.asg_ids:
            return None
        vnet_id = next((vnet_of(s) for s in nic.subnet_ids if vnet_of(s)), "")
        return CachedResource(nic.id, "nic", str(raw.get("etag") or ""), raw, vnet_id=vnet_id, cyclecloud=cyclecloud)

    def cache_entries(
        self, nsgs: Iterable[dict[str, Any]], vnets: Iterable[dict[str, Any]], nics: Iterable[dict[str, Any]]
    ) -> list[CachedResource]:
        """The sweep's reads as cache entries (NICs that do not matter left out)."""
        entries = [self.cached_nsg(raw) for raw in nsgs] + [self.cached_vnet(raw) for raw in vnets]
        entries += [e for e in (self.cached_nic(raw) for raw in nics) if e is not None]
        return entries


def _nic(raw: dict[str, Any]) -> NetworkInterface:
    return parse_nic(raw, where=str(raw.get("id", "NIC")))


def _add(ids: dict[str, str], resource_id: str) -> None:
    if resource_id:
        ids.setdefault(resource_id.lower(), resource_id)
