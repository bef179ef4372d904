"""Loop test: the emulator feeds every write back as Event Grid events, including the
remediator's own, with duplicates and a shuffling window, while a person keeps changing the NSG.

The remediator must write exactly once per change that broke the baseline and never in answer to
its own writes: with its identity configured (own writes are recognised and dropped before any ARM
call) and without (it re-reads, finds nothing to do, and writes nothing: idempotence, not luck).
CI runs 24 rounds; ``RUN_SLOW=1`` runs 300.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

import function_app
from devtools.demo import host_event
from devtools.emulator import REMEDIATOR
from devtools.functions_host import user_function
from tests.reliability.harness import (
    HUMAN_RULE,
    RESOURCE_GROUP,
    World,
    duplicated,
    human_client,
    make_world,
    network,
    run_slow,
)

pytestmark = pytest.mark.integration

ROUNDS = 300 if run_slow() else 24
NSG = "nsg-cyclecloud"


def benign_rule(i: int) -> dict[str, Any]:
    return {
        "properties": {
            "protocol": "Tcp",
            "access": "Allow",
            "priority": 1000 + i,  # one per round: never two on one priority
            "direction": "Inbound",
            "sourceAddressPrefix": "10.10.7.0/24",
            "destinationAddressPrefix": "*",
            "sourcePortRange": "*",
            "destinationPortRange": str(10000 + i),
        }
    }


def run_loop(world: World, rounds: int, seed: int) -> dict[str, int]:
    em = world.em
    handler = user_function(function_app.app, "on_nsg_change")
    em.set_event_subscriber(lambda batch: [handler(host_event(e)) for e in batch], duplicate=0.3, reorder=3)
    baseline_rules = [n for n in world.rule_names() if n != HUMAN_RULE["name"]]
    rng = random.Random(seed)
    breaking = 0
    people = human_client(em)
    try:
        for i in range(rounds):
            action = rng.choice(["delete", "delete", "benign", "benign-remove"])
            if action == "delete":
                people.security_rules.begin_delete(RESOURCE_GROUP, NSG, rng.choice(baseline_rules)).result()
                breaking += 1
            elif action == "benign":
                people.security_rules.begin_create_or_update(RESOURCE_GROUP, NSG, f"Benign{i}", benign_rule(i)).result()
            else:
                benign = [n for n in world.rule_names() if n.startswith("Benign")]
                if benign:
                    people.security_rules.begin_delete(RESOURCE_GROUP, NSG, rng.choice(benign)).result()
            assert em.events.wait_idle(timeout=30), f"round {i}: events still queued"
            assert world.remaining_remediable() == [], f"round {i}: not restored"
            assert duplicated(world.rules()) == []
            assert HUMAN_RULE["name"] in world.rule_names()
    finally:
        people.close()
    own_oid = em.identities.get(REMEDIATOR).oid
    delivered = list(em.events.delivered)
    own = sum(
        1
        for e in delivered
        if e["data"]["claims"].get("http://schemas.microsoft.com/identity/claims/objectidentifier") == own_oid
    )
    return {
        "rounds": rounds,
        "breaking changes": breaking,
        "remediator writes": len(world.writes()),
        "events delivered": len(delivered),
        "own-write events delivered": own,
        "delivery failures": len(list(em.events.failures)),
    }


def test_own_writes_fed_back_recognised(world: World) -> None:
    world.em.seed(network(drop=()))
    figures = run_loop(world, ROUNDS, seed=1)
    print("\nloop (own identity configured):", figures)
    assert figures["delivery failures"] == 0
    assert figures["own-write events delivered"] >= figures["breaking changes"]
    assert figures["remediator writes"] == figures["breaking changes"], figures
    # Own writes were dropped before any ARM call: the remediator's reads come from human events only.
    lists = [
        r for r in world.arm_requests(method="GET", caller="remediator") if r["path"].endswith("/networkSecurityGroups")
    ]
    assert len(lists) <= figures["events delivered"] - figures["own-write events delivered"]


def test_own_writes_fed_back_unrecognised(emulator: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without AZURE_CLIENT_ID / REMEDIATOR_PRINCIPAL_ID the handler cannot tell its own writes:
    it re-reads and finds nothing to do. Still exactly one write per breaking change."""
    monkeypatch.delenv("AZURE_CLIENT_ID")
    monkeypatch.delenv("REMEDIATOR_PRINCIPAL_ID")
    world = make_world(emulator, network(drop=()))
    function_app.runtime.use(world.rt)
    try:
        figures = run_loop(world, max(ROUNDS // 2, 12), seed=2)
    finally:
        function_app.runtime.use(None)
        world.rt.close()
    print("\nloop (own identity unknown):", figures)
    assert figures["delivery failures"] == 0
    assert figures["remediator writes"] == figures["breaking changes"], figures
