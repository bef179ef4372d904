"""Reconcile: discover -> assess -> apply -> verify -> record -> alert.

Knows the protocols of :mod:`remediation.ports`, never an adapter. The rules
it keeps:

- zero writes for a compliant NSG; one write per drifted NSG, unless the NSG
  changed under us (ConflictError) or the write failed transiently: then the
  NSG is re-read, re-assessed and re-planned, a bounded number of times;
- audit mode and dry runs never write;
- a subnet is written only to add a missing service endpoint, only with
  SERVICE_ENDPOINT_REPAIR, only while attached to the managed NSG, with
  If-Match and the same bounded re-read and retry as NSG writes;
- one failing NSG does not stop the others: its error goes in the report;
- an event is never trusted as state: it only says what to re-read. Own
  writes and duplicates are dropped before any ARM call.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from remediation.assess import Assessment, EndpointRepair, assess, observed_attachments, released_attachments
from remediation.azure.eventgrid import ResourceEvent, affected_ids, caller, is_own_write, is_relevant
from remediation.baseline import Baseline, roles_of
from remediation.errors import ConflictError, InputError, ScopeError, TransientError
from remediation.findings import Finding, FindingKind, severity_for
from remediation.model import Inventory, NetworkSecurityGroup
from remediation.plan import RemediationPlan
from remediation.ports import (
    AuditRecord,
    NsgSource,
    NsgWriter,
    StateStore,
    SubnetWriter,
    SubnetWriteResult,
    WriteResult,
)
from remediation.scope import Scope, parse_scope
from remediation.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_MAX_ATTEMPTS = 4
#: Extra in-process tries after a TransientError. The adapter's client already
#: retried throttling, 5xx and lost connections, so retrying those again here
#: would multiply the requests; one more re-read and write covers a failed
#: long-running operation. Anything beyond is the trigger's (Event Grid, timer).
TRANSIENT_RETRIES = 1


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Restored:
    """Rules one write put back, and the findings it fixed (what the alert policy needs)."""

    nsg_id: str
    rules: tuple[str, ...]
    fixed: tuple[Finding, ...]
    actor: str | None = None


class Notifier(Protocol):
    """Turns one reconcile's outcome into operator alerts (``remediation.alerts`` implements it).

    ``findings`` are what is still wrong after remediation; ``scopes`` the
    resource-id prefixes this reconcile covered (so nothing outside them is
    "resolved"). Returns one line per alert sent, for the report.
    """

    def notify(
        self,
        findings: Sequence[Finding],
        *,
        restored: Sequence[Restored],
        scopes: Sequence[str],
        actor: str | None,
        at: datetime,
    ) -> Sequence[str]: ...


@dataclass(slots=True)
class NsgOutcome:
    """What happened to one NSG in one reconcile."""

    nsg_id: str
    findings: list[Finding] = field(default_factory=list)
    plan: RemediationPlan | None = None
    written: WriteResult | None = None
    subnet_writes: list[SubnetWriteResult] = field(default_factory=list)
    attempts: int = 0
    remaining: list[Finding] = field(default_factory=list)
    skipped: str | None = None
    error: str | None = None
    transient: bool = False

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "nsg": self.nsg_id,
            "findings": len(self.findings),
            "written": bool(self.written and self.written.written),
            "attempts": self.attempts,
        }
        if self.plan is not None and not self.plan.is_empty:
            body["added"] = [r.name for r in self.plan.added]
            body["replaced"] = [r.name for r in self.plan.replaced]
        if self.written is not None and self.written.correlation_id:
            body["correlationId"] = self.written.correlation_id
        if self.written is not None and self.written.lost_rules:
            body["lostRules"] = list(self.written.lost_rules)
        if self.subnet_writes:
            body["subnetWrites"] = [
                {
                    "subnet": w.subnet_id,
                    "written": w.written,
                    "added": list(w.added),
                    "attempts": w.attempts,
                    "correlationId": w.correlation_id,
                }
                for w in self.subnet_writes
            ]
        if self.remaining:
            body["remaining"] = [f.to_json() for f in self.remaining]
        if self.skipped:
            body["skipped"] = self.skipped
        if self.error:
            body["error"] = self.error
        return body


@dataclass(slots=True)
class ReconcileReport:
    scope: str
    trigger: str
    mode: str
    dry_run: bool
    started: datetime
    finished: datetime | None = None
    event_id: str | None = None
    actor: str | None = None
    findings: list[Finding] = field(default_factory=list)
    nsgs: list[NsgOutcome] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    alerts: list[str] = field(default_factory=list)
    accepted_detached: list[str] = field(default_factory=list)

    @property
    def plans(self) -> list[RemediationPlan]:
        return [o.plan for o in self.nsgs if o.plan is not None and not o.plan.is_empty]

    @property
    def written(self) -> list[WriteResult]:
        return [o.written for o in self.nsgs if o.written is not None and o.written.written]

    @property
    def remaining(self) -> list[Finding]:
        """Findings still true after this run (all findings when nothing was written)."""
        return [f for o in self.nsgs for f in o.remaining] + self._unattached()

    @property
    def transient_failure(self) -> bool:
        return any(o.transient for o in self.nsgs)

    @property
    def ok(self) -> bool:
        return not self.errors and not any(o.error for o in self.nsgs)

    def all_errors(self) -> list[str]:
        """Run-level errors, then each failed NSG's, naming it."""
        return self.errors + [f"{o.nsg_id}: {o.error}" for o in self.nsgs if o.error]

    def _unattached(self) -> list[Finding]:
        known = {o.nsg_id.lower() for o in self.nsgs}
        return [f for f in self.findings if f.nsg.lower() not in known]

    def to_json(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "trigger": self.trigger,
            "mode": self.mode,
            "dryRun": self.dry_run,
            "eventId": self.event_id,
            "actor": self.actor,
            "started": self.started.isoformat(),
            "finished": self.finished.isoformat() if self.finished else None,
            "findings": [f.to_json() for f in self.findings],
            "plans": [p.to_json() for p in self.plans],
            "written": [
                {
                    "nsg": w.nsg_id,
                    "attempts": w.attempts,
                    "correlationId": w.correlation_id,
                    "lostRules": list(w.lost_rules),
                }
                for w in self.written
            ],
            "remaining": [f.to_json() for f in self.remaining],
            "errors": self.all_errors(),
            "alerts": list(self.alerts),
            "acceptedDetached": list(self.accepted_detached),
            "nsgs": [o.to_json() for o in self.nsgs],
        }

    def summary(self) -> dict[str, Any]:
        """The compact form the status endpoint keeps."""
        return {
            "scope": self.scope,
            "trigger": self.trigger,
            "mode": self.mode,
            "started": self.started.isoformat(),
            "finished": self.finished.isoformat() if self.finished else None,
            "nsgs": len(self.nsgs),
            "findings": len(self.findings),
            "written": [w.nsg_id for w in self.written],
            "remaining": len(self.remaining),
            "errors": self.all_errors(),
        }


