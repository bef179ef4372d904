"""Service tags: the containment model (no data) and the exact model (published lists)."""

from __future__ import annotations

import ipaddress
import json
from functools import cache
from pathlib import Path

import pytest

from remediation.errors import InputError
from remediation.evaluate import EvaluationContext, Flows, Universe, Verdict, evaluate_rules, ordered_rules
from remediation.model import Direction, PortRange, Prefix, Protocol, ServiceTag
from remediation.tags import CONTAINMENT, TagModel, canonical_tag, exact_from_documents, tag_contains
from tests.support.core import addr, rule

ROOT = Path(__file__).resolve().parents[1]
TAGS_DIR = ROOT / "reference" / "service-tags"
#: AzureCloud's list is 15,000 prefixes; the engine handles it, but these tests need only the services.
SMALL_TAG_FILES = [p for p in sorted(TAGS_DIR.glob("*.json")) if p.name != "AzureCloud.json"]


@cache
def exact_model() -> TagModel:
    return exact_from_documents([json.loads(p.read_text()) for p in SMALL_TAG_FILES], where=str(TAGS_DIR))


def first_address(tag: str) -> str:
    nets = exact_model().prefixes_of(tag)
    assert nets
    net = next(n for n in nets if n.version == 4)
    return str(net.network_address + 1)


# --------------------------------------------------------------------------- containment (no data)


@pytest.mark.parametrize(
    ("outer", "inner", "contains"),
    [
        ("Storage", "Storage", True),
        ("Storage", "Storage.WestEurope", True),
        ("storage", "STORAGE.westeurope", True),
        ("Storage.WestEurope", "Storage", False),
        ("Storage.WestEurope", "Storage.EastUS", False),
        ("Storage", "AzureActiveDirectory", False),
        ("Internet", "Storage", True),
        ("Internet", "Storage.WestEurope", True),
        ("Internet", "AzureActiveDirectory", True),
        ("Internet", "AzureMonitor", True),
        ("Internet", "AzureResourceManager", True),
        ("Internet", "AzureCloud", True),
        ("Internet", "VirtualNetwork", False),
        ("Internet", "AzureLoadBalancer", False),
        ("Internet", "virtual_network", False),  # legacy alias
        ("AzureCloud", "Storage", True),
        ("AzureCloud", "Storage.WestEurope", True),
        ("AzureCloud", "AzureActiveDirectory", True),
        ("AzureCloud", "AzureCloud.WestEurope", True),
        ("AzureCloud", "Internet", False),
        ("AzureCloud", "VirtualNetwork", False),
        ("AzureCloud", "AzureLoadBalancer", False),
        ("AzureCloud.WestEurope", "Storage.WestEurope", True),
        ("AzureCloud.WestEurope", "Storage.EastUS", False),
        ("AzureCloud.WestEurope", "Storage", False),  # only part of it (see test_evaluate's regression)
        ("VirtualNetwork", "Internet", False),
        ("VirtualNetwork", "Storage", False),
    ],
)
def test_tag_contains(outer: str, inner: str, contains: bool) -> None:
    assert tag_contains(outer, inner) is contains


@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        ("internet", "Internet"),
        ("INTERNET", "Internet"),
        ("virtual_network", "VirtualNetwork"),
        ("azure_loadbalancer", "AzureLoadBalancer"),
        ("Storage", "Storage"),
    ],
)
def test_canonical_tag(name: str, canonical: str) -> None:
    assert canonical_tag(name) == canonical


def test_service_tag_base_and_region() -> None:
    assert (ServiceTag("Storage.WestEurope").base, ServiceTag("Storage.WestEurope").region) == ("Storage", "WestEurope")
    assert (ServiceTag("Storage").base, ServiceTag("Storage").region) == ("Storage", None)


def test_containment_model_has_no_data() -> None:
    assert not CONTAINMENT.exact
    assert CONTAINMENT.prefixes_of("Storage") is None


# --------------------------------------------------------------------------- the exact model


def _decide(tag_model: TagModel, rule_dst: str, query_dst: str) -> Verdict:
    rules = [rule("D", 100, access="Deny", protocol="*", dst=rule_dst), rule("A", 4096, protocol="*")]
    query = Flows(Protocol.TCP, (addr("10.0.0.4"),), (addr(query_dst),), (PortRange(443, 443),))
    ctx = EvaluationContext(tags=tag_model, vnet_prefixes=(ipaddress.ip_network("10.0.0.0/16"),))
    u = Universe.of(ctx, rules, [query])
    return evaluate_rules(u, ordered_rules(rules, Direction.OUTBOUND), u.flows(query)).verdict


def test_exact_model_reads_every_reference_file() -> None:
    model = exact_model()
    assert model.exact
    for name in ("storage", "storage.westeurope", "storage.eastus", "azureactivedirectory", "azuremonitor"):
        assert model.prefixes_of(name), name
    assert model.prefixes_of("Storage.WestEurope") == model.prefixes_of("storage.westeurope")


@pytest.mark.parametrize(
    ("address_of", "rule_dst", "verdict"),
    [
        ("Storage.WestEurope", "Storage", Verdict.DENIED),
        ("Storage.WestEurope", "Storage.WestEurope", Verdict.DENIED),
        ("Storage.WestEurope", "Internet", Verdict.DENIED),
        ("Storage.WestEurope", "Storage.EastUS", Verdict.ALLOWED),
        ("Storage.EastUS", "Storage", Verdict.DENIED),
        ("AzureActiveDirectory", "Storage", Verdict.ALLOWED),
        ("AzureActiveDirectory", "AzureActiveDirectory", Verdict.DENIED),
        ("AzureActiveDirectory", "Internet", Verdict.DENIED),
        ("AzureResourceManager", "AzureResourceManager", Verdict.DENIED),
        ("AzureMonitor", "AzureActiveDirectory", Verdict.ALLOWED),
    ],
)
def test_exact_model_address_membership(address_of: str, rule_dst: str, verdict: Verdict) -> None:
    assert _decide(exact_model(), rule_dst, first_address(address_of)) is verdict


