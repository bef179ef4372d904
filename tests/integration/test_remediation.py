"""The product end to end: the real Azure SDK against the local ARM emulator.

Drift is restored with exactly one PUT per drifted NSG and none for compliant
ones; a person's edit racing the remediation is never overwritten; injected
faults end in convergence with no rule lost or duplicated; every request the
product sends is allowed by the custom role in infra/.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from devtools.demo import cyclecloud_network
from devtools.emulator import REMEDIATOR, Emulator
from remediation.baseline import Role
from remediation.baseline_file import load_baseline
from remediation.model import NetworkSecurityGroup
from remediation.plan import RemediationPlan
from remediation.ports import WriteResult
from remediation.reports import ReconcileReport
from remediation.service import Reconciler
from remediation.wiring import Runtime
from tests.infra.rbac_map import action_for, is_covered, role_actions
from tests.integration.conftest import human_credential, network_client, remediator_runtime

pytestmark = pytest.mark.integration

BASELINE = load_baseline()
RGS = ("rg-cc-a", "rg-cc-b")


@pytest.fixture
def runtime(arm_env: Emulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    docs = [d for rg in RGS for d in cyclecloud_network(arm_env.subscription_id, BASELINE, resource_group=rg)]
    yield from remediator_runtime(arm_env, monkeypatch, docs, retries=4)


def nsg_id(em: Emulator, rg: str, name: str) -> str:
    return f"/subscriptions/{em.subscription_id}/resourceGroups/{rg}/providers/Microsoft.Network/networkSecurityGroups/{name}"


def rules(em: Emulator, resource_id: str) -> list[dict[str, Any]]:
    found = next(v for k, v in em.state.items() if k.lower() == resource_id.lower())
    return list(found["properties"]["securityRules"])


def names(em: Emulator, resource_id: str) -> list[str]:
    return [r["name"] for r in rules(em, resource_id)]


def puts(em: Emulator, caller: str | None = REMEDIATOR) -> Counter[str]:
    return Counter(
        r["path"].lower()
        for r in em.requests()
        if r["method"] == "PUT" and r["status"] in (200, 201) and (caller is None or r["caller"] == caller)
    )


def sweep(rt: Runtime) -> ReconcileReport:
    return bare(rt, state=rt.state).reconcile(None, trigger="sweep")


def bare(rt: Runtime, *, state: Any = None, writer: Any = None) -> Reconciler:
    """The runtime's ARM, baseline and settings, without alerts or a service-tag model."""
    return Reconciler(
        source=rt.source, writer=writer or rt.writer, baseline=rt.baseline, settings=rt.settings, state=state
    )


def person_edit(em: Emulator, rg: str, nsg: str, edit: Any) -> None:
    """A person changes an NSG through the SDK with their own token (a real PUT, new etag)."""
    with network_client(em, human_credential(em)) as client:
        model = client.network_security_groups.get(rg, nsg)
        body = model.as_dict()
        edit(body["properties"]["securityRules"])
        client.network_security_groups.begin_create_or_update(rg, nsg, body, polling_interval=0.01).result()


def drop_rule(name: str) -> Any:
    return lambda rs: rs.remove(next(r for r in rs if r["name"] == name))


def set_port(name: str, port: str) -> Any:
    def edit(rs: list[dict[str, Any]]) -> None:
        next(r for r in rs if r["name"] == name)["properties"]["destinationPortRange"] = port

    return edit


def add_rule(name: str, priority: int, port: str, direction: str = "Inbound") -> Any:
    rule = {
        "name": name,
        "properties": {
            "protocol": "Tcp",
            "access": "Deny",
            "priority": priority,
            "direction": direction,
            "sourceAddressPrefix": "*",
            "destinationAddressPrefix": "*",
            "sourcePortRange": "*",
            "destinationPortRange": port,
            "description": "added by a person",
        },
    }
    return lambda rs: rs.append(copy.deepcopy(rule))


