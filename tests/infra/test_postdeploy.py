"""scripts/postdeploy.sh, run for real against a stand-in for the Azure CLI.

The real `az` cannot run here (no Azure), so a small fake on PATH records
every call and answers from a scenario; `sleep` is a no-op so waits and
retries take no time. What is tested is the script's own logic: finding or
reusing the subscription's one system topic, giving a reused topic an
identity, and the parameters it deploys eventgrid.bicep with.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.infra.bicep import ROOT

SCRIPT = ROOT / "scripts" / "postdeploy.sh"

FAKE_AZ = """#!{python}
import json, os, sys
args = sys.argv[1:]
scenario = json.loads(os.environ["FAKE_AZ_SCENARIO"])
with open(os.environ["FAKE_AZ_LOG"], "a") as log:
    log.write(json.dumps(args) + "\\n")
cmd = " ".join(a for a in args[:3])
def count(name):
    path = os.environ["FAKE_AZ_LOG"] + "." + name
    n = int(open(path).read()) if os.path.exists(path) else 0
    open(path, "w").write(str(n + 1))
    return n + 1
if cmd.startswith("functionapp function show"):
    sys.exit(0 if count("show") > scenario.get("function_missing_for", 0) else 3)
if cmd.startswith("eventgrid system-topic list"):
    topic = scenario.get("topic")
    if topic:
        print("\\t".join([topic["name"], topic["rg"], topic.get("owner") or "None"]))
    sys.exit(0)
if cmd.startswith("eventgrid system-topic show"):
    if "identity.type" in args:
        print(scenario["topic"].get("identity") or "None")
    else:
        print("/subscriptions/s/resourceGroups/" + scenario["topic"]["rg"] + "/providers/Microsoft.EventGrid/systemTopics/" + scenario["topic"]["name"])
    sys.exit(0)
if cmd.startswith("deployment sub create"):
    sys.exit(0 if count("deploy") > scenario.get("deploy_failures", 0) else 1)
