"""The custom role grants what the code calls, and nothing else.

Every ARM request of a sweep that restores a rule (on an NSG whose rules reference an application
security group, as CycleCloud Workspace for Slurm's do) with the Service Tags API on is mapped to
the RBAC action Azure checks, plus the linked access checks ARM makes on referenced resources
(the emulator logs them: ``linked_actions``). The union must equal the role's actions: a missing
one would fail in Azure with AuthorizationFailed, an extra one is privilege the code never uses.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from devtools.demo import cyclecloud_network
from devtools.emulator import Emulator
from remediation.baseline_file import load_baseline
from remediation.wiring import Runtime
from tests.infra.rbac_map import action_for, role_actions
from tests.integration.conftest import remediator_runtime

pytestmark = pytest.mark.integration


def asg_rule(sub: str) -> dict[str, Any]:
    asg = f"/subscriptions/{sub}/resourceGroups/rg-cyclecloud/providers/Microsoft.Network/applicationSecurityGroups/asg-cyclecloud"
    return {
        "name": "AllowClientsToCycleCloud",
        "properties": {
            "protocol": "Tcp",
            "access": "Allow",
            "priority": 200,
            "direction": "Inbound",
            "sourceAddressPrefix": "VirtualNetwork",
            "destinationApplicationSecurityGroups": [{"id": asg}],
            "sourcePortRange": "*",
            "destinationPortRange": "22",
        },
    }


@pytest.fixture
def runtime(arm_env: Emulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    sub = arm_env.subscription_id
    docs = cyclecloud_network(sub, load_baseline())
    cc = next(d for d in docs if d["id"].endswith("/nsg-cyclecloud"))
    rules = [r for r in cc["properties"]["securityRules"] if r["name"] != "AllowAzureStorage"]
    cc["properties"]["securityRules"] = [*rules, asg_rule(sub)]
    # A hub firewall policy: the sweep lists its rule collection groups too (the path beyond the NSGs).
    policy = f"/subscriptions/{sub}/resourceGroups/rg-hub/providers/Microsoft.Network/firewallPolicies/fwp-hub"
    docs.append({"id": policy, "location": "westeurope", "properties": {}})
    yield from remediator_runtime(arm_env, monkeypatch, docs, retries=1, SERVICE_TAGS_LOCATION="westeurope")


def used_actions(em: Emulator) -> set[str]:
    sent = [r for r in em.requests() if r["path"] != "/msi/token"]
    return {action_for(r["method"], r["path"]) for r in sent} | {a for r in sent for a in r["linked_actions"]}


def test_the_role_grants_exactly_what_a_restoring_sweep_calls(runtime: Runtime, arm_env: Emulator) -> None:
    report = runtime.reconcile(None, trigger="sweep")
    assert [w.nsg_id.rsplit("/", 1)[-1] for w in report.written] == ["nsg-cyclecloud"]
    used = {a.lower() for a in used_actions(arm_env)}
    granted = {a.lower() for a in role_actions()}
    assert used - granted == set(), "the code calls what the role does not grant"
    assert granted - used == set(), "the role grants what the code never calls"