@dataclass(frozen=True, slots=True)
class EventOutcome:
    """What the handler did with one event: ``handled`` with a report, or ``ignored`` and why."""

    event_id: str
    status: str
    reason: str = ""
    report: ReconcileReport | None = None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"eventId": self.event_id, "status": self.status}
        if self.reason:
            body["reason"] = self.reason
        if self.report is not None:
            body["report"] = self.report.to_json()
        return body


def reconcile(
    scope: str | None,
    *,
    source: NsgSource,
    writer: NsgWriter,
    baseline: Baseline,
    settings: Settings,
    trigger: str,
    event_id: str | None = None,
    actor: str | None = None,
    dry_run: bool = False,
    alerts: Notifier | None = None,
    state: StateStore | None = None,
    clock: Callable[[], datetime] = utcnow,
    affected: Collection[str] | None = None,
    tags: Any = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    accept_detached: Collection[str] = (),
    subnet_writer: SubnetWriter | None = None,
) -> ReconcileReport:
    """Reconcile every managed NSG in ``scope`` (a subscription, resource group or NSG id).

    Raises InputError / ScopeError for a bad scope before any ARM call, and
    TransientError when discovery itself fails (nothing could be judged).
    ``affected`` (resource ids from an event) narrows the NSGs acted on to
    those ids and the NSGs attached to them; discovery still covers the
    subscription so node-to-CycleCloud flows are judged end to end.
    ``accept_detached`` (subnet ids) are detachments an operator made on
    purpose: their memory is dropped, so ``nsg_detached`` clears for them.
    ``subnet_writer`` adds missing service endpoints when SERVICE_ENDPOINT_REPAIR is on.
    """
    parsed = parse_scope(scope, subscription_id=settings.subscription_id)
    accepted = _accepted_subnets(accept_detached, parsed.subscription_id)
    report = ReconcileReport(
        scope=parsed.id,
        trigger=trigger,
        mode=settings.mode.value,
        dry_run=dry_run,
        started=clock(),
        event_id=event_id,
        actor=actor,
    )
    expected = _load_attachments(state, report)
    if accepted:
        expected = {s: n for s, n in expected.items() if s.lower() not in accepted}
        report.accepted_detached = sorted(accepted)
        if state is not None and not dry_run:
            try:
                state.save_attachments({}, forget=sorted(accepted))
                log.info("detachment accepted by %s for %s", actor or trigger, ", ".join(sorted(accepted)))
            except Exception as exc:
                log.exception("forgetting accepted detachments failed")
                report.errors.append(f"acceptDetached: not saved: {type(exc).__name__}: {exc}")
    subscription = f"/subscriptions/{parsed.subscription_id}"
    if expected:
        inventory = source.inventory(subscription, extra_subnet_ids=tuple(expected))
    else:
        inventory = source.inventory(subscription)
    targets = _targets(inventory, parsed, baseline, affected)
    target_keys = {n.key for n in targets}
    assessment = assess(
        inventory,
        baseline,
        tags=tags,
        only=target_keys,
        expected_attachments=expected,
        subnets=_judged_subnets(expected, parsed, affected),
        repair_endpoints=settings.service_endpoint_repair and subnet_writer is not None,
    )
    report.findings = [f for f in assessment.findings if _finding_in(f, target_keys, parsed, affected)]
    plans = {p.nsg_id.lower(): p for p in assessment.plans}
    repairs: dict[str, list[EndpointRepair]] = {}
    for repair in assessment.endpoint_repairs:
        repairs.setdefault(repair.nsg_id.lower(), []).append(repair)
    by_nsg: dict[str, list[Finding]] = {}
    for finding in report.findings:
        by_nsg.setdefault(finding.nsg.lower(), []).append(finding)
    restored: list[Restored] = []

    for nsg in targets:
        outcome = NsgOutcome(nsg_id=nsg.id)
        report.nsgs.append(outcome)
        outcome.findings = by_nsg.get(nsg.key, [])
        outcome.plan = plans.get(nsg.key)
        outcome.remaining = list(outcome.findings)
        nsg_repairs = repairs.get(nsg.key, [])
        writes_nsg = outcome.plan is not None and not outcome.plan.is_empty
        if not writes_nsg and not nsg_repairs:
            continue
        if not settings.enforce:
            outcome.skipped = "audit mode: not written"
            continue
        if dry_run:
            outcome.skipped = "dry run: not written"
            continue
        if writes_nsg:
            try:
                _apply(outcome, nsg, inventory, source, writer, baseline, tags, max_attempts, expected)
            except Exception as exc:  # one NSG's failure must not stop the others
                log.exception("reconcile of %s failed", nsg.id)
                outcome.error = f"{type(exc).__name__}: {exc}"
                outcome.transient = isinstance(exc, TransientError)
                continue
            written = outcome.written
            if written is not None and written.written:
                still = {r.fingerprint for r in outcome.remaining}
                fixed = tuple(f for f in outcome.findings if f.fingerprint not in still)
                added = outcome.plan.added if outcome.plan is not None else ()
                restored.append(Restored(nsg.id, tuple(r.name for r in added), fixed, actor=actor))
                _record_audit(state, report, nsg, written, clock)
        for repair in nsg_repairs:
            assert subnet_writer is not None  # repairs are planned only with a writer
            done = _repair_endpoints(outcome, nsg, repair, subnet_writer, max_attempts)
            if done is not None:
                restored.append(replace(done, actor=actor))
                _record_subnet_audit(state, report, nsg, outcome.subnet_writes[-1], clock)

    _save_attachments(state, report, inventory, baseline, expected)
    report.finished = clock()
    if alerts is not None:
        try:
            report.alerts = list(
                alerts.notify(
                    report.remaining,
                    restored=restored,
                    scopes=_alert_scopes(parsed, targets, affected),
                    actor=actor,
                    at=report.finished,
                )
            )
        except Exception as exc:  # alert delivery problems are reported, never fatal
            log.exception("alerting failed")
            report.errors.append(f"alerts: {type(exc).__name__}: {exc}")
    if state is not None and trigger == "sweep" and not dry_run:
        _prune(state, report, settings)
    if state is not None and trigger == "sweep":
        try:
            state.save_status({"lastSweep": report.summary()})
        except Exception as exc:
            log.exception("saving the sweep status failed")
            report.errors.append(f"status: {type(exc).__name__}: {exc}")
    return report