def test_exact_model_whole_regional_tag_inside_global_tag() -> None:
    assert _decide(exact_model(), "Storage", "Storage.WestEurope") is Verdict.DENIED
    assert _decide(exact_model(), "Storage.WestEurope", "Storage") is Verdict.PARTIAL
    assert _decide(exact_model(), "Internet", "Storage") is Verdict.DENIED


def test_exact_model_literal_outside_every_tag() -> None:
    assert _decide(exact_model(), "Storage", "203.0.113.9") is Verdict.ALLOWED  # TEST-NET-3: in no list
    assert _decide(exact_model(), "Internet", "203.0.113.9") is Verdict.DENIED  # but public


def test_containment_model_cannot_place_literal_addresses() -> None:
    # The same address the exact model places in Storage is, without data, outside it.
    assert _decide(CONTAINMENT, "Storage", first_address("Storage.WestEurope")) is Verdict.ALLOWED


def test_tags_without_data_fall_back_to_containment() -> None:
    # AzureFrontDoor.Backend has data, Storage.NorthEurope does not: it stays an opaque part of Storage.
    assert _decide(exact_model(), "Storage", "Storage.NorthEurope") is Verdict.DENIED
    assert _decide(exact_model(), "Internet", "SomeFutureService") is Verdict.DENIED
    assert _decide(exact_model(), "Storage", "AzureFrontDoor.Backend") is Verdict.ALLOWED


def test_exact_model_ipv6_prefixes() -> None:
    nets = exact_model().prefixes_of("Storage")
    assert nets
    v6 = next((n for n in nets if n.version == 6), None)
    if v6 is None:
        pytest.skip("no IPv6 prefix in the reference Storage list")
    assert _decide(exact_model(), "Storage", str(v6.network_address + 1)) is Verdict.DENIED


def test_azurecloud_list_contains_storage_westeurope() -> None:
    # The whole AzureCloud list (15k prefixes) evaluates; an address of Storage.WestEurope lies in it.
    doc = json.loads((TAGS_DIR / "AzureCloud.json").read_text())
    model = exact_from_documents([doc, json.loads((TAGS_DIR / "Storage.WestEurope.json").read_text())])
    assert _decide(model, "AzureCloud", first_address("Storage.WestEurope")) is Verdict.DENIED


# --------------------------------------------------------------------------- document forms and errors


def test_weekly_file_form_and_list_form() -> None:
    weekly = {"changeNumber": 1, "values": [{"name": "Foo", "properties": {"addressPrefixes": ["192.0.2.0/24"]}}]}
    single = {"name": "Bar", "id": "Bar", "properties": {"addressPrefixes": ["198.51.100.0/24", "2001:db8::/32"]}}
    model = exact_from_documents([weekly, [single]])
    assert model.prefixes_of("foo") == (ipaddress.ip_network("192.0.2.0/24"),)
    assert model.prefixes_of("BAR") == (ipaddress.ip_network("198.51.100.0/24"), ipaddress.ip_network("2001:db8::/32"))


def test_rest_service_tags_list_example_parses() -> None:
    body = json.loads((ROOT / "reference" / "arm-rest-spec" / "ServiceTagsList.json").read_text())
    model = exact_from_documents([body["responses"]["200"]["body"]])
    assert model.exact


def test_same_tag_twice_is_joined() -> None:
    a = {"name": "Foo", "properties": {"addressPrefixes": ["192.0.2.0/25"]}}
    b = {"name": "foo", "properties": {"addressPrefixes": ["192.0.2.128/25"]}}
    assert len(exact_from_documents([a, b]).prefixes_of("Foo") or ()) == 2


@pytest.mark.parametrize(
    ("doc", "message", "where"),
    [
        ({"values": []}, "no service tag entries", "tags"),
        ("text", "expected a JSON object or list", "tags[0]"),
        ({"values": [1]}, "must be an object", "tags[0].values[0]"),
        ({"name": "Foo"}, "needs 'name' and 'properties'", "tags[0]"),
        ({"name": "Foo", "properties": {}}, "addressPrefixes", "tags[0]"),
        (
            {"name": "Foo", "properties": {"addressPrefixes": ["1.2.3.0/24", "not-an-ip"]}},
            "not an address prefix: 'not-an-ip'",
            "tags[0].properties.addressPrefixes[1]",
        ),
    ],
)
def test_errors_name_what_and_where(doc: object, message: str, where: str) -> None:
    with pytest.raises(InputError, match=message) as err:
        exact_from_documents([doc], where="tags")
    assert where in str(err.value)


def test_prefix_query_on_exact_tag_data_is_aligned() -> None:
    # A query naming a published prefix and a rule naming the tag share atoms.
    net = (exact_model().prefixes_of("Storage.WestEurope") or ())[0]
    rules = [rule("D", 100, access="Deny", dst="Storage")]
    query = Flows(Protocol.TCP, (addr("*"),), (Prefix(net),))
    u = Universe.of(EvaluationContext(tags=exact_model()), rules, [query])
    v = evaluate_rules(u, ordered_rules(rules, Direction.OUTBOUND), u.flows(query))
    assert v.verdict is Verdict.DENIED
