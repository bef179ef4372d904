"""Reconcile scopes: parsing, the configured-subscription check and containment."""

from __future__ import annotations

import pytest

from remediation.errors import InputError, ScopeError
from remediation.scope import Scope, parse_scope

SUB = "00000000-0000-0000-0000-000000000001"
NSG = f"/subscriptions/{SUB}/resourceGroups/RG-CC/providers/Microsoft.Network/networkSecurityGroups/nsg-cc"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, Scope(SUB)),
        ("", Scope(SUB)),
        (SUB, Scope(SUB)),
        (f"/subscriptions/{SUB.upper()}", Scope(SUB)),
        (f"/subscriptions/{SUB}/", Scope(SUB)),
        (f"/subscriptions/{SUB}/resourcegroups/RG-CC", Scope(SUB, "RG-CC")),
        (NSG, Scope(SUB, "RG-CC", "nsg-cc")),
        (NSG.lower(), Scope(SUB, "rg-cc", "nsg-cc")),
    ],
)
def test_valid_scopes(text: str | None, expected: Scope) -> None:
    assert parse_scope(text, subscription_id=SUB) == expected


@pytest.mark.parametrize(
    "text",
    [
        "rg-cc",
        "/subscriptions",
        f"/subscriptions/{SUB}/resourceGroups",
        f"/subscriptions/{SUB}/providers/Microsoft.Network/networkSecurityGroups/x",
        f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v",
        f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Network/networkSecurityGroups/n/securityRules/r",
        "/subscriptions/not-a-guid",
    ],
)
def test_malformed_scopes_are_input_errors(text: str) -> None:
    with pytest.raises(InputError, match="scope"):
        parse_scope(text, subscription_id=SUB)


def test_other_subscription_is_a_scope_error() -> None:
    with pytest.raises(ScopeError, match="outside the configured subscription"):
        parse_scope("/subscriptions/00000000-0000-0000-0000-000000000002", subscription_id=SUB)


def test_no_scope_and_no_subscription_is_an_input_error() -> None:
    with pytest.raises(InputError, match="AZURE_SUBSCRIPTION_ID"):
        parse_scope(None, subscription_id="")


def test_id_round_trips_and_containment_ignores_case() -> None:
    scope = parse_scope(NSG, subscription_id=SUB)
    assert parse_scope(scope.id, subscription_id=SUB) == scope
    assert scope.kind == "nsg"
    assert scope.contains(NSG.upper().replace(SUB.upper(), SUB))
    assert not scope.contains(NSG.replace("nsg-cc", "nsg-cc2"))
    rg = parse_scope(f"/subscriptions/{SUB}/resourceGroups/rg-cc", subscription_id=SUB)
    assert rg.kind == "resourceGroup"
    assert rg.contains(NSG)
    assert not rg.contains(NSG.replace("RG-CC", "rg-other"))
    assert Scope(SUB).contains(NSG)
    assert not Scope(SUB).contains(NSG.replace(SUB, "00000000-0000-0000-0000-000000000002"))
