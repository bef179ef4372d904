"""nsg_detached across time: assess() with remembered attachments, and observed_attachments().

In Azure, detaching an NSG from a subnet also drops the NSG's back-reference
(``subnets``), so these inventories change both sides, as ARM would: the
inventory alone then says nothing was ever attached.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from remediation.assess import DETACHED_REASON, assess, observed_attachments, released_attachments
from remediation.baseline_file import load_baseline
from remediation.findings import Finding, FindingKind, Severity
from remediation.model import Inventory, NetworkSecurityGroup
from remediation.parse import merge_inventories, parse_document

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "compliant" / "arm"
BASELINE = load_baseline()
RG = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-cyclecloud"
VNET = f"{RG}/providers/Microsoft.Network/virtualNetworks/vnet-cyclecloud"
CC_SUBNET, COMPUTE, HPC = (f"{VNET}/subnets/{n}" for n in ("cyclecloud", "compute", "hpc"))
CC = f"{RG}/providers/Microsoft.Network/networkSecurityGroups/nsg-cyclecloud"
CLUSTER = f"{RG}/providers/Microsoft.Network/networkSecurityGroups/nsg-cluster"
MEMORY = {CC_SUBNET: CC, COMPUTE: CLUSTER, HPC: CLUSTER}


def compliant() -> Inventory:
    docs = [json.loads((FIXTURES / f"{n}.json").read_text()) for n in ("vnet", "nsg-cyclecloud", "nsg-cluster", "nics")]
    return merge_inventories(*(parse_document(d, where=n) for d, n in zip(docs, "abcd", strict=True)))


def attach(inventory: Inventory, subnet_id: str, nsg_id: str | None) -> Inventory:
    """What ARM shows after a subnet PUT with ``nsg_id`` (None: without networkSecurityGroup)."""
    vnets = tuple(
        replace(v, subnets=tuple(replace(s, nsg_id=nsg_id) if s.key == subnet_id.lower() else s for s in v.subnets))
        for v in inventory.vnets
    )
    nsgs = []
    for nsg in inventory.nsgs:
        refs = tuple(i for i in nsg.subnet_ids if i.lower() != subnet_id.lower())
        if nsg_id is not None and nsg.key == nsg_id.lower():
            refs += (subnet_id,)
        nsgs.append(replace(nsg, subnet_ids=refs))
    return replace(inventory, nsgs=tuple(nsgs), vnets=vnets)


def other_nsg(name: str, **tags: str) -> NetworkSecurityGroup:
    return NetworkSecurityGroup(
        id=f"{RG}/providers/Microsoft.Network/networkSecurityGroups/{name}", name=name, tags=tags
    )


def detached(inventory: Inventory, **kwargs: Any) -> list[Finding]:
    return [f for f in assess(inventory, BASELINE, **kwargs).findings if f.kind is FindingKind.NSG_DETACHED]


def test_observed_attachments_from_the_subnets() -> None:
    assert observed_attachments(compliant(), BASELINE) == MEMORY


def test_observed_attachments_from_back_references_when_the_vnet_is_unknown() -> None:
    inventory = replace(compliant(), vnets=())
    assert {k.lower(): v.lower() for k, v in observed_attachments(inventory, BASELINE).items()} == {
        k.lower(): v.lower() for k, v in MEMORY.items()
    }


def test_observed_attachments_skip_unmanaged_nsgs() -> None:
    rogue = other_nsg("nsg-rogue")
    inventory = attach(replace(compliant(), nsgs=(*compliant().nsgs, rogue)), COMPUTE, rogue.id)
    assert observed_attachments(inventory, BASELINE) == {CC_SUBNET: CC, HPC: CLUSTER}


def test_compliant_with_memory_has_no_findings() -> None:
    assert assess(compliant(), BASELINE, expected_attachments=MEMORY).findings == ()


def test_detached_to_no_nsg_is_invisible_without_memory_and_found_with_it() -> None:
    inventory = attach(compliant(), COMPUTE, None)
    assert detached(inventory) == []  # the back-reference went with the attachment
    [finding] = detached(inventory, expected_attachments=MEMORY)
    assert (finding.nsg, finding.subnet, finding.rule, finding.requirement) == (CLUSTER, COMPUTE, None, "attachment")
    assert not finding.remediable
    assert finding.severity is Severity.HIGH
    assert finding.reason == DETACHED_REASON
    assert finding.message == "subnet 'compute' lost managed NSG 'nsg-cluster' and now has no NSG"


def test_swapped_to_an_unmanaged_nsg_is_detached() -> None:
    rogue = other_nsg("nsg-rogue")
    inventory = attach(replace(compliant(), nsgs=(*compliant().nsgs, rogue)), COMPUTE, rogue.id)
    [finding] = detached(inventory, expected_attachments=MEMORY)
    assert finding.subnet == COMPUTE
    assert "now has NSG 'nsg-rogue' (not tagged cyclecloud-lockdown)" in finding.message


def test_swapped_to_another_managed_nsg_is_accepted() -> None:
    """Attaching another NSG tagged cyclecloud-lockdown is how an operator moves a subnet on purpose."""
    spare = other_nsg("nsg-cluster-2", **{"cyclecloud-lockdown": "cluster"})
    inventory = attach(replace(compliant(), nsgs=(*compliant().nsgs, spare)), COMPUTE, spare.id)
    assert detached(inventory, expected_attachments=MEMORY) == []
    assert observed_attachments(inventory, BASELINE)[COMPUTE] == spare.id  # the memory moves with it


def test_managed_nsg_deleted() -> None:
    inventory = attach(attach(compliant(), COMPUTE, None), HPC, None)
    inventory = replace(inventory, nsgs=tuple(n for n in inventory.nsgs if n.name != "nsg-cluster"))
    memory = {k.upper(): v.upper() for k, v in MEMORY.items()}  # stored ids compare case-insensitively
    found = detached(inventory, expected_attachments=memory)
    assert sorted((f.subnet or "").lower() for f in found) == sorted([COMPUTE.lower(), HPC.lower()])
    assert {f.nsg for f in found} == {CLUSTER.upper()}  # the stored id: the NSG is gone
    assert all("no longer exists or is no longer tagged" in f.message for f in found)


def test_untagging_an_attached_nsg_stops_guarding_it() -> None:
    """Removing the tag is how docs/deploy.md says to stop guarding an NSG: released, not reported."""
    inventory = compliant()
    untagged = tuple(replace(n, tags={}) if n.key == CLUSTER.lower() else n for n in inventory.nsgs)
    inventory = replace(inventory, nsgs=untagged)
    assert detached(inventory, expected_attachments=MEMORY) == []
    assert sorted(released_attachments(inventory, BASELINE, MEMORY)) == sorted([COMPUTE, HPC])
    assert released_attachments(compliant(), BASELINE, MEMORY) == []
    # Detached as well as untagged: that is still a detachment.
    assert [f.subnet for f in detached(attach(inventory, COMPUTE, None), expected_attachments=MEMORY)] == [COMPUTE]


def test_re_attached_clears_it() -> None:
    inventory = attach(attach(compliant(), COMPUTE, None), COMPUTE, CLUSTER)
    assert detached(inventory, expected_attachments=MEMORY) == []


def test_subnet_unknown_or_deleted_is_not_judged() -> None:
    gone = replace(
        compliant(),
        vnets=tuple(
            replace(v, subnets=tuple(s for s in v.subnets if s.key != COMPUTE.lower())) for v in compliant().vnets
        ),
    )
    assert detached(gone, expected_attachments=MEMORY) == []
    assert detached(replace(attach(compliant(), COMPUTE, None), vnets=()), expected_attachments=MEMORY) == []


@pytest.mark.parametrize(
    ("only", "subnets", "expected"),
    [
        ([CC], None, []),
        ([CLUSTER.upper()], None, [COMPUTE]),
        ([CC], [COMPUTE.upper()], [COMPUTE]),
        ([], [HPC], []),
        (None, None, [COMPUTE]),
    ],
)
def test_only_and_subnets_choose_the_pairs_judged(
    only: list[str] | None, subnets: list[str] | None, expected: list[str]
) -> None:
    inventory = attach(compliant(), COMPUTE, None)
    found = detached(inventory, expected_attachments=MEMORY, only=only, subnets=subnets)
    assert [f.subnet for f in found] == expected


def test_one_finding_when_the_back_reference_also_reports_it() -> None:
    # Only the subnet side changed (a stale back-reference): both checks see it, one finding.
    inventory = replace(
        compliant(),
        vnets=tuple(
            replace(v, subnets=tuple(replace(s, nsg_id=None) if s.key == COMPUTE.lower() else s for s in v.subnets))
            for v in compliant().vnets
        ),
    )
    without = detached(inventory)
    with_memory = detached(inventory, expected_attachments=MEMORY)
    assert len(without) == 1
    assert [(f.nsg, f.subnet, f.fingerprint) for f in with_memory] == [(CLUSTER, COMPUTE, without[0].fingerprint)]
