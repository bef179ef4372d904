"""Azure Resource Manager events from Event Grid: parse, filter, attribute.

Event Grid delivers at least once and in no order, and real senders vary:
``claims`` and ``authorization`` arrive as objects or as JSON strings, keys
differ in case, optional fields are missing. The deployed subscription asks for
the Event Grid schema (infra/app/eventgrid-subscription.bicep), so a CloudEvents
1.0 event is refused, saying so. Everything here is pure (no I/O): the trigger turns
the delivery into a dict, :func:`parse_event` turns that into a
:class:`ResourceEvent` or raises :class:`~remediation.errors.InputError`
naming the event id, and the handler asks :func:`is_relevant`,
:func:`affected_ids` and :func:`is_own_write`. The event body is never
trusted as the resource's state; the handler re-reads ARM.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from remediation.errors import InputError, ScopeError
from remediation.model import resource_id_part
from remediation.resource_id import SECURITY_RULE, ResourceId

WRITE_SUCCESS = "Microsoft.Resources.ResourceWriteSuccess"
DELETE_SUCCESS = "Microsoft.Resources.ResourceDeleteSuccess"
RELEVANT_EVENT_TYPES = frozenset(t.lower() for t in (WRITE_SUCCESS, DELETE_SUCCESS))

# Claim names as Entra ID tokens carry them (v1 tokens use the long URIs in
# some senders' payloads, the short names in others).
_OID_CLAIMS = ("oid", "http://schemas.microsoft.com/identity/claims/objectidentifier")
_APPID_CLAIMS = ("appid", "azp")
_UPN_CLAIMS = ("upn", "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn", "unique_name", "email")
_NAME_CLAIMS = ("name", "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name")

# Operation prefixes (lower case) that can change what an NSG lets through,
# with what the affected resource id is cut down to.
_NSG = "microsoft.network/networksecuritygroups/"
_SUBNET = "microsoft.network/virtualnetworks/subnets/"
_VNET = "microsoft.network/virtualnetworks/"
_NIC = "microsoft.network/networkinterfaces/"
_RELEVANT_SUFFIXES = ("/write", "/delete")
# The path beyond the NSGs (remediation/paths.py): a change can move any subnet's path.
_PATHS = {
    "microsoft.network/routetables/": "routeTable",
    "microsoft.network/azurefirewalls/": "azureFirewall",
    "microsoft.network/firewallpolicies/": "firewallPolicy",
    "microsoft.network/ipgroups/": "ipGroup",
}


class ResourceKind(StrEnum):
    """What an event's resource is, as :func:`resource_kind` names it."""

    NSG = "nsg"
    SECURITY_RULE = "securityRule"
    SUBNET = "subnet"
    VNET = "virtualNetwork"
    NIC = "networkInterface"
    #: Route tables (and their routes), Azure Firewalls, firewall policies (and their rule
    #: collection groups), IP groups: judged by remediation/paths.py, never written.
    ROUTE_TABLE = "routeTable"
    FIREWALL = "azureFirewall"
    FIREWALL_POLICY = "firewallPolicy"
    IP_GROUP = "ipGroup"


@dataclass(frozen=True, slots=True)
class Caller:
    """Who made the change, from the event's token claims (any may be missing)."""

    object_id: str | None = None
    app_id: str | None = None
    upn: str | None = None
    name: str | None = None

    def describe(self) -> str:
        """The most human name available, for alerts and the audit trail."""
        return self.upn or self.name or self.app_id or self.object_id or "unknown caller"


@dataclass(frozen=True, slots=True)
class OwnIdentity:
    """This deployment's own identity (the remediator's managed identity), whose writes are not drift.

    ``principal_id`` is its object id (the ``oid`` claim), ``client_id`` its application id
    (``appid``/``azp``); either may be empty when not configured.
    """

    principal_id: str = ""
    client_id: str = ""


