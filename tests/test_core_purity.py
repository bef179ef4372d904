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
    "json_input",
    "tags",
    "evaluate",
    "network",
    "required_flows",
    "guarding",
    "baseline",
    "review",
    "findings",
    "plan",
    "assess",
    "errors",
    "scope",
    "resource_id",
    "events",
    "routes",
    "firewall",
    "paths",
    "parse_paths",
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


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {
        node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module and node.level == 0
    } | {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}


def under(imported: set[str], *packages: str) -> set[str]:
    return {m for m in imported if any(m == p or m.startswith(p + ".") for p in packages)}


@pytest.mark.parametrize("module", ["service.py", "reports.py", "ports.py"])
def test_the_service_knows_protocols_not_adapters(module: str) -> None:
    """The service, its reports and its ports use the core and each other; never the SDK or an adapter.

    Event interpretation is core (remediation/events.py), so nothing under remediation/azure is needed.
    """
    imported = imports_of(ROOT / "remediation" / module)
    adapters = under(imported, "azure", "remediation.azure", "remediation.alerts", "remediation.state")
    assert not adapters | under(imported, "remediation.wiring", "remediation.commands"), imported


@pytest.mark.parametrize(
    ("adapter", "others"),
    [
        ("state.py", ("remediation.alerts", "remediation.azure", "remediation.wiring")),
        ("azure", ("remediation.alerts", "remediation.state", "remediation.wiring")),
        ("alerts", ("remediation.azure", "remediation.state", "remediation.wiring")),
    ],
)
def test_adapters_do_not_lean_on_each_other(adapter: str, others: tuple[str, ...]) -> None:
    """An adapter uses the core and the ports; only wiring.py connects adapters (the state store owns its types)."""
    path = ROOT / "remediation" / adapter
    for source in sorted(path.glob("*.py")) if path.is_dir() else [path]:
        assert not under(imports_of(source), *others), source.name
