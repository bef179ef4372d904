"""The ARM adapter through the real azure-mgmt-network SDK against the local emulator.

The emulator (devtools/emulator) serves HTTPS on 127.0.0.1 with its own CA and
the App Service managed-identity endpoint, so the product's unchanged
DefaultAzureCredential gets its token there; nothing reaches the internet.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devtools.emulator import Emulator
from remediation.azure.arm import ArmNetwork, ArmOptions, ArmRequestError
from remediation.errors import ConflictError, TransientError
from remediation.model import SecurityRule
from remediation.plan import RemediationPlan
from remediation.settings import Mode, Settings

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SUB = "00000000-0000-0000-0000-000000000001"
RG = f"/subscriptions/{SUB}/resourceGroups/rg-cyclecloud"
CC = f"{RG}/providers/Microsoft.Network/networkSecurityGroups/nsg-cyclecloud"
CLUSTER = f"{RG}/providers/Microsoft.Network/networkSecurityGroups/nsg-cluster"
FAST = ArmOptions(
    retry_total=3, retry_backoff_factor=0.01, retry_backoff_max=0.05, polling_interval=0.01, max_retry_after=2
)


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def network_docs(*, broken: bool = True) -> list[dict[str, Any]]:
    cc = load("broken/nsg-cyclecloud-missing-storage.json") if broken else load("compliant/arm/nsg-cyclecloud.json")
    docs = [load("compliant/arm/nsg-cluster.json"), cc, load("compliant/arm/vnet.json")]
    nics = load("compliant/arm/nics.json")
    docs += nics if isinstance(nics, list) else nics.get("value", [nics])
    return docs


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator(subscription_id=SUB) as em:
        yield em


@pytest.fixture
def em(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Emulator:
    emulator.reset()
    emulator.config.lro_polls = 1
    for key, value in emulator.env().items():
        monkeypatch.setenv(key, value)
    for key in ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET", "AZURE_FEDERATED_TOKEN_FILE"):
        monkeypatch.delenv(key, raising=False)
    emulator.seed(network_docs())
    return emulator


def adapter(em: Emulator, mode: Mode = Mode.ENFORCE, **options: Any) -> ArmNetwork:
    settings = Settings(subscription_id=SUB, arm_endpoint=em.endpoint, mode=mode)
    base = {f: getattr(FAST, f) for f in FAST.__dataclass_fields__}
    return ArmNetwork.from_settings(settings, options=ArmOptions(**(base | options)))


def arm_requests(em: Emulator, method: str | None = None) -> list[dict[str, Any]]:
    return [r for r in em.requests() if r["path"] != "/msi/token" and (method is None or r["method"] == method)]


def restore_plan(arm: ArmNetwork, nsg_id: str = CC) -> tuple[Any, RemediationPlan]:
    nsg = arm.get_nsg(nsg_id)
    good = load("compliant/arm/nsg-cyclecloud.json")
    from remediation.parse import parse_nsg

    wanted = parse_nsg(good, where="good")
    storage = next(r for r in wanted.security_rules if r.name == "AllowAzureStorage")
    plan = RemediationPlan(
        nsg_id=nsg.id,
        nsg_name=nsg.name,
        security_rules=(*nsg.security_rules, storage),
        added=(storage,),
    )
    return nsg, plan


def rule_names(em: Emulator, nsg_id: str = CC) -> list[str]:
    return [r["name"] for r in em.state[nsg_id]["properties"]["securityRules"]]


def test_inventory_in_one_pass(em: Emulator) -> None:
    untagged = copy.deepcopy(load("compliant/arm/nsg-cluster.json"))
    untagged["id"] = untagged["id"].replace("nsg-cluster", "nsg-unrelated")
    untagged["name"] = "nsg-unrelated"
    untagged["tags"] = {}
    untagged["properties"].pop("subnets", None)
    untagged["properties"].pop("networkInterfaces", None)
    em.seed([untagged])
    em.clear_requests()
    inv = adapter(em).inventory(f"/subscriptions/{SUB}")
    assert sorted(n.name for n in inv.nsgs) == ["nsg-cluster", "nsg-cyclecloud"]
    assert [v.name for v in inv.vnets] == ["vnet-cyclecloud"]
    assert {s.name for s in inv.subnets} >= {"cyclecloud"}
    assert sorted(n.name for n in inv.nics) == ["compute-node-1-nic", "cyclecloud-vm-nic"]
    paths = [r["path"] for r in arm_requests(em)]
    assert len(paths) == len(set(paths)), "every resource is fetched once"
    assert sum(p.endswith("/networkSecurityGroups") for p in paths) == 1
    assert all(r["method"] == "GET" for r in arm_requests(em))
    assert all(r["caller"] == "remediator" for r in arm_requests(em))


def test_inventory_follows_list_pages(em: Emulator) -> None:
    em.config.page_size = 1
    try:
        inv = adapter(em).inventory(f"/subscriptions/{SUB}")
    finally:
        em.config.page_size = 100
    assert sorted(n.name for n in inv.nsgs) == ["nsg-cluster", "nsg-cyclecloud"]


def test_resource_group_and_nsg_scopes(em: Emulator) -> None:
    arm = adapter(em)
    assert sorted(n.name for n in arm.inventory(RG).nsgs) == ["nsg-cluster", "nsg-cyclecloud"]
    assert [n.name for n in arm.inventory(CLUSTER).nsgs][:1] == ["nsg-cluster"]


def test_one_put_with_if_match_keeps_every_user_rule_and_field(em: Emulator) -> None:
    arm = adapter(em)
    nsg, plan = restore_plan(arm)
    before = em.state[CC]
    em.clear_requests()
    result = arm.apply(nsg, plan)
    assert result.written
    assert result.lost_rules == ()
    assert result.correlation_id
    assert len(arm_requests(em, "PUT")) == 1
    after = em.state[CC]
    assert after["etag"] != before["etag"]
    assert after["tags"] == before["tags"]
    assert after["location"] == before["location"]
    kept = {r["name"]: r["properties"] for r in before["properties"]["securityRules"]}
    now = {r["name"]: r["properties"] for r in after["properties"]["securityRules"]}
    assert set(now) == set(kept) | {"AllowAzureStorage"}
    for name, props in kept.items():
        for key in ("description", "destinationAddressPrefix", "destinationPortRange", "priority", "access"):
            assert now[name].get(key) == props.get(key), (name, key)
    assert result.after is not None
    assert {r.name for r in result.after.security_rules} == set(now)


def test_stale_etag_is_a_conflict_and_nothing_is_written(em: Emulator) -> None:
    arm = adapter(em)
    nsg, plan = restore_plan(arm)
    human = copy.deepcopy(em.state[CC])
    human["properties"]["securityRules"].append(
        {
            "name": "HumanRule",
            "properties": {
                "protocol": "Tcp",
                "access": "Deny",
                "priority": 300,
                "direction": "Inbound",
                "sourceAddressPrefix": "*",
                "destinationAddressPrefix": "*",
                "sourcePortRange": "*",
                "destinationPortRange": "8080",
            },
        }
    )
    em.seed([human])  # a change by someone else: new etag
    with pytest.raises(ConflictError, match="412"):
        arm.apply(nsg, plan)
    assert "HumanRule" in rule_names(em)
    assert "AllowAzureStorage" not in rule_names(em)


@pytest.mark.parametrize(
    "fault",
    [
        {"kind": "status", "status": 429, "retry_after": 0.05},
        {"kind": "status", "status": 500},
        {"kind": "status", "status": 503},
        {"kind": "drop"},
    ],
    ids=["429", "500", "503", "drop"],
)
def test_transient_faults_on_the_put_are_retried(em: Emulator, fault: dict[str, Any]) -> None:
    arm = adapter(em)
    nsg, plan = restore_plan(arm)
    em.faults.add(method="PUT", path="networkSecurityGroups", times=1, **fault)
    result = arm.apply(nsg, plan)
    assert result.written
    assert rule_names(em).count("AllowAzureStorage") == 1


def test_retry_after_beyond_the_cap_is_not_slept_through(em: Emulator) -> None:
    arm = adapter(em)
    nsg, plan = restore_plan(arm)
    em.faults.add(kind="status", method="PUT", path="networkSecurityGroups", status=429, retry_after=3600)
    with pytest.raises(TransientError, match="429"):
        arm.apply(nsg, plan)


def test_persistent_5xx_ends_in_transient_error_after_bounded_retries(em: Emulator) -> None:
    arm = adapter(em)
    em.faults.add(kind="status", method="GET", path="networkSecurityGroups", status=503, times=None)
    with pytest.raises(TransientError, match="503"):
        arm.inventory(f"/subscriptions/{SUB}")
    assert len(arm_requests(em, "GET")) == 1 + FAST.retry_total


def test_another_operation_in_progress_is_a_conflict(em: Emulator) -> None:
    arm = adapter(em)
    nsg, plan = restore_plan(arm)
    em.faults.add(kind="status", method="PUT", path="networkSecurityGroups", status=409)
    with pytest.raises(ConflictError, match="AnotherOperationInProgress"):
        arm.apply(nsg, plan)


def test_failed_long_running_operation_is_transient(em: Emulator) -> None:
    arm = adapter(em)
    nsg, plan = restore_plan(arm)
    em.faults.add(kind="lro_failed", method="PUT", path="networkSecurityGroups")
    with pytest.raises(TransientError, match="long-running operation failed"):
        arm.apply(nsg, plan)
    assert "AllowAzureStorage" not in rule_names(em)


def test_arm_rejection_is_not_retried(em: Emulator) -> None:
    arm = adapter(em)
    nsg, plan = restore_plan(arm)
    clash = SecurityRule(**{**_fields(plan.added[0]), "name": "Clash", "priority": 101})
    bad = RemediationPlan(nsg.id, nsg.name, (*plan.security_rules, clash), added=(clash,))
    with pytest.raises(ArmRequestError, match="SecurityRuleConflict"):
        arm.apply(nsg, bad)
    assert len(arm_requests(em, "PUT")) == 1


def test_audit_mode_never_writes(em: Emulator) -> None:
    arm = adapter(em, mode=Mode.AUDIT)
    nsg, plan = restore_plan(arm)
    result = arm.apply(nsg, plan)
    assert not result.written
    assert arm_requests(em, "PUT") == []


def test_missing_nsg_is_a_clear_error(em: Emulator) -> None:
    with pytest.raises(ArmRequestError, match="not found"):
        adapter(em).get_nsg(CC.replace("nsg-cyclecloud", "nsg-gone"))


def _fields(rule: SecurityRule) -> dict[str, Any]:
    return {f: getattr(rule, f) for f in rule.__dataclass_fields__}


def test_many_vnets_and_nics_are_listed_not_fetched_one_by_one(em: Emulator) -> None:
    one_by_one = adapter(em).inventory(f"/subscriptions/{SUB}")
    em.clear_requests()
    listed = adapter(em, vnet_list_threshold=0, nic_list_threshold=0).inventory(f"/subscriptions/{SUB}")
    paths = [r["path"] for r in arm_requests(em)]
    assert paths == [
        f"/subscriptions/{SUB}/providers/Microsoft.Network/networkSecurityGroups",
        f"/subscriptions/{SUB}/providers/Microsoft.Network/virtualNetworks",
        f"/subscriptions/{SUB}/providers/Microsoft.Network/networkInterfaces",
    ]
    assert listed == one_by_one


def test_service_tags_are_read_in_their_rest_form(em: Emulator) -> None:
    arm = adapter(em)
    values = arm.service_tags("westeurope")
    storage = next(v for v in values if v["name"] == "Storage.WestEurope")
    assert storage["properties"]["addressPrefixes"][0] == "13.69.40.16/28"  # camelCase, as exact_from_documents reads
    [request] = arm_requests(em, "GET")
    assert request["action"] == "Microsoft.Network/locations/serviceTags/read"


@pytest.mark.parametrize(
    ("fault", "error", "match"),
    [
        ({"status": 403}, ArmRequestError, "list service tags in westeurope: HTTP 403 AuthorizationFailed"),
        ({"status": 503, "times": None}, TransientError, "503"),
    ],
)
def test_service_tags_errors_are_mapped_like_the_rest(
    em: Emulator, fault: dict[str, Any], error: type[Exception], match: str
) -> None:
    arm = adapter(em)
    em.faults.add(kind="status", method="GET", path="serviceTags", **fault)
    with pytest.raises(error, match=match):
        arm.service_tags_document("westeurope")