def handle_event(
    event: ResourceEvent,
    *,
    source: NsgSource,
    writer: NsgWriter,
    baseline: Baseline,
    settings: Settings,
    alerts: Notifier | None = None,
    state: StateStore | None = None,
    clock: Callable[[], datetime] = utcnow,
    tags: Any = None,
    subnet_writer: SubnetWriter | None = None,
) -> EventOutcome:
    """Reconcile what one Event Grid event touched; never trust its body.

    Raises TransientError when an affected NSG could not be reconciled for a
    transient reason, so the trigger lets Event Grid redeliver.
    """
    if not is_relevant(event):
        return EventOutcome(event.id, "ignored", "not a network security change")
    if is_own_write(event, settings):
        return EventOutcome(event.id, "ignored", "own write")
    if state is not None and state.seen_event(event.id):
        return EventOutcome(event.id, "ignored", "duplicate delivery")
    try:
        report = reconcile(
            f"/subscriptions/{settings.subscription_id}",
            source=source,
            writer=writer,
            baseline=baseline,
            settings=settings,
            trigger="event",
            event_id=event.id,
            actor=caller(event).describe(),
            alerts=alerts,
            state=state,
            clock=clock,
            affected=affected_ids(event),
            tags=tags,
            subnet_writer=subnet_writer,
        )
        if report.transient_failure:
            failed = ", ".join(o.nsg_id for o in report.nsgs if o.transient)
            raise TransientError(f"event {event.id}: transient failure reconciling {failed}")
    except TransientError:
        _forget(state, event.id)  # let Event Grid's redelivery through the duplicate check
        raise
    return EventOutcome(event.id, "handled", report=report)


