"""Reconciler.reconcile() and .handle_event() over in-memory ports.

The ARM side here is an in-memory stand-in for NsgSource/NsgWriter that keeps
ARM's etag rule (a write with a stale If-Match is refused): the service logic
(retry, re-plan, isolation, audit, alerts) is what is under test. The real
SDK against the emulator is exercised in tests/integration/.
"""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from remediation.alerts.dispatch import Channel
from remediation.baseline_file import load_baseline
from remediation.errors import ConflictError, InputError, ScopeError, TransientError
from remediation.events import parse_event
from remediation.findings import Finding, FindingKind, Severity
from remediation.model import Inventory, NetworkSecurityGroup
from remediation.parse import merge_inventories, parse_document, parse_nsg
from remediation.plan import RemediationPlan
from remediation.ports import AuditRecord, Gathered, Restored, WriteResult
from remediation.service import Reconciler
from remediation.settings import Mode, Settings
from remediation.state import InMemoryStateStore
from remediation.wiring import AlertNotifier
from tests.support.inbox import AlertInbox

FIXTURES = Path(__file__).resolve().parent / "fixtures"
SUB = "00000000-0000-0000-0000-000000000001"
RG = f"/subscriptions/{SUB}/resourceGroups/rg-cyclecloud"
CC = f"{RG}/providers/Microsoft.Network/networkSecurityGroups/nsg-cyclecloud"
CLUSTER = f"{RG}/providers/Microsoft.Network/networkSecurityGroups/nsg-cluster"
MI_OID = "11111111-2222-3333-4444-555555555555"
SETTINGS = Settings(subscription_id=SUB, mode=Mode.ENFORCE, remediator_principal_id=MI_OID)
BASELINE = load_baseline()
NOW = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


class MemoryArm:
    """NsgSource + NsgWriter over raw ARM documents, with ARM's If-Match rule."""

    def __init__(self, docs: Sequence[Any]) -> None:
        self.nsgs: dict[str, dict[str, Any]] = {}
        self.others: list[Any] = []
        for doc in docs:
            if str(doc.get("type", "")).lower() == "microsoft.network/networksecuritygroups":
                self.nsgs[doc["id"].lower()] = copy.deepcopy(doc)
            else:
                self.others.append(copy.deepcopy(doc))
        self.calls: list[str] = []
        self.puts: list[str] = []
        self.before_write: Callable[[str], None] | None = None
        self.failures: list[Exception] = []
        self.fail_for: dict[str, Exception] = {}
        self._etags = itertools.count(100)

    def inventory(self, scope: str, *, extra_subnet_ids: Collection[str] = ()) -> Inventory:
        self.calls.append(f"inventory {scope}")  # every VNet is here, remembered subnets' too
        docs = list(self.nsgs.values()) + self.others
        return merge_inventories(*(parse_document(copy.deepcopy(d), where="memory") for d in docs))

    def neighbourhood(self, affected: Collection[str], *, extra_subnet_ids: Collection[str] = ()) -> Gathered:
        """Everything this fake holds (it is small): the neighbourhood's selection is the ARM adapter's,
        tested in tests/integration/test_event_cost.py."""
        self.calls.append("neighbourhood " + ",".join(affected))
        docs = list(self.nsgs.values()) + self.others
        inventory = merge_inventories(*(parse_document(copy.deepcopy(d), where="memory") for d in docs))
        return Gathered(inventory, vnet_ids=frozenset(v.key for v in inventory.vnets))

    def get_nsg(self, nsg_id: str) -> NetworkSecurityGroup:
        self.calls.append(f"get {nsg_id}")
        return parse_nsg(copy.deepcopy(self.nsgs[nsg_id.lower()]), where=nsg_id)

    def apply(self, nsg: NetworkSecurityGroup, plan: RemediationPlan) -> WriteResult:
        self.calls.append(f"apply {nsg.id}")
        if nsg.key in self.fail_for:
            raise self.fail_for[nsg.key]
        if self.before_write is not None:
            hook, self.before_write = self.before_write, None
            hook(nsg.id)
        if self.failures:
            raise self.failures.pop(0)
        raw = self.nsgs[nsg.key]
        if raw["etag"] != nsg.etag:
            raise ConflictError(f"412 on {nsg.id}")
        self.puts.append(nsg.id)
        raw["properties"]["securityRules"] = [r.to_arm() for r in plan.security_rules]
        self.bump(nsg.id)
        after = parse_nsg(copy.deepcopy(raw), where=nsg.id)
        after_names = {r.name.lower() for r in after.security_rules}
        lost = tuple(r.name for r in nsg.security_rules if r.name.lower() not in after_names)
        return WriteResult(nsg.id, True, correlation_id=f"corr-{len(self.puts)}", lost_rules=lost, after=after)

    def bump(self, nsg_id: str) -> None:
        self.nsgs[nsg_id.lower()]["etag"] = f'W/"{next(self._etags)}"'

    def rules(self, nsg_id: str) -> list[str]:
        return [r["name"] for r in self.nsgs[nsg_id.lower()]["properties"]["securityRules"]]

    def human_edit(self, nsg_id: str, rule: dict[str, Any]) -> None:
        self.nsgs[nsg_id.lower()]["properties"]["securityRules"].append(rule)
        self.bump(nsg_id)


