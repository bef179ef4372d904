"""The baseline's ``firewall:`` section: the document's names by default, extensible, validated with line numbers."""

from __future__ import annotations

import pytest

from remediation.baseline import Role
from remediation.baseline_file import load_baseline, parse_baseline_text
from remediation.errors import BaselineError

DOCUMENT = [
    "management.azure.com",
    "login.microsoftonline.com",
    "watson.telemetry.microsoft.com",
    "dc.applicationinsights.azure.com",
    "dc.applicationinsights.microsoft.com",
    "dc.services.visualstudio.com",
    "ratecard.azure-api.net",
]
#: The document's list, as Microsoft's locked-down CycleCloud page gives it (also used by test_paths).
DOCUMENT_NAMES = frozenset(DOCUMENT)
HEAD = "version: 1\nname: t\n"


def test_the_shipped_baseline_lists_the_document_names_as_critical() -> None:
    names = load_baseline(None).firewall_fqdns
    assert [n.fqdn for n in names] == DOCUMENT
    assert all(n.critical and n.port == 443 and n.roles == {Role.CYCLECLOUD} for n in names)
    assert names[0].service_tag == "AzureResourceManager"


def test_a_baseline_without_the_section_gets_the_document_list() -> None:
    assert [n.fqdn for n in parse_baseline_text(HEAD, source="b.yaml").firewall_fqdns] == DOCUMENT


def test_operators_extend_it() -> None:
    text = HEAD + "firewall:\n  fqdns:\n    - {fqdn: management.azure.com, critical: true}\n    - {fqdn: GitHub.com}\n"
    names = parse_baseline_text(text, source="b.yaml").firewall_fqdns
    assert [(n.fqdn, n.critical) for n in names] == [("management.azure.com", True), ("github.com", False)]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("{fqdn: '*.github.com'}", "b.yaml:5: firewall.fqdns[0].fqdn: '*.github.com' is not a host name"),
        ("{fqdn: github.com, port: 70000}", "b.yaml:5: firewall.fqdns[0].port: must be between 1 and 65535"),
        (
            "{fqdn: github.com, service_tag: 10.0.0.0/8}",
            "b.yaml:5: firewall.fqdns[0].service_tag: '10.0.0.0/8' is not a service tag name",
        ),
        ("{fqdn: github.com, roles: [nodes]}", "b.yaml:5: firewall.fqdns[0].roles[0]: unknown role 'nodes'"),
    ],
)
def test_bad_entries_are_named_with_their_line(entry: str, message: str) -> None:
    with pytest.raises(BaselineError) as caught:
        parse_baseline_text(HEAD + f"firewall:\n  fqdns:\n    - {entry}\n", source="b.yaml")
    assert message in str(caught.value)


def test_a_name_listed_twice_is_refused() -> None:
    text = HEAD + "firewall:\n  fqdns:\n    - {fqdn: github.com}\n    - {fqdn: GITHUB.com}\n"
    with pytest.raises(BaselineError, match=r"fqdns\[1\]\.fqdn: 'GITHUB.com' is already listed by fqdns\[0\]"):
        parse_baseline_text(text, source="b.yaml")
