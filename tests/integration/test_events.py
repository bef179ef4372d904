"""Event Grid driving on_nsg_change: the emulator's events, delivered at least once, unordered.

Own writes cause no second write; duplicates and reordering converge; events for
other resources cause no ARM call. The Function's user code is called with real
azure.functions EventGridEvent objects, behind it the real SDK and the emulator.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import function_app
from devtools.demo import cyclecloud_network, host_event
from devtools.emulator import REMEDIATOR, Emulator
from devtools.functions_host import user_function
from remediation.azure.arm import ArmOptions
from remediation.baseline_file import load_baseline
from remediation.settings import Settings
from remediation.state import InMemoryStateStore
from remediation.wiring import Runtime, build_runtime
from tests.integration.conftest import human_credential, network_client

pytestmark = pytest.mark.integration

BASELINE = load_baseline()
RG = "rg-cyclecloud"
FAST = ArmOptions(retry_total=3, retry_backoff_factor=0.01, retry_backoff_max=0.05, polling_interval=0.01)
SAMPLES = Path(__file__).resolve().parents[2] / "reference" / "eventgrid"


@pytest.fixture
def runtime(arm_env: Emulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    remediator = arm_env.identities.get(REMEDIATOR)
    monkeypatch.setenv("AZURE_CLIENT_ID", remediator.appid)
    monkeypatch.setenv("REMEDIATOR_PRINCIPAL_ID", remediator.oid)
    monkeypatch.setenv("REMEDIATION_MODE", "enforce")
    arm_env.seed(cyclecloud_network(arm_env.subscription_id, BASELINE, resource_group=RG))
    arm_env.clear_requests()
    rt = build_runtime(Settings.from_env(), arm_options=FAST, state=InMemoryStateStore(), channels=[])
    function_app.runtime.use(rt)
    yield rt
    function_app.runtime.use(None)
    rt.close()


class Subscriber:
    """The Function host's part: each delivered event goes to on_nsg_change; the log says what came."""

    def __init__(self) -> None:
        self.handler = user_function(function_app.app, "on_nsg_change")
        self.delivered: list[dict[str, Any]] = []
        self.errors: list[BaseException] = []

    def __call__(self, batch: list[dict[str, Any]]) -> None:
        for event in batch:
            self.delivered.append(event)
            try:
                self.handler(host_event(event))
            except Exception as exc:  # Event Grid would redeliver; the test wants to know
                self.errors.append(exc)
                raise


def nsg(em: Emulator, name: str) -> dict[str, Any]:
    return next(v for k, v in em.state.items() if k.lower().endswith(f"/networksecuritygroups/{name}"))


def rule_names(em: Emulator, name: str) -> list[str]:
    return [r["name"] for r in nsg(em, name)["properties"]["securityRules"]]


def remediator_puts(em: Emulator) -> list[dict[str, Any]]:
    return [r for r in em.requests() if r["method"] == "PUT" and r["caller"] == REMEDIATOR]


def deny(priority: int, port: str) -> dict[str, Any]:
    return {
        "properties": {
            "protocol": "Tcp",
            "access": "Deny",
            "priority": priority,
            "direction": "Outbound",
            "sourceAddressPrefix": "*",
            "destinationAddressPrefix": "10.10.0.0/24",
            "sourcePortRange": "*",
            "destinationPortRange": port,
        }
    }


def test_own_write_causes_no_second_write(runtime: Runtime, arm_env: Emulator) -> None:
    subscriber = Subscriber()
    arm_env.set_event_subscriber(subscriber)
    with network_client(arm_env, human_credential(arm_env)) as person:
        person.security_rules.begin_delete(RG, "nsg-cyclecloud", "AllowAzureStorage", polling_interval=0.01).result()
    assert arm_env.events.wait_idle(15)
    assert "AllowAzureStorage" in rule_names(arm_env, "nsg-cyclecloud")
    assert len(remediator_puts(arm_env)) == 1
    remediator = arm_env.identities.get(REMEDIATOR)
    own = [e for e in subscriber.delivered if e["data"]["claims"]["appid"] == remediator.appid]
    assert len(own) == 1, "the restore was seen as an event"
    # Handling the own-write event made no ARM call: every request after the PUT's LRO belongs to it.
    arm_env.clear_requests()
    subscriber(list(own))
    assert [r for r in arm_env.requests() if r["path"] != "/msi/token"] == []
    assert subscriber.errors == []


@pytest.mark.parametrize("stringify", [False, True], ids=["claims-object", "claims-json-string"])
def test_duplicates_and_reordering_converge_without_extra_writes(
    runtime: Runtime, arm_env: Emulator, stringify: bool
) -> None:
    subscriber = Subscriber()
    arm_env.set_event_subscriber(subscriber, duplicate=1.0, reorder=4, seed=7, stringify_claims=stringify)
    with network_client(arm_env, human_credential(arm_env)) as person:
        ops = person.security_rules
        ops.begin_delete(RG, "nsg-cyclecloud", "AllowAzureStorage", polling_interval=0.01).result()
        ops.begin_delete(RG, "nsg-cyclecloud", "AllowAzureMonitor", polling_interval=0.01).result()
        ops.begin_create_or_update(
            RG, "nsg-cluster", "PersonDeny9443", deny(200, "9443"), polling_interval=0.01
        ).result()
    assert arm_env.events.wait_idle(20)
    assert subscriber.errors == []
    names = rule_names(arm_env, "nsg-cyclecloud")
    assert {"AllowAzureStorage", "AllowAzureMonitor"} <= set(names)
    assert len(names) == len(set(names))
    assert "PersonDeny9443" in rule_names(arm_env, "nsg-cluster"), "a person's rule is never deleted"
    cluster_puts = [r for r in remediator_puts(arm_env) if "nsg-cluster" in r["path"]]
    assert cluster_puts == []
    # Every delivery was doubled; each NSG change by a person needs at most one restore each.
    assert 1 <= len(remediator_puts(arm_env)) <= 2
    delivered_ids = [e["id"] for e in subscriber.delivered]
    assert len(delivered_ids) > len(set(delivered_ids)), "duplicates were delivered"


def test_events_for_other_resources_cause_no_arm_call(runtime: Runtime, arm_env: Emulator) -> None:
    sub = arm_env.subscription_id
    handler = user_function(function_app.app, "on_nsg_change")
    for name in ("resource_write_success.json", "resource_delete_success.json"):
        raw = json.loads((SAMPLES / name).read_text().replace("{subscription-id}", sub))
        handler(host_event(raw))
    vm = json.loads((SAMPLES / "resource_write_success.json").read_text().replace("{subscription-id}", sub))
    vm["id"] = "vm-write"
    vm["data"]["operationName"] = "Microsoft.Compute/virtualMachines/write"
    handler(host_event(vm))
    assert [r for r in arm_env.requests() if r["path"] != "/msi/token"] == []