class MemoryState:
    def __init__(self) -> None:
        self.events: set[str] = set()
        self.audit: list[AuditRecord] = []
        self.status: dict[str, Any] | None = None
        self.forgotten: list[str] = []
        self.attached: dict[str, str] = {}
        self.managed: dict[str, str] = {}
        self.pruned: list[datetime] = []

    def seen_event(self, event_id: str) -> bool:
        seen = event_id in self.events
        self.events.add(event_id)
        return seen

    def forget_event(self, event_id: str) -> None:
        self.events.discard(event_id)
        self.forgotten.append(event_id)

    def record_audit(self, record: AuditRecord) -> None:
        self.audit.append(record)

    def audit_trail(self, nsg_id: str | None = None, limit: int = 100) -> list[AuditRecord]:
        return list(reversed(self.audit))[:limit]

    def save_status(self, status: dict[str, Any]) -> None:
        self.status = status

    def load_status(self) -> dict[str, Any] | None:
        return self.status

    def attachments(self, *, near: Collection[str] | None = None) -> dict[str, str]:
        return dict(self.attached)

    def save_attachments(self, current: Mapping[str, str], forget: Collection[str] = ()) -> None:
        for subnet in forget:
            self.attached.pop(subnet, None)
        self.attached.update(current)

    def managed_nsgs(self, ids: Collection[str] | None = None) -> dict[str, str]:
        wanted = None if ids is None else {i.lower() for i in ids}
        return {k: v for k, v in self.managed.items() if wanted is None or k.lower() in wanted}

    def save_managed_nsgs(self, current: Mapping[str, str], forget: Collection[str] = ()) -> None:
        for nsg_id in forget:
            self.managed.pop(nsg_id, None)
        self.managed.update(current)

    def prune(self, older_than: datetime) -> int:
        self.pruned.append(older_than)
        return 0


class RecordingNotifier:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def notify(
        self,
        findings: Sequence[Finding],
        *,
        restored: Sequence[Restored],
        scopes: Sequence[str],
        actor: str | None,
        at: datetime,
    ) -> Sequence[str]:
        self.calls.append({"findings": list(findings), "restored": list(restored), "scopes": list(scopes)})
        return [f"{len(findings)} findings"]


def network(*, broken: str | None = None) -> MemoryArm:
    docs = [load(f"compliant/arm/{n}") for n in ("nsg-cluster.json", "nsg-cyclecloud.json", "vnet.json")]
    nics = load("compliant/arm/nics.json")
    docs += nics if isinstance(nics, list) else nics.get("value", [nics])
    if broken:
        docs = [d for d in docs if d.get("id", "").lower() != CC.lower()] + [load(f"broken/{broken}")]
    return MemoryArm(docs)


def deny_rule(name: str, port: str, priority: int, direction: str = "Outbound") -> dict[str, Any]:
    return {
        "name": name,
        "properties": {
            "protocol": "Tcp",
            "sourcePortRange": "*",
            "destinationPortRange": port,
            "sourceAddressPrefix": "*",
            "destinationAddressPrefix": "*",
            "access": "Deny",
            "priority": priority,
            "direction": direction,
        },
    }


