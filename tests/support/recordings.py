"""Real ARM answers recorded by public projects, read at run time from ``../shared/reference/arm-recordings/``.

The recordings are not copied into the project (their README says why); a test that needs one
is skipped, with the path it looked for, when the checkout has no ``../shared`` beside it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

RECORDINGS = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "arm-recordings"
AZURE_CLI_NSG = RECORDINGS / "azure-cli" / "test_network_nsg.yaml"


def cassette_answers(path: Path) -> list[tuple[str, str, Any]]:
    """(method, uri, decoded JSON body) of each interaction of an Azure CLI (VCR) cassette."""
    if not path.exists():
        pytest.skip(f"recorded ARM traffic not found at {path}")
    answers = []
    for interaction in yaml.safe_load(path.read_text(encoding="utf-8"))["interactions"]:
        text = (interaction["response"].get("body") or {}).get("string") or ""
        try:
            body = json.loads(text) if text else None
        except json.JSONDecodeError:
            body = None
        answers.append((interaction["request"]["method"], interaction["request"]["uri"], body))
    return answers


def recorded_nsg_list_with_bare_number() -> dict[str, Any]:
    """ARM's answer to listing the subscription's NSGs, holding rule ``web`` with prefixes "789" and "1234"."""
    for method, uri, body in cassette_answers(AZURE_CLI_NSG):
        listing = method == "GET" and "/providers/Microsoft.Network/networkSecurityGroups?" in uri
        if listing and body and '"sourceAddressPrefix": "789"' in json.dumps(body):
            return dict(body)
    raise AssertionError(f"no NSG list answer with sourceAddressPrefix '789' in {AZURE_CLI_NSG}")


def recorded_nsg_with_bare_number() -> dict[str, Any]:
    """The NSG of that answer that holds rule ``web``."""
    for nsg in recorded_nsg_list_with_bare_number()["value"]:
        if any(r["name"] == "web" for r in nsg["properties"].get("securityRules") or []):
            return dict(nsg)
    raise AssertionError("the recorded list holds no rule 'web'")
