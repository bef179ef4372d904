"""``python -m remediation check | reconcile | emulator | demo``.

Each command lives in ``remediation/commands/<name>.py`` with
``add_arguments(parser)`` and ``run(args) -> int``; they are imported only
when chosen, so ``check`` never pays for the Azure SDK. Exit codes: 0 clean,
1 findings, 2 bad input or usage.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

COMMANDS: dict[str, str] = {
    "check": "audit exported NSG / VNet JSON files offline against the baseline",
    "reconcile": "detect and restore drift on a subscription (or the emulator)",
    "emulator": "run the local ARM emulator (development and tests only)",
    "demo": "run the whole product against the emulator on a broken CycleCloud network",
    "audit": "show the audit trail of remediations from the state store",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m remediation", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        command_parser = sub.add_parser(name, help=help_text, description=help_text)
        try:
            module = importlib.import_module(f"remediation.commands.{name}")
        except ModuleNotFoundError as exc:
            # A command missing, or its dev tools (devtools/ is not deployed): say so when chosen.
            if exc.name != f"remediation.commands.{name}" and (exc.name or "").split(".")[0] != "devtools":
                raise
            command_parser.set_defaults(_missing=name)
            continue
        module.add_arguments(command_parser)
        command_parser.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "_missing", None):
        print(f"error: command {args._missing!r} is not available in this installation", file=sys.stderr)
        return 2
    result: int = args._run(args)
    return result