RUN_OPTIONS = ("event_id", "actor", "dry_run", "affected", "accept_detached")


def run(arm: MemoryArm, scope: str | None = None, *, trigger: str = "sweep", **kwargs: Any) -> Any:
    """One reconcile; ``kwargs`` are the run's options and the Reconciler's parts (notifier, state ...)."""
    options = {k: kwargs.pop(k) for k in RUN_OPTIONS if k in kwargs}
    kwargs.setdefault("settings", SETTINGS)
    reconciler = Reconciler(source=arm, writer=arm, baseline=BASELINE, clock=lambda: NOW, **kwargs)
    return reconciler.reconcile(scope, trigger=trigger, **options)


def test_compliant_network_gets_no_write() -> None:
    arm = network()
    report = run(arm)
    assert arm.puts == []
    assert report.findings == []
    assert report.ok
    assert {o.nsg_id for o in report.nsgs} == {CC, CLUSTER}


def test_missing_rule_restored_with_one_write_and_audited() -> None:
    arm = network(broken="nsg-cyclecloud-missing-storage.json")
    state = MemoryState()
    notifier = RecordingNotifier()
    report = run(arm, state=state, notifier=notifier)
    assert arm.puts == [CC]
    assert "AllowAzureStorage" in arm.rules(CC)
    assert [f.kind for f in report.findings] == [FindingKind.MISSING_RULE]
    assert report.remaining == []
    assert report.ok
    body = report.to_json()
    assert body["written"][0]["nsg"] == CC
    assert body["written"][0]["correlationId"] == "corr-1"
    assert body["plans"][0]["added"] == ["AllowAzureStorage"]
    [record] = state.audit
    assert record.nsg_id == CC
    assert "AllowAzureStorage" in [r["name"] for r in record.rules_after]
    assert "AllowAzureStorage" not in [r["name"] for r in record.rules_before]
    assert state.status is not None
    assert state.status["lastSweep"]["written"] == [CC]
    [call] = notifier.calls
    assert call["findings"] == []
    assert call["restored"][0].rules == ("AllowAzureStorage",)
    assert [f.requirement for f in call["restored"][0].fixed] == ["AllowAzureStorage"]
    # A second run finds nothing to do.
    again = run(arm)
    assert arm.puts == [CC]
    assert again.findings == []


@pytest.mark.parametrize(
    ("mode", "dry_run", "skipped"), [(Mode.AUDIT, False, "audit"), (Mode.ENFORCE, True, "dry run")]
)
def test_audit_mode_and_dry_run_never_write(mode: Mode, dry_run: bool, skipped: str) -> None:
    arm = network(broken="nsg-cyclecloud-missing-storage.json")
    report = run(arm, settings=Settings(subscription_id=SUB, mode=mode), dry_run=dry_run)
    assert arm.puts == []
    assert not any(c.startswith("apply") for c in arm.calls)
    [outcome] = [o for o in report.nsgs if o.nsg_id == CC]
    assert outcome.skipped is not None
    assert skipped in outcome.skipped
    assert report.to_json()["plans"][0]["added"] == ["AllowAzureStorage"]
    assert [f.requirement for f in report.remaining] == ["AllowAzureStorage"]


def test_conflicts_are_retried_up_to_the_bound() -> None:
    arm = network(broken="nsg-cyclecloud-missing-storage.json")
    arm.failures = [ConflictError("409 AnotherOperationInProgress")] * 3
    report = run(arm)
    assert arm.puts == [CC]
    assert report.ok
    arm2 = network(broken="nsg-cyclecloud-missing-storage.json")
    arm2.failures = [ConflictError("412")] * 10
    report2 = run(arm2, max_attempts=3)
    [outcome] = [o for o in report2.nsgs if o.nsg_id == CC]
    assert outcome.attempts == 3
    assert outcome.transient  # ConflictError is a TransientError: the trigger retries later
    assert arm2.puts == []


