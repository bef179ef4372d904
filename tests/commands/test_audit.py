"""``python -m remediation audit`` against Azurite and the in-memory store."""

from __future__ import annotations

import io
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr

from remediation.cli import main
from remediation.commands.audit import render_table, rule_changes, show
from remediation.ports import AuditRecord
from remediation.settings import Settings
from remediation.state import InMemoryStateStore, TableStateStore

T0 = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)
NSG = "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.Network/networkSecurityGroups/nsg-cyclecloud"
OTHER = "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.Network/networkSecurityGroups/nsg-cluster"


def arm_rule(name: str, priority: int, port: str = "443") -> dict[str, object]:
    return {"name": name, "properties": {"priority": priority, "destinationPortRange": port, "access": "Allow"}}


def record(at: datetime, nsg: str = NSG) -> AuditRecord:
    return AuditRecord(
        at=at,
        nsg_id=nsg,
        trigger="eventgrid",
        event_id="evt-42",
        actor="alice@contoso.example",
        rules_before=[arm_rule("AllowAzureRM", 103), arm_rule("OperatorRule", 300, "22")],
        rules_after=[arm_rule("AllowAzureRM", 103, "8443"), arm_rule("AllowAzureStorage", 100)],
        correlation_id="corr-1",
    )


def test_rule_changes_by_name() -> None:
    assert rule_changes(record(T0)) == (["AllowAzureStorage"], ["OperatorRule"], ["AllowAzureRM"])


def test_table_output() -> None:
    text = render_table([record(T0)])
    header, row = text.splitlines()
    assert header.split() == ["TIME", "(UTC)", "NSG", "TRIGGER", "ACTOR", "EVENT", "CHANGES"]
    assert row.split() == [
        "2026-11-26",
        "06:00:00",
        "nsg-cyclecloud",
        "eventgrid",
        "alice@contoso.example",
        "evt-42",
        "+AllowAzureStorage",
        "~AllowAzureRM",
        "-OperatorRule",
    ]
    assert render_table([]) == "No remediations recorded.\n"


def test_show_json_filters_and_limits() -> None:
    store = InMemoryStateStore()
    for minutes in (0, 5, 10):
        store.record_audit(record(T0 + timedelta(minutes=minutes)))
    store.record_audit(record(T0, nsg=OTHER))
    out = io.StringIO()
    assert show(store, nsg=NSG, limit=2, output_format="json", out=out) == 0
    data = json.loads(out.getvalue())
    assert [d["at"] for d in data] == ["2026-11-26T06:10:00+00:00", "2026-11-26T06:05:00+00:00"]
    assert data[0]["added"] == ["AllowAzureStorage"]
    assert data[0]["rulesAfter"][1]["name"] == "AllowAzureStorage"


def test_cli_reads_the_table_store(
    azurite: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    prefix = "cli" + uuid.uuid4().hex[:10]
    settings = Settings(state_connection_string=SecretStr(azurite), state_table_prefix=prefix)
    writer = TableStateStore.from_settings(settings)
    writer.record_audit(record(T0))
    writer.record_audit(record(T0 + timedelta(minutes=1), nsg=OTHER))
    monkeypatch.setenv("STATE_CONNECTION_STRING", azurite)
    monkeypatch.setenv("STATE_TABLE_PREFIX", prefix)
    assert main(["audit", "--nsg", NSG.upper(), "--format", "json"]) == 0
    (only,) = json.loads(capsys.readouterr().out)
    assert only["nsg"] == NSG
    assert main(["audit", "--limit", "5"]) == 0
    assert "nsg-cluster" in capsys.readouterr().out.splitlines()[1]


def test_cli_with_tables_not_created_yet(
    azurite: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("STATE_CONNECTION_STRING", azurite)
    monkeypatch.setenv("STATE_TABLE_PREFIX", "none" + uuid.uuid4().hex[:10])
    assert main(["audit"]) == 0
    assert capsys.readouterr().out == "No remediations recorded.\n"


def test_cli_without_a_store_is_a_settings_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("STATE_CONNECTION_STRING", raising=False)
    monkeypatch.delenv("STATE_TABLE_ENDPOINT", raising=False)
    assert main(["audit"]) == 2
    assert "STATE_TABLE_ENDPOINT" in capsys.readouterr().err


def test_cli_rejects_a_bad_limit(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["audit", "--limit", "0"])
    assert exited.value.code == 2
    assert "must be at least 1" in capsys.readouterr().err