def _apply(
    outcome: NsgOutcome,
    nsg: NetworkSecurityGroup,
    inventory: Inventory,
    source: NsgSource,
    writer: NsgWriter,
    baseline: Baseline,
    tags: Any,
    max_attempts: int,
    expected: Mapping[str, str] | None = None,
) -> None:
    """Write the plan; on conflict (or once, a transient failure) re-read, re-plan and retry, bounded."""
    current, plan = nsg, outcome.plan
    assert plan is not None
    transient_left = TRANSIENT_RETRIES
    for attempt in range(1, max_attempts + 1):
        outcome.attempts = attempt
        try:
            result = writer.apply(current, plan)
        except (ConflictError, TransientError) as exc:
            if attempt == max_attempts:
                raise
            if not isinstance(exc, ConflictError):
                if transient_left == 0:
                    raise
                transient_left -= 1
            log.warning("write to %s: %s; re-reading (attempt %d of %d)", nsg.id, exc, attempt, max_attempts)
            current = source.get_nsg(nsg.id)
            check = assess(
                _with_nsg(inventory, current), baseline, tags=tags, only=(current.id,), expected_attachments=expected
            )
            plan = _plan_for(check, current) or plan
            outcome.plan = plan
            if plan.is_empty:  # someone else restored it meanwhile: converged without us
                outcome.remaining = _findings_for(check, current)
                return
            continue
        outcome.written = replace(result, attempts=attempt)
        if result.lost_rules:
            outcome.error = "rules lost in the write: " + ", ".join(result.lost_rules)
        after = result.after
        if after is not None:
            check = assess(
                _with_nsg(inventory, after), baseline, tags=tags, only=(after.id,), expected_attachments=expected
            )
            outcome.remaining = _findings_for(check, after)
            left = [f for f in outcome.remaining if f.remediable]
            if left and not outcome.error:
                outcome.error = "still drifted after the write: " + ", ".join(f.requirement for f in left)
        outcome.remaining += [_lost_rule(nsg, name, result.correlation_id) for name in result.lost_rules]
        return


