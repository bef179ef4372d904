"""Reconciler.reconcile()/.handle_event() remember subnet-NSG attachments, so a detachment is found after it happened.

Over the in-memory ports of tests/test_service.py. A "human" change edits both
sides as ARM does: the subnet loses ``networkSecurityGroup`` and the NSG its
back-reference. The SDK against the emulator: tests/integration/test_attachments.py.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from remediation.events import parse_event
from remediation.findings import FindingKind
from remediation.model import Inventory
from remediation.ports import Gathered
from remediation.reports import ReconcileReport
from remediation.service import Reconciler
from tests.test_service import (
    BASELINE,
    CC,
    CLUSTER,
    NOW,
    RG,
    SETTINGS,
    SUB,
    MemoryArm,
    MemoryState,
    RecordingNotifier,
    network,
)

VNET = f"{RG}/providers/Microsoft.Network/virtualNetworks/vnet-cyclecloud"
CC_SUBNET, COMPUTE, HPC = (f"{VNET}/subnets/{n}" for n in ("cyclecloud", "compute", "hpc"))
SUBNET_WRITE = "Microsoft.Network/virtualNetworks/subnets/write"


class RecordingArm(MemoryArm):
    """Also records the remembered subnets discovery was asked to read."""

    def __init__(self, docs: Any) -> None:
        super().__init__(docs)
        self.extra: list[tuple[str, ...]] = []

    def inventory(self, scope: str, *, extra_subnet_ids: Collection[str] = ()) -> Inventory:
        self.extra.append(tuple(extra_subnet_ids))
        return super().inventory(scope)

    def neighbourhood(self, affected: Collection[str], *, extra_subnet_ids: Collection[str] = ()) -> Gathered:
        self.extra.append(tuple(extra_subnet_ids))
        return super().neighbourhood(affected)

    def vnet(self) -> dict[str, Any]:
        return next(d for d in self.others if d.get("id", "").lower() == VNET.lower())

    def set_subnet_nsg(self, subnet_id: str, nsg_id: str | None) -> None:
        """A subnet PUT, and the back-references ARM derives from it."""
        name = subnet_id.rsplit("/", 1)[-1]
        for sub in self.vnet()["properties"]["subnets"]:
            if sub["name"] == name:
                if nsg_id is None:
                    sub["properties"].pop("networkSecurityGroup", None)
                else:
                    sub["properties"]["networkSecurityGroup"] = {"id": nsg_id}
        for raw in self.nsgs.values():
            refs = [r for r in raw["properties"].get("subnets", []) if r["id"].lower() != subnet_id.lower()]
            if nsg_id is not None and raw["id"].lower() == nsg_id.lower():
                refs.append({"id": subnet_id})
            raw["properties"]["subnets"] = refs

    def delete_subnet(self, subnet_id: str) -> None:
        self.set_subnet_nsg(subnet_id, None)
        subnets = self.vnet()["properties"]["subnets"]
        subnets[:] = [s for s in subnets if s["name"] != subnet_id.rsplit("/", 1)[-1]]

    def delete_nsg(self, nsg_id: str) -> None:
        del self.nsgs[nsg_id.lower()]


def arm() -> RecordingArm:
    base = network()
    return RecordingArm([*base.nsgs.values(), *base.others])


def reconciler(source: MemoryArm, state: Any, **parts: Any) -> Reconciler:
    return Reconciler(
        source=source, writer=source, baseline=BASELINE, settings=SETTINGS, state=state, clock=lambda: NOW, **parts
    )


def sweep(source: MemoryArm, state: Any, *, accept_detached: Any = (), **parts: Any) -> ReconcileReport:
    return reconciler(source, state, **parts).reconcile(None, trigger="sweep", accept_detached=accept_detached)


def grid(resource: str, operation: str, eid: str, *, delete: bool = False) -> Any:
    kind = "Delete" if delete else "Write"
    return parse_event(
        {
            "id": eid,
            "eventType": f"Microsoft.Resources.Resource{kind}Success",
            "subject": resource,
            "eventTime": "2026-11-26T08:00:00Z",
            "data": {
                "resourceUri": resource,
                "operationName": operation,
                "subscriptionId": SUB,
                "claims": {"oid": "99999999-0000-0000-0000-000000000000", "upn": "ann@contoso.com"},
            },
        },
        subscription_id=SUB,
    )


def on(source: MemoryArm, state: Any, ev: Any, **kwargs: Any) -> ReconcileReport:
    outcome = reconciler(source, state, **kwargs).handle_event(ev)
    assert outcome.status == "handled", outcome.reason
    assert outcome.report is not None
    return outcome.report


def detached(report: ReconcileReport) -> list[tuple[str, str | None]]:
    return sorted((f.nsg, f.subnet) for f in report.findings if f.kind is FindingKind.NSG_DETACHED)


def test_a_sweep_remembers_what_is_attached() -> None:
    state = MemoryState()
    source = arm()
    report = sweep(source, state)
    assert report.ok
    assert state.attached == {CC_SUBNET: CC, COMPUTE: CLUSTER, HPC: CLUSTER}
    assert source.extra == [()]  # nothing remembered yet: discovery as before


def test_detached_then_found_by_sweep_and_event_without_any_write() -> None:
    state, source, notifier = MemoryState(), arm(), RecordingNotifier()
    sweep(source, state)
    source.set_subnet_nsg(COMPUTE, None)

    report = sweep(source, state, notifier=notifier)
    assert report.ok
    assert detached(report) == [(CLUSTER, COMPUTE)]
    assert source.puts == []
    assert sorted(source.extra[-1]) == sorted([CC_SUBNET, COMPUTE, HPC])
    [finding] = [f for f in notifier.calls[-1]["findings"] if f.kind is FindingKind.NSG_DETACHED]
    assert finding.message == "subnet 'compute' lost managed NSG 'nsg-cluster' and now has no NSG"
    assert COMPUTE in state.attached, "a detached subnet stays remembered"

    outcome = on(source, state, grid(COMPUTE, SUBNET_WRITE, "ev-1"), notifier=notifier)
    assert detached(outcome) == [(CLUSTER, COMPUTE)]
    assert [f.subnet for f in outcome.remaining if f.kind is FindingKind.NSG_DETACHED] == [COMPUTE]
    assert COMPUTE in notifier.calls[-1]["scopes"]
    assert source.puts == []
    # A second sweep still reports it: the expectation persists.
    assert detached(sweep(source, state)) == [(CLUSTER, COMPUTE)]


def test_a_vnet_event_covers_its_subnets() -> None:
    state, source = MemoryState(), arm()
    sweep(source, state)
    source.set_subnet_nsg(HPC, None)
    outcome = on(source, state, grid(VNET, "Microsoft.Network/virtualNetworks/write", "ev-vnet"))
    assert detached(outcome) == [(CLUSTER, HPC)]


def test_deleting_the_managed_nsg_is_found_by_its_delete_event() -> None:
    state, source = MemoryState(), arm()
    sweep(source, state)
    source.set_subnet_nsg(COMPUTE, None)
    source.set_subnet_nsg(HPC, None)
    source.delete_nsg(CLUSTER)
    outcome = on(source, state, grid(CLUSTER, "Microsoft.Network/networkSecurityGroups/delete", "ev-del", delete=True))
    assert detached(outcome) == [(CLUSTER, COMPUTE), (CLUSTER, HPC)]
    assert all("no longer exists" in f.message for f in outcome.findings)
    # An event elsewhere does not report them (they are not what it touched).
    other = on(source, state, grid(CC, "Microsoft.Network/networkSecurityGroups/write", "ev-cc"))
    assert detached(other) == []


def test_swapped_to_an_untagged_nsg_is_reported() -> None:
    state, source = MemoryState(), arm()
    sweep(source, state)
    rogue = CLUSTER.replace("nsg-cluster", "nsg-rogue")
    source.nsgs[rogue.lower()] = {
        "id": rogue,
        "name": "nsg-rogue",
        "type": "Microsoft.Network/networkSecurityGroups",
        "location": "westeurope",
        "etag": 'W/"1"',
        "properties": {"securityRules": []},
    }
    source.set_subnet_nsg(COMPUTE, rogue)
    report = sweep(source, state)
    assert detached(report) == [(CLUSTER, COMPUTE)]
    [finding] = [f for f in report.findings if f.kind is FindingKind.NSG_DETACHED]
    assert "now has NSG 'nsg-rogue' (not tagged cyclecloud-lockdown)" in finding.message
    assert state.attached[COMPUTE] == CLUSTER


def test_re_attaching_clears_it_and_deleting_the_subnet_forgets_it() -> None:
    state, source = MemoryState(), arm()
    sweep(source, state)
    source.set_subnet_nsg(COMPUTE, None)
    source.set_subnet_nsg(HPC, None)
    assert detached(sweep(source, state)) == [(CLUSTER, COMPUTE), (CLUSTER, HPC)]
    source.set_subnet_nsg(COMPUTE, CLUSTER)
    source.delete_subnet(HPC)
    report = sweep(source, state)
    assert detached(report) == []
    assert state.attached == {CC_SUBNET: CC, COMPUTE: CLUSTER}


def test_a_deleted_vnet_forgets_its_subnets() -> None:
    state, source = MemoryState(), arm()
    sweep(source, state)
    source.set_subnet_nsg(COMPUTE, None)
    source.set_subnet_nsg(HPC, None)
    source.set_subnet_nsg(CC_SUBNET, None)
    source.others = [d for d in source.others if d.get("id", "").lower() != VNET.lower()]
    report = sweep(source, state)
    # The deleted subnets are forgotten; what is left is two tagged NSGs attached to nothing,
    # each reported once as guarding nothing (no subnet named).
    assert sorted(nsg.rsplit("/", 1)[-1] for nsg, subnet in detached(report) if subnet is None) == [
        "nsg-cluster",
        "nsg-cyclecloud",
    ]
    assert [subnet for _, subnet in detached(report) if subnet is not None] == []
    assert state.attached == {}


class BrokenState(MemoryState):
    def attachments(self, *, near: Collection[str] | None = None) -> dict[str, str]:
        raise OSError("table unreachable")

    def save_attachments(self, current: Mapping[str, str], forget: Collection[str] = ()) -> None:
        raise OSError("table unreachable")


def test_a_state_failure_is_reported_and_the_run_goes_on() -> None:
    base = network(broken="nsg-cyclecloud-missing-storage.json")
    source = RecordingArm([*base.nsgs.values(), *base.others])
    report = sweep(source, BrokenState())
    assert source.puts == [CC], "remediation went on"
    assert [e.split(":")[0:2] for e in report.errors] == [
        ["attachments", " not loaded, detachments judged without memory"],
        ["attachments", " not saved"],
    ]


def test_removing_the_tag_stops_guarding_and_forgets_its_subnets() -> None:
    state, source = MemoryState(), arm()
    sweep(source, state)
    source.nsgs[CLUSTER.lower()]["tags"] = {}
    report = sweep(source, state)
    assert detached(report) == []
    assert state.attached == {CC_SUBNET: CC}
    source.set_subnet_nsg(COMPUTE, None)  # detaching it afterwards is no longer anyone's concern here
    assert detached(sweep(source, state)) == []
