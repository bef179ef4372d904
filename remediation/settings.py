"""App settings: read from the environment and validated once, here.

Every setting the code reads is named in :data:`SETTING_NAMES`; the infra
tests check that Bicep sets each of them. Secrets (webhook URL, SMTP
password) are held in :class:`Secret` so they never print.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from urllib.parse import urlsplit

from remediation.errors import SettingsError
from remediation.findings import Severity

DEFAULT_ARM_ENDPOINT = "https://management.azure.com"
#: How long NIC events wait for company before they are read together (a scale-up's NICs).
DEFAULT_EVENT_COALESCE_SECONDS = 10.0
DEFAULT_LOCKDOWN_TAG = "cyclecloud-lockdown"
#: Event Grid retries for at most 24 hours; a week of event ids leaves a wide margin.
DEFAULT_STATE_RETENTION_DAYS = 7

#: Azure region names as ARM spells them in URLs: lower-case letters and digits (westeurope, eastus2).
_REGION = re.compile(r"^[a-z][a-z0-9]{1,39}$")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


class Mode(StrEnum):
    ENFORCE = "enforce"
    AUDIT = "audit"


class HttpAuth(StrEnum):
    """Who vouches for an HTTP caller. ``entra``: App Service authentication (Microsoft Entra ID,
    deployed by infra/app/api.bicep) authenticated the request and set X-MS-CLIENT-PRINCIPAL-*,
    headers a client cannot forge then. ``key``: the function key alone; those headers are
    anyone's to set, so the caller is recorded as the key, never as a header says."""

    ENTRA = "entra"
    KEY = "key"