def assert_converged(em: Emulator, resource_id: str, *, extra: frozenset[str] = frozenset()) -> None:
    """The CycleCloud NSG holds each baseline rule once, and every rule a person added."""
    got = names(em, resource_id)
    assert len(got) == len(set(got)), f"duplicated rules: {got}"
    wanted = {r.name for r in BASELINE.rules_for(frozenset({Role.CYCLECLOUD}))}
    assert wanted <= set(got), f"missing {wanted - set(got)}"
    assert extra <= set(got), f"lost {extra - set(got)}"


def test_compliant_network_gets_no_write(runtime: Runtime, arm_env: Emulator) -> None:
    report = sweep(runtime)
    assert report.findings == []
    assert puts(arm_env, None) == Counter()
    assert {o.nsg_id.rsplit("/", 1)[-1] for o in report.nsgs} == {"nsg-cyclecloud", "nsg-cluster"}
    assert len(report.nsgs) == 4


def test_drift_is_restored_with_one_put_per_drifted_nsg(runtime: Runtime, arm_env: Emulator) -> None:
    a = nsg_id(arm_env, RGS[0], "nsg-cyclecloud")
    b = nsg_id(arm_env, RGS[1], "nsg-cyclecloud")
    person_edit(arm_env, RGS[0], "nsg-cyclecloud", drop_rule("AllowAzureStorage"))
    person_edit(arm_env, RGS[1], "nsg-cyclecloud", set_port("AllowAzureRM", "80"))
    arm_env.clear_requests()
    report = sweep(runtime)
    assert puts(arm_env) == Counter({a.lower(): 1, b.lower(): 1})
    assert report.ok, report.to_json()["errors"]
    assert report.remaining == []
    assert_converged(arm_env, a)
    assert_converged(arm_env, b)
    azure_rm = next(r for r in rules(arm_env, b) if r["name"] == "AllowAzureRM")
    assert azure_rm["properties"]["destinationPortRange"] == "443"
    arm_env.clear_requests()
    assert sweep(runtime).findings == []
    assert puts(arm_env, None) == Counter()


class RacingWriter:
    """Lets a person PUT the NSG after the remediator read it and before it writes (once)."""

    def __init__(self, rt: Runtime, em: Emulator, rg: str, edit: Any) -> None:
        self.inner = rt.writer
        self.em, self.rg, self.edit = em, rg, edit
        self.raced = False

    def apply(self, nsg: NetworkSecurityGroup, plan: RemediationPlan) -> WriteResult:
        if not self.raced:
            self.raced = True
            person_edit(self.em, self.rg, nsg.name, self.edit)
        return self.inner.apply(nsg, plan)


def test_a_person_racing_the_write_is_never_overwritten(runtime: Runtime, arm_env: Emulator) -> None:
    target = nsg_id(arm_env, RGS[0], "nsg-cyclecloud")
    person_edit(arm_env, RGS[0], "nsg-cyclecloud", drop_rule("AllowAzureStorage"))
    arm_env.clear_requests()
    writer = RacingWriter(runtime, arm_env, RGS[0], add_rule("PersonDeny8080", 300, "8080"))
    report = bare(runtime, writer=writer).reconcile(target, trigger="http")
    assert writer.raced
    statuses = [r["status"] for r in arm_env.requests() if r["method"] == "PUT" and r["caller"] == REMEDIATOR]
    assert statuses == [412, 200] or statuses == [412, 201]
    assert "PersonDeny8080" in names(arm_env, target)
    assert_converged(arm_env, target, extra=frozenset({"PersonDeny8080"}))
    assert report.ok
    [outcome] = report.nsgs
    assert outcome.attempts == 2


FAULTS = {
    "429": {"kind": "status", "status": 429, "retry_after": 0.05},
    "500": {"kind": "status", "status": 500},
    "503-twice": {"kind": "status", "status": 503, "times": 2},
    "drop": {"kind": "drop"},
    "drop-after-write": {"kind": "drop", "apply": True},
    "409": {"kind": "status", "status": 409},
    "412": {"kind": "status", "status": 412},
    "lro-failed": {"kind": "lro_failed"},
    "slow": {"kind": "delay", "seconds": 0.3},
}


