"""The REST definition the emulator validates against, read from the vendored ARM spec."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

SPEC_PATH = Path(__file__).resolve().parents[2] / "reference" / "arm-rest-spec" / "networkSecurityGroup.json"


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One property of SecurityRulePropertiesFormat: its JSON type, enum values, read-only flag."""

    name: str
    type: str  # "string" | "integer" | "boolean" | "array" | "object"
    item_type: str = ""
    enum: tuple[str, ...] = ()
    read_only: bool = False


@dataclass(frozen=True, slots=True)
class RuleSpec:
    fields: dict[str, FieldSpec]
    required: tuple[str, ...]


def _resolve(definitions: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref", "")
    if ref.startswith("#/definitions/"):
        target = dict(definitions[ref.removeprefix("#/definitions/")])
        target.update({k: v for k, v in node.items() if k != "$ref"})
        return target
    return node


@cache
def rule_spec(path: Path = SPEC_PATH) -> RuleSpec:
    """Fields of a security rule as the spec defines them; refs to other files count as objects."""
    doc = json.loads(path.read_text(encoding="utf-8"))
    definitions: dict[str, Any] = doc["definitions"]
    fmt = definitions["SecurityRulePropertiesFormat"]
    fields: dict[str, FieldSpec] = {}
    for name, raw in fmt["properties"].items():
        node = _resolve(definitions, raw)
        read_only = bool(node.get("readOnly", False))
        if "$ref" in node:  # e.g. ./network.json#/definitions/ProvisioningState: not validated here
            fields[name] = FieldSpec(name, "string" if read_only else "object", read_only=read_only)
            continue
        items = node.get("items", {})
        item_type = items.get("type", "object") if items else ""
        fields[name] = FieldSpec(
            name,
            node.get("type", "object"),
            item_type=item_type,
            enum=tuple(node.get("enum", ())),
            read_only=read_only,
        )
    return RuleSpec(fields=fields, required=tuple(fmt.get("required", ())))