@dataclass(frozen=True, slots=True)
class ResourceEvent:
    """One resource event (Event Grid schema), normalised.

    ``claims`` has lower-cased keys and string values; ``resource_uri`` is the
    resource written or deleted (``data.resourceUri``, else the subject).
    """

    id: str
    event_type: str
    subject: str
    resource_uri: str
    operation_name: str
    subscription_id: str
    event_time: datetime | None = None
    status: str = ""
    correlation_id: str = ""
    claims: Mapping[str, str] = field(default_factory=dict, hash=False)
    authorization_action: str = ""

    def claim(self, *names: str) -> str | None:
        """The first non-empty claim among ``names`` (case-insensitive)."""
        for name in names:
            value = self.claims.get(name.lower())
            if value:
                return value
        return None


def parse_event(obj: Any, *, subscription_id: str | None = None) -> ResourceEvent:
    """Normalise one event (Event Grid schema).

    Raises InputError naming the event id when the event is unusable, and
    ScopeError when ``subscription_id`` is given and the event's resource is in
    another subscription (a misrouted subscription must not make us act
    elsewhere).
    """
    try:
        return _parse_event(obj, subscription_id=subscription_id)
    except RecursionError:
        # A field nested thousands deep (or a JSON string of one): unusable, not a crash.
        raise InputError("event is nested too deeply to read", where="event <unknown id>") from None


def _parse_event(obj: Any, *, subscription_id: str | None) -> ResourceEvent:
    if isinstance(obj, str | bytes):
        try:
            obj = json.loads(obj)
        except ValueError as exc:
            raise InputError(f"event is not JSON: {exc}", where="event <unknown id>") from None
    if not isinstance(obj, Mapping):
        raise InputError(f"event must be a JSON object, not {type(obj).__name__}", where="event <unknown id>")
    event_id = _text(_get(obj, "id"))
    if not _unicode(event_id):
        # Event Grid's own ids are GUIDs; a lone surrogate ("bad\ud800id") is a forged event no store can
        # record (UTF-8 has no encoding for it): dropped here, once, with a clear log line.
        raise InputError("event id is not valid Unicode (a lone surrogate)", where=f"event {ascii(event_id)[:200]}")
    where = f"event {event_id or '<unknown id>'}"
    if not event_id:
        raise InputError("event has no id", where=where)

    if _get(obj, "specversion") is not None:
        raise InputError(
            "a CloudEvents 1.0 event; the subscription delivers the Event Grid schema (EventGridSchema)", where=where
        )
    event_type = _text(_get(obj, "eventType"))
    if not event_type:
        raise InputError("event has no eventType", where=where)
    data = _as_object(_get(obj, "data"), "data", where) or {}
    claims_obj = _as_object(_get(data, "claims"), "data.claims", where) or {}
    authorization = _as_object(_get(data, "authorization"), "data.authorization", where) or {}

    subject = _text(_get(obj, "subject"))
    resource_uri = _text(_get(data, "resourceUri")) or subject
    operation = _text(_get(data, "operationName")) or _text(_get(authorization, "action"))
    if not resource_uri:
        raise InputError("event names no resource (data.resourceUri and subject are empty)", where=where)

    uri_subscription = resource_id_part(resource_uri, "subscriptions").lower()
    data_subscription = _text(_get(data, "subscriptionId")).lower()
    if uri_subscription and data_subscription and uri_subscription != data_subscription:
        raise InputError(
            f"data.subscriptionId {data_subscription} disagrees with the resource's subscription {uri_subscription}",
            where=where,
        )
    event_subscription = uri_subscription or data_subscription
    if subscription_id is not None and event_subscription != subscription_id.lower():
        raise ScopeError(
            f"{where}: resource {resource_uri} is in subscription {event_subscription or '<none>'}, "
            f"not the configured {subscription_id.lower()}"
        )

    return ResourceEvent(
        id=event_id,
        event_type=event_type,
        subject=subject,
        resource_uri=resource_uri.rstrip("/"),
        operation_name=operation,
        subscription_id=event_subscription,
        event_time=_time(_get(obj, "eventTime")),
        status=_text(_get(data, "status")),
        correlation_id=_text(_get(data, "correlationId")),
        claims={str(k).lower(): _text(v) for k, v in claims_obj.items() if v is not None},
        authorization_action=_text(_get(authorization, "action")),
    )


