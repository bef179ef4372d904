"""``python -m remediation check``: audit exported NSG / VNet JSON offline.

Reads the files (``-`` is stdin), merges them into one inventory, assesses
it against the baseline and prints the findings, as a table for people or
as one JSON object for pipelines. Exit 0 when there are no findings, 1 when
there are, 2 on bad input or usage (``error: <file>: <problem>`` on stderr).
What could not be judged (CycleCloud not located, no node subnet known, a
VNet missing) is listed under the table ("Not judged:") and in the JSON's
``notJudged``: exit 0 means "nothing wrong in what could be judged".

Nothing here touches Azure: ``check`` is the pure core with file reading
around it, so it never imports the SDK.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, TextIO

from remediation import json_input
from remediation.assess import Assessment, assess
from remediation.baseline import Baseline, Role, roles_from_tag
from remediation.errors import InputError
from remediation.network import Network
from remediation.parse import merge_inventories, parse_document
from remediation.parse_paths import only_path_resources, parse_path_document
from remediation.paths import PathInventory, PathReport, judge_paths, merge_paths
from remediation.tags import TagModel, exact_from_documents

if TYPE_CHECKING:
    from remediation.findings import Finding
    from remediation.model import Inventory, SecurityRule

STDIN = "-"
EXIT_CLEAN, EXIT_FINDINGS, EXIT_BAD_INPUT = 0, 1, 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "files",
        nargs="+",
        metavar="FILE",
        help="NSG, VNet, subnet or NIC JSON, and on the path beyond them route tables, Azure Firewalls, "
        "firewall policies, rule collection groups and IP groups (ARM, az CLI or SDK form; "
        "a list or {'value': [...]}); '-' reads stdin",
    )
    parser.add_argument(
        "--role",
        metavar="ROLES",
        help="check every NSG given as this role (cyclecloud, cluster or cyclecloud,cluster) "
        "instead of reading the role from its lockdown tag",
    )
    parser.add_argument("--baseline", metavar="FILE", help="baseline YAML (default: the shipped cyclecloud.yaml)")
    parser.add_argument(
        "--service-tags",
        metavar="FILE",
        action="append",
        default=[],
        help="service tag JSON (the weekly download, the Service Tags API answer or one tag); "
        "evaluates tags by their published prefixes instead of by containment; repeatable",
    )
    parser.add_argument("--format", choices=("table", "json"), default="table", help="output format (default: table)")


def run(args: argparse.Namespace) -> int:
    try:
        roles = _roles(args.role)
        baseline = _baseline(args.baseline)
        stdin = _StdinOnce()
        inventory, paths = _inventory(args.files, stdin)
        tags = _tag_model(args.service_tags, stdin)
        _require_managed(inventory, baseline, roles, where=", ".join(args.files))
        assessment = assess(inventory, baseline, tags=tags, roles=roles)
        report = _path_report(inventory, paths, baseline, roles)
        assessment = replace(assessment, findings=assessment.findings + report.findings)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        if args.format == "json":
            body = assessment.to_json()
            if report.verdicts:
                body["paths"] = report.to_json()
            sys.stdout.write(json.dumps(body, indent=2) + "\n")
        else:
            _print_table(assessment, inventory, baseline, sys.stdout)
            _print_paths(report, sys.stdout)
        sys.stdout.flush()
    except BrokenPipeError:
        # `check ... | head`: the reader left; the exit code still tells the verdict.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return EXIT_FINDINGS if assessment.findings else EXIT_CLEAN


# --------------------------------------------------------------------------- inputs


def _roles(text: str | None) -> frozenset[Role] | None:
    if text is None:
        return None
    return roles_from_tag(text, where="--role")


def _baseline(path: str | None) -> Baseline:
    # pydantic and PyYAML cost more than the rest of the command: load them only when it runs.
    from remediation.baseline_file import load_baseline  # noqa: PLC0415

    return load_baseline(path)


class _StdinOnce:
    """Stdin may be named once; a second ``-`` would silently read nothing."""

    def __init__(self) -> None:
        self.used = False

    def read(self) -> str:
        if self.used:
            raise InputError("stdin ('-') can be read only once", where=STDIN)
        self.used = True
        return sys.stdin.read()


def _load_json(path: str, stdin: _StdinOnce) -> tuple[str, object]:
    """(name for messages, decoded JSON) of one file."""
    name = "<stdin>" if path == STDIN else path
    try:
        if path == STDIN:
            text = stdin.read()
        else:
            with open(path, encoding="utf-8-sig") as handle:  # az on Windows writes a BOM
                text = handle.read()
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", where=name) from None
    except UnicodeDecodeError:
        raise InputError("not a UTF-8 text file", where=name) from None
    if not text.strip():
        raise InputError("is empty", where=name)
    return name, json_input.loads(text, where=name)  # a key given twice or a 5,000-digit number: refused


def _inventory(paths: Sequence[str], stdin: _StdinOnce) -> tuple[Inventory, PathInventory]:
    inventories = []
    path_inventories = []
    for path in paths:
        name, document = _load_json(path, stdin)
        path_inventories.append(parse_path_document(document, where=name))
        if only_path_resources(document):
            continue  # route tables, firewalls, policies: nothing for the NSG reader
        # A lockdown tag naming no role is not bad input: it is that NSG's finding (unjudgeable).
        inventories.append(parse_document(document, where=name))
    inventory = merge_inventories(*inventories)
    if not inventory.nsgs:
        raise InputError("no network security group in the input: nothing to check", where=", ".join(paths))
    return inventory, merge_paths(*path_inventories)


def _path_report(
    inventory: Inventory, paths: PathInventory, baseline: Baseline, roles: frozenset[Role] | None
) -> PathReport:
    """The path beyond the NSGs, judged when the input holds any of it (route tables, firewalls)."""
    if paths.empty:
        return PathReport()
    return judge_paths(Network(inventory, baseline.lockdown_tag, roles), paths, baseline)


def _tag_model(paths: Sequence[str], stdin: _StdinOnce) -> TagModel | None:
    if not paths:
        return None
    loaded = [_load_json(path, stdin) for path in paths]
    if len(loaded) == 1:
        return exact_from_documents([loaded[0][1]], where=loaded[0][0])
    try:
        return exact_from_documents([doc for _, doc in loaded], where="--service-tags")
    except InputError:
        # Name the file at fault: check them one by one.
        for name, doc in loaded:
            exact_from_documents([doc], where=name)
        raise


def _require_managed(inventory: Inventory, baseline: Baseline, roles: frozenset[Role] | None, *, where: str) -> None:
    """A check that checks nothing must not pass silently."""
    network = Network(inventory, baseline.lockdown_tag, None)
    if roles is None and not network.managed() and not network.misconfigured():
        count = len(inventory.nsgs)
        raise InputError(
            f"none of the {count} NSG(s) carries the tag {baseline.lockdown_tag!r}: "
            "tag them (cyclecloud, cluster or cyclecloud,cluster) or pass --role",
            where=where,
        )


# --------------------------------------------------------------------------- the table

_COLOURS = {"critical": "\033[1;31m", "high": "\033[31m", "medium": "\033[33m", "low": "\033[36m", "info": "\033[2m"}
_RESET = "\033[0m"
_BOLD = "\033[1m"


def _use_colour(stream: TextIO) -> bool:
    return stream.isatty() and not os.environ.get("NO_COLOR")


def _short(resource_id: str) -> str:
    return resource_id.rstrip("/").rsplit("/", 1)[-1]


def _print_table(assessment: Assessment, inventory: Inventory, baseline: Baseline, out: TextIO) -> None:
    colour = _use_colour(out)

    def paint(text: str, code: str) -> str:
        return f"{code}{text}{_RESET}" if colour else text

    findings = assessment.findings
    if findings:
        header = ("SEVERITY", "KIND", "NSG", "REQUIREMENT", "RULE", "FIX", "MESSAGE")
        rows = [_row(f) for f in findings]
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]

        def line(cells: Sequence[str], severity: str | None = None) -> str:
            padded = [cell.ljust(width) for cell, width in zip(cells, widths, strict=False)]
            if severity is not None:
                padded[0] = paint(padded[0], _COLOURS.get(severity, ""))
            return "  ".join([*padded, cells[-1]]).rstrip()

        out.write(paint(line(header), _BOLD) + "\n")
        for finding, row in zip(findings, rows, strict=True):
            out.write(line(row, finding.severity.value) + "\n")
        out.write("\n")
    out.write(_shown(_summary(assessment, inventory, baseline)) + "\n")
    _print_not_judged(assessment, out, paint)
    _print_plans(assessment, out, paint)


def _row(finding: Finding) -> tuple[str, ...]:
    cells = (
        finding.severity.value,
        finding.kind.value,
        _short(finding.nsg),
        finding.requirement,
        (finding.rule or "-") + (" (default)" if finding.default_rule else ""),
        "yes" if finding.remediable else "no",
        finding.message,
    )
    return tuple(_shown(c) for c in cells)


def _shown(text: str) -> str:
    """``text`` for a terminal: every non-printable character escaped (``\\x1b``, ``\\u202e``).

    Names come from the files checked: an escape sequence in one could clear the
    screen, set the terminal's title or hide a line of the report.
    """
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def _summary(assessment: Assessment, inventory: Inventory, baseline: Baseline) -> str:
    nsgs = len(assessment.plans)
    checked = f"{nsgs} managed NSG{'s' if nsgs != 1 else ''} checked against {baseline.name}"
    findings = assessment.findings
    if not findings:
        if assessment.not_judged:
            return f"No findings in what could be judged: {checked}; some required flows were not judged (below)."
        return f"No findings: {checked}."
    by_severity = Counter(f.severity for f in findings)
    counts = ", ".join(
        f"{by_severity[s]} {s.value}" for s in sorted(by_severity, key=lambda s: -s.rank) if by_severity[s]
    )
    fixable = sum(1 for f in findings if f.remediable)
    affected = len({f.nsg.lower() for f in findings})
    plural = "s" if len(findings) != 1 else ""
    return (
        f"{len(findings)} finding{plural} ({counts}) on {affected} resource{'s' if affected != 1 else ''}; "
        f"{fixable} remediable by the plan below; {checked}."
    )


def _print_not_judged(assessment: Assessment, out: TextIO, paint: Callable[[str, str], str]) -> None:
    """What could not be judged, and why: exit 0 means "nothing wrong in what could be judged"."""
    if not assessment.not_judged:
        return
    out.write("\n" + paint("Not judged:", _BOLD) + "\n")
    for item in assessment.not_judged:
        out.write(f"  {_shown(f'{item.requirement}: {item.reason}')}\n")


def _print_plans(assessment: Assessment, out: TextIO, paint: Callable[[str, str], str]) -> None:
    planned = {plan.nsg_id.lower() for plan in assessment.plans}
    for plan in assessment.plans:
        # A finding decided in another planned NSG (a flow blocked at its other end) is said under
        # that NSG's plan; several findings with one reason (one deny, several sources) say it once.
        cannot = dict.fromkeys(
            f"{finding.kind.value} {finding.requirement}: {finding.reason or finding.message}"
            for finding in plan.unremediable
            if finding.nsg.lower() == plan.nsg_id.lower() or finding.nsg.lower() not in planned
        )
        if plan.is_empty and not cannot:
            continue
        out.write("\n" + paint(f"Plan for {_shown(plan.nsg_name)}:", _BOLD) + "\n")
        replaced = {r.name.lower() for r in plan.replaced}
        for rule in plan.added:
            verb = "restore" if rule.name.lower() in replaced else "add"
            out.write(f"  {verb} {_shown(_describe(rule))}\n")
        if plan.is_empty:
            out.write("  (no rule to add)\n")
        for line in cannot:
            out.write(f"  {_shown('cannot fix ' + line)}\n")


def _print_paths(report: PathReport, out: TextIO) -> None:
    """Where each required destination goes beyond the NSGs, one line each."""
    if not report.verdicts:
        return
    out.write("\nPaths beyond the NSGs:\n")
    for verdict in report.verdicts:
        out.write(f"  {verdict.outcome:<8}  {_short(verdict.subnet)}: {verdict.message}\n")


def _describe(rule: SecurityRule) -> str:
    sources = ",".join(a.to_arm() for a in rule.sources)
    destinations = ",".join(a.to_arm() for a in rule.destinations)
    ports = ",".join(p.to_arm() for p in rule.destination_ports)
    protocol = "any" if rule.protocol.value == "*" else rule.protocol.value.upper()
    return (
        f"{rule.name}: priority {rule.priority} {rule.direction.value} {rule.access.value} "
        f"{protocol} {sources} -> {destinations} port {ports}"
    )