def test_human_edit_racing_the_write_is_kept() -> None:
    arm = network(broken="nsg-cyclecloud-missing-storage.json")
    arm.before_write = lambda nsg_id: arm.human_edit(nsg_id, deny_rule("HumanDeny8080", "8080", 300))
    report = run(arm)
    assert arm.puts == [CC]  # the stale write was refused, the re-planned one went through
    assert "HumanDeny8080" in arm.rules(CC)
    assert "AllowAzureStorage" in arm.rules(CC)
    [outcome] = [o for o in report.nsgs if o.nsg_id == CC]
    assert outcome.attempts == 2
    assert outcome.written is not None
    assert outcome.written.attempts == 2
    assert report.ok


def test_someone_else_restoring_first_means_no_write() -> None:
    arm = network(broken="nsg-cyclecloud-missing-storage.json")
    fixed = load("compliant/arm/nsg-cyclecloud.json")

    def restore(nsg_id: str) -> None:
        arm.nsgs[nsg_id.lower()]["properties"]["securityRules"] = fixed["properties"]["securityRules"]
        arm.bump(nsg_id)

    arm.before_write = restore
    report = run(arm)
    assert arm.puts == []
    assert report.ok
    assert report.remaining == []


def test_transient_failure_gets_one_more_try_then_is_reported() -> None:
    # The adapter's client already retried; the service adds one re-read and write (a failed LRO).
    arm = network(broken="nsg-cyclecloud-missing-storage.json")
    arm.failures = [TransientError("LRO failed")]
    report = run(arm)
    assert arm.puts == [CC]
    assert report.ok
    arm2 = network(broken="nsg-cyclecloud-missing-storage.json")
    arm2.failures = [TransientError("503")] * 10
    report2 = run(arm2)
    [outcome] = [o for o in report2.nsgs if o.nsg_id == CC]
    assert outcome.transient
    assert outcome.attempts == 2
    assert len(arm2.failures) == 8
    assert "503" in (outcome.error or "")
    assert report2.transient_failure
    assert not report2.ok


def test_one_failing_nsg_does_not_stop_the_others() -> None:
    arm = network(broken="nsg-cyclecloud-missing-storage.json")
    second = load("broken/nsg-cyclecloud-missing-storage.json")
    second["id"] = second["id"].replace("nsg-cyclecloud", "nsg-cyclecloud-2")
    second["name"] = "nsg-cyclecloud-2"
    arm.nsgs[second["id"].lower()] = second
    arm.fail_for[CC.lower()] = RuntimeError("boom")
    report = run(arm)
    assert arm.puts == [second["id"]]
    errors = report.to_json()["errors"]
    assert any("boom" in e and CC in e for e in errors)


def test_human_deny_is_not_deleted_but_reported() -> None:
    arm = network()
    arm.human_edit(CLUSTER, deny_rule("DenyCycleCloud9443", "9443", 200))
    notifier = RecordingNotifier()
    report = run(arm, notifier=notifier)
    assert arm.puts == []
    assert "DenyCycleCloud9443" in arm.rules(CLUSTER)
    blocked = [f for f in report.remaining if f.kind is FindingKind.PORT_BLOCKED]
    assert blocked
    assert not any(f.remediable for f in blocked)
    assert notifier.calls[0]["findings"] == report.remaining


def test_scope_checks_happen_before_any_arm_call() -> None:
    arm = network()
    with pytest.raises(ScopeError):
        run(arm, "/subscriptions/00000000-0000-0000-0000-000000000009")
    with pytest.raises(InputError):
        run(arm, "/not/a/scope")
    assert arm.calls == []


def test_nsg_scope_acts_on_that_nsg_only() -> None:
    arm = network(broken="nsg-cyclecloud-missing-storage.json")
    report = run(arm, CLUSTER, trigger="http")
    assert arm.puts == []
    assert [o.nsg_id for o in report.nsgs] == [CLUSTER]
    assert report.findings == []


# ------------------------------------------------------------------ events


def event(resource: str, operation: str, *, oid: str = "99999999-0000-0000-0000-000000000000", eid: str = "e1") -> Any:
    return parse_event(
        {
            "id": eid,
            "eventType": "Microsoft.Resources.ResourceWriteSuccess",
            "subject": resource,
            "eventTime": "2026-11-26T08:00:00Z",
            "data": {
                "resourceUri": resource,
                "operationName": operation,
                "subscriptionId": SUB,
                "claims": {"oid": oid, "upn": "ann@contoso.com"},
            },
        },
        subscription_id=SUB,
    )


