"""What a reconcile covers: a subscription, a resource group or one NSG.

Parsed once from the operator's text (HTTP body, ``--scope``), checked
against the configured subscription, then used to select resources by id.
ARM ids are case-insensitive, so every comparison here is too.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass

from remediation.errors import InputError, ScopeError
from remediation.model import resource_id_part

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_NSG_PROVIDER = "providers/microsoft.network/networksecuritygroups"


@dataclass(frozen=True, slots=True)
class Scope:
    subscription_id: str
    resource_group: str | None = None
    nsg_name: str | None = None

    @property
    def id(self) -> str:
        text = f"/subscriptions/{self.subscription_id}"
        if self.resource_group:
            text += f"/resourceGroups/{self.resource_group}"
        if self.nsg_name:
            text += f"/providers/Microsoft.Network/networkSecurityGroups/{self.nsg_name}"
        return text

    @property
    def kind(self) -> str:
        if self.nsg_name:
            return "nsg"
        return "resourceGroup" if self.resource_group else "subscription"

    def contains(self, resource_id: str) -> bool:
        """True when ``resource_id`` lies inside this scope."""
        if resource_id_part(resource_id, "subscriptions").lower() != self.subscription_id:
            return False
        if (
            self.resource_group
            and resource_id_part(resource_id, "resourceGroups").lower() != self.resource_group.lower()
        ):
            return False
        if self.nsg_name:
            return resource_id_part(resource_id, "networkSecurityGroups").lower() == self.nsg_name.lower()
        return True


def parse_scope(text: str | None, *, subscription_id: str) -> Scope:
    """Parse a scope; empty means the configured subscription.

    Raises InputError for text that is no subscription, resource group or NSG
    id, and ScopeError for one outside ``subscription_id``.
    """
    configured = subscription_id.lower()
    raw = (text or "").strip()
    if not raw:
        if not configured:
            raise InputError("no scope given and AZURE_SUBSCRIPTION_ID is not set", where="scope")
        return Scope(configured)
    if _GUID.match(raw):
        raw = f"/subscriptions/{raw}"
    parts = raw.strip("/").split("/")
    lowered = [p.lower() for p in parts]
    shape_ok = (
        len(parts) in (2, 4, 8)
        and lowered[0] == "subscriptions"
        and (len(parts) == 2 or lowered[2] == "resourcegroups")
        and (len(parts) != 8 or "/".join(lowered[4:7]) == _NSG_PROVIDER)
        and all(parts)
    )
    if not shape_ok:
        raise InputError(
            f"{text!r} is not a subscription, resource group or network security group id "
            "(/subscriptions/<id>[/resourceGroups/<rg>[/providers/Microsoft.Network/networkSecurityGroups/<nsg>]])",
            where="scope",
        )
    sub = lowered[1]
    if not _GUID.match(sub):
        raise InputError(f"{parts[1]!r} is not a subscription GUID", where="scope")
    if configured and sub != configured:
        raise ScopeError(f"scope {raw} is outside the configured subscription {configured}")
    return Scope(
        subscription_id=sub,
        resource_group=parts[3] if len(parts) >= 4 else None,
        nsg_name=parts[7] if len(parts) == 8 else None,
    )


def within(scopes: Collection[str] | None) -> Callable[[str], bool]:
    """Whether a resource id is one of ``scopes`` or lies under one (None: everything does).

    The scopes are prepared once: an event's alerts test thousands of ids against a few.
    """
    if scopes is None:
        return lambda resource_id: True
    exact = {scope.lower().rstrip("/") for scope in scopes if scope.strip("/")}
    under = tuple(prefix + "/" for prefix in exact)

    def test(resource_id: str) -> bool:
        rid = resource_id.lower().rstrip("/")
        return rid in exact or rid.startswith(under)

    return test
