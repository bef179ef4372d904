"""scripts/predown.sh, run for real against a stand-in for the Azure CLI.

As in test_postdeploy.py, `az` cannot run here; the fake answers each call
from a table of (argument prefix -> stdout) and records the calls, so the test
sees what the script would delete and what it would keep.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.infra.bicep import ROOT

SCRIPT = ROOT / "scripts" / "predown.sh"
SUB = "00000000-0000-0000-0000-000000000001"

FAKE_AZ = """#!{python}
import json, os, sys
args = sys.argv[1:]
with open(os.environ["FAKE_AZ_LOG"], "a") as log:
    log.write(json.dumps(args) + "\\n")
best = None
for prefix, out in json.loads(os.environ["FAKE_AZ_ANSWERS"]):
    words = prefix.split()
    if all(w in args for w in words) and (best is None or len(words) > len(best[0].split())):
        best = (prefix, out)
if best:
    print(best[1])
"""


def run(tmp_path: Path, answers: list[tuple[str, str]], **env: str) -> tuple[int, str, list[list[str]]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    az = bin_dir / "az"
    az.write_text(FAKE_AZ.format(python=sys.executable), encoding="utf-8")
    az.chmod(0o755)
    log = tmp_path / "az.log"
    base = {k: v for k, v in os.environ.items() if not k.startswith("AZURE_")}
    full_env = {
        **base,
        "AZURE_SUBSCRIPTION_ID": SUB,
        "AZURE_RESOURCE_GROUP": "rg-guard",
        "AZURE_FUNCTION_APP_NAME": "func-lockdown-abc",
        "AZURE_IDENTITY_PRINCIPAL_ID": "22222222-2222-2222-2222-222222222222",
        **env,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "FAKE_AZ_ANSWERS": json.dumps(answers),
        "FAKE_AZ_LOG": str(log),
    }
    sh = shutil.which("sh")
    assert sh
    result = subprocess.run([sh, str(SCRIPT)], env=full_env, capture_output=True, text=True, timeout=60, check=False)
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return result.returncode, result.stdout + result.stderr, calls


REMEDIATOR = "aaaaaaaa-0000-0000-0000-000000000001"
SENDER = "bbbbbbbb-0000-0000-0000-000000000002"
ASSIGNMENTS = ["/subscriptions/s/providers/Microsoft.Authorization/roleAssignments/1", "/subscriptions/s/rg/x/2"]


def answers(*, remediator_in_use: str = "0") -> list[tuple[str, str]]:
    return [
        ("eventgrid system-topic list", "sub-events\trg-platform"),
        ("role assignment list --assignee", "\n".join(ASSIGNMENTS)),
        ("role definition list --scope /subscriptions/" + SUB, REMEDIATOR),
        ("role definition list --scope /subscriptions/" + SUB + "/resourceGroups/rg-guard", SENDER),
        ("role assignment list --role " + REMEDIATOR, remediator_in_use),
        ("role assignment list --role " + SENDER, "0"),
    ]


def test_removes_everything_outside_the_resource_group(tmp_path: Path) -> None:
    rc, output, calls = run(tmp_path, answers(), ACTIVITY_LOG_DIAGNOSTIC_SETTING="lockdown-activity-abc")
    assert rc == 0, output
    assert [
        "eventgrid",
        "system-topic",
        "event-subscription",
        "delete",
        "--name",
        "lockdown-func-lockdown-abc",
        "--system-topic-name",
        "sub-events",
        "--resource-group",
        "rg-platform",
        "--yes",
        "--output",
        "none",
    ] in calls
    deleted = [c[c.index("--ids") + 1] for c in calls if c[:3] == ["role", "assignment", "delete"]]
    assert deleted == ASSIGNMENTS
    roles = {
        c[c.index("--name") + 1]: c[c.index("--scope") + 1] for c in calls if c[:3] == ["role", "definition", "delete"]
    }
    assert roles == {REMEDIATOR: f"/subscriptions/{SUB}", SENDER: f"/subscriptions/{SUB}/resourceGroups/rg-guard"}
    assert [c for c in calls if c[:4] == ["monitor", "diagnostic-settings", "subscription", "delete"]]


def test_keeps_the_remediator_role_another_environment_still_uses(tmp_path: Path) -> None:
    rc, output, calls = run(tmp_path, answers(remediator_in_use="1"))
    assert rc == 0, output
    roles = [c[c.index("--name") + 1] for c in calls if c[:3] == ["role", "definition", "delete"]]
    assert roles == [SENDER]
    assert "keeping custom role " + REMEDIATOR in output
    # No Activity Log export was made: nothing to delete.
    assert not [c for c in calls if c[:2] == ["monitor", "diagnostic-settings"]]


def test_names_a_missing_azd_output(tmp_path: Path) -> None:
    rc, output, calls = run(tmp_path, answers(), AZURE_RESOURCE_GROUP="")
    assert rc != 0
    assert "AZURE_RESOURCE_GROUP" in output
    assert calls == []
