"""``python -m remediation check``: exit codes, the JSON contract, the table, stdin, bad input.

Runs the real CLI in-process (``remediation.cli.main``) on the fixture
network, and once as a subprocess. Set UPDATE_GOLDEN=1 to rewrite the
golden table after an intended change of wording.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from remediation.cli import main

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
ARM = FIXTURES / "compliant" / "arm"
AZ = FIXTURES / "compliant" / "az"
BROKEN = FIXTURES / "broken"
GOLDEN = Path(__file__).resolve().parent / "golden"
SERVICE_TAGS = ROOT / "reference" / "service-tags"
NSG_CC = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-cyclecloud/providers/Microsoft.Network/networkSecurityGroups/nsg-cyclecloud"
FINDING_KEYS = {"kind", "requirement", "nsg", "rule", "remediable", "severity", "message"}
KINDS = {
    "missing_rule",
    "modified_rule",
    "shadowed_rule",
    "lockdown_breach",
    "port_blocked",
    "nsg_detached",
    "service_endpoint_missing",
}


def network_with(nsg_cyclecloud: Path) -> list[str]:
    return [str(ARM / "vnet.json"), str(ARM / "nsg-cluster.json"), str(ARM / "nics.json"), str(nsg_cyclecloud)]


COMPLIANT = network_with(ARM / "nsg-cyclecloud.json")


def check(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["check", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def check_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    code, out, err = check(capsys, "--format", "json", *argv)
    assert err == ""
    return code, json.loads(out)  # exactly one JSON document, nothing else on stdout


# --------------------------------------------------------------------------- exit codes and the JSON contract


@pytest.mark.parametrize(
    "files",
    [
        COMPLIANT,
        [str(p) for p in sorted(AZ.glob("*.json"))],
    ],
    ids=["arm", "az"],
)
def test_compliant_network_exits_0_with_empty_json(capsys: pytest.CaptureFixture[str], files: list[str]) -> None:
    code, body = check_json(capsys, *files)
    assert code == 0
    assert body == {"findings": [], "plans": [], "notJudged": []}


@pytest.mark.parametrize(
    ("broken", "kind", "requirement", "rule", "remediable"),
    [
        ("nsg-cyclecloud-missing-storage.json", "missing_rule", "AllowAzureStorage", None, True),
        ("nsg-cyclecloud-deny-9443.json", "port_blocked", "https_9443", "DenyNodes9443", False),
        ("nsg-cyclecloud-azurerm-port-80.json", "modified_rule", "AllowAzureRM", "AllowAzureRM", True),
        ("nsg-cyclecloud-allow-any-out.json", "lockdown_breach", None, "AllowAnyOut", False),
    ],
)
def test_broken_variants_exit_1_with_the_finding(
    capsys: pytest.CaptureFixture[str],
    broken: str,
    kind: str,
    requirement: str | None,
    rule: str | None,
    remediable: bool,
) -> None:
    code, body = check_json(capsys, *network_with(BROKEN / broken))
    assert code == 1
    assert set(body) == {"findings", "plans", "notJudged"}
    for finding in body["findings"]:
        assert set(finding) >= FINDING_KEYS
        assert finding["kind"] in KINDS
        assert finding["severity"] in {"critical", "high", "medium", "low", "info"}
        assert isinstance(finding["remediable"], bool)
        assert finding["message"]
    matching = [
        f
        for f in body["findings"]
        if f["kind"] == kind
        and (requirement is None or f["requirement"] == requirement)
        and (rule is None or f["rule"] == rule)
    ]
    assert matching, body["findings"]
    assert matching[0]["nsg"] == NSG_CC
    assert matching[0]["remediable"] is remediable
    for plan in body["plans"]:
        assert {"nsg", "securityRules"} <= set(plan)
        assert all({"name", "properties"} <= set(r) for r in plan["securityRules"])


def test_missing_rule_plan_restores_the_rule_and_keeps_the_others(capsys: pytest.CaptureFixture[str]) -> None:
    _, body = check_json(capsys, *network_with(BROKEN / "nsg-cyclecloud-missing-storage.json"))
    [plan] = body["plans"]
    assert plan["nsg"] == NSG_CC
    names = {r["name"] for r in plan["securityRules"]}
    assert names == {"AllowAzureStorage", "AllowActiveDirectory", "AllowAzureMonitor", "AllowAzureRM", "BlockOutbound"}
    storage = next(r for r in plan["securityRules"] if r["name"] == "AllowAzureStorage")["properties"]
    assert (storage["priority"], storage["destinationAddressPrefix"], storage["destinationPortRange"]) == (
        100,
        "Storage",
        "443",
    )


def test_role_override_checks_untagged_nsgs(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    doc = json.loads((BROKEN / "nsg-cyclecloud-missing-storage.json").read_text())
    doc["tags"] = {}
    untagged = tmp_path / "untagged.json"
    untagged.write_text(json.dumps(doc))
    code, _, err = check(capsys, str(untagged))
    assert code == 2
    assert "carries the tag 'cyclecloud-lockdown'" in err
    assert "--role" in err
    code, body = check_json(capsys, "--role", "cyclecloud", str(untagged))
    assert code == 1
    assert any(f["kind"] == "missing_rule" for f in body["findings"])


def test_shared_nsg_without_a_tagged_nic_says_where_cyclecloud_is_unknown(capsys: pytest.CaptureFixture[str]) -> None:
    # One NSG on every subnet and no NIC tagged as CycleCloud's: no guessed port_blocked, one
    # medium finding saying how to tag the NIC, and the flows named as not judged (table and JSON).
    files = [str(p) for p in sorted((FIXTURES / "shared").glob("*.json"))]
    code, body = check_json(capsys, *files)
    assert code == 1
    assert [(f["kind"], f["severity"], f["remediable"]) for f in body["findings"]] == [
        ("cyclecloud_location_unknown", "medium", False)
    ]
    assert [u["requirement"] for u in body["notJudged"]] == ["amqp_5672", "https_9443"]
    code, out, _ = check(capsys, *files)
    assert "Not judged:" in out
    assert "amqp_5672: CycleCloud's location is unknown" in out


def test_operator_baseline_and_lockdown_tag(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    text = (ROOT / "remediation" / "baselines" / "cyclecloud.yaml").read_text()
    baseline = tmp_path / "mine.yaml"
    # An HTTPS proxy instead of service tags: the compliant NSG now lacks AllowHttpsProxy.
    text = text.replace("  https_proxy:\n    enabled: false", "  https_proxy:\n    enabled: true")
    # Outside the VNet (10.10.0.0/16): inside it, AllowVnetOutBound would already let the nodes reach it.
    text = text.replace("    address: null            # the proxy's", '    address: "10.20.0.4"  # the proxy\'s')
    text = text.replace("    port: null ", "    port: 3128 ")
    baseline.write_text(text)
    code, body = check_json(capsys, "--baseline", str(baseline), *COMPLIANT)
    assert code == 1
    assert any(f["kind"] == "missing_rule" and f["requirement"] == "AllowHttpsProxy" for f in body["findings"])


def test_exact_service_tags(capsys: pytest.CaptureFixture[str]) -> None:
    tag_files = [str(p) for p in sorted(SERVICE_TAGS.glob("*.json"))]
    assert tag_files
    args = [a for f in tag_files for a in ("--service-tags", f)]
    code, body = check_json(capsys, *args, *COMPLIANT)
    assert (code, body) == (0, {"findings": [], "plans": [], "notJudged": []})
    code, body = check_json(capsys, *args, *network_with(BROKEN / "nsg-cyclecloud-missing-storage.json"))
    assert code == 1
    assert [f["requirement"] for f in body["findings"]] == ["AllowAzureStorage"]


# --------------------------------------------------------------------------- stdin


def test_stdin_dash(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO((BROKEN / "nsg-cyclecloud-missing-storage.json").read_text()))
    code, body = check_json(capsys, str(ARM / "vnet.json"), str(ARM / "nsg-cluster.json"), "-")
    assert code == 1
    assert body["findings"][0]["requirement"] == "AllowAzureStorage"


def test_stdin_twice_is_refused(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO((ARM / "nsg-cyclecloud.json").read_text()))
    code, out, err = check(capsys, "-", "-")
    assert (code, out) == (2, "")
    assert err.startswith("error: -: stdin ('-') can be read only once")


def test_bad_json_on_stdin_is_named(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO('{"id": '))
    code, _, err = check(capsys, "-")
    assert code == 2
    assert err.startswith("error: <stdin>: not valid JSON")


# --------------------------------------------------------------------------- bad input: exit 2, `error: <file>: <problem>`


def _write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def _bad_priority(tmp_path: Path) -> str:
    doc = json.loads((ARM / "nsg-cyclecloud.json").read_text())
    doc["properties"]["securityRules"][3]["properties"]["priority"] = 99999
    return _write(tmp_path, "nsg.json", json.dumps(doc))


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda t: str(t / "missing.json"), "{path}: cannot read: No such file or directory"),
        (lambda t: _write(t, "bad.json", "{not json"), "{path}: not valid JSON: "),
        (lambda t: _write(t, "empty.json", "  \n"), "{path}: is empty"),
        (lambda t: _write(t, "weird.json", '[{"hello": 1}]'), "{path}: [0]: cannot tell what this object is"),
        (
            _bad_priority,
            "{path}: properties.securityRules[3].properties.priority: priority must be between 100 and 4096",
        ),
        (lambda t: _write(t, "vnet-only.json", (ARM / "vnet.json").read_text()), "{path}: no network security group"),
    ],
    ids=["missing", "bad-json", "empty", "unknown-object", "bad-priority", "no-nsg"],
)
def test_bad_files_exit_2_naming_file_and_problem(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, make: Any, expected: str
) -> None:
    path = make(tmp_path)
    code, out, err = check(capsys, path)
    assert code == 2
    assert out == ""
    assert err.startswith("error: " + expected.format(path=path)), err
    assert err.count("\n") == 1


@pytest.mark.parametrize("value", ["none", "", "scheduler"])
def test_a_role_tag_naming_no_role_is_that_nsgs_finding_and_the_rest_is_judged(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, value: str
) -> None:
    # Issue 11 item 2: a tag value naming no role was bad input for the whole check (exit 2).
    cluster = json.loads((ARM / "nsg-cluster.json").read_text())
    cluster["tags"] = {"CycleCloud-Lockdown": value}
    cyclecloud = json.loads((ARM / "nsg-cyclecloud.json").read_text())
    rules = cyclecloud["properties"]["securityRules"]
    rules[:] = [r for r in rules if r["name"] != "AllowAzureStorage"]  # a real finding on the NSG still judged
    paths = [_write(tmp_path, "cluster.json", json.dumps(cluster)), _write(tmp_path, "cc.json", json.dumps(cyclecloud))]
    code, report = check_json(capsys, *paths, str(ARM / "vnet.json"))
    assert code == 1
    unjudgeable = [f for f in report["findings"] if f["kind"] == "unjudgeable"]
    assert len(unjudgeable) == 1  # the mistagged NSG, named, high, with why
    assert unjudgeable[0]["nsg"] == cluster["id"]
    assert unjudgeable[0]["requirement"] == "lockdown tag"
    assert unjudgeable[0]["severity"] == "high"
    assert f"tag value {value!r}" in unjudgeable[0]["message"]
    assert any(f["kind"] == "missing_rule" and f["requirement"] == "AllowAzureStorage" for f in report["findings"])


def test_bad_baseline_exit_2_with_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = _write(tmp_path, "b.yaml", "version: 1\nname: x\nrules:\n  - name: A\n    priority: 5\n")
    code, _, err = check(capsys, "--baseline", path, *COMPLIANT)
    assert code == 2
    assert err.startswith(f"error: {path}:4: rules[0].")


def test_bad_service_tags_file_is_named(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    good = str(SERVICE_TAGS / "Storage.json")
    bad = _write(tmp_path, "tags.json", '{"values": [{"name": "Storage", "properties": {"addressPrefixes": ["x"]}}]}')
    code, _, err = check(capsys, "--service-tags", good, "--service-tags", bad, *COMPLIANT)
    assert code == 2
    assert err.startswith(f"error: {bad}")


def test_bad_role_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = check(capsys, "--role", "scheduler", *COMPLIANT)
    assert code == 2
    assert err.startswith("error: --role: unknown role 'scheduler'")


@pytest.mark.parametrize("argv", [[], ["--format", "yaml", str(ARM / "vnet.json")], ["--nope", "x.json"]])
def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["check", *argv])
    assert caught.value.code == 2
    assert "usage:" in capsys.readouterr().err


# --------------------------------------------------------------------------- the table


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def _table(monkeypatch: pytest.MonkeyPatch, files: list[str], *, tty: bool) -> tuple[int, str]:
    stream = _Tty() if tty else io.StringIO()
    monkeypatch.setattr(sys, "stdout", stream)
    code = main(["check", *files])
    return code, stream.getvalue()


def test_table_golden(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    files = network_with(BROKEN / "nsg-cyclecloud-azurerm-port-80.json")
    code, text = _table(monkeypatch, files, tty=False)
    assert code == 1
    golden = GOLDEN / "check_table_azurerm_port_80.txt"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(text)
    assert text == golden.read_text()
    assert "\033[" not in text


def test_table_has_one_line_per_finding_with_deciding_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    code, text = _table(monkeypatch, network_with(BROKEN / "nsg-cyclecloud-deny-9443.json"), tty=False)
    assert code == 1
    lines = text.splitlines()
    assert lines[0].split() == ["SEVERITY", "KIND", "NSG", "REQUIREMENT", "RULE", "FIX", "MESSAGE"]
    rows = [line for line in lines[1:] if line.startswith(("critical", "high", "medium", "low", "info"))]
    blocked = [r for r in rows if "port_blocked" in r]
    assert blocked
    assert blocked[0].split()[:6] == ["critical", "port_blocked", "nsg-cyclecloud", "https_9443", "DenyNodes9443", "no"]
    assert any(line.startswith(f"{len(rows)} finding") for line in lines)


def test_table_clean(monkeypatch: pytest.MonkeyPatch) -> None:
    code, text = _table(monkeypatch, COMPLIANT, tty=False)
    assert code == 0
    assert text == "No findings: 2 managed NSGs checked against cyclecloud-locked-down.\n"


def test_table_plan_lists_rules_to_add(monkeypatch: pytest.MonkeyPatch) -> None:
    _, text = _table(monkeypatch, network_with(BROKEN / "nsg-cyclecloud-missing-storage.json"), tty=False)
    assert "Plan for nsg-cyclecloud:" in text
    assert "  add AllowAzureStorage: priority 100 Outbound Allow TCP * -> Storage port 443" in text


def test_table_plan_says_each_cannot_fix_once_under_the_nsg_holding_the_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    # cyclecloud_arm with a deny on 9443 in the CycleCloud NIC's NSG: the blocked flow is found reviewing
    # both ends, but the rule is cycle-nsg's; nsg-compute's plan cannot (and need not) fix it.
    real = FIXTURES / "real" / "cyclecloud-arm" / "broken-deny-9443.json"
    _, text = _table(monkeypatch, [str(real)], tty=False)
    plans = {block.split(":", 1)[0]: block for block in text.split("\nPlan for ")[1:]}
    assert "cannot fix port_blocked https_9443" in plans["cycle-nsg"]
    assert "port_blocked" not in plans["nsg-compute"]
    # az-hop's shared NSG: one deny blocks 9443 from three sources; its reason is one line, not three.
    azhop = FIXTURES / "real" / "azhop" / "broken-deny-9443.json"
    _, text = _table(monkeypatch, [str(azhop)], tty=False)
    assert text.count("cannot fix port_blocked https_9443: rule 'DenyInbound9443'") == 1


def test_colour_only_on_a_tty_without_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    files = network_with(BROKEN / "nsg-cyclecloud-missing-storage.json")
    monkeypatch.delenv("NO_COLOR", raising=False)
    _, coloured = _table(monkeypatch, files, tty=True)
    assert "\033[" in coloured
    monkeypatch.setenv("NO_COLOR", "1")
    _, plain = _table(monkeypatch, files, tty=True)
    assert "\033[" not in plain
    _, piped = _table(monkeypatch, files, tty=False)
    assert plain == piped


# --------------------------------------------------------------------------- a real process


def test_real_subprocess_json_and_exit_code() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "IDENTITY_", "MSI_"))}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "remediation",
            "check",
            "--format",
            "json",
            "-",
            *network_with(ARM / "nsg-cluster.json")[:1],
        ],
        input=(BROKEN / "nsg-cyclecloud-allow-any-out.json").read_text(),
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert result.stderr == ""
    body = json.loads(result.stdout)
    assert any(f["kind"] == "lockdown_breach" and f["rule"] == "AllowAnyOut" for f in body["findings"])
    assert "azure" not in result.stderr.lower()


def test_a_default_rule_is_told_apart_from_a_persons_rule_of_its_name(capsys: pytest.CaptureFixture[str]) -> None:
    # CycleCloud Workspace for Slurm adds its own AllowInternetOutBound (3000) beside the default one.
    code, out, _ = check(capsys, str(FIXTURES / "real" / "ccws-asg" / "as-deployed.json"))
    assert code == 1
    rows = [line for line in out.splitlines() if line.startswith("critical  lockdown_breach")]
    assert len(rows) == 2
    assert sum("AllowInternetOutBound (default)" in row for row in rows) == 1


# --------------------------------------------------------------------------- input json.loads alone misreads (issue 11 items 6, 7)

LONG = "1" * 5000  # Python's int() refuses more than 4,300 digits: it was a ValueError traceback, exit 1


def _rule_with(raw_property: str) -> str:
    """The CycleCloud NSG's JSON with ``raw_property`` written first in its first rule's properties."""
    text = (ARM / "nsg-cyclecloud.json").read_text()
    at = text.index('"properties": {', text.index('"securityRules"')) + len('"properties": {')
    return text[:at] + raw_property + ", " + text[at:]


@pytest.mark.parametrize(
    ("raw_property", "message"),
    [
        ('"access": "Allow", "access": "Deny"', "properties.securityRules[0].properties: key 'access' given twice"),
        (
            f'"sourcePortRanges": [{LONG}]',
            "properties.securityRules[0].properties.sourcePortRanges[0]: an integer of 5000",
        ),
    ],
)
def test_duplicate_keys_and_overlong_integers_exit_2_with_file_and_path(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, raw_property: str, message: str
) -> None:
    text = _rule_with(raw_property)
    assert raw_property in text
    path = _write(tmp_path, "nsg.json", text)
    code, out, err = check(capsys, path, *COMPLIANT[:-1])
    assert code == 2
    assert out == ""
    assert err.startswith(f"error: {path}: {message}"), err


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"values": [{"name": "Storage", "name": "Sql", "properties": {"addressPrefixes": []}}]}',
         "values[0]: key 'name' given twice"),
        ('{"changeNumber": ' + LONG + ', "values": []}', "changeNumber: an integer of 5000 digits"),
    ],
)  # fmt: skip
def test_service_tags_with_duplicate_keys_or_overlong_integers_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str, message: str
) -> None:
    bad = _write(tmp_path, "tags.json", text)
    code, _, err = check(capsys, "--service-tags", bad, *COMPLIANT)
    assert code == 2
    assert err.startswith(f"error: {bad}: {message}"), err


def test_an_overlong_integer_in_a_baseline_exits_2_with_file_line_and_field(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    shipped = (ROOT / "remediation" / "baselines" / "cyclecloud.yaml").read_text()
    found = re.search(r"^ +priority: (\d+)$", shipped, re.MULTILINE)
    assert found is not None
    path = _write(tmp_path, "b.yaml", shipped[: found.start(1)] + LONG + shipped[found.end(1) :])
    line = shipped[: found.start(1)].count("\n") + 1
    code, _, err = check(capsys, "--baseline", path, *COMPLIANT)
    assert code == 2
    assert err.startswith(f"error: {path}:{line}: rules[0].priority: an integer of 5000 digits"), err


def test_the_table_escapes_terminal_sequences_from_names(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # Names reach the table from the files checked; ESC ] 0 ; ... BEL sets a terminal's title,
    # ESC [ 2 J clears the screen, U+202E reverses what follows.
    doc = json.loads((ARM / "nsg-cyclecloud.json").read_text())
    hostile = "nsg\x1b]0;pwned\x07\x1b[2J\u202e"
    doc["id"] = doc["id"].rsplit("/", 1)[0] + "/" + hostile
    doc["name"] = hostile
    rules = doc["properties"]["securityRules"]
    rules[:] = [r for r in rules if r["name"] != "AllowAzureStorage"]
    path = _write(tmp_path, "nsg.json", json.dumps(doc))
    code, out, _ = check(capsys, path, *COMPLIANT[:-1])
    assert code == 1
    assert "\x1b" not in out
    assert "\x07" not in out
    assert "\u202e" not in out
    assert "nsg\\x1b]0;pwned\\x07\\x1b[2J\\u202e" in out  # shown, escaped, in the NSG column and the plan
