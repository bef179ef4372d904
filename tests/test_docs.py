"""The operator docs name every app setting the code reads (docs/deploy.md, 'App settings reference')."""

from __future__ import annotations

import re
from pathlib import Path

from remediation.settings import SETTING_NAMES

ROOT = Path(__file__).resolve().parents[1]


def test_every_setting_is_documented_and_no_documented_setting_is_unknown() -> None:
    text = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    section = text[text.index("## App settings reference") :]
    documented = set(
        re.findall(r"`([A-Z][A-Z0-9_]+)`", "\n".join(row for row in section.splitlines() if row.startswith("| `")))
    )
    assert set(SETTING_NAMES) - documented == set(), "settings missing from docs/deploy.md"
    assert documented - set(SETTING_NAMES) == set(), "docs/deploy.md documents settings the code does not read"
