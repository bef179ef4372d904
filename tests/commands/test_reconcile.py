"""``python -m remediation reconcile`` and ``demo`` against the local ARM emulator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.demo import cyclecloud_network
from devtools.emulator import Emulator
from remediation.baseline_file import load_baseline

ROOT = Path(__file__).resolve().parents[2]
SUB = "00000000-0000-0000-0000-0000000000c1"
RG = "rg-cyclecloud"
CC = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Network/networkSecurityGroups/nsg-cyclecloud"


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator(subscription_id=SUB) as em:
        yield em


@pytest.fixture
def broken(emulator: Emulator) -> Emulator:
    emulator.reset()
    docs = cyclecloud_network(SUB, load_baseline())
    for rule_list in (d["properties"].get("securityRules") for d in docs if d["id"] == CC):
        assert rule_list is not None
        rule_list[:] = [r for r in rule_list if r["name"] != "AllowAzureStorage"]
    emulator.seed(docs)
    return emulator


def cli(em: Emulator, *args: str, mode: str = "enforce") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "MSI_", "IDENTITY_"))}
    env |= em.env() | {"REMEDIATION_MODE": mode, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "remediation", "reconcile", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
        check=False,
    )


def puts(em: Emulator) -> list[str]:
    return [r["path"] for r in em.requests() if r["method"] == "PUT"]


def test_dry_run_json_reports_and_writes_nothing(broken: Emulator) -> None:
    done = cli(broken, "--dry-run", "--format", "json")
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert [f["requirement"] for f in report["findings"]] == ["AllowAzureStorage"]
    assert report["plans"][0]["added"] == ["AllowAzureStorage"]
    assert report["written"] == []
    assert puts(broken) == []


def test_enforce_restores_then_reports_clean(broken: Emulator) -> None:
    done = cli(broken, "--scope", f"/subscriptions/{SUB}/resourceGroups/{RG}")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "restored AllowAzureStorage" in done.stdout
    assert len(puts(broken)) == 1
    again = cli(broken)
    assert again.returncode == 0
    assert "0 finding(s), 0 written" in again.stdout


def test_audit_mode_never_writes(broken: Emulator) -> None:
    done = cli(broken, mode="audit")
    assert done.returncode == 1
    assert "audit mode: not written; would restore AllowAzureStorage" in done.stdout
    assert puts(broken) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--scope", "/subscriptions/00000000-0000-0000-0000-0000000000c2"), "outside the configured subscription"),
        (("--scope", "rg-cyclecloud"), "is not a subscription, resource group"),
        (("--subscription", "not-a-guid"), "not a subscription GUID"),
    ],
)
def test_bad_scope_exits_2_with_a_clear_message(broken: Emulator, args: tuple[str, ...], message: str) -> None:
    done = cli(broken, *args)
    assert done.returncode == 2
    assert message in done.stderr
    assert puts(broken) == []


def test_demo_runs_in_well_under_a_minute() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "MSI_", "IDENTITY_"))}
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "remediation", "demo"],
        capture_output=True,
        text=True,
        env=env | {"PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert time.monotonic() - started < 60
    out = done.stdout
    assert "restored AllowAzureStorage on nsg-ccws" in out
    assert "NOT restored" in out
    assert "DenyCycleCloud9443" in out
    # CycleCloud's NIC taken out of asg-cyclecloud: its event is judged (rule 320 no longer reaches it).
    assert "amqp_5672: TCP/5672 from node subnet 'compute' to CycleCloud (NIC 'ccw-cyclecloud-vm-nic'" in out
    assert "Teams card" in out
    assert "Email: [CycleCloud Lockdown Guard] CRITICAL" in out
    assert out.rstrip().splitlines()[-1].startswith("OK:")