def handle(arm: MemoryArm, ev: Any, state: MemoryState | None = None) -> Any:
    reconciler = Reconciler(
        source=arm, writer=arm, baseline=BASELINE, settings=SETTINGS, state=state, clock=lambda: NOW
    )
    return reconciler.handle_event(ev)


RULE_WRITE = "Microsoft.Network/networkSecurityGroups/securityRules/delete"


def test_event_restores_the_affected_nsg_and_names_the_actor() -> None:
    arm = network(broken="nsg-cyclecloud-missing-storage.json")
    state = MemoryState()
    outcome = handle(arm, event(CC + "/securityRules/AllowAzureStorage", RULE_WRITE), state)
    assert outcome.status == "handled"
    assert arm.puts == [CC]
    assert outcome.report.actor == "ann@contoso.com"
    assert state.audit[0].event_id == "e1"


def test_irrelevant_own_and_duplicate_events_make_no_arm_call() -> None:
    arm = network(broken="nsg-cyclecloud-missing-storage.json")
    state = MemoryState()
    storage = "/subscriptions/" + SUB + "/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/sa"
    assert handle(arm, event(storage, "Microsoft.Storage/storageAccounts/write"), state).reason.startswith("not")
    assert (
        handle(arm, event(CC, "Microsoft.Network/networkSecurityGroups/write", oid=MI_OID), state).reason == "own write"
    )
    assert arm.calls == []
    assert handle(arm, event(CC, "Microsoft.Network/networkSecurityGroups/write", eid="dup"), state).status == "handled"
    calls = len(arm.calls)
    assert handle(arm, event(CC, "Microsoft.Network/networkSecurityGroups/write", eid="dup"), state).reason == (
        "duplicate delivery"
    )
    assert len(arm.calls) == calls


def test_event_on_one_nsg_does_not_write_another() -> None:
    arm = network(broken="nsg-cyclecloud-missing-storage.json")
    outcome = handle(arm, event(CLUSTER, "Microsoft.Network/networkSecurityGroups/write"))
    assert arm.puts == []
    assert [o.nsg_id for o in outcome.report.nsgs] == [CLUSTER]


def test_subnet_event_reconciles_the_nsg_attached_to_it() -> None:
    arm = network(broken="nsg-cyclecloud-missing-storage.json")
    subnet = f"{RG}/providers/Microsoft.Network/virtualNetworks/vnet-cyclecloud/subnets/cyclecloud"
    outcome = handle(arm, event(subnet, "Microsoft.Network/virtualNetworks/subnets/write"))
    assert arm.puts == [CC]
    assert [o.nsg_id for o in outcome.report.nsgs] == [CC]


def test_transient_failure_raises_and_lets_the_redelivery_through() -> None:
    arm = network(broken="nsg-cyclecloud-missing-storage.json")
    arm.failures = [TransientError("503")] * 10
    state = MemoryState()
    with pytest.raises(TransientError):
        handle(arm, event(CC, "Microsoft.Network/networkSecurityGroups/write", eid="t1"), state)
    assert state.forgotten == ["t1"]
    arm.failures = []
    assert handle(arm, event(CC, "Microsoft.Network/networkSecurityGroups/write", eid="t1"), state).status == "handled"
    assert arm.puts == [CC]


class LosingArm(MemoryArm):
    """An ARM whose write also drops a rule nobody asked it to (what If-Match should prevent)."""

    def apply(self, nsg: NetworkSecurityGroup, plan: RemediationPlan) -> WriteResult:
        kept = tuple(r for r in plan.security_rules if r.name != "AllowAzureRM")
        return super().apply(nsg, replace(plan, security_rules=kept))