def _repair_endpoints(
    outcome: NsgOutcome,
    nsg: NetworkSecurityGroup,
    repair: EndpointRepair,
    subnet_writer: SubnetWriter,
    max_attempts: int,
) -> Restored | None:
    """Add one subnet's missing service endpoints; on conflict call again (the writer re-reads), bounded.

    Returns what was restored, or None (nothing written, or the write failed: then
    ``outcome.error`` says why and the findings stay in ``outcome.remaining``).
    """
    fixes = {f.fingerprint for f in repair.fixes}
    # The NSG write's re-assessment (if any) judged without repair; the findings are the repair's.
    outcome.remaining = [f for f in outcome.remaining if f.fingerprint not in fixes] + list(repair.fixes)
    where = f"subnet {repair.subnet_id}"
    result: SubnetWriteResult | None = None
    for attempt in range(1, max_attempts + 1):
        try:
            result = replace(
                subnet_writer.add_service_endpoints(repair.subnet_id, repair.services, nsg_id=nsg.id), attempts=attempt
            )
            break
        except ConflictError as exc:
            if attempt < max_attempts:
                log.warning("%s: %s; re-reading (attempt %d of %d)", where, exc, attempt, max_attempts)
                continue
            error: Exception = exc
        except Exception as exc:  # one subnet's failure must not stop the others
            error = exc
        log.exception("adding service endpoints to %s failed", repair.subnet_id, exc_info=error)
        _add_error(outcome, f"{where}: {type(error).__name__}: {error}")
        outcome.transient = outcome.transient or isinstance(error, TransientError)
        return None
    assert result is not None
    outcome.subnet_writes.append(result)
    if result.error:
        _add_error(outcome, f"{where}: {result.error}")
        return None
    missing = {m.lower() for m in result.missing_after}
    fixed = tuple(f for f in repair.fixes if f.requirement.lower() not in missing)
    gone = {f.fingerprint for f in fixed}
    outcome.remaining = [f for f in outcome.remaining if f.fingerprint not in gone]
    if result.missing_after:
        _add_error(outcome, f"{where}: still without {', '.join(result.missing_after)} after the write")
    if result.lost_endpoints:
        _add_error(outcome, f"{where}: service endpoints lost in the write: {', '.join(result.lost_endpoints)}")
    if not result.written:
        return None  # someone else added them meanwhile: converged without us
    name = repair.subnet_id.rstrip("/").rsplit("/", 1)[-1]
    restored = tuple(f"{s} service endpoint on subnet {name!r}" for s in result.added if s.lower() not in missing)
    return Restored(nsg.id, restored, fixed)


def _prune(state: StateStore, report: ReconcileReport, settings: Settings) -> None:
    """Drop old event ids and resolved alert states; a failure is reported, never fatal to the sweep."""
    assert report.finished is not None
    cutoff = report.finished - timedelta(days=settings.state_retention_days)
    try:
        pruned = state.prune(cutoff)
    except Exception as exc:
        log.exception("pruning the state failed")
        report.errors.append(f"prune: {type(exc).__name__}: {exc}")
        return
    if pruned:
        log.info("pruned %d state entries older than %s", pruned, cutoff.isoformat())


def _add_error(outcome: NsgOutcome, message: str) -> None:
    outcome.error = f"{outcome.error}; {message}" if outcome.error else message


def _lost_rule(nsg: NetworkSecurityGroup, rule: str, correlation_id: str | None) -> Finding:
    """A rule our own write removed (If-Match should make this impossible): operators must know.

    A ``rule_lost`` finding exists only in the run whose write lost the rule;
    the alert policy sends it once and closes it, so a later sweep never
    reports it "resolved".
    """
    return Finding(
        kind=FindingKind.RULE_LOST,
        requirement=rule,
        nsg=nsg.id,
        rule=rule,
        remediable=False,
        severity=severity_for(FindingKind.RULE_LOST, False),
        message=(
            f"rule {rule!r} was in {nsg.name} before the remediator's write and is gone after it "
            f"(ARM correlation id {correlation_id or 'unknown'})"
        ),
        reason="the remediator never recreates rules it does not own; restore it from the audit trail's rules before",
    )


