"""Exact service tags from the Service Tags API, end to end on the emulator.

The emulator serves ``GET .../locations/{location}/serviceTags`` from the published per-tag
files in reference/service-tags/. A rule denying one concrete Storage.WestEurope prefix ahead of
AllowAzureStorage takes part of Storage's traffic: with SERVICE_TAGS_LOCATION set the guard knows
the prefix is Storage's and reports the shadowing; without it (containment) a literal prefix is
assumed not to overlap a tag, so nothing is reported.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devtools.demo import cyclecloud_network
from devtools.emulator import REMEDIATOR, Emulator
from remediation.baseline_file import load_baseline
from remediation.findings import FindingKind
from remediation.wiring import Runtime
from tests.infra.rbac_map import action_for, is_covered, role_actions
from tests.integration.conftest import remediator_runtime

pytestmark = pytest.mark.integration

BASELINE = load_baseline()
STORAGE_WESTEUROPE = Path(__file__).resolve().parents[2] / "reference" / "service-tags" / "Storage.WestEurope.json"
#: One concrete prefix Azure publishes for Storage.WestEurope.
PREFIX = json.loads(STORAGE_WESTEUROPE.read_text())["properties"]["addressPrefixes"][5]
DENY = {
    "name": "DenyOneStoragePrefix",
    "properties": {
        "protocol": "Tcp",
        "access": "Deny",
        "priority": 105,
        "direction": "Outbound",
        "sourceAddressPrefix": "*",
        "destinationAddressPrefix": PREFIX,
        "sourcePortRange": "*",
        "destinationPortRange": "443",
        "description": "a person blocks one storage range",
    },
}


def network(sub: str) -> list[dict[str, Any]]:
    """The demo network, AllowAzureStorage moved from 100 to 110 and the deny put at 105, ahead of it."""
    docs = cyclecloud_network(sub, BASELINE)
    cc = next(d for d in docs if d["id"].endswith("/nsg-cyclecloud"))
    rules = cc["properties"]["securityRules"]
    next(r for r in rules if r["name"] == "AllowAzureStorage")["properties"]["priority"] = 110
    rules.append(DENY)
    return docs


@pytest.fixture
def exact(arm_env: Emulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    yield from remediator_runtime(
        arm_env, monkeypatch, network(arm_env.subscription_id), retries=1, SERVICE_TAGS_LOCATION="westeurope"
    )


@pytest.fixture
def containment(arm_env: Emulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    monkeypatch.delenv("SERVICE_TAGS_LOCATION", raising=False)
    yield from remediator_runtime(arm_env, monkeypatch, network(arm_env.subscription_id), retries=1)


def tag_requests(em: Emulator) -> list[dict[str, Any]]:
    return [r for r in em.requests() if r["path"].lower().endswith("/servicetags")]


def test_exact_mode_reports_a_literal_prefix_shadowing_the_storage_tag(exact: Runtime, arm_env: Emulator) -> None:
    report = exact.reconcile(None, trigger="sweep")
    shadowed = [f for f in report.findings if f.kind is FindingKind.SHADOWED_RULE]
    assert [(f.requirement, f.rule) for f in shadowed] == [("AllowAzureStorage", "DenyOneStoragePrefix")]
    assert not shadowed[0].remediable  # the person's deny is not the baseline's to change
    [fetch] = tag_requests(arm_env)
    assert fetch["method"] == "GET"
    assert fetch["status"] == 200
    assert fetch["caller"] == REMEDIATOR
    assert "/locations/westeurope/" in fetch["path"]
    # Loaded once, on first use: the next reconcile uses the cached model.
    again = exact.reconcile(None, trigger="sweep")
    assert [f.rule for f in again.findings if f.kind is FindingKind.SHADOWED_RULE] == ["DenyOneStoragePrefix"]
    assert len(tag_requests(arm_env)) == 1
    assert exact.tag_source is not None
    assert exact.tag_source.change_number is not None


def test_containment_does_not_see_a_literal_prefix_overlap(containment: Runtime, arm_env: Emulator) -> None:
    report = containment.reconcile(None, trigger="sweep")
    assert [f for f in report.findings if f.kind is FindingKind.SHADOWED_RULE] == []
    assert tag_requests(arm_env) == []


def test_a_failing_service_tags_api_falls_back_to_containment(exact: Runtime, arm_env: Emulator) -> None:
    arm_env.faults.add(kind="status", method="GET", path="serviceTags", status=403, times=5)
    report = exact.reconcile(None, trigger="sweep")
    assert report.ok, report.all_errors()  # never blocks remediation
    assert [f for f in report.findings if f.kind is FindingKind.SHADOWED_RULE] == []
    assert exact.tag_source is not None
    assert "403" in (exact.tag_source.last_error or "")


def test_every_request_with_the_service_tags_api_is_allowed_by_the_custom_role(
    exact: Runtime, arm_env: Emulator
) -> None:
    exact.reconcile(None, trigger="sweep")
    sent = [r for r in arm_env.requests() if r["path"] != "/msi/token"]
    assert tag_requests(arm_env)
    missing = {(r["method"], action_for(r["method"], r["path"])) for r in sent}
    assert {(m, a) for m, a in missing if not is_covered(a, role_actions())} == set()


def test_a_paged_answer_is_read_to_its_last_page(exact: Runtime, arm_env: Emulator) -> None:
    arm_env.config.page_size = 3  # eight tags: three pages
    report = exact.reconcile(None, trigger="sweep")
    assert [f.rule for f in report.findings if f.kind is FindingKind.SHADOWED_RULE] == ["DenyOneStoragePrefix"]
    assert len(tag_requests(arm_env)) == 3
    model = exact.tag_source.current() if exact.tag_source is not None else None
    assert model is not None
    assert len(model.prefixes) == len(arm_env.service_tags.values)
