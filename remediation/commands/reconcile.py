"""``python -m remediation reconcile``: detect and restore drift on a subscription.

Talks to whatever ``ARM_ENDPOINT`` names (Azure, or the local emulator with
``REQUESTS_CA_BUNDLE`` pointing at its CA) with the same adapters and the
same service the Function app uses. ``REMEDIATION_MODE=audit`` (the default)
or ``--dry-run`` never write.

Exit codes: 0 nothing left to fix, 1 findings remain or an NSG failed,
2 bad input or settings, 3 ARM could not be reached or refused discovery.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TextIO

from remediation.errors import InputError, RemediationError, ScopeError, SettingsError
from remediation.reports import ReconcileReport
from remediation.settings import Settings
from remediation.wiring import Runtime, build_runtime


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--subscription", metavar="ID", help="subscription to reconcile (default AZURE_SUBSCRIPTION_ID)"
    )
    parser.add_argument("--scope", metavar="ID", help="a resource group or NSG id inside the subscription")
    parser.add_argument("--dry-run", action="store_true", help="plan only; never write")
    parser.add_argument("--format", choices=("table", "json"), default="table", help="output format (default table)")


def run(args: argparse.Namespace) -> int:
    try:
        settings = Settings.from_env()
        if args.subscription:
            settings = settings.model_copy(update={"subscription_id": args.subscription.strip().lower()})
        if not settings.subscription_id:
            raise SettingsError("set AZURE_SUBSCRIPTION_ID or pass --subscription", where="AZURE_SUBSCRIPTION_ID")
        rt = build_runtime(settings)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        return execute(rt, scope=args.scope, dry_run=args.dry_run, output=args.format)
    finally:
        rt.close()


def execute(rt: Runtime, *, scope: str | None, dry_run: bool, output: str, out: TextIO | None = None) -> int:
    """Run one reconcile with a built runtime and print the report."""
    out = out or sys.stdout
    try:
        report = rt.reconcile(scope, trigger="cli", actor="cli", dry_run=dry_run)
    except (InputError, ScopeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except RemediationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    if output == "json":
        json.dump(report.to_json(), out, indent=2)
        out.write("\n")
    else:
        out.write(render_table(report))
    if report.remaining or not report.ok:
        return 1
    return 0


def render_table(report: ReconcileReport) -> str:
    """The report for people: one line per NSG, then what is still wrong."""
    lines = [
        f"Reconcile {report.scope} (mode {report.mode}{', dry run' if report.dry_run else ''}): "
        f"{len(report.nsgs)} managed NSG(s), {len(report.findings)} finding(s), {len(report.written)} written"
    ]
    for outcome in report.nsgs:
        name = outcome.nsg_id.rsplit("/", 1)[-1]
        if outcome.error:
            state = f"FAILED: {outcome.error}"
        elif outcome.written is not None and outcome.written.written:
            added = ", ".join(r.name for r in outcome.plan.added) if outcome.plan else ""
            state = f"restored {added} (attempts {outcome.attempts}, correlation {outcome.written.correlation_id})"
        elif outcome.skipped:
            would = ", ".join(r.name for r in outcome.plan.added) if outcome.plan else ""
            state = f"{outcome.skipped}; would restore {would}"
        elif outcome.findings:
            state = "nothing the remediator may fix"
        else:
            state = "compliant"
        lines.append(f"  {name:<32} {state}")
    remaining = report.remaining
    if remaining:
        lines.append("Still wrong:")
        for finding in remaining:
            rule = f" [rule {finding.rule}]" if finding.rule else ""
            fix = "" if finding.remediable else f" - needs a human: {finding.reason}"
            lines.append(f"  {finding.severity.value:<8} {finding.kind.value:<24} {finding.message}{rule}{fix}")
    for error in report.errors:
        lines.append(f"error: {error}")
    return "\n".join(lines) + "\n"
