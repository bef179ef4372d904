"""requirements.txt: every runtime dependency has a floor CI installs (make test-lowest) and a ceiling,
and every Azure SDK package the deployed code imports is declared, not merely pulled in by another."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from lowest_constraints import floors  # noqa: E402

#: Top-level import -> distribution, for the packages whose names differ.
DISTRIBUTION = {"yaml": "pyyaml", "pydantic_settings": "pydantic-settings"}


def requirements() -> dict[str, str]:
    specs = {}
    for line in (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines():
        code = line.split("#", 1)[0].strip()
        if code:
            name = re.split(r"[<>=!~\[; ]", code, maxsplit=1)[0]
            specs[name.lower()] = code
    return specs


def test_every_runtime_dependency_has_a_floor_and_a_ceiling() -> None:
    for name, spec in requirements().items():
        assert ">=" in spec, f"{name}: no floor"
        assert "<" in spec.replace("<=", ""), f"{name}: no ceiling (a major release may break it)"


def test_lowest_constraints_pin_each_floor() -> None:
    assert floors("a>=1.2,<2\n# note\nb[x]>=3  # why\n\n", where="r.txt") == ["a==1.2", "b==3"]


@pytest.mark.parametrize("line", ["a<2", "a", "a==1"])
def test_a_requirement_without_a_floor_is_refused(line: str) -> None:
    with pytest.raises(ValueError, match=r"r\.txt:1: .* has no '>=' floor"):
        floors(line, where="r.txt")


def test_every_imported_azure_or_third_party_package_is_declared() -> None:
    sources = [*ROOT.joinpath("remediation").rglob("*.py"), ROOT / "function_app.py"]
    imported: set[str] = set()
    for path in sources:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imported.add(node.module)
            elif isinstance(node, ast.Import):
                imported.update(a.name for a in node.names)
    declared = set(requirements())
    needed = set()
    for module in imported:
        parts = module.split(".")
        if parts[0] == "azure" and len(parts) > 1:
            # azure.mgmt.network -> azure-mgmt-network, azure.core -> azure-core, azure.functions -> azure-functions
            depth = 3 if parts[1] in ("mgmt", "monitor", "data", "communication") and len(parts) > 2 else 2
            needed.add("-".join(parts[:depth]).lower())
        elif parts[0] in ("yaml", "pydantic", "pydantic_settings"):
            needed.add(DISTRIBUTION.get(parts[0], parts[0]))
    assert needed - declared == set(), "imported but only installed as someone else's dependency"