class Secret:
    """A string that does not show itself in repr, str or logs."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "Secret('***')" if self._value else "Secret('')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


#: Every app setting the code reads, with what it is for.
SETTING_NAMES: dict[str, str] = {
    "AZURE_SUBSCRIPTION_ID": "the subscription this deployment guards",
    "AZURE_CLIENT_ID": "client id of the user-assigned managed identity",
    "REMEDIATOR_PRINCIPAL_ID": "object id of that identity, to recognise its own writes",
    "ARM_ENDPOINT": "Resource Manager endpoint (sovereign clouds, the emulator)",
    "REMEDIATION_MODE": "enforce (restore rules) or audit (alert only)",
    "SWEEP_SCHEDULE": "NCRONTAB schedule of the sweep timer (read by the Functions host: %SWEEP_SCHEDULE%)",
    "DRAIN_SCHEDULE": "NCRONTAB schedule of the timer that handles events a drain left pending (Functions host)",
    "EVENT_COALESCE_SECONDS": "seconds NIC events wait to be read together (NSG and subnet events never wait)",
    "LOCKDOWN_TAG": "the NSG tag that marks managed NSGs and their role",
    "BASELINE_PATH": "optional operator baseline YAML replacing the shipped one",
    "SERVICE_TAGS_PATH": "optional service-tags JSON for exact address evaluation",
    "SERVICE_TAGS_LOCATION": "region whose Service Tags API answer gives exact addresses (empty: off)",
    "SERVICE_TAGS_REFRESH_HOURS": "hours before the Service Tags API answer is fetched again",
    "SERVICE_ENDPOINT_REPAIR": "true to add missing service endpoints to managed subnets (subnet write; off)",
    "TEAMS_WEBHOOK_URL": "Teams Workflows webhook (secret)",
    "ALERT_EMAIL_TO": "comma-separated alert recipients",
    "ALERT_EMAIL_FROM": "sender address",
    "ACS_ENDPOINT": "Azure Communication Services endpoint for email",
    "SMTP_HOST": "SMTP relay host",
    "SMTP_PORT": "SMTP relay port",
    "SMTP_USERNAME": "SMTP login",
    "SMTP_PASSWORD": "SMTP password (secret)",
    "SMTP_STARTTLS": "true to require STARTTLS",
    "ALERT_REMINDER_HOURS": "hours between reminders for a persisting finding",
    "ALERT_MIN_SEVERITY_TEAMS": "lowest severity sent to Teams",
    "ALERT_MIN_SEVERITY_EMAIL": "lowest severity sent by email",
    "STATE_TABLE_ENDPOINT": "Table Storage endpoint of the Function's storage account",
    "STATE_CONNECTION_STRING": "connection string instead (local development, Azurite)",
    "STATE_TABLE_PREFIX": "prefix of the state tables' names",
    "STATE_RETENTION_DAYS": "days processed event ids and resolved alert states are kept (the sweep prunes older)",
    "LOG_ANALYTICS_WORKSPACE_ID": "workspace for evidence (actors, denied flows)",
    "LOGS_ENDPOINT": "Logs query endpoint (sovereign clouds, local tests)",
    "HTTP_AUTH": "entra when App Service authentication (Entra ID) fronts the HTTP functions, else key",
}


@dataclass(frozen=True, slots=True)
class Settings:
    subscription_id: str = ""
    client_id: str = ""
    remediator_principal_id: str = ""
    arm_endpoint: str = DEFAULT_ARM_ENDPOINT
    mode: Mode = Mode.AUDIT
    event_coalesce_seconds: float = DEFAULT_EVENT_COALESCE_SECONDS
    lockdown_tag: str = DEFAULT_LOCKDOWN_TAG
    baseline_path: str = ""
    service_tags_path: str = ""
    service_tags_location: str = ""
    service_tags_refresh_hours: float = 24.0
    service_endpoint_repair: bool = False
    teams_webhook_url: Secret = field(default_factory=lambda: Secret(""))
    email_to: tuple[str, ...] = ()
    email_from: str = ""
    acs_endpoint: str = ""
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_username: str = ""
    smtp_password: Secret = field(default_factory=lambda: Secret(""))
    smtp_starttls: bool = True
    reminder_hours: float = 24.0
    min_severity_teams: Severity = Severity.INFO
    min_severity_email: Severity = Severity.HIGH
    state_table_endpoint: str = ""
    state_connection_string: Secret = field(default_factory=lambda: Secret(""))
    state_table_prefix: str = "lockdown"
    state_retention_days: int = DEFAULT_STATE_RETENTION_DAYS
    log_analytics_workspace_id: str = ""
    logs_endpoint: str = ""
    http_auth: HttpAuth = HttpAuth.KEY

    @property
    def arm_scope(self) -> str:
        """Token scope for ARM, derived from the endpoint (sovereign clouds)."""
        return self.arm_endpoint.rstrip("/") + "/.default"

    @property
    def enforce(self) -> bool:
        return self.mode is Mode.ENFORCE

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read and validate; raise SettingsError naming the setting at fault."""
        env = os.environ if env is None else env

        def get(name: str, default: str = "") -> str:
            return env.get(name, default).strip()

        sub = get("AZURE_SUBSCRIPTION_ID")
        if sub and not _GUID.match(sub):
            raise SettingsError(f"not a subscription GUID: {sub!r}", where="AZURE_SUBSCRIPTION_ID")
        arm = get("ARM_ENDPOINT", DEFAULT_ARM_ENDPOINT) or DEFAULT_ARM_ENDPOINT
        _require_https(arm, "ARM_ENDPOINT")
        mode_text = get("REMEDIATION_MODE", "audit").lower() or "audit"
        try:
            mode = Mode(mode_text)
        except ValueError:
            raise SettingsError(f"must be 'enforce' or 'audit', not {mode_text!r}", where="REMEDIATION_MODE") from None
        webhook = get("TEAMS_WEBHOOK_URL")
        if webhook:
            _require_https(webhook, "TEAMS_WEBHOOK_URL", allow_loopback_http=True)
        tags_path, tags_location = get("SERVICE_TAGS_PATH"), get("SERVICE_TAGS_LOCATION").lower()
        if tags_location and not _REGION.match(tags_location):
            raise SettingsError(
                f"not an Azure region name (lower-case letters and digits, e.g. westeurope): {tags_location!r}",
                where="SERVICE_TAGS_LOCATION",
            )
        if tags_path and tags_location:
            # Two sources of truth would silently disagree; the operator must pick one.
            raise SettingsError(
                "set either SERVICE_TAGS_PATH (a file) or SERVICE_TAGS_LOCATION (the Service Tags API), not both",
                where="SERVICE_TAGS_PATH, SERVICE_TAGS_LOCATION",
            )
        logs = get("LOGS_ENDPOINT")
        if logs:
            _require_https(logs, "LOGS_ENDPOINT", allow_loopback_http=True)
        return cls(
            subscription_id=sub.lower(),
            client_id=get("AZURE_CLIENT_ID"),
            remediator_principal_id=get("REMEDIATOR_PRINCIPAL_ID").lower(),
            arm_endpoint=arm.rstrip("/"),
            mode=mode,
            event_coalesce_seconds=_float(
                get("EVENT_COALESCE_SECONDS") or str(DEFAULT_EVENT_COALESCE_SECONDS), "EVENT_COALESCE_SECONDS"
            ),
            lockdown_tag=get("LOCKDOWN_TAG", DEFAULT_LOCKDOWN_TAG) or DEFAULT_LOCKDOWN_TAG,
            baseline_path=get("BASELINE_PATH"),
            service_tags_path=tags_path,
            service_tags_location=tags_location,
            service_tags_refresh_hours=_float(
                get("SERVICE_TAGS_REFRESH_HOURS", "24") or "24", "SERVICE_TAGS_REFRESH_HOURS"
            ),
            service_endpoint_repair=_bool(
                get("SERVICE_ENDPOINT_REPAIR", "false") or "false", "SERVICE_ENDPOINT_REPAIR"
            ),
            teams_webhook_url=Secret(webhook),
            email_to=tuple(a.strip() for a in get("ALERT_EMAIL_TO").split(",") if a.strip()),
            email_from=get("ALERT_EMAIL_FROM"),
            acs_endpoint=get("ACS_ENDPOINT"),
            smtp_host=get("SMTP_HOST"),
            smtp_port=_int(get("SMTP_PORT", "587") or "587", "SMTP_PORT", 1, 65535),
            smtp_username=get("SMTP_USERNAME"),
            smtp_password=Secret(get("SMTP_PASSWORD")),
            smtp_starttls=_bool(get("SMTP_STARTTLS", "true") or "true", "SMTP_STARTTLS"),
            reminder_hours=_float(get("ALERT_REMINDER_HOURS", "24") or "24", "ALERT_REMINDER_HOURS"),
            min_severity_teams=_severity(get("ALERT_MIN_SEVERITY_TEAMS", "info") or "info", "ALERT_MIN_SEVERITY_TEAMS"),
            min_severity_email=_severity(get("ALERT_MIN_SEVERITY_EMAIL", "high") or "high", "ALERT_MIN_SEVERITY_EMAIL"),
            state_table_endpoint=get("STATE_TABLE_ENDPOINT"),
            state_connection_string=Secret(get("STATE_CONNECTION_STRING")),
            state_table_prefix=get("STATE_TABLE_PREFIX", "lockdown") or "lockdown",
            state_retention_days=_int(
                get("STATE_RETENTION_DAYS") or str(DEFAULT_STATE_RETENTION_DAYS), "STATE_RETENTION_DAYS", 1, 3650
            ),
            log_analytics_workspace_id=get("LOG_ANALYTICS_WORKSPACE_ID"),
            logs_endpoint=logs,
            http_auth=_http_auth(get("HTTP_AUTH", "key") or "key"),
        )