@pytest.mark.parametrize("fault", FAULTS.values(), ids=FAULTS.keys())
def test_faults_on_the_write_end_in_convergence(runtime: Runtime, arm_env: Emulator, fault: dict[str, Any]) -> None:
    target = nsg_id(arm_env, RGS[0], "nsg-cyclecloud")
    person_edit(arm_env, RGS[0], "nsg-cyclecloud", drop_rule("AllowAzureStorage"))
    person_edit(arm_env, RGS[0], "nsg-cyclecloud", add_rule("PersonRule", 310, "8443"))
    arm_env.clear_requests()
    fields = {"method": "PUT", "path": "networkSecurityGroups", "principal": REMEDIATOR} | fault
    injected = arm_env.faults.add(**fields)
    report = sweep(runtime)
    assert injected.hits >= 1
    assert report.ok, report.to_json()["errors"]
    assert_converged(arm_env, target, extra=frozenset({"PersonRule"}))
    assert sweep(runtime).findings == []


@pytest.mark.parametrize(
    "fault",
    [{"kind": "status", "status": 503}, {"kind": "drop"}, {"kind": "status", "status": 429, "retry_after": 0.05}],
    ids=["503", "drop", "429"],
)
def test_faults_on_discovery_are_retried(runtime: Runtime, arm_env: Emulator, fault: dict[str, Any]) -> None:
    injected = arm_env.faults.add(method="GET", path="networkSecurityGroups$", **fault)
    report = sweep(runtime)
    assert injected.hits == 1
    assert len(report.nsgs) == 4


def test_every_request_is_allowed_by_the_custom_role(runtime: Runtime, arm_env: Emulator) -> None:
    person_edit(arm_env, RGS[0], "nsg-cyclecloud", drop_rule("AllowAzureStorage"))
    arm_env.clear_requests()
    sweep(runtime)
    bare(runtime).reconcile(nsg_id(arm_env, RGS[1], "nsg-cluster"), trigger="http")
    allowed = role_actions()
    sent = [r for r in arm_env.requests() if r["path"] != "/msi/token"]
    assert any(r["method"] == "PUT" for r in sent)
    missing = {(r["method"], action_for(r["method"], r["path"])) for r in sent}
    missing = {(m, a) for m, a in missing if not is_covered(a, allowed)}
    assert missing == set()


def test_rereads_see_rule_and_association_changes_made_on_child_resources(runtime: Runtime, arm_env: Emulator) -> None:
    """The adapter reuses its parse of an unchanged NSG (same etag and back-references); a rule
    written through the securityRules child API, or a subnet newly associated, must still show."""
    sub, rg = arm_env.subscription_id, RGS[0]
    cc = nsg_id(arm_env, rg, "nsg-cyclecloud")
    first = runtime.source.inventory(f"/subscriptions/{sub}")
    before = next(n for n in first.nsgs if n.key == cc.lower())
    again = runtime.source.inventory(f"/subscriptions/{sub}")
    assert next(n for n in again.nsgs if n.key == cc.lower()) is before, "unchanged NSG: parse reused"

    with network_client(arm_env, human_credential(arm_env)) as person:
        person.security_rules.begin_create_or_update(
            rg,
            "nsg-cyclecloud",
            "PersonRule",
            {
                "properties": {
                    "protocol": "Tcp",
                    "access": "Deny",
                    "direction": "Inbound",
                    "priority": 300,
                    "sourceAddressPrefix": "*",
                    "sourcePortRange": "*",
                    "destinationAddressPrefix": "*",
                    "destinationPortRange": "8080",
                }
            },
            polling_interval=0.01,
        ).result()
    after_rule = next(n for n in runtime.source.inventory(f"/subscriptions/{sub}").nsgs if n.key == cc.lower())
    assert "PersonRule" in {r.name for r in after_rule.security_rules}

    with network_client(arm_env, human_credential(arm_env)) as person:
        vnet = person.virtual_networks.get(rg, "vnet-cyclecloud")
        subnet = next(s for s in vnet.subnets if s.name == "hpc")
        subnet.network_security_group = {"id": cc}
        person.subnets.begin_create_or_update(rg, "vnet-cyclecloud", "hpc", subnet, polling_interval=0.01).result()
    after_link = next(n for n in runtime.source.inventory(f"/subscriptions/{sub}").nsgs if n.key == cc.lower())
    assert any(s.lower().endswith("/subnets/hpc") for s in after_link.subnet_ids)
