"""The attachments part of the state store contract, on the in-memory store and Table Storage (Azurite)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from remediation.ports import StateStore
from remediation.settings import Settings
from remediation.state import InMemoryStateStore, TableStateStore
from tests.test_state import T0, table_store

VNET = "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/vnet"
NSGS = "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.Network/networkSecurityGroups"


def subnet(i: int) -> str:
    return f"{VNET}/subnets/s{i:04d}"


@pytest.fixture(params=["memory", "azurite"])
def store(request: pytest.FixtureRequest) -> Iterator[StateStore]:
    if request.param == "memory":
        yield InMemoryStateStore(clock=lambda: T0)
    else:
        yield table_store(request.getfixturevalue("azurite"))


def test_empty_then_round_trip(store: StateStore) -> None:
    assert store.attachments() == {}
    store.save_attachments({subnet(1): f"{NSGS}/nsg-a", subnet(2): f"{NSGS}/nsg-b"})
    assert store.attachments() == {subnet(1): f"{NSGS}/nsg-a", subnet(2): f"{NSGS}/nsg-b"}


def test_upsert_replaces_case_insensitively_and_keeps_the_others(store: StateStore) -> None:
    store.save_attachments({subnet(1): f"{NSGS}/nsg-a", subnet(2): f"{NSGS}/nsg-a"})
    store.save_attachments({subnet(1).upper(): f"{NSGS}/nsg-b"})
    assert store.attachments() == {subnet(1).upper(): f"{NSGS}/nsg-b", subnet(2): f"{NSGS}/nsg-a"}


def test_forget_deletes_and_tolerates_unknown_subnets(store: StateStore) -> None:
    store.save_attachments({subnet(1): f"{NSGS}/nsg-a", subnet(2): f"{NSGS}/nsg-a"})
    store.save_attachments({}, forget=[subnet(1).upper(), subnet(99)])
    assert store.attachments() == {subnet(2): f"{NSGS}/nsg-a"}
    # A subnet both forgotten and seen again in the same call is kept (what is seen wins).
    store.save_attachments({subnet(2): f"{NSGS}/nsg-c"}, forget=[subnet(2)])
    assert store.attachments() == {subnet(2): f"{NSGS}/nsg-c"}


def test_many_pairs_beyond_one_transaction(store: StateStore) -> None:
    pairs = {subnet(i): f"{NSGS}/nsg-{i % 7}" for i in range(250)}
    store.save_attachments(pairs)
    store.save_attachments({}, forget=[subnet(i) for i in range(0, 250, 2)])
    assert store.attachments() == {k: v for i, (k, v) in enumerate(pairs.items()) if i % 2}


def test_table_entities_are_keyed_by_the_hashed_lowercased_subnet(azurite: str) -> None:
    store = table_store(azurite)
    store.save_attachments({subnet(1).upper(): f"{NSGS}/nsg-a"})
    table = store._table("attachments")
    assert table.table_name.endswith("attachments")
    [entity] = list(table.list_entities())
    assert entity["PartitionKey"] == "attachment"
    assert len(entity["RowKey"]) == 64
    assert entity["subnet_id"] == subnet(1).upper()
    assert entity["nsg_id"] == f"{NSGS}/nsg-a"
    assert entity["seen_at"] == T0


def test_a_reader_that_may_not_create_tables_sees_no_attachments(azurite: str) -> None:
    writer = table_store(azurite)
    prefix = writer._table("attachments").table_name.removesuffix("attachments")
    fresh = TableStateStore.from_settings(
        Settings(state_connection_string=SecretStr(azurite), state_table_prefix=prefix + "x"), create_tables=False
    )
    assert fresh.attachments() == {}


def test_managed_nsgs_round_trip_apart_from_the_attachments(store: StateStore) -> None:
    """The NSGs remembered as managed (issue 11, item 4) share the table, not the partition."""
    store.save_attachments({subnet(1): f"{NSGS}/nsg-a"})
    assert store.managed_nsgs() == {}
    store.save_managed_nsgs({f"{NSGS}/nsg-a": "cyclecloud", f"{NSGS}/nsg-b": "cluster"})
    store.save_managed_nsgs({f"{NSGS}/NSG-A": "cluster,cyclecloud"}, forget=[f"{NSGS}/nsg-b", f"{NSGS}/gone"])
    assert store.managed_nsgs() == {f"{NSGS}/NSG-A": "cluster,cyclecloud"}
    assert store.attachments() == {subnet(1): f"{NSGS}/nsg-a"}


def test_an_event_loads_only_the_pairs_near_its_vnets_and_nsgs(store: StateStore) -> None:
    other = VNET.replace("/vnet", "/vnet-other")
    store.save_attachments(
        {subnet(1): f"{NSGS}/nsg-a", subnet(2): f"{NSGS}/nsg-b", f"{other}/subnets/x": f"{NSGS}/nsg-c"}
        | {f"{VNET}-{i}/subnets/s": f"{NSGS}/nsg-{i}" for i in range(20)}  # more VNets than one filter holds
    )
    # By VNet (any case): both of its subnets; by NSG: the pair in the other VNet.
    assert store.attachments(near=[VNET.upper()]) == {subnet(1): f"{NSGS}/nsg-a", subnet(2): f"{NSGS}/nsg-b"}
    assert store.attachments(near=[f"{NSGS}/NSG-C"]) == {f"{other}/subnets/x": f"{NSGS}/nsg-c"}
    # Ten VNets at once: more than the 15 comparisons one filter may hold, so several queries.
    wanted = [f"{VNET}-{i}" for i in range(10)]
    assert sorted(store.attachments(near=wanted)) == sorted(f"{v}/subnets/s" for v in wanted)
    assert store.attachments(near=[]) == {}
    assert len(store.attachments()) == 23


def test_rows_from_before_the_vnet_key_are_found_near_their_vnet_after_one_full_read(azurite: str) -> None:
    store = table_store(azurite)
    table = store._table("attachments")
    table.create_entity(
        {"PartitionKey": "attachment", "RowKey": "0" * 64, "subnet_id": subnet(7), "nsg_id": f"{NSGS}/nsg-a"}
    )
    assert store.attachments(near=[VNET]) == {}  # written before the keys existed: a filter cannot see it
    assert store.attachments() == {subnet(7): f"{NSGS}/nsg-a"}  # the sweep's full read rewrites it
    assert store.attachments(near=[VNET]) == {subnet(7): f"{NSGS}/nsg-a"}


def managed(n: int) -> str:
    return f"{NSGS}/nsg-{n}"


def test_managed_nsgs_by_id_returns_only_those(store: StateStore) -> None:
    store.save_managed_nsgs({managed(n): "cluster" for n in range(40)} | {managed(99): "cyclecloud"})
    # Any case; an id never remembered is simply absent; 20 ids are more than one filter holds.
    asked = [managed(1).upper(), managed(99), managed(500), *(managed(n) for n in range(20, 38))]
    assert store.managed_nsgs(asked) == {managed(1): "cluster", managed(99): "cyclecloud"} | {
        managed(n): "cluster" for n in range(20, 38)
    }
    assert store.managed_nsgs([]) == {}
    assert len(store.managed_nsgs()) == 41  # without ids: every one (the sweep)