def test_a_rule_lost_in_the_write_is_reported_and_alerted() -> None:
    base = network(broken="nsg-cyclecloud-missing-storage.json")
    arm = LosingArm([*base.nsgs.values(), *base.others])
    notifier = RecordingNotifier()
    report = run(arm, notifier=notifier)
    [outcome] = [o for o in report.nsgs if o.nsg_id == CC]
    assert outcome.written is not None
    assert outcome.written.lost_rules == ("AllowAzureRM",)
    assert "AllowAzureRM" in (outcome.error or "")
    lost = [f for f in notifier.calls[0]["findings"] if f.kind is FindingKind.RULE_LOST]
    assert [(f.rule, f.requirement, f.remediable, f.severity.value) for f in lost] == [
        ("AllowAzureRM", "AllowAzureRM", False, "high")
    ]
    assert "gone after" in lost[0].message
    assert report.to_json()["written"][0]["lostRules"] == ["AllowAzureRM"]


def test_a_lost_rule_is_alerted_once_and_never_resolved_by_the_next_sweep() -> None:
    """Through the real alert policy and state: the next sweep restores the baseline rule,
    and must not tell operators the lost-rule incident was "resolved"."""

    inbox = AlertInbox()
    notifier = AlertNotifier(InMemoryStateStore(), [Channel(inbox, Severity.INFO)], SETTINGS)
    base = network(broken="nsg-cyclecloud-missing-storage.json")
    losing = LosingArm([*base.nsgs.values(), *base.others])
    run(losing, notifier=notifier)
    incidents = [a for a in inbox.alerts if a.finding is not None and a.finding.kind is FindingKind.RULE_LOST]
    assert [(a.status.value, a.finding.rule if a.finding else None) for a in incidents] == [("new", "AllowAzureRM")]
    inbox.alerts.clear()
    # The next sweep on an honest ARM puts AllowAzureRM back (a baseline rule) and sweeps again.
    honest = MemoryArm([*losing.nsgs.values(), *losing.others])
    run(honest, notifier=notifier)
    run(honest, notifier=notifier)
    assert "AllowAzureRM" in honest.rules(CC)
    about_the_loss = [a for a in inbox.alerts if a.finding is not None and "gone after" in a.finding.message]
    assert about_the_loss == []  # no "resolved", no reminder, no second alert


def test_a_sweep_prunes_state_older_than_the_retention() -> None:
    clock = [NOW - timedelta(days=8)]
    store = InMemoryStateStore(clock=lambda: clock[0])
    assert not store.seen_event("old-event")
    clock[0] = NOW - timedelta(days=6)
    assert not store.seen_event("recent-event")
    report = run(network(), state=store)
    assert report.ok, report.errors
    assert store.seen_event("recent-event"), "kept: younger than 7 days"
    assert not store.seen_event("old-event"), "pruned: older than 7 days"


def test_the_retention_setting_and_the_trigger_decide_what_is_pruned() -> None:
    state = MemoryState()
    run(network(), state=state, settings=SETTINGS.model_copy(update={"state_retention_days": 2}))
    assert state.pruned == [NOW - timedelta(days=2)]
    run(network(), state=state, trigger="http")
    run(network(), state=state, dry_run=True)
    assert state.pruned == [NOW - timedelta(days=2)], "only a real sweep prunes"


class UnprunableState(MemoryState):
    def prune(self, older_than: datetime) -> int:
        raise OSError("events table unreachable")


def test_a_pruning_failure_is_reported_and_the_sweep_completes() -> None:
    arm = network(broken="nsg-cyclecloud-missing-storage.json")
    state = UnprunableState()
    report = run(arm, state=state)
    assert arm.puts == [CC], "remediation went on"
    assert report.errors == ["prune: OSError: events table unreachable"]
    assert state.status is not None
    assert state.status["lastSweep"]["errors"] == ["prune: OSError: events table unreachable"]


def test_the_report_names_what_could_not_be_judged() -> None:
    # Only the CycleCloud NSG is managed (no NSG tagged cluster): the node flows cannot be
    # judged, and the report (check's, the sweep's and the HTTP reconcile's) says so.
    docs = [load(f"compliant/arm/{n}") for n in ("nsg-cyclecloud.json", "vnet.json")]
    report = run(MemoryArm(docs))
    assert report.findings == []
    body = report.to_json()
    assert [u["requirement"] for u in body["notJudged"]] == ["amqp_5672", "https_9443"]
    assert all("no node subnet is known" in u["reason"] for u in body["notJudged"])