sys.exit(0)
"""

ENV = {
    "AZURE_SUBSCRIPTION_ID": "00000000-0000-0000-0000-000000000001",
    "AZURE_LOCATION": "westeurope",
    "AZURE_RESOURCE_GROUP": "rg-guard",
    "AZURE_FUNCTION_APP_NAME": "func-lockdown-abc",
    "AZURE_STORAGE_ACCOUNT_NAME": "stlockabc",
    "AZURE_ENV_NAME": "guard",
}


def run(
    tmp_path: Path, scenario: dict[str, object], **env: str
) -> tuple[subprocess.CompletedProcess[str], list[list[str]]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    az = bin_dir / "az"
    az.write_text(FAKE_AZ.format(python=sys.executable), encoding="utf-8")
    az.chmod(0o755)
    sleep = bin_dir / "sleep"
    sleep.write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
    sleep.chmod(0o755)
    log = tmp_path / "az.log"
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "EVENTGRID_"))}
    full_env = {
        **base,
        **ENV,
        **env,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "FAKE_AZ_SCENARIO": json.dumps(scenario),
        "FAKE_AZ_LOG": str(log),
    }
    sh = shutil.which("sh")
    assert sh
    result = subprocess.run([sh, str(SCRIPT)], env=full_env, capture_output=True, text=True, timeout=60, check=False)
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return result, calls


def deployments(calls: list[list[str]]) -> list[dict[str, str]]:
    found = []
    for call in calls:
        if call[:3] == ["deployment", "sub", "create"]:
            start = call.index("--parameters") + 1
            end = call.index("--output")
            found.append(dict(arg.split("=", 1) for arg in call[start:end]))
    return found


def test_creates_the_system_topic_when_the_subscription_has_none(tmp_path: Path) -> None:
    result, calls = run(tmp_path, {})
    assert result.returncode == 0, result.stderr
    [params] = deployments(calls)
    assert params == {
        "resourceGroupName": "rg-guard",
        "functionAppName": "func-lockdown-abc",
        "storageAccountName": "stlockabc",
        "deadLetterContainerName": "eventgrid-deadletter",
        "functionName": "on_nsg_change",
        "systemTopicName": "",
        "systemTopicResourceGroupName": "",
        "createSystemTopic": "true",
    }
    assert ["account", "set", "--subscription", ENV["AZURE_SUBSCRIPTION_ID"]] in calls


def test_reuses_a_foreign_topic_and_gives_it_an_identity(tmp_path: Path) -> None:
    topic = {"name": "sub-events", "rg": "rg-platform", "identity": None}
    result, calls = run(tmp_path, {"topic": topic})
    assert result.returncode == 0, result.stderr
    [params] = deployments(calls)
    assert (params["systemTopicName"], params["systemTopicResourceGroupName"]) == ("sub-events", "rg-platform")
    assert params["createSystemTopic"] == "false"
    updates = [c for c in calls if c[:2] == ["resource", "update"]]
    assert len(updates) == 1
    assert 'identity={"type":"SystemAssigned"}' in updates[0]


def test_keeps_an_existing_identity_on_a_reused_topic(tmp_path: Path) -> None:
    topic = {"name": "sub-events", "rg": "rg-platform", "identity": "SystemAssigned, UserAssigned"}
    result, calls = run(tmp_path, {"topic": topic})
    assert result.returncode == 0, result.stderr
    assert not [c for c in calls if c[:2] == ["resource", "update"]]


def test_refuses_a_topic_with_only_a_user_assigned_identity(tmp_path: Path) -> None:
    topic = {"name": "sub-events", "rg": "rg-platform", "identity": "UserAssigned"}
    result, calls = run(tmp_path, {"topic": topic})
    assert result.returncode != 0
    assert "sub-events" in result.stderr
    assert "SystemAssigned" in result.stderr
    assert deployments(calls) == []


def test_keeps_managing_its_own_topic_from_an_earlier_run(tmp_path: Path) -> None:
    topic = {"name": "evgt-lockdown-x", "rg": "rg-guard", "owner": "cyclecloud-lockdown-guard"}
    result, calls = run(tmp_path, {"topic": topic})
    assert result.returncode == 0, result.stderr
    [params] = deployments(calls)
    assert params["createSystemTopic"] == "true"
    assert params["systemTopicName"] == "evgt-lockdown-x"


def test_an_explicit_topic_needs_its_resource_group(tmp_path: Path) -> None:
    result, calls = run(tmp_path, {}, EVENTGRID_SYSTEM_TOPIC_NAME="sub-events")
    assert result.returncode != 0
    assert "EVENTGRID_SYSTEM_TOPIC_RESOURCE_GROUP" in result.stderr
    assert deployments(calls) == []


def test_waits_for_the_function_then_retries_a_failed_deployment(tmp_path: Path) -> None:
    result, calls = run(tmp_path, {"function_missing_for": 3, "deploy_failures": 1})
    assert result.returncode == 0, result.stderr
    assert len([c for c in calls if c[:3] == ["functionapp", "function", "show"]]) == 4
    assert len(deployments(calls)) == 2


def test_gives_up_when_the_function_never_appears(tmp_path: Path) -> None:
    result, calls = run(tmp_path, {"function_missing_for": 1000})
    assert result.returncode != 0
    assert "on_nsg_change" in result.stderr
    assert deployments(calls) == []


@pytest.mark.parametrize("missing", ["AZURE_RESOURCE_GROUP", "AZURE_FUNCTION_APP_NAME", "AZURE_STORAGE_ACCOUNT_NAME"])
def test_names_the_missing_azd_output(tmp_path: Path, missing: str) -> None:
    result, calls = run(tmp_path, {}, **{missing: ""})
    assert result.returncode != 0
    assert missing in result.stderr
    assert calls == []
