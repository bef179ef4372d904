"""One bad resource never stops the guard for the subscription (issue 11 item 2).

Regression: an NSG anywhere in the subscription tagged ``cyclecloud-lockdown=none`` (or ``""``)
made target selection raise, so the sweep failed, events were dropped and ``POST /api/reconcile``
answered 400; an NSG holding a rule ARM accepts but the parser refused (``sourceAddressPrefix:
"789"``, as ARM really returns it in Azure CLI's recorded test_network_nsg) made the ARM
adapter's ``inventory()`` raise. Now each is its own ``unjudgeable`` finding (high, named, with
why) and everything else is judged and restored, through the unchanged product on the emulator.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import azure.functions as func
import pytest

import function_app
from devtools.demo import host_event
from devtools.functions_host import user_function
from tests.reliability.harness import BASE, CC, SUB, TAG, World, human_client, make_world, network
from tests.support.recordings import recorded_nsg_with_bare_number

pytestmark = pytest.mark.integration

OTHER_RG = f"/subscriptions/{SUB}/resourceGroups/rg-elsewhere/providers/Microsoft.Network"
MISTAGGED = f"{OTHER_RG}/networkSecurityGroups/nsg-mistagged"
EMPTY_TAG = f"{OTHER_RG}/networkSecurityGroups/nsg-empty-tag"
RECORDED = f"{BASE}/networkSecurityGroups/nsg-recorded"


def bad_resources() -> list[dict[str, Any]]:
    """Two NSGs whose tag names no role, and one holding the recorded rule with prefixes "789" / "1234"."""
    recorded = recorded_nsg_with_bare_number()
    web = copy.deepcopy(next(r for r in recorded["properties"]["securityRules"] if r["name"] == "web"))
    web.pop("id", None)
    web.pop("etag", None)
    return [
        {"id": MISTAGGED, "location": "westeurope", "tags": {TAG: "none"}, "properties": {"securityRules": []}},
        {"id": EMPTY_TAG, "location": "westeurope", "tags": {TAG: ""}, "properties": {"securityRules": []}},
        {"id": RECORDED, "location": "westeurope", "tags": {TAG: "cluster"}, "properties": {"securityRules": [web]}},
    ]


@pytest.fixture
def spoiled(emulator: Any) -> World:
    """The demo network with AllowAzureStorage deleted, beside the three bad NSGs."""
    world = make_world(emulator, network() + bad_resources())
    function_app.runtime.use(world.rt)
    yield world  # type: ignore[misc]
    function_app.runtime.use(None)
    world.rt.close()


def unjudgeable(findings: list[Any]) -> dict[str, Any]:
    return {f.nsg.lower(): f for f in findings if f.kind.value == "unjudgeable"}


def test_the_sweep_judges_and_restores_the_rest_and_names_each_bad_nsg(spoiled: World) -> None:
    report = spoiled.sweep()
    assert report.errors == []
    assert "AllowAzureStorage" in spoiled.rule_names(CC)  # the rest of the subscription is still guarded
    bad = unjudgeable(report.findings)
    assert set(bad) == {MISTAGGED.lower(), EMPTY_TAG.lower(), RECORDED.lower()}
    for finding in bad.values():
        assert finding.severity.value == "high"
        assert not finding.remediable
        assert finding.reason
    assert "'none'" in bad[MISTAGGED.lower()].message
    assert bad[RECORDED.lower()].rule == "web"
    assert "'789'" in bad[RECORDED.lower()].message
    # Nothing is written to an NSG the guard cannot read or whose tag names no role.
    written = {w["path"].split("?")[0].lower() for w in spoiled.writes()}
    assert written == {CC.lower()}


def test_an_event_is_handled_not_dropped(spoiled: World) -> None:
    em = spoiled.em
    captured: list[dict[str, Any]] = []
    em.set_event_subscriber(captured.extend)
    people = human_client(em)
    try:
        people.security_rules.begin_delete("rg-cyclecloud", "nsg-cyclecloud", "AllowAzureMonitor").result()
    finally:
        people.close()
    assert em.events.wait_idle(timeout=10)
    em.set_event_subscriber(None)
    (event,) = captured
    user_function(function_app.app, "on_nsg_change")(host_event(event))
    names = spoiled.rule_names(CC)
    assert "AllowAzureMonitor" in names  # restored, although the subscription holds three bad NSGs
    assert "AllowAzureStorage" in names


def test_post_reconcile_answers_200_with_the_findings(spoiled: World) -> None:
    request = func.HttpRequest(
        method="POST", url="http://localhost:7071/api/reconcile", headers={}, params={}, body=b'{"dryRun": true}'
    )
    response = user_function(function_app.app, "reconcile")(request)
    assert response.status_code == 200, response.get_body()[:300]
    body = json.loads(response.get_body())
    kinds = {(f["nsg"].lower(), f["kind"]) for f in body["findings"]}
    assert (MISTAGGED.lower(), "unjudgeable") in kinds
    assert (RECORDED.lower(), "unjudgeable") in kinds
    assert (CC.lower(), "missing_rule") in kinds
