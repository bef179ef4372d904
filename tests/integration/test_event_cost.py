"""An event costs what it touches, not the subscription: ARM requests counted at the emulator.

The demo's CycleCloud network sits in a subscription of N more managed NSGs (the benchmark's,
20 subnets to a VNet). A sweep builds the topology cache; then a person's changes arrive as the
emulator's Event Grid events and go to the handler. Every ARM request the remediator makes is
counted in the emulator's request log. The same events must cost the same requests whether the
subscription holds 10 or 400 NSGs: if the handler re-listed or re-read the subscription, the
larger one would cost more.
"""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks.bench_sweep import subscription_docs
from devtools.demo import cyclecloud_network
from devtools.emulator import REMEDIATOR, Emulator
from remediation.azure.arm import ArmOptions
from remediation.baseline_file import load_baseline
from remediation.events import parse_event
from remediation.settings import Settings
from remediation.state import InMemoryStateStore
from remediation.wiring import Runtime, build_runtime
from tests.integration.conftest import human_credential, network_client

pytestmark = pytest.mark.integration

BASELINE = load_baseline()
RG = "rg-cyclecloud"
FAST = ArmOptions(retry_total=3, retry_backoff_factor=0.01, retry_backoff_max=0.05, polling_interval=0.01)


class Events:
    """Collects the emulator's events, to hand them to the handler one at a time."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []

    def __call__(self, batch: list[dict[str, Any]]) -> None:
        self.received.extend(batch)

    def take(self, em: Emulator) -> list[dict[str, Any]]:
        assert em.events.wait_idle(10)
        taken, self.received = self.received, []
        return taken


@pytest.fixture
def world(arm_env: Emulator, monkeypatch: pytest.MonkeyPatch) -> tuple[Emulator, Events]:
    remediator = arm_env.identities.get(REMEDIATOR)
    monkeypatch.setenv("AZURE_CLIENT_ID", remediator.appid)
    monkeypatch.setenv("REMEDIATOR_PRINCIPAL_ID", remediator.oid)
    monkeypatch.setenv("REMEDIATION_MODE", "enforce")
    arm_env.config.lro_polls = 0
    events = Events()
    arm_env.set_event_subscriber(events)
    return arm_env, events


def remediator_requests(em: Emulator) -> list[tuple[str, str]]:
    return [
        (r["method"], r["path"]) for r in em.requests() if r["caller"] == "remediator" and r["path"] != "/msi/token"
    ]


def costs(em: Emulator, events: Events, extra_nsgs: int) -> dict[str, list[tuple[str, str]]]:
    """The remediator's ARM requests for each of three events, in a subscription of ``extra_nsgs`` more NSGs."""
    em.reset()
    em.config.lro_polls = 0
    em.set_event_subscriber(events)
    em.seed(cyclecloud_network(em.subscription_id, BASELINE, resource_group=RG))
    em.seed(subscription_docs(extra_nsgs, em.subscription_id, cyclecloud=False))
    rt: Runtime = build_runtime(Settings.from_env(), arm_options=FAST, state=InMemoryStateStore(), channels=[])
    out: dict[str, list[tuple[str, str]]] = {}
    try:
        with network_client(em, human_credential(em), polling_interval=0.01) as person:
            vnet = {"location": "westeurope", "properties": {"addressSpace": {"addressPrefixes": ["192.168.0.0/16"]},
                    "subnets": [{"name": "plain", "properties": {"addressPrefix": "192.168.1.0/24"}}]}}  # fmt: skip
            person.virtual_networks.begin_create_or_update("rg-other", "vnet-plain", vnet).result()
            rt.reconcile(None, trigger="sweep")  # builds the topology cache
            events.take(em)
            plain = person.subnets.get("rg-other", "vnet-plain", "plain").id
            nic = {
                "location": "westeurope",
                "properties": {"ipConfigurations": [{"name": "ip", "properties": {"subnet": {"id": plain}}}]},
            }
            person.network_interfaces.begin_create_or_update("rg-other", "nic-plain", nic).result()
            [raw] = events.take(em)
            em.clear_requests()
            outcome = rt.handle_event(parse_event(raw, subscription_id=em.subscription_id))
            out["nic created"] = remediator_requests(em)
            for case, act in (
                (
                    "rule deleted",
                    lambda: person.security_rules.begin_delete(RG, "nsg-cyclecloud", "AllowAzureStorage").result(),
                ),
                (
                    "tag written",
                    lambda: person.network_security_groups.update_tags(
                        RG, "nsg-cyclecloud", {"tags": {"cyclecloud-lockdown": "cyclecloud", "x": "1"}}
                    ),
                ),
            ):
                act()
                [raw] = events.take(em)
                em.clear_requests()
                outcome = rt.handle_event(parse_event(raw, subscription_id=em.subscription_id))
                assert outcome.status == "handled", outcome.to_json()
                assert outcome.report is not None
                assert outcome.report.ok, outcome.to_json()
                out[case] = remediator_requests(em)
                events.take(em)  # the remediator's own write's event: dropped as own write, not counted
    finally:
        rt.close()
    return out


def test_an_events_arm_requests_do_not_grow_with_the_subscription(world: tuple[Emulator, Events]) -> None:
    em, events = world
    small = costs(em, events, 10)
    large = costs(em, events, 400)
    for case in small:
        assert [m for m, _ in large[case]] == [m for m, _ in small[case]], (case, small[case], large[case])
    # A deleted rule: one GET of the NSG it names (its VNet, the neighbouring NSGs and CycleCloud's
    # NIC come from the cache), then the PUT that restores it and the SDK's poll of the operation.
    nsg = f"/subscriptions/{em.subscription_id}/resourceGroups/{RG}/providers/Microsoft.Network/networkSecurityGroups/nsg-cyclecloud"
    restore = small["rule deleted"]
    put = restore.index(("PUT", nsg))
    assert restore[:put] == [("GET", nsg)], restore
    assert [m for m, _ in restore[put + 1 :]] in (["GET"], ["GET", "GET"]), restore
    assert not any(
        p.endswith(("networkSecurityGroups", "virtualNetworks", "networkInterfaces")) for _, p in large["rule deleted"]
    )
    # A NIC on a subnet without a managed NSG, with no NSG of its own, not CycleCloud's: one read.
    assert [m for m, _ in small["nic created"]] == ["GET"], small["nic created"]
    assert small["nic created"][0][1].endswith("/networkInterfaces/nic-plain")
    # A harmless tag change: the NSG it names, one read.
    assert small["tag written"] == [("GET", nsg)]
