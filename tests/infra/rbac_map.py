"""Map an ARM request to the Azure RBAC action that authorises it.

The integration tests record every request the ARM adapter sends to the
local emulator; :func:`action_for` turns each into the action Azure would
check, and :func:`is_covered` says whether a role's action list allows it.
That proves the custom role in ``infra/app/remediator-role-actions.json``
is enough for what the code really does, not just for what we think it does.

ARM's rule, which this follows: the action is the resource provider
namespace, the resource type chain (every type segment of the path after the
last ``/providers/``, names dropped) and a verb: ``read`` for GET/HEAD,
``write`` for PUT/PATCH, ``delete`` for DELETE, and for POST the trailing
segment followed by ``/action`` (``.../ipFlowVerify/action``). A GET on a
collection (``.../networkSecurityGroups``) is a ``read`` of that type, and
polling ``.../locations/{loc}/operations/{id}`` is
``Microsoft.Network/locations/operations/read``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlsplit

__all__ = ["ROLE_ACTIONS_FILE", "RbacMapError", "action_for", "is_covered", "role_actions", "uncovered"]

ROLE_ACTIONS_FILE = Path(__file__).resolve().parents[2] / "infra" / "app" / "remediator-role-actions.json"

_VERBS = {"GET": "read", "HEAD": "read", "PUT": "write", "PATCH": "write", "DELETE": "delete"}

# ARM paths are case-insensitive and SDKs, the emulator and Event Grid all
# spell them differently; RBAC actions are compared case-insensitively too,
# but canonical spelling makes test failures readable.
_CANONICAL = {
    name.lower(): name
    for name in (
        "Microsoft.Network",
        "Microsoft.Resources",
        "networkSecurityGroups",
        "securityRules",
        "defaultSecurityRules",
        "virtualNetworks",
        "subnets",
        "networkInterfaces",
        "locations",
        "operations",
        "operationResults",
        "serviceTags",
        "networkWatchers",
        "ipFlowVerify",
        "routeTables",
        "routes",
        "azureFirewalls",
        "firewallPolicies",
        "ruleCollectionGroups",
        "ipGroups",
        "natGateways",
        "subscriptions",
        "resourceGroups",
    )
}


class RbacMapError(ValueError):
    """A request that does not look like an ARM resource request."""


def _canon(segment: str) -> str:
    return _CANONICAL.get(segment.lower(), segment)


def action_for(method: str, path: str) -> str:
    """The RBAC action ARM checks for ``method`` on ``path``.

    ``path`` may be a full URL and may carry a query string. Raises
    :class:`RbacMapError` naming the request when it is not an ARM path.
    """
    verb_method = method.strip().upper()
    where = f"{method} {path}"
    raw_path = urlsplit(path).path if "://" in path else path.split("?", 1)[0]
    segments = [s for s in raw_path.split("/") if s]
    if not segments or segments[0].lower() != "subscriptions" or len(segments) < 2:
        raise RbacMapError(f"not an ARM path under /subscriptions/{{id}}: {where!r}")
    lowered = [s.lower() for s in segments]
    if "providers" in lowered:
        at = len(lowered) - 1 - lowered[::-1].index("providers")
        rest = segments[at + 1 :]
        if not rest:
            raise RbacMapError(f"nothing after /providers/: {where!r}")
        namespace, chain = _canon(rest[0]), rest[1:]
        if not chain:
            raise RbacMapError(f"no resource type after the provider namespace: {where!r}")
    else:
        # Only Microsoft.Resources lives without a /providers/ segment:
        # /subscriptions/{id}[/resourceGroups[/{rg}]].
        namespace, chain = "Microsoft.Resources", segments
    types = [_canon(s) for s in chain[0::2]]
    has_name = len(chain) % 2 == 0
    if verb_method == "POST":
        if has_name:
            raise RbacMapError(f"POST must end in an action segment, not a resource name: {where!r}")
        return "/".join([namespace, *types, "action"])
    verb = _VERBS.get(verb_method)
    if verb is None:
        raise RbacMapError(f"unknown HTTP method {method!r} in {where!r}")
    if not has_name and verb != "read":
        raise RbacMapError(f"{verb_method} on a collection is not an ARM operation: {where!r}")
    return "/".join([namespace, *types, verb])


def _pattern(allowed: str) -> re.Pattern[str]:
    # RBAC wildcards: '*' matches any run of characters, '/' included.
    return re.compile("^" + ".*".join(re.escape(p) for p in allowed.split("*")) + "$", re.IGNORECASE)


def is_covered(action: str, allowed: Iterable[str], denied: Iterable[str] = ()) -> bool:
    """Whether ``action`` is granted by ``allowed`` minus ``denied`` (actions, notActions)."""
    if any(_pattern(d).match(action) for d in denied):
        return False
    return any(_pattern(a).match(action) for a in allowed)


def uncovered(requests: Iterable[tuple[str, str]], allowed: Iterable[str]) -> list[tuple[str, str, str]]:
    """The (method, path, action) of every request the role does not allow."""
    allowed_list = list(allowed)
    missing = []
    for method, path in requests:
        action = action_for(method, path)
        if not is_covered(action, allowed_list):
            missing.append((method, path, action))
    return missing


def role_actions(*, service_endpoint_repair: bool = False) -> list[str]:
    """The custom role's actions as Bicep deploys them (repair actions only when enabled)."""
    doc = json.loads(ROLE_ACTIONS_FILE.read_text(encoding="utf-8"))
    actions = list(doc["actions"])
    if service_endpoint_repair:
        actions += doc["serviceEndpointRepairActions"]
    return actions
