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
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from remediation.assess import Assessment, EndpointRepair, assess, observed_attachments, released_attachments
from remediation.auth_watch import AuthWatch
from remediation.baseline import Baseline, role_tag_problem, roles_of
from remediation.errors import AuthenticationFailure, ConflictError, InputError, ScopeError, TransientError
from remediation.events import (
    OwnIdentity,
    ResourceEvent,
    affected_ids,
    caller,
    is_own_write,
    is_path_resource_id,
    is_relevant,
)
from remediation.findings import Finding, FindingKind, incident
from remediation.guarding import guarding_changes
from remediation.model import Inventory, NetworkSecurityGroup
from remediation.network import Network
from remediation.paths import judge_paths
from remediation.plan import RemediationPlan
from remediation.ports import (
    AuditRecord,
    Notifier,
    NsgSource,
    NsgWriter,
    PathSource,
    Restored,
    StateStore,
    SubnetWriter,
    SubnetWriteResult,
    TagSource,
    WriteResult,
)
from remediation.reports import EventOutcome, NsgOutcome, ReconcileReport
from remediation.required_flows import required_flows
from remediation.resource_id import SUBNET, ResourceId
from remediation.scope import Scope, parse_scope
from remediation.tags import TagModel

if TYPE_CHECKING:
    from remediation.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_MAX_ATTEMPTS = 4
