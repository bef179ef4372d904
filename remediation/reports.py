"""What one reconcile or event did: the reports the triggers answer with and the status page keeps.

Plain records filled in by :class:`remediation.service.Reconciler`; ``to_json`` is the HTTP
answer's and the CLI's shape, ``summary`` the compact form kept as the last sweep's status.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from remediation.findings import Finding
from remediation.plan import RemediationPlan
from remediation.ports import SubnetWriteResult, WriteResult
from remediation.required_flows import Unjudged


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
    #: Required flows (or parts) that could not be judged, and why: no finding means nothing
    #: wrong in what could be judged.
    not_judged: list[Unjudged] = field(default_factory=list)

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
            "notJudged": [u.to_json() for u in self.not_judged],
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