def _targets(
    inventory: Inventory, scope: Scope, baseline: Baseline, affected: Collection[str] | None
) -> list[NetworkSecurityGroup]:
    managed = [n for n in inventory.nsgs if scope.contains(n.id) and roles_of(n.tags, baseline.lockdown_tag)]
    if affected is None:
        return managed
    keys = {a.lower().rstrip("/") for a in affected}

    def touched(resource_id: str | None) -> bool:
        if not resource_id:
            return False
        rid = resource_id.lower()
        return rid in keys or any(rid.startswith(k + "/") for k in keys)

    attached = {s.nsg_id.lower() for s in inventory.subnets if s.nsg_id and touched(s.id)}
    attached |= {n.nsg_id.lower() for n in inventory.nics if n.nsg_id and touched(n.id)}
    return [
        n for n in managed if n.key in keys or n.key in attached or any(touched(i) for i in n.subnet_ids + n.nic_ids)
    ]


def _finding_in(finding: Finding, targets: set[str], scope: Scope, affected: Collection[str] | None) -> bool:
    if finding.nsg.lower() in targets:
        return True
    if affected is not None:
        # A subnet's finding counts for an event on the subnet or its VNet; a detachment from
        # memory also for an event on the (deleted) NSG it names.
        return _touches(finding.subnet, affected) or finding.nsg.lower() in {a.lower() for a in affected}
    return scope.contains(finding.nsg)


def _touches(resource_id: str | None, affected: Collection[str]) -> bool:
    """``resource_id`` is one of ``affected`` or lies under one (a subnet under its VNet)."""
    if not resource_id:
        return False
    rid = resource_id.lower()
    keys = {a.lower().rstrip("/") for a in affected}
    return rid in keys or any(rid.startswith(k + "/") for k in keys)


def _judged_subnets(expected: Mapping[str, str], scope: Scope, affected: Collection[str] | None) -> set[str]:
    """Remembered subnets whose attachment this run judges even when their NSG is no target.

    A sweep judges those whose NSG is in its scope (the NSG may be deleted, so
    never a target); an event those on the subnet, its VNet or the NSG it touched.
    """
    if affected is None:
        return {subnet for subnet, nsg in expected.items() if scope.contains(nsg)}
    return {subnet for subnet, nsg in expected.items() if _touches(subnet, affected) or _touches(nsg, affected)}


def _accepted_subnets(subnet_ids: Collection[str], subscription_id: str) -> set[str]:
    """Validated, lower-cased subnet ids of ``acceptDetached``; names the bad one."""
    accepted: set[str] = set()
    for i, subnet_id in enumerate(subnet_ids):
        where = f"acceptDetached[{i}]"
        parts = subnet_id.strip("/").split("/") if isinstance(subnet_id, str) else []
        if (
            len(parts) != 10
            or parts[0].lower() != "subscriptions"
            or parts[2].lower() != "resourcegroups"
            or parts[6].lower() != "virtualnetworks"
            or parts[8].lower() != "subnets"
        ):
            raise InputError(
                "must be a subnet id: /subscriptions/<id>/resourceGroups/<rg>/providers/"
                "Microsoft.Network/virtualNetworks/<vnet>/subnets/<subnet>",
                where=where,
            )
        if parts[1].lower() != subscription_id.lower():
            raise ScopeError(f"{where}: subnet is outside the configured subscription {subscription_id}")
        accepted.add("/" + "/".join(parts).lower())
    return accepted


def _load_attachments(state: StateStore | None, report: ReconcileReport) -> dict[str, str]:
    """The remembered subnet -> managed NSG pairs; none (reported) when the store fails."""
    if state is None:
        return {}
    try:
        return dict(state.attachments())
    except Exception as exc:  # the run still judges what the inventory shows
        log.exception("loading the remembered NSG attachments failed")
        report.errors.append(f"attachments: not loaded, detachments judged without memory: {type(exc).__name__}: {exc}")
        return {}


