"""``python -m remediation audit``: show the audit trail of remediations from the state store.

The store comes from the app settings: ``STATE_CONNECTION_STRING`` (Azurite,
local development) or ``STATE_TABLE_ENDPOINT`` with your Azure login
(``az login``) or the managed identity. Newest first; ``--nsg`` narrows it to
one NSG. Exit 0 on success, 2 on bad settings or usage, 3 when the store
cannot be read.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TextIO

from remediation.errors import RemediationError, SettingsError
from remediation.model import resource_id_part

if TYPE_CHECKING:
    from remediation.ports import AuditRecord, StateStore
    from remediation.settings import Settings

EXIT_OK, EXIT_BAD_INPUT, EXIT_STORE = 0, 2, 3


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--nsg", metavar="ID", help="only this NSG (its resource id)")
    parser.add_argument("--limit", type=_positive, default=50, metavar="N", help="at most N records (default: 50)")
    parser.add_argument("--format", choices=("table", "json"), default="table", help="output format (default: table)")


def run(args: argparse.Namespace) -> int:
    from remediation.settings import Settings  # noqa: PLC0415 - keep `--help` light

    try:
        settings = Settings.from_env()
        store = _store(settings)
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except RemediationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_STORE
    return show(store, nsg=args.nsg, limit=args.limit, output_format=args.format, out=sys.stdout)


def show(store: StateStore, *, nsg: str | None, limit: int, output_format: str, out: TextIO) -> int:
    """Print the trail from ``store``; the testable part of :func:`run`."""
    try:
        records = store.audit_trail(nsg_id=nsg, limit=limit)
    except RemediationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_STORE
    try:
        if output_format == "json":
            out.write(json.dumps([record_json(r) for r in records], indent=2) + "\n")
        else:
            out.write(render_table(records))
        out.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return EXIT_OK


def record_json(record: AuditRecord) -> dict[str, Any]:
    added, removed, changed = rule_changes(record)
    return {
        "at": record.at.isoformat(),
        "nsg": record.nsg_id,
        "trigger": record.trigger,
        "eventId": record.event_id,
        "actor": record.actor,
        "correlationId": record.correlation_id,
        "added": added,
        "removed": removed,
        "changed": changed,
        "rulesBefore": list(record.rules_before),
        "rulesAfter": list(record.rules_after),
        "otherChanges": list(record.changes),
    }


def rule_changes(record: AuditRecord) -> tuple[list[str], list[str], list[str]]:
    """Rule names added, removed and changed between before and after (names compared as ARM does)."""
    before = {str(r.get("name", "")).lower(): r for r in record.rules_before}
    after = {str(r.get("name", "")).lower(): r for r in record.rules_after}
    added = sorted(str(after[k].get("name")) for k in after.keys() - before.keys())
    removed = sorted(str(before[k].get("name")) for k in before.keys() - after.keys())
    changed = sorted(str(after[k].get("name")) for k in after.keys() & before.keys() if after[k] != before[k])
    return added, removed, changed


def render_table(records: Sequence[AuditRecord]) -> str:
    if not records:
        return "No remediations recorded.\n"
    header = ("TIME (UTC)", "NSG", "TRIGGER", "ACTOR", "EVENT", "CHANGES")
    rows = [header]
    for r in records:
        added, removed, changed = rule_changes(r)
        parts = [f"+{n}" for n in added] + [f"~{n}" for n in changed] + [f"-{n}" for n in removed] + list(r.changes)
        rows.append(
            (
                r.at.strftime("%Y-%m-%d %H:%M:%S"),
                resource_id_part(r.nsg_id, "networkSecurityGroups") or r.nsg_id,
                r.trigger,
                r.actor or "-",
                r.event_id or "-",
                " ".join(parts) or "(no rule changes)",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    lines = ["  ".join([*(cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=True)), row[-1]]) for row in rows]
    return "\n".join(line.rstrip() for line in lines) + "\n"


def _store(settings: Settings) -> StateStore:
    from remediation.state import TableStateStore  # noqa: PLC0415 - the Azure SDK only when run

    if settings.state_connection_string:
        return TableStateStore.from_settings(settings, create_tables=False)
    if not settings.state_table_endpoint:
        raise SettingsError("set STATE_TABLE_ENDPOINT (or STATE_CONNECTION_STRING for Azurite)", where="state")
    from azure.identity import DefaultAzureCredential  # noqa: PLC0415

    credential = DefaultAzureCredential(managed_identity_client_id=settings.client_id or None)
    return TableStateStore.from_settings(settings, credential=credential, create_tables=False)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value
