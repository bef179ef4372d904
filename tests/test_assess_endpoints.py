"""assess(repair_endpoints=...): when a missing service endpoint is remediable, and which subnet gets it."""

from __future__ import annotations

import copy
from typing import Any

from devtools.demo import cyclecloud_network
from remediation.assess import assess
from remediation.baseline_file import load_baseline
from remediation.findings import FindingKind, Severity
from remediation.model import Inventory
from remediation.parse import parse_document

SUB = "00000000-0000-0000-0000-000000000001"
BASELINE = load_baseline()


def network(edit: Any = None) -> Inventory:
    docs = copy.deepcopy(cyclecloud_network(SUB, BASELINE))
    for doc in docs:
        for subnet in (doc.get("properties") or {}).get("subnets") or []:
            if subnet["name"] == "hpc":
                subnet["properties"]["serviceEndpoints"] = [{"service": "Microsoft.KeyVault"}]
                if edit is not None:
                    edit(subnet, docs)
    return rendered(docs)


def rendered(docs: list[dict[str, Any]]) -> Inventory:
    """The seed documents as ARM shows them: subnet ids and the NSGs' back-references added."""
    docs = copy.deepcopy(docs)
    back: dict[str, list[dict[str, str]]] = {}
    for doc in (d for d in docs if "/virtualNetworks/" in d["id"]):
        for subnet in doc["properties"]["subnets"]:
            subnet["id"] = f"{doc['id']}/subnets/{subnet['name']}"
            nsg = (subnet["properties"].get("networkSecurityGroup") or {}).get("id")
            if nsg:
                back.setdefault(nsg.lower(), []).append({"id": subnet["id"]})
    for doc in docs:
        if "/networkSecurityGroups/" in doc["id"]:
            doc["properties"].setdefault("subnets", back.get(doc["id"].lower(), []))
    return parse_document(docs, where="demo")


def endpoint_findings(inventory: Inventory, *, repair: bool) -> list[Any]:
    found = assess(inventory, BASELINE, repair_endpoints=repair)
    return [f for f in found.findings if f.kind is FindingKind.SERVICE_ENDPOINT_MISSING]


def test_without_repair_a_missing_endpoint_is_not_remediable_and_says_how_to_enable_it() -> None:
    inventory = network()
    [finding] = endpoint_findings(inventory, repair=False)
    assert finding.subnet is not None
    assert finding.subnet.endswith("/subnets/hpc")
    assert not finding.remediable
    assert finding.severity is Severity.HIGH
    assert "SERVICE_ENDPOINT_REPAIR" in finding.reason
    assert assess(inventory, BASELINE).endpoint_repairs == ()


def test_with_repair_the_subnet_of_the_managed_nsg_is_repaired() -> None:
    inventory = network()
    found = assess(inventory, BASELINE, repair_endpoints=True)
    [finding] = [f for f in found.findings if f.kind is FindingKind.SERVICE_ENDPOINT_MISSING]
    assert finding.remediable
    assert (finding.reason, finding.severity) == ("", Severity.MEDIUM)
    [repair] = found.endpoint_repairs
    assert repair.subnet_id == finding.subnet
    assert repair.nsg_id.endswith("/nsg-cluster")
    assert repair.services == ("Microsoft.Storage",)
    assert repair.fixes == (finding,)
    assert found.to_json()["endpointRepairs"] == [
        {"subnet": repair.subnet_id, "nsg": repair.nsg_id, "services": ["Microsoft.Storage"]}
    ]


def test_a_compliant_network_needs_no_repair() -> None:
    docs = cyclecloud_network(SUB, BASELINE)
    found = assess(rendered(docs), BASELINE, repair_endpoints=True)
    assert found.endpoint_repairs == ()


def test_a_subnet_whose_own_nsg_is_not_the_managed_one_is_never_repaired() -> None:
    """The NSG still names the subnet (a stale back-reference) but the subnet now has an untagged NSG."""

    def swap(subnet: dict[str, Any], docs: list[dict[str, Any]]) -> None:
        cluster = next(d for d in docs if d["id"].endswith("/nsg-cluster"))
        other = cluster["id"].replace("nsg-cluster", "nsg-someone-elses")
        docs.append({"id": other, "location": "westeurope", "properties": {"securityRules": []}})
        subnet["properties"]["networkSecurityGroup"] = {"id": other}
        vnet = next(d for d in docs if "/virtualNetworks/" in d["id"])
        cluster["properties"]["subnets"] = [{"id": f"{vnet['id']}/subnets/hpc"}]  # stale: what it was attached to

    found = assess(network(swap), BASELINE, repair_endpoints=True)
    detached = [f for f in found.findings if f.kind is FindingKind.NSG_DETACHED]
    assert [f.subnet.rsplit("/", 1)[-1] for f in detached if f.subnet] == ["hpc"]
    assert found.endpoint_repairs == ()
    assert all(not f.remediable for f in found.findings if f.kind is FindingKind.SERVICE_ENDPOINT_MISSING)
