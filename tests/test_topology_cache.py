"""The topology cache contract, run against the in-memory cache and Table Storage (Azurite)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import SecretStr

from remediation.errors import InputError
from remediation.ports import CachedResource, TopologyCache
from remediation.settings import Settings
from remediation.state import InMemoryTopologyCache, TableTopologyCache

T0 = datetime(2026, 12, 4, 6, 0, tzinfo=UTC)
RG = "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.Network"
VNET = f"{RG}/virtualNetworks/vnet-a"
OTHER_VNET = f"{RG}/virtualNetworks/vnet-b"


def nsg(name: str, etag: str = "1", *, cyclecloud: bool = False, rules: int = 1) -> CachedResource:
    rid = f"{RG}/networkSecurityGroups/{name}"
    body: dict[str, Any] = {
        "id": rid,
        "etag": etag,
        "properties": {"securityRules": [{"name": f"r{i}"} for i in range(rules)]},
    }
    return CachedResource(rid, "nsg", etag, body, cyclecloud=cyclecloud)


def nic(name: str, vnet: str = VNET, etag: str = "1", *, cyclecloud: bool = False) -> CachedResource:
    rid = f"{RG}/networkInterfaces/{name}"
    return CachedResource(rid, "nic", etag, {"id": rid, "etag": etag}, vnet_id=vnet, cyclecloud=cyclecloud)


def vnet(rid: str = VNET, etag: str = "1") -> CachedResource:
    return CachedResource(rid, "vnet", etag, {"id": rid, "etag": etag, "properties": {"subnets": []}})


@pytest.fixture(params=["memory", "azurite"])
def cache(request: pytest.FixtureRequest) -> Iterator[TopologyCache]:
    if request.param == "memory":
        yield InMemoryTopologyCache(clock=lambda: T0)
    else:
        settings = Settings(
            state_connection_string=SecretStr(request.getfixturevalue("azurite")),
            state_table_prefix="t" + uuid.uuid4().hex[:12],
        )
        yield TableTopologyCache.from_settings(settings, clock=lambda: T0)


def test_empty_cache_knows_nothing_and_was_never_built(cache: TopologyCache) -> None:
    assert cache.get("nsg", [nsg("a").id]) == {}
    assert cache.nics_in([VNET]) == []
    assert cache.cyclecloud() == []
    assert cache.built_at() is None


def test_put_then_get_by_id_case_insensitively_with_the_body_as_stored(cache: TopologyCache) -> None:
    a = nsg("a", rules=3)
    cache.put([a, vnet()])
    got = cache.get("nsg", [a.id.upper(), nsg("missing").id])
    assert list(got) == [a.id.lower()]  # the missing one is left out, the key is the lowered id
    assert got[a.id.lower()] == a
    assert cache.get("vnet", [VNET])[VNET.lower()].body == vnet().body
    assert cache.get("vnet", [a.id]) == {}  # kinds are apart


def test_nics_are_found_by_their_vnet(cache: TopologyCache) -> None:
    cache.put([nic("n1"), nic("n2"), nic("elsewhere", OTHER_VNET)])
    assert sorted(n.id.rsplit("/", 1)[-1] for n in cache.nics_in([VNET.upper()])) == ["n1", "n2"]
    assert [n.id.rsplit("/", 1)[-1] for n in cache.nics_in([OTHER_VNET])] == ["elsewhere"]


def test_cyclecloud_pointers_follow_the_resource(cache: TopologyCache) -> None:
    cc_nic, cc_nsg = nic("cc", cyclecloud=True), nsg("cc", cyclecloud=True)
    cache.put([cc_nic, cc_nsg, nsg("other")])
    assert sorted(r.kind for r in cache.cyclecloud()) == ["nic", "nsg"]
    # The tag was taken off the NIC: it no longer locates CycleCloud.
    cache.put([nic("cc", etag="2")])
    assert [r.kind for r in cache.cyclecloud()] == ["nsg"]
    # The NSG is deleted: forgotten, pointer and all.
    cache.put([], forget=[("nsg", cc_nsg.id)])
    assert cache.cyclecloud() == []
    assert cache.get("nsg", [cc_nsg.id]) == {}


def test_rebuild_makes_the_cache_exactly_the_sweeps_reads_writing_only_what_changed(cache: TopologyCache) -> None:
    cache.put([nsg("a"), nsg("b"), nic("n1", cyclecloud=True), vnet()])
    # The sweep saw a unchanged, b changed, n1 gone, c new; the VNet unchanged.
    written = cache.rebuild([nsg("a"), nsg("b", etag="2"), nsg("c"), vnet()])
    assert written == 3  # b rewritten, c added, n1 dropped (a and the VNet untouched); n1's pointer not counted
    assert sorted(cache.get("nsg", [nsg(n).id for n in "abc"])) == sorted(nsg(n).id.lower() for n in "abc")
    assert cache.get("nsg", [nsg("b").id])[nsg("b").id.lower()].etag == "2"
    assert cache.nics_in([VNET]) == []
    assert cache.cyclecloud() == []
    assert cache.built_at() == T0
    assert cache.rebuild([nsg("a"), nsg("b", etag="2"), nsg("c"), vnet()]) == 0  # nothing changed since


def test_rebuild_of_many_resources_in_batches(cache: TopologyCache) -> None:
    many = [nsg(f"n{i:04d}", rules=40) for i in range(250)]
    assert cache.rebuild(many) == 250
    got = cache.get("nsg", [many[0].id, many[-1].id])
    assert got[many[-1].id.lower()].body == many[-1].body


def test_an_unknown_kind_is_refused_naming_it(cache: TopologyCache) -> None:
    if isinstance(cache, InMemoryTopologyCache):
        pytest.skip("the in-memory cache keeps any kind")
    with pytest.raises(InputError, match="'route'"):
        cache.get("route", ["x"])