def _save_attachments(
    state: StateStore | None,
    report: ReconcileReport,
    inventory: Inventory,
    baseline: Baseline,
    expected: Mapping[str, str],
) -> None:
    """Remember what is attached now; forget remembered subnets that no longer exist.

    A remembered subnet that still exists without a managed NSG is kept, so
    its ``nsg_detached`` persists until a managed NSG guards it again or the
    subnet is deleted. Subnets whose NSG is still attached but lost its tag
    are forgotten (an operator stopped guarding it). Only changes are written.
    """
    if state is None:
        return
    observed = observed_attachments(inventory, baseline)
    known = {k.lower(): v.lower() for k, v in expected.items()}
    changed = {s: n for s, n in observed.items() if known.get(s.lower()) != n.lower()}
    vnets = {v.key: v for v in inventory.vnets}
    forget = []
    for subnet_id in expected:
        vnet = vnets.get(subnet_id[: subnet_id.lower().rfind("/subnets/")].lower())
        # Discovery read this VNet (extra_subnet_ids): absent means deleted, as is a subnet absent from it.
        if vnet is None or all(s.key != subnet_id.lower() for s in vnet.subnets):
            forget.append(subnet_id)
    forget += released_attachments(inventory, baseline, expected)
    if not changed and not forget:
        return
    try:
        state.save_attachments(changed, forget=forget)
    except Exception as exc:
        log.exception("saving the NSG attachments failed")
        report.errors.append(f"attachments: not saved: {type(exc).__name__}: {exc}")


def _alert_scopes(scope: Scope, targets: Sequence[NetworkSecurityGroup], affected: Collection[str] | None) -> list[str]:
    if affected is None:
        return [scope.id]
    return [n.id for n in targets] + list(affected)


def _with_nsg(inventory: Inventory, nsg: NetworkSecurityGroup) -> Inventory:
    nsgs = tuple(nsg if n.key == nsg.key else n for n in inventory.nsgs)
    return replace(inventory, nsgs=nsgs)


def _plan_for(assessment: Assessment, nsg: NetworkSecurityGroup) -> RemediationPlan | None:
    return next((p for p in assessment.plans if p.nsg_id.lower() == nsg.key), None)


def _findings_for(assessment: Assessment, nsg: NetworkSecurityGroup) -> list[Finding]:
    return [f for f in assessment.findings if f.nsg.lower() == nsg.key]


def _record_audit(
    state: StateStore | None,
    report: ReconcileReport,
    before: NetworkSecurityGroup,
    written: WriteResult,
    clock: Callable[[], datetime],
) -> None:
    if state is None:
        return
    after = written.after
    record = AuditRecord(
        at=clock(),
        nsg_id=before.id,
        trigger=report.trigger,
        event_id=report.event_id,
        actor=report.actor,
        rules_before=[r.to_arm() for r in before.security_rules],
        rules_after=[r.to_arm() for r in after.security_rules] if after is not None else [],
        correlation_id=written.correlation_id,
    )
    try:
        state.record_audit(record)
    except Exception as exc:  # the write happened; a lost audit line is reported, not fatal
        log.exception("recording the audit trail for %s failed", before.id)
        report.errors.append(f"audit {before.id}: {type(exc).__name__}: {exc}")


def _record_subnet_audit(
    state: StateStore | None,
    report: ReconcileReport,
    nsg: NetworkSecurityGroup,
    written: SubnetWriteResult,
    clock: Callable[[], datetime],
) -> None:
    """The subnet write in the NSG's audit trail: no rule changed, ``changes`` says what did."""
    if state is None:
        return
    before, after = ", ".join(written.endpoints_before) or "none", ", ".join(written.endpoints_after) or "none"
    record = AuditRecord(
        at=clock(),
        nsg_id=nsg.id,
        trigger=report.trigger,
        event_id=report.event_id,
        actor=report.actor,
        rules_before=[],
        rules_after=[],
        correlation_id=written.correlation_id,
        changes=(
            f"subnet {written.subnet_id}: added service endpoint(s) {', '.join(written.added)} "
            f"(serviceEndpoints before: {before}; after: {after})",
        ),
    )
    try:
        state.record_audit(record)
    except Exception as exc:  # the write happened; a lost audit line is reported, not fatal
        log.exception("recording the audit trail for %s failed", written.subnet_id)
        report.errors.append(f"audit {written.subnet_id}: {type(exc).__name__}: {exc}")


def _forget(state: StateStore | None, event_id: str) -> None:
    if state is None:
        return
    try:
        state.forget_event(event_id)
    except Exception:
        log.exception("could not forget event %s; its redelivery will be taken for a duplicate", event_id)


__all__ = [
    "EventOutcome",
    "Notifier",
    "NsgOutcome",
    "ReconcileReport",
    "Restored",
    "handle_event",
    "reconcile",
]