def resource_kind(event: ResourceEvent) -> ResourceKind | None:
    """Which network resource the event concerns, or None when none we watch."""
    operation = (event.operation_name or event.authorization_action).lower()
    if not operation.endswith(_RELEVANT_SUFFIXES):
        return None
    if operation.startswith(_NSG + "securityrules/"):
        return ResourceKind.SECURITY_RULE
    if operation.startswith(_NSG) and operation.count("/") == 2:
        return ResourceKind.NSG
    if operation.startswith(_SUBNET) and operation.count("/") == 3:
        return ResourceKind.SUBNET
    if operation.startswith(_VNET) and operation.count("/") == 2:
        # A VNet PUT carries its subnets, so it can attach or detach NSGs.
        return ResourceKind.VNET
    if operation.startswith(_NIC) and operation.count("/") == 2:
        return ResourceKind.NIC
    for prefix, kind in _PATHS.items():
        if operation.startswith(prefix):
            return ResourceKind(kind)
    return None


PATH_KINDS = frozenset(
    {ResourceKind.ROUTE_TABLE, ResourceKind.FIREWALL, ResourceKind.FIREWALL_POLICY, ResourceKind.IP_GROUP}
)


def is_path_resource_id(resource_id: str) -> bool:
    """True for the id of a route table, Azure Firewall, firewall policy or IP group (or a child of one)."""
    lowered = resource_id.lower()
    return any(f"/providers/{prefix}" in lowered for prefix in _PATHS)


def is_relevant(event: ResourceEvent) -> bool:
    """True for a successful write/delete of an NSG, rule, VNet, subnet or NIC, or of what lies on the path."""
    return event.event_type.lower() in RELEVANT_EVENT_TYPES and resource_kind(event) is not None


def affected_ids(event: ResourceEvent) -> tuple[str, ...]:
    """The resource ids to reconcile: the NSG for NSG and rule events, else the subnet, VNet or NIC."""
    kind = resource_kind(event)
    if kind is None:
        return ()
    uri = event.resource_uri
    if kind == ResourceKind.SECURITY_RULE:
        rule = ResourceId.try_parse(uri)
        nsg = rule.parent if rule is not None and rule.is_a(SECURITY_RULE) else None
        return (str(nsg) if nsg is not None else uri,)
    return (uri,)


def caller(event: ResourceEvent) -> Caller:
    return Caller(
        object_id=event.claim(*_OID_CLAIMS),
        app_id=event.claim(*_APPID_CLAIMS),
        upn=event.claim(*_UPN_CLAIMS),
        name=event.claim(*_NAME_CLAIMS),
    )


def is_own_write(event: ResourceEvent, own: OwnIdentity) -> bool:
    """True when the event's caller is this deployment's own identity (so it never loops)."""
    who = caller(event)
    principal = own.principal_id.lower()
    client = own.client_id.lower()
    if principal and who.object_id and who.object_id.lower() == principal:
        return True
    return bool(client and who.app_id and who.app_id.lower() == client)


def _get(obj: Mapping[str, Any], name: str) -> Any:
    """A field by name, exact first, then case-insensitively (senders differ)."""
    if name in obj:
        return obj[name]
    lowered = name.lower()
    for key, value in obj.items():
        if isinstance(key, str) and key.lower() == lowered:
            return value
    return None


def _as_object(value: Any, name: str, where: str) -> Mapping[str, Any] | None:
    """An object, or a JSON string holding one (some senders encode claims so)."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise InputError(f"{name} is a string but not JSON", where=where) from None
    if not isinstance(value, Mapping):
        raise InputError(f"{name} must be an object, not {type(value).__name__}", where=where)
    return value


def _unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)


def _time(value: Any) -> datetime | None:
    """ISO 8601 event time; unparseable times are dropped, not fatal (only ordering hints use them)."""
    text = _text(value)
    if not text:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None