def _require_https(url: str, name: str, *, allow_loopback_http: bool = False) -> None:
    parts = urlsplit(url)
    loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
    if parts.scheme == "https" and parts.hostname:
        return
    if allow_loopback_http and parts.scheme == "http" and loopback:
        return
    raise SettingsError("must be an https:// URL", where=name)


def _int(text: str, name: str, low: int, high: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise SettingsError(f"not an integer: {text!r}", where=name) from None
    if not low <= value <= high:
        raise SettingsError(f"must be between {low} and {high}, not {value}", where=name)
    return value


def _float(text: str, name: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise SettingsError(f"not a number: {text!r}", where=name) from None
    if not value > 0:
        raise SettingsError(f"must be positive, not {text!r}", where=name)
    return value


def _bool(text: str, name: str) -> bool:
    lowered = text.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"not a boolean: {text!r}", where=name)


def _http_auth(text: str) -> HttpAuth:
    try:
        return HttpAuth(text.lower())
    except ValueError:
        raise SettingsError(f"must be entra or key, not {text!r}", where="HTTP_AUTH") from None


def _severity(text: str, name: str) -> Severity:
    try:
        return Severity(text.lower())
    except ValueError:
        valid = ", ".join(s.value for s in Severity)
        raise SettingsError(f"must be one of {valid}, not {text!r}", where=name) from None
