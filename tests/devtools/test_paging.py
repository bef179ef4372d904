"""List and list-all with ARM's nextLink paging, raw and through the SDK."""

from __future__ import annotations

from devtools.emulator import Emulator
from tests.devtools.rest import RG, SUB, Rest, nsg_id
from tests.integration.conftest import human_credential, network_client


def _seed(em: Emulator, count: int) -> None:
    other_rg = RG.replace("rg1", "rg2")
    em.seed(
        [
            {"id": nsg_id(f"nsg{i:02d}", RG if i % 2 else other_rg), "location": "westeurope", "properties": {}}
            for i in range(count)
        ]
    )


def test_list_all_pages_follow_next_links(rest: Rest, arm_emulator: Emulator) -> None:
    _seed(arm_emulator, 10)
    arm_emulator.config.page_size = 3
    url = f"/subscriptions/{SUB}/providers/Microsoft.Network/networkSecurityGroups"
    sizes, names = [], []
    response = rest.get(url)
    while True:
        body = response.json()
        sizes.append(len(body["value"]))
        names += [n["name"] for n in body["value"]]
        if "nextLink" not in body:
            break
        assert body["nextLink"].startswith(arm_emulator.endpoint)
        assert "api-version=" in body["nextLink"], "the v33 SDK follows nextLink verbatim"
        response = rest.get(body["nextLink"], api_version=None)
    assert sizes == [3, 3, 3, 1]
    assert sorted(names) == [f"nsg{i:02d}" for i in range(10)]


def test_list_by_resource_group_filters(rest: Rest, arm_emulator: Emulator) -> None:
    _seed(arm_emulator, 6)
    body = rest.get(f"{RG}/providers/Microsoft.Network/networkSecurityGroups").json()
    assert sorted(n["name"] for n in body["value"]) == ["nsg01", "nsg03", "nsg05"]
    assert "nextLink" not in body


def test_default_page_size_is_100(arm_emulator: Emulator, rest: Rest) -> None:
    _seed(arm_emulator, 101)
    body = rest.get(f"/subscriptions/{SUB}/providers/Microsoft.Network/networkSecurityGroups").json()
    assert len(body["value"]) == 100
    assert "nextLink" in body


def test_sdk_list_all_reads_every_page(arm_emulator: Emulator) -> None:
    _seed(arm_emulator, 25)
    arm_emulator.config.page_size = 4
    client = network_client(arm_emulator, credential=human_credential(arm_emulator))
    assert len(list(client.network_security_groups.list_all())) == 25
    pages = [r for r in arm_emulator.requests() if r["path"].endswith("/networkSecurityGroups")]
    assert len(pages) == 7
