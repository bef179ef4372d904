"""Read the Bicep files through pycep-parser (the parser checkov uses too).

pycep turns a .bicep file into JSON: ``parameters``, ``variables``,
``resources``, ``modules``, ``outputs``; a resource's body sits under
``config`` (and one level deeper, again under ``config``, when the resource
is conditional). These helpers hide that so the tests read like the Bicep.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from pycep import BicepParser

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"


def bicep_files() -> list[Path]:
    return sorted(INFRA.rglob("*.bicep"))


@cache
def parse(relative: str) -> dict[str, Any]:
    """The pycep JSON of ``infra/<relative>``; raises what pycep raises on a syntax error."""
    result: dict[str, Any] = dict(BicepParser().parse(file_path=INFRA / relative))
    # pycep leaves out the sections a file does not have.
    for section in ("parameters", "variables", "resources", "modules", "outputs"):
        result.setdefault(section, {})
    return result


def body(block: dict[str, Any]) -> dict[str, Any]:
    """A resource's or module's own properties, conditional or not."""
    config: dict[str, Any] = block["config"]
    if "condition" in config and "config" in config:
        inner: dict[str, Any] = config["config"]
        return inner
    return config


def resource(relative: str, symbol: str) -> dict[str, Any]:
    return body(parse(relative)["resources"][symbol])


def resources_of_type(relative: str, type_: str) -> dict[str, dict[str, Any]]:
    return {name: body(r) for name, r in parse(relative)["resources"].items() if r["type"] == type_}


def module(relative: str, symbol: str) -> dict[str, Any]:
    return body(parse(relative)["modules"][symbol])


def variable(relative: str, name: str) -> Any:
    return parse(relative)["variables"][name]["value"]


def param_default(relative: str, name: str) -> Any:
    return parse(relative)["parameters"][name]["default"]
