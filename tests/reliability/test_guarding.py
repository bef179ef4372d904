"""Guarding never stops without a word (issue 11, item 4).

Before: removing the lockdown tag from a managed NSG (or changing its role), then deleting
AllowAzureStorage, yielded 0 findings and 0 alerts. Now the state store remembers what was
managed; losing the tag or the role is one high ``nsg_unmanaged`` incident naming who did it.
"""

from __future__ import annotations

from typing import Any

import pytest

from devtools.demo import TAG
from remediation.events import parse_event
from remediation.findings import Finding, FindingKind, Severity
from remediation.reports import ReconcileReport
from tests.reliability.harness import CC, CLUSTER, RESOURCE_GROUP, SUB, World, human_client

pytestmark = pytest.mark.integration


def unmanaged(report: ReconcileReport | None) -> list[Finding]:
    assert report is not None
    return [f for f in report.findings if f.kind is FindingKind.NSG_UNMANAGED]


def person_puts(world: World, nsg_id: str, *, tags: dict[str, str], drop: str | None = None) -> list[dict[str, Any]]:
    """A person writes the NSG with ``tags`` (and without rule ``drop``); returns the events ARM sent."""
    captured: list[dict[str, Any]] = []
    world.em.set_event_subscriber(captured.extend)
    nsg = world.nsg(nsg_id)
    rules = [{"name": r["name"], "properties": r["properties"]} for r in nsg["properties"]["securityRules"]]
    body = {"location": nsg["location"], "tags": tags, "properties": {"securityRules": rules}}
    people = human_client(world.em)
    try:
        people.network_security_groups.begin_create_or_update(RESOURCE_GROUP, nsg["name"], body).result()
        if drop:
            people.security_rules.begin_delete(RESOURCE_GROUP, nsg["name"], drop).result()
    finally:
        people.close()
    assert world.em.events.wait_idle(timeout=10)
    world.em.set_event_subscriber(None)
    return captured


def test_removing_the_tag_then_a_rule_alerts_once_with_the_actor(world: World) -> None:
    world.sweep()  # restores the demo's broken NSG and remembers what is managed
    assert world.remaining_remediable() == []
    events = person_puts(world, CC, tags={}, drop="AllowAzureStorage")
    reports = [world.rt.handle_event(parse_event(e, subscription_id=SUB)).report for e in events]
    incidents = [f for r in reports for f in unmanaged(r)]
    (incident,) = incidents
    assert incident.nsg.lower() == CC.lower()
    assert incident.severity is Severity.HIGH
    actor = reports[0].actor if reports[0] is not None else None
    assert actor
    assert actor in incident.message
    assert "AllowAzureStorage" not in world.rule_names(), "an unmanaged NSG is not written"
    # The next sweep does not alert again: the memory forgot the NSG.
    assert unmanaged(world.sweep()) == []


def test_a_sweep_notices_a_role_change_and_a_removed_tag(world: World) -> None:
    world.sweep()
    person_puts(world, CLUSTER, tags={TAG: "cyclecloud"})
    person_puts(world, CC, tags={"owner": "netops"})
    report = world.sweep()
    found = {f.nsg.lower(): f.message for f in unmanaged(report)}
    assert set(found) == {CC.lower(), CLUSTER.lower()}
    assert "guarded as cyclecloud now, not cluster" in found[CLUSTER.lower()]
    assert "no longer guarded" in found[CC.lower()]
    assert unmanaged(world.sweep()) == [], "alerted once"


def test_the_first_run_remembers_without_alerting(world: World) -> None:
    assert unmanaged(world.sweep()) == []
    assert {k.lower() for k in world.state.managed_nsgs()} == {CC.lower(), CLUSTER.lower()}