#: Seconds a run may spend before it stops starting writes: the rest is deferred (reported, transient)
#: to the next delivery or sweep. With one write in flight at the deadline (the adapter waits at
#: most ArmOptions.max_poll_seconds for its operation) a run ends within an HTTP answer's 230 s
#: and far within the Functions timeout (host.json: 10 minutes), however long ARM asks to wait.
DEFAULT_TIME_BUDGET = 120.0
#: Extra in-process tries after a TransientError. The adapter's client already
#: retried throttling, 5xx and lost connections, so retrying those again here
#: would multiply the requests; one more re-read and write covers a failed
#: long-running operation. Anything beyond is the trigger's (Event Grid, timer).
TRANSIENT_RETRIES = 1


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, kw_only=True)
class Reconciler:
    """discover -> assess -> apply -> verify -> record -> alert, on the ports it holds.

    ``state``, ``notifier`` and ``subnet_writer`` are optional (no memory, no alerts,
    no service-endpoint repair). The service-tag model is ``tag_source``'s current one
    when there is a source (the Service Tags API, refreshed), else ``tags`` (a file's),
    else containment. ``max_attempts`` bounds the writes to one NSG or subnet per run.
    """

    source: NsgSource
    writer: NsgWriter
    baseline: Baseline
    settings: Settings
    state: StateStore | None = None
    notifier: Notifier | None = None
    subnet_writer: SubnetWriter | None = None
    tags: TagModel | None = None
    tag_source: TagSource | None = None
    #: Route tables and firewalls on the path (remediation/paths.py); None judges the NSGs only.
    paths: PathSource | None = None
    clock: Callable[[], datetime] = utcnow
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    time_budget: float = DEFAULT_TIME_BUDGET

    def __post_init__(self) -> None:
        # Authentication failures of this process, remembered across its runs (see auth_watch).
        object.__setattr__(self, "_auth_watch", AuthWatch(self.state, self.notifier, self.clock))

    def current_tags(self) -> TagModel | None:
        """The tag model a run judges with: the source's (loaded or refreshed now) or the fixed one."""
        if self.tag_source is not None:
            return self.tag_source.current()
        return self.tags

    def reconcile(
        self,
        scope: str | None,
        *,
        trigger: str,
        event_id: str | None = None,
        actor: str | None = None,
        dry_run: bool = False,
        affected: Collection[str] | None = None,
        accept_detached: Collection[str] = (),
    ) -> ReconcileReport:
        """Reconcile every managed NSG in ``scope`` (a subscription, resource group or NSG id).

        Raises InputError / ScopeError for a bad scope before any ARM call, and
        TransientError when discovery itself fails (nothing could be judged).
        ``affected`` (resource ids from events) narrows the NSGs acted on to
        those ids and the NSGs attached to them, and discovery to their
        neighbourhood (``NsgSource.neighbourhood``: the VNets involved, the NSGs
        on them and what locates CycleCloud), so node-to-CycleCloud flows are
        still judged end to end at a cost that does not grow with the subscription.
        ``accept_detached`` (subnet ids) are detachments an operator made on
        purpose: their memory is dropped, so ``nsg_detached`` clears for them.
        Missing service endpoints are added when SERVICE_ENDPOINT_REPAIR is on and
        there is a ``subnet_writer``.
        """
        settings, state, baseline = self.settings, self.state, self.baseline
        deadline = time.monotonic() + self.time_budget
        parsed = parse_scope(scope, subscription_id=settings.subscription_id)
        if affected is not None and affected and all(is_path_resource_id(a) for a in affected):
            # A route or firewall change can move any subnet's path: judge the subscription, as a sweep.
            affected = None
        accepted = _accepted_subnets(accept_detached, parsed.subscription_id)
        report = ReconcileReport(
            scope=parsed.id,
            trigger=trigger,
            mode=settings.mode.value,
            dry_run=dry_run,
            started=self.clock(),
            event_id=event_id,
            actor=actor,
        )
        tags = self.current_tags()
        # An event needs the memory of its neighbourhood only, not of the whole subscription.
        near = _near_keys(affected) if affected is not None else None
        expected = _load_attachments(state, report, near=near)
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
        judged = _judged_subnets(expected, parsed, affected)
        looked_at: Mapping[str, str] = expected
        watch: AuthWatch = getattr(self, "_auth_watch")  # noqa: B009 - set in __post_init__
        try:
            if affected is not None:
                # An event reads what it names and what the verdict depends on, not the subscription.
                gathered = self.source.neighbourhood(affected, extra_subnet_ids=tuple(sorted(judged)))
                inventory = gathered.inventory
                if near is not None and gathered.vnet_ids - near:
                    more = _load_attachments(state, report, near=gathered.vnet_ids - near)
                    expected.update({s: n for s, n in more.items() if s.lower() not in accepted})
                # Only remembered subnets whose VNet was looked at can be found gone; the rest of the
                # memory plays no part in this run (one pass, so an event's cost stays flat).
                looked_at = {s: n for s, n in expected.items() if _vnet_key(s) in gathered.vnet_ids}
                expected = {**looked_at, **{s: expected[s] for s in judged}}
            elif expected:
                inventory = self.source.inventory(subscription, extra_subnet_ids=tuple(expected))
            else:
                inventory = self.source.inventory(subscription)
        except AuthenticationFailure as exc:  # transient for this run; alerted once when it persists
            watch.failed(exc, parsed.subscription_id)
            raise
        watch.recovered()
        targets = _targets(inventory, parsed, baseline, affected)
        target_keys = {n.key for n in targets}
        assessment = assess(
            inventory,
            baseline,
            tags=tags,
            only=target_keys,
            expected_attachments=expected,
            subnets=judged,
            repair_endpoints=settings.service_endpoint_repair and self.subnet_writer is not None,
        )
        report.findings = [f for f in assessment.findings if _finding_in(f, target_keys, parsed, affected)]
        report.not_judged = list(assessment.not_judged)
        if not dry_run:
            self._check_guarding(report, inventory, parsed, affected)
        if self.paths is not None and affected is None and parsed.kind == "subscription":
            report.findings.extend(self._path_findings(parsed.subscription_id, inventory, report))
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
            if time.monotonic() > deadline:
                outcome.error = f"deferred: this run's time budget ({self.time_budget:g} s) is spent; the next delivery or sweep writes it"
                outcome.transient = True
                continue
            if writes_nsg:
                try:
                    self._apply(outcome, nsg, inventory, tags, expected, deadline)
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
                    _record_audit(state, report, nsg, written, self.clock)
            for repair in nsg_repairs:
                done = self._repair_endpoints(outcome, nsg, repair)
                if done is not None:
                    restored.append(replace(done, actor=actor))
                    _record_subnet_audit(state, report, nsg, outcome.subnet_writes[-1], self.clock)

        _save_attachments(state, report, inventory, baseline, expected, looked_at)
        report.finished = self.clock()
        if self.notifier is not None:
            try:
                report.alerts = list(
                    self.notifier.notify(
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

    def _path_findings(self, subscription_id: str, inventory: Inventory, report: ReconcileReport) -> list[Finding]:
        """The path beyond the NSGs, judged; alerted, never written. A failure to read it stops nothing else."""
        assert self.paths is not None
        try:
            paths = self.paths.paths(subscription_id)
        except Exception as exc:
            log.exception("reading route tables and firewalls failed")
            report.errors.append(f"paths: not judged: {type(exc).__name__}: {exc}")
            return []
        if paths.empty:
            return []
        network = Network(inventory, self.baseline.lockdown_tag)
        return list(judge_paths(network, paths, self.baseline).findings)

    def screen(self, event: ResourceEvent) -> EventOutcome | None:
        """Why ``event`` needs no handling (irrelevant, an own write, a duplicate), or None; no ARM call.

        A new event's id is recorded here, so its redelivery is taken for a duplicate.
        """
        if not is_relevant(event):
            return EventOutcome(event.id, "ignored", "not a network security change")
        own = OwnIdentity(principal_id=self.settings.remediator_principal_id, client_id=self.settings.client_id)
        if is_own_write(event, own):
            return EventOutcome(event.id, "ignored", "own write")
        if self.state is not None and self.state.seen_event(event.id):
            return EventOutcome(event.id, "ignored", "duplicate delivery")
        return None

    def handle_event(self, event: ResourceEvent) -> EventOutcome:
        """Reconcile what one Event Grid event touched; never trust its body.

        Raises TransientError when an affected NSG could not be reconciled for a
        transient reason, so the trigger lets Event Grid redeliver.
        """
        ignored = self.screen(event)
        if ignored is not None:
            return ignored
        try:
            report = self.reconcile(
                f"/subscriptions/{self.settings.subscription_id}",
                trigger="event",
                event_id=event.id,
                actor=caller(event).describe(),
                affected=affected_ids(event),
            )
            if report.transient_failure:
                failed = "; ".join(
                    f"{o.nsg_id} ({o.error})" if o.error else o.nsg_id for o in report.nsgs if o.transient
                )
                raise TransientError(f"event {event.id}: transient failure reconciling {failed}")
        except TransientError:
            _forget(self.state, event.id)  # let Event Grid's redelivery through the duplicate check
            raise
        return EventOutcome(event.id, "handled", report=report)

    def _check_guarding(
        self, report: ReconcileReport, inventory: Inventory, scope: Scope, affected: Collection[str] | None
    ) -> None:
        """Compare the NSGs remembered as managed with what this run saw; losing the tag or a role
        is an incident in the report (alerted once); the memory follows what is managed now."""
        if self.state is None:
            return
        seen = {n.key for n in inventory.nsgs}
        try:
            # An event reads the memory of only the NSGs it re-read: not the subscription's thousands.
            remembered = self.state.managed_nsgs(None if affected is None else [n.id for n in inventory.nsgs])
        except Exception as exc:
            log.exception("loading the remembered managed NSGs failed")
            report.errors.append(f"managed NSGs: not loaded, lost tags not judged: {type(exc).__name__}: {exc}")
            return
        changes = guarding_changes(
            remembered,
            inventory,
            self.baseline,
            # An event judges the NSGs it re-read; a sweep (or HTTP) its whole scope.
            in_scope=lambda nsg_id: scope.contains(nsg_id) and (affected is None or nsg_id.lower() in seen),
            complete=affected is None,
            actor=report.actor,
        )
        report.findings.extend(changes.incidents)
        if not changes.remember and not changes.forget:
            return
        try:
            self.state.save_managed_nsgs(changes.remember, forget=changes.forget)
        except Exception as exc:
            log.exception("saving the managed NSGs failed")
            report.errors.append(f"managed NSGs: not saved: {type(exc).__name__}: {exc}")

    def _apply(
        self,
        outcome: NsgOutcome,
        nsg: NetworkSecurityGroup,
        inventory: Inventory,
        tags: TagModel | None,
        expected: Mapping[str, str] | None = None,
        deadline: float | None = None,
    ) -> None:
        """Write the plan; on conflict (or once, a transient failure) re-read, re-plan and retry, bounded
        (by attempts, and by the run's ``deadline``: no new attempt starts after it)."""
        current, plan = nsg, outcome.plan
        assert plan is not None
        baseline, max_attempts = self.baseline, self.max_attempts
        transient_left = TRANSIENT_RETRIES
        for attempt in range(1, max_attempts + 1):
            outcome.attempts = attempt
            try:
                result = self.writer.apply(current, plan)
            except (ConflictError, TransientError) as exc:
                if attempt == max_attempts or (deadline is not None and time.monotonic() > deadline):
                    raise
                if not isinstance(exc, ConflictError):
                    if transient_left == 0:
                        raise
                    transient_left -= 1
                log.warning("write to %s: %s; re-reading (attempt %d of %d)", nsg.id, exc, attempt, max_attempts)
                current = self.source.get_nsg(nsg.id)
                if not _managed(current, baseline):
                    # Un-tagged (or its role made unreadable) in the edit that beat us: nothing to write.
                    outcome.plan, outcome.remaining = None, []
                    outcome.error = (
                        f"not written: {current.name} is no longer managed (its {baseline.lockdown_tag} tag changed "
                        "while the remediator was writing)"
                    )
                    return
                check = assess(
                    _with_nsg(inventory, current),
                    baseline,
                    tags=tags,
                    only=(current.id,),
                    expected_attachments=expected,
                )
                # Only a plan computed from this read (this etag) may be written; none means nothing to do.
                fresh = _plan_for(check, current)
                outcome.plan = fresh
                if fresh is None or fresh.is_empty:  # someone else restored it meanwhile: converged without us
                    outcome.remaining = _findings_for(check, current)
                    return
                plan = fresh
                continue
            outcome.written = replace(result, attempts=attempt)
            if result.written and result.after is None and result.error:
                # Accepted, its operation still running when the adapter stopped waiting: the next
                # delivery (the event is raised for redelivery) or sweep verifies it.
                outcome.error, outcome.transient = result.error, True
                return
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
        self, outcome: NsgOutcome, nsg: NetworkSecurityGroup, repair: EndpointRepair
    ) -> Restored | None:
        """Add one subnet's missing service endpoints; on conflict call again (the writer re-reads), bounded.

        Returns what was restored, or None (nothing written, or the write failed: then
        ``outcome.error`` says why and the findings stay in ``outcome.remaining``).
        """
        subnet_writer, max_attempts = self.subnet_writer, self.max_attempts
        assert subnet_writer is not None  # repairs are planned only with a writer
        fixes = {f.fingerprint for f in repair.fixes}
        # The NSG write's re-assessment (if any) judged without repair; the findings are the repair's.
        outcome.remaining = [f for f in outcome.remaining if f.fingerprint not in fixes] + list(repair.fixes)
        where = f"subnet {repair.subnet_id}"
        result: SubnetWriteResult | None = None
        for attempt in range(1, max_attempts + 1):
            try:
                result = replace(
                    subnet_writer.add_service_endpoints(repair.subnet_id, repair.services, nsg_id=nsg.id),
                    attempts=attempt,
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
        name = ResourceId.parse(repair.subnet_id).name
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
    return incident(
        FindingKind.RULE_LOST,
        rule,
        nsg.id,
        f"rule {rule!r} was in {nsg.name} before the remediator's write and is gone after it "
        f"(ARM correlation id {correlation_id or 'unknown'})",
        "the remediator never recreates rules it does not own; restore it from the audit trail's rules before",
        rule=rule,
    )


def _targets(
    inventory: Inventory, scope: Scope, baseline: Baseline, affected: Collection[str] | None
) -> list[NetworkSecurityGroup]:
    tag = baseline.lockdown_tag
    # A tag naming no role is still a target: assess reports it, and judges the rest.
    managed = [
        n for n in inventory.nsgs if scope.contains(n.id) and (roles_of(n.tags, tag) or role_tag_problem(n.tags, tag))
    ]
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
    attached |= _flow_nsgs_of_nics(inventory, baseline, {n.key for n in inventory.nics if touched(n.id)})
    return [
        n for n in managed if n.key in keys or n.key in attached or any(touched(i) for i in n.subnet_ids + n.nic_ids)
    ]


def _flow_nsgs_of_nics(inventory: Inventory, baseline: Baseline, nic_keys: set[str]) -> set[str]:
    """The NSGs whose verdicts a NIC's change can move: its subnet's, and every NSG on a required
    flow to or from it (CycleCloud's NIC: its tag, ASG memberships and IPs decide the flows)."""
    if not nic_keys:
        return set()
    subnet_nsgs = {s.key: s.nsg_id.lower() for s in inventory.subnets if s.nsg_id}
    found = {
        subnet_nsgs[s.lower()]
        for n in inventory.nics
        if n.key in nic_keys
        for s in n.subnet_ids
        if s.lower() in subnet_nsgs
    }
    for leg in required_flows(Network(inventory, baseline.lockdown_tag), baseline).legs:
        ends = (leg.source, leg.destination)
        if any(nic.key in nic_keys for end in ends for nic in end.nics):
            found |= {n.key for n in (leg.subnet_nsg, leg.nic_nsg) if n is not None}
            found |= {end.subnet.nsg_id.lower() for end in ends if end.subnet is not None and end.subnet.nsg_id}
    return found


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
    # Asked of every remembered subnet on every event: the affected keys are prepared once.
    keys = {a.lower().rstrip("/") for a in affected}
    prefixes = tuple(k + "/" for k in keys)

    def touched(resource_id: str) -> bool:
        rid = resource_id.lower()
        return rid in keys or rid.startswith(prefixes)

    return {subnet for subnet, nsg in expected.items() if touched(subnet) or touched(nsg)}


def _vnet_key(subnet_id: str) -> str:
    """The lower-cased VNet id of a subnet id ("" when it is none). Plain string work: an event asks it
    of every remembered subnet, and a full ResourceId parse of each grew with the subscription."""
    lowered = subnet_id.lower().rstrip("/")
    cut = lowered.rfind("/subnets/")
    return lowered[:cut] if cut > 0 else ""


def _accepted_subnets(subnet_ids: Collection[str], subscription_id: str) -> set[str]:
    """Validated, lower-cased subnet ids of ``acceptDetached``; names the bad one."""
    accepted: set[str] = set()
    for i, subnet_id in enumerate(subnet_ids):
        where = f"acceptDetached[{i}]"
        subnet = ResourceId.try_parse(subnet_id)
        if subnet is None or not subnet.resource_group or not subnet.is_a(SUBNET):
            raise InputError(
                "must be a subnet id: /subscriptions/<id>/resourceGroups/<rg>/providers/"
                "Microsoft.Network/virtualNetworks/<vnet>/subnets/<subnet>",
                where=where,
            )
        if subnet.subscription.lower() != subscription_id.lower():
            raise ScopeError(f"{where}: subnet is outside the configured subscription {subscription_id}")
        accepted.add(subnet.key)
    return accepted


def _near_keys(affected: Collection[str]) -> set[str]:
    """The VNets and NSGs (lower-cased ids) whose remembered attachments an event on ``affected`` concerns."""
    keys = set()
    for resource_id in affected:
        vnet = _vnet_key(resource_id)
        keys.add(vnet or resource_id.lower().rstrip("/"))
    return keys


def _load_attachments(
    state: StateStore | None, report: ReconcileReport, *, near: Collection[str] | None = None
) -> dict[str, str]:
    """The remembered subnet -> managed NSG pairs (those ``near`` some VNets and NSGs, if given);
    none (reported) when the store fails."""
    if state is None:
        return {}
    try:
        return dict(state.attachments(near=near))
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
    looked_at: Mapping[str, str],
) -> None:
    """Remember what is attached now; forget remembered subnets that no longer exist.

    ``looked_at`` are the remembered pairs whose VNet this run read (an event reads only its
    neighbourhood): only those can be found gone or released.

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
    for subnet_id in looked_at:
        subnet = ResourceId.try_parse(subnet_id)
        vnet = vnets.get(subnet.parent.key) if subnet is not None and subnet.parent is not None else None
        # Discovery read this VNet (extra_subnet_ids): absent means deleted, as is a subnet absent from it.
        if vnet is None or all(s.key != subnet_id.lower() for s in vnet.subnets):
            forget.append(subnet_id)
    forget += released_attachments(inventory, baseline, looked_at)
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


def _managed(nsg: NetworkSecurityGroup, baseline: Baseline) -> bool:
    """Whether ``nsg`` carries the lockdown tag with a role it can be judged by."""
    try:
        return bool(roles_of(nsg.tags, baseline.lockdown_tag))
    except Exception:  # a tag value that names no role: not something to write to
        return False


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


__all__ = ["Reconciler"]
