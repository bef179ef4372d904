"""An event on CycleCloud's NIC re-judges the node -> CycleCloud flows (real SDK against the emulator).

The network is CycleCloud Workspace for Slurm's shape (devtools/demo.py ccws_network): one NSG
tagged cyclecloud,cluster on every subnet, the CycleCloud VM's NIC (10.10.0.4) in asg-cyclecloud
and tagged cyclecloud-lockdown=cyclecloud. Rules 320 (out) and 460 (in) let the compute subnet
reach asg-cyclecloud on 5672/9443 ahead of VNet-wide denies at 3100. The NSG itself never
changes here: only the NIC does, and only the NIC's event reaches the handler.
"""

from __future__ import annotations

from typing import Any

import pytest

from devtools.demo import CCWS_NIC, ccws_network, ccws_nic
from devtools.emulator import REMEDIATOR, Emulator
from remediation.azure.arm import ArmOptions
from remediation.baseline_file import load_baseline
from remediation.events import parse_event
from remediation.findings import FindingKind
from remediation.settings import Settings
from remediation.state import InMemoryStateStore
from remediation.wiring import Runtime, build_runtime
from tests.integration.conftest import human_credential, network_client

pytestmark = pytest.mark.integration

BASELINE = load_baseline()
RG = "rg-cyclecloud"
FAST = ArmOptions(retry_total=3, retry_backoff_factor=0.01, retry_backoff_max=0.05, polling_interval=0.01)


@pytest.fixture
def world(arm_env: Emulator, monkeypatch: pytest.MonkeyPatch) -> tuple[Emulator, list[dict[str, Any]]]:
    remediator = arm_env.identities.get(REMEDIATOR)
    monkeypatch.setenv("AZURE_CLIENT_ID", remediator.appid)
    monkeypatch.setenv("REMEDIATOR_PRINCIPAL_ID", remediator.oid)
    arm_env.config.lro_polls = 0
    received: list[dict[str, Any]] = []
    arm_env.set_event_subscriber(received.extend)
    arm_env.seed(ccws_network(arm_env.subscription_id, BASELINE, resource_group=RG))
    return arm_env, received


def _nic_body(em: Emulator, **changes: Any) -> dict[str, Any]:
    base = f"/subscriptions/{em.subscription_id}/resourceGroups/{RG}/providers/Microsoft.Network"
    nic = ccws_nic(base, f"{base}/virtualNetworks/vnet-ccws", **changes)
    return {k: v for k, v in nic.items() if k != "id"}


def _handle_nic_event(em: Emulator, received: list[dict[str, Any]], rt: Runtime) -> list[Any]:
    assert em.events.wait_idle(10)
    [raw] = [e for e in received if CCWS_NIC in str(e.get("subject", ""))]
    received.clear()
    outcome = rt.handle_event(parse_event(raw, subscription_id=em.subscription_id))
    assert outcome.status == "handled", outcome.to_json()
    assert outcome.report is not None
    return list(outcome.report.findings)


def test_cyclecloud_nic_changes_rejudge_the_flows(world: tuple[Emulator, list[dict[str, Any]]]) -> None:
    em, received = world
    rt = build_runtime(Settings.from_env(), arm_options=FAST, state=InMemoryStateStore(), channels=[])
    try:
        sweep = rt.reconcile(None, trigger="sweep")
        assert [f for f in sweep.findings if f.kind is FindingKind.PORT_BLOCKED] == []
        received.clear()
        with network_client(em, human_credential(em), polling_interval=0.01) as person:
            # Out of asg-cyclecloud: 320 and 460 no longer reach 10.10.0.4; 3100 denies both ways.
            person.network_interfaces.begin_create_or_update(RG, CCWS_NIC, _nic_body(em, asgs=())).result()
            found = _handle_nic_event(em, received, rt)
            blocked = {(f.requirement, f.rule) for f in found if f.kind is FindingKind.PORT_BLOCKED}
            assert blocked == {
                (flow, rule) for flow in ("amqp_5672", "https_9443") for rule in ("DenyVnetOutbound", "DenyVnetInbound")
            }
            # The tag removed: which host is CycleCloud is unknown again, and nothing is guessed.
            person.network_interfaces.begin_create_or_update(
                RG, CCWS_NIC, _nic_body(em, asgs=(), tagged=False)
            ).result()
            found = _handle_nic_event(em, received, rt)
            assert {f.kind for f in found} >= {FindingKind.CYCLECLOUD_LOCATION_UNKNOWN}
            assert not any(f.kind is FindingKind.PORT_BLOCKED for f in found)
    finally:
        rt.close()
