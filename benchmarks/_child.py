"""An ARM emulator in a child process for the benchmarks: ARM is remote, so its work must not
share the product's interpreter. The child prints one JSON line (its ``env`` among the keys) and
serves until its stdin closes; meanwhile this process's environment points the product at it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

# Variables that would steer azure-identity away from the emulator's managed identity.
_FOREIGN_CREDENTIALS = ("AZURE_CLIENT_SECRET", "AZURE_TENANT_ID", "AZURE_FEDERATED_TOKEN_FILE", "MSI_ENDPOINT")


@contextmanager
def emulator_child(script: str, *args: str, settings: dict[str, str]) -> Iterator[dict[str, Any]]:
    """Run ``script`` (python -c) with ``args``; yield its first line, parsed, with ``settings`` applied."""
    child = subprocess.Popen(
        [sys.executable, "-c", script, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    assert child.stdout is not None
    assert child.stdin is not None
    saved = dict(os.environ)
    try:
        line = child.stdout.readline()
        if not line:
            raise RuntimeError("the emulator child process did not start")
        info: dict[str, Any] = json.loads(line)
        for name in _FOREIGN_CREDENTIALS:
            os.environ.pop(name, None)
        os.environ.update(info["env"])
        os.environ.update(settings)
        yield info
    finally:
        os.environ.clear()
        os.environ.update(saved)
        child.stdin.close()
        child.wait(timeout=30)
