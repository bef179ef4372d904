"""The deployed code uses only the Azure SDK's public, documented surface.

A private module (``azure.mgmt.network.operations._operations``) or attribute
(``client._config``) can change in any SDK minor release without notice, and the
guard would then fail silently in production. Checked on the source: no import
of a private name from ``azure.*``, no ``obj._private`` reached through anything
but ``self``/``cls`` (our own objects' state), no ``getattr(obj, "_private")``. The
attribute checks apply to the modules that import the SDK (the adapters): elsewhere a
private attribute can only be one of our own classes'.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DEPLOYED = [*sorted(ROOT.joinpath("remediation").rglob("*.py")), ROOT / "function_app.py"]


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def violations(source: str) -> list[str]:
    """Each private SDK import or foreign private attribute in ``source``, as ``line: text``."""
    found: list[str] = []
    tree = ast.parse(source)
    uses_sdk = any(
        (isinstance(n, ast.ImportFrom) and (n.module or "").startswith("azure"))
        or (isinstance(n, ast.Import) and any(a.name.startswith("azure") for a in n.names))
        for n in ast.walk(tree)
    )
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module.startswith("azure"):
            if any(_private(part) for part in node.module.split(".")):
                found.append(f"{node.lineno}: from {node.module} import ...")
            found += [f"{node.lineno}: from {node.module} import {a.name}" for a in node.names if _private(a.name)]
        elif isinstance(node, ast.Import):
            found += [
                f"{node.lineno}: import {a.name}"
                for a in node.names
                if a.name.startswith("azure") and any(_private(p) for p in a.name.split("."))
            ]
        elif not uses_sdk:
            continue
        elif isinstance(node, ast.Attribute) and _private(node.attr):
            owner = node.value
            if not (isinstance(owner, ast.Name) and owner.id in {"self", "cls"}):
                found.append(f"{node.lineno}: .{node.attr} of {ast.unparse(owner)}")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in {"getattr", "setattr", "hasattr"}
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
            and _private(node.args[1].value)
        ):
            found.append(f"{node.lineno}: {node.func.id}(..., {node.args[1].value!r})")
    return found


@pytest.mark.parametrize("path", DEPLOYED, ids=lambda p: str(p.relative_to(ROOT)))
def test_deployed_code_uses_no_private_sdk_surface(path: Path) -> None:
    assert violations(path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize(
    ("source", "why"),
    [
        ("from azure.mgmt.network.operations import _operations", "a private module imported by name"),
        ("from azure.mgmt.network.operations._operations import build_x", "a name from a private module"),
        ("import azure.mgmt.network._client", "a private module imported whole"),
        (
            "from azure.core import exceptions\nx = self._client._config.subscription_id",
            "a private attribute of another object, in an adapter",
        ),
        ("import azure.core\nx = getattr(client, '_config', None)", "a private attribute read by name, in an adapter"),
    ],
)
def test_the_check_catches(source: str, why: str) -> None:
    assert violations(source), why


def test_the_check_allows_own_state_and_dunders() -> None:
    assert violations("from azure.core import exceptions\nself._client.close()\ncls._cache = {}\nx = o.__class__") == []
