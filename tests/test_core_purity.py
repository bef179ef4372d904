"""The pure core does no I/O and imports no azure.*: checked on the source and at import."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

CORE = [
    "model",
    "parse",
    "tags",
    "evaluate",
    "network",
    "baseline",
    "review",
    "findings",
    "plan",
    "assess",
    "errors",
    "scope",
]
FORBIDDEN_IMPORTS = ("azure", "os", "socket", "subprocess", "requests", "urllib", "http", "pathlib", "shutil")
ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("module", CORE)
def test_core_module_imports_nothing_with_io(module: str) -> None:
    tree = ast.parse((ROOT / "remediation" / f"{module}.py").read_text())
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.add(node.module.split(".")[0])
    assert not imported & set(FORBIDDEN_IMPORTS), f"remediation/{module}.py imports {imported & set(FORBIDDEN_IMPORTS)}"
    calls = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    assert "open" not in calls, f"remediation/{module}.py opens files"


def test_importing_the_core_loads_no_azure_package() -> None:
    code = (
        "import sys\n"
        f"import {', '.join('remediation.' + m for m in CORE)}\n"
        "print(','.join(sorted(m for m in sys.modules if m == 'azure' or m.startswith('azure.'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == ""


def test_the_service_knows_protocols_not_adapters() -> None:
    """service.py may use the core, the ports and event parsing; never an SDK client or a concrete adapter."""
    tree = ast.parse((ROOT / "remediation" / "service.py").read_text())
    imported = {
        node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module and node.level == 0
    } | {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    adapters = {"remediation.azure.arm", "remediation.azure.evidence", "remediation.state", "remediation.wiring"}
    assert not {m for m in imported if m.startswith("azure.") or m == "azure"}, imported
    assert not imported & adapters, imported & adapters
    assert not {m for m in imported if m.startswith("remediation.alerts")}, imported
