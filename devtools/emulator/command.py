"""``python -m remediation emulator``: run the local ARM emulator until interrupted.

The first line on stdout is one JSON object (``endpoint``, ``ca_bundle``, ``identity_endpoint``,
``identity_header``, ``subscription_id``) so a parent process can read where to connect.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from devtools.emulator import ArmError, Emulator, EmulatorConfig


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--seed", type=Path, help='JSON file of resources to load: {"resources": [...]} or a list')
    parser.add_argument("--page-size", type=int, default=None, help="list page size before a nextLink")
    parser.add_argument("--lro-polls", type=int, default=None, help="polls an operation answers InProgress")
    parser.add_argument(
        "--demo-network", action="store_true", help="load the demo's locked-down CycleCloud network (devtools/demo.py)"
    )
    parser.add_argument(
        "--local-settings",
        type=Path,
        metavar="FILE",
        help="write FILE (local.settings.json for `func start`): local.settings.example.json aimed at this emulator",
    )


EXAMPLE_SETTINGS = Path(__file__).resolve().parents[2] / "local.settings.example.json"


def local_settings(example: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    """``example`` (local.settings.json's shape) with the emulator's ``env`` in its Values: the
    ARM endpoint, the managed-identity endpoint, the CA bundle, the identity and the subscription."""
    values = dict(example.get("Values") or {})
    values.update(env)
    return {**example, "Values": values}


def _load_seed(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SystemExit(f"error: cannot read seed file {path}: {exc}") from None
    resources = data.get("resources") if isinstance(data, dict) else data
    if not isinstance(resources, list):
        raise SystemExit(f'error: seed file {path} must hold {{"resources": [...]}} or a JSON array')
    return resources


def run(args: argparse.Namespace) -> int:
    config = EmulatorConfig()
    if args.page_size is not None:
        config.page_size = args.page_size
    if args.lro_polls is not None:
        config.lro_polls = args.lro_polls
    seed = _load_seed(args.seed) if args.seed else []
    try:
        emulator = Emulator(port=args.port, config=config)
    except OSError as exc:
        print(f"error: cannot listen on 127.0.0.1:{args.port}: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    with emulator:
        if args.demo_network:
            from devtools.demo import cyclecloud_network  # noqa: PLC0415 - only with --demo-network
            from remediation.baseline_file import load_baseline  # noqa: PLC0415

            emulator.seed(cyclecloud_network(emulator.subscription_id, load_baseline()))
        if args.local_settings:
            example = json.loads(EXAMPLE_SETTINGS.read_text(encoding="utf-8"))
            text = json.dumps(local_settings(example, emulator.env()), indent=2) + "\n"
            args.local_settings.write_text(text, encoding="utf-8")
        if seed:
            try:
                emulator.seed(seed)
            except ArmError as exc:
                print(f"error: seed file {args.seed}: {exc}", file=sys.stderr)
                return 2
        print(json.dumps(emulator.info()), flush=True)
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
    return 0
