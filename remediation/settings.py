"""App settings: read from the environment and validated once, here.

:class:`Settings` is a pydantic-settings model: each field names its app setting
(``validation_alias``), its default, what it is for (``description``) and the check it must
pass. :data:`SETTING_NAMES` lists every app setting the code reads; the infra tests check that
Bicep sets each of them. Secrets (webhook URL, SMTP password, connection string) are
:class:`~pydantic.SecretStr`, so they never print. A bad value raises :class:`SettingsError`
naming the setting and what was wrong.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import BeforeValidator, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

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


# The checks below raise SettingsError, not ValueError: pydantic lets it through unchanged, so
# the error keeps today's wording and names the app setting (pydantic's would name the field).


def _https(name: str, *, allow_loopback_http: bool = False) -> BeforeValidator:
    def check(value: Any) -> Any:
        url = value.get_secret_value() if isinstance(value, SecretStr) else str(value)
        if not url:
            return value
        parts = urlsplit(url)
        if parts.scheme == "https" and parts.hostname:
            return value
        loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
        if allow_loopback_http and parts.scheme == "http" and loopback:
            return value
        raise SettingsError("must be an https:// URL", where=name)

    return BeforeValidator(check)


def _integer(name: str, low: int, high: int) -> BeforeValidator:
    def check(value: Any) -> int:
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise SettingsError(f"not an integer: {value!r}", where=name) from None
        if not low <= number <= high:
            raise SettingsError(f"must be between {low} and {high}, not {number}", where=name)
        return number

    return BeforeValidator(check)


def _positive(name: str) -> BeforeValidator:
    def check(value: Any) -> float:
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise SettingsError(f"not a number: {value!r}", where=name) from None
        if not number > 0:
            raise SettingsError(f"must be positive, not {value!r}", where=name)
        return number

    return BeforeValidator(check)


def _boolean(name: str) -> BeforeValidator:
    def check(value: Any) -> bool:
        if isinstance(value, bool):
            return value
        lowered = str(value).lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise SettingsError(f"not a boolean: {value!r}", where=name)

    return BeforeValidator(check)


def _choice(name: str, kind: type[StrEnum], valid: str) -> BeforeValidator:
    def check(value: Any) -> StrEnum:
        try:
            return kind(str(value).lower())
        except ValueError:
            raise SettingsError(f"must be {valid}, not {value!r}", where=name) from None

    return BeforeValidator(check)


def _matching(name: str, pattern: re.Pattern[str], what: str) -> BeforeValidator:
    def check(value: Any) -> str:
        text = str(value).lower()
        if text and not pattern.match(text):
            raise SettingsError(f"{what}: {value!r}", where=name)
        return text

    return BeforeValidator(check)


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _addresses(value: Any) -> Any:
    return tuple(a.strip() for a in value.split(",") if a.strip()) if isinstance(value, str) else value


def _no_trailing_slash(value: Any) -> Any:
    return value.rstrip("/") if isinstance(value, str) else value


_SEVERITIES = "one of " + ", ".join(s.value for s in Severity)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(frozen=True, populate_by_name=True, extra="forbid")

    subscription_id: Annotated[str, _matching("AZURE_SUBSCRIPTION_ID", _GUID, "not a subscription GUID")] = Field(
        "", validation_alias="AZURE_SUBSCRIPTION_ID", description="the subscription this deployment guards"
    )
    client_id: str = Field(
        "", validation_alias="AZURE_CLIENT_ID", description="client id of the user-assigned managed identity"
    )
    remediator_principal_id: Annotated[str, BeforeValidator(_lower)] = Field(
        "",
        validation_alias="REMEDIATOR_PRINCIPAL_ID",
        description="object id of that identity, to recognise its own writes",
    )
    arm_endpoint: Annotated[str, BeforeValidator(_no_trailing_slash), _https("ARM_ENDPOINT")] = Field(
        DEFAULT_ARM_ENDPOINT,
        validation_alias="ARM_ENDPOINT",
        description="Resource Manager endpoint (sovereign clouds, the emulator)",
    )
    mode: Annotated[Mode, _choice("REMEDIATION_MODE", Mode, "'enforce' or 'audit'")] = Field(
        Mode.AUDIT, validation_alias="REMEDIATION_MODE", description="enforce (restore rules) or audit (alert only)"
    )
    event_coalesce_seconds: Annotated[float, _positive("EVENT_COALESCE_SECONDS")] = Field(
        DEFAULT_EVENT_COALESCE_SECONDS,
        validation_alias="EVENT_COALESCE_SECONDS",
        description="seconds NIC events wait to be read together (NSG and subnet events never wait)",
    )
    lockdown_tag: str = Field(
        DEFAULT_LOCKDOWN_TAG,
        validation_alias="LOCKDOWN_TAG",
        description="the NSG tag that marks managed NSGs and their role",
    )
    baseline_path: str = Field(
        "", validation_alias="BASELINE_PATH", description="optional operator baseline YAML replacing the shipped one"
    )
    service_tags_path: str = Field(
        "", validation_alias="SERVICE_TAGS_PATH", description="optional service-tags JSON for exact address evaluation"
    )
    service_tags_location: Annotated[
        str,
        _matching(
            "SERVICE_TAGS_LOCATION",
            _REGION,
            "not an Azure region name (lower-case letters and digits, e.g. westeurope)",
        ),
    ] = Field(
        "",
        validation_alias="SERVICE_TAGS_LOCATION",
        description="region whose Service Tags API answer gives exact addresses (empty: off)",
    )
    service_tags_refresh_hours: Annotated[float, _positive("SERVICE_TAGS_REFRESH_HOURS")] = Field(
        24.0,
        validation_alias="SERVICE_TAGS_REFRESH_HOURS",
        description="hours before the Service Tags API answer is fetched again",
    )
    service_endpoint_repair: Annotated[bool, _boolean("SERVICE_ENDPOINT_REPAIR")] = Field(
        False,
        validation_alias="SERVICE_ENDPOINT_REPAIR",
        description="true to add missing service endpoints to managed subnets (subnet write; off)",
    )
    teams_webhook_url: Annotated[SecretStr, _https("TEAMS_WEBHOOK_URL", allow_loopback_http=True)] = Field(
        SecretStr(""), validation_alias="TEAMS_WEBHOOK_URL", description="Teams Workflows webhook (secret)"
    )
    email_to: Annotated[tuple[str, ...], BeforeValidator(_addresses)] = Field(
        (), validation_alias="ALERT_EMAIL_TO", description="comma-separated alert recipients"
    )
    email_from: str = Field("", validation_alias="ALERT_EMAIL_FROM", description="sender address")
    acs_endpoint: str = Field(
        "", validation_alias="ACS_ENDPOINT", description="Azure Communication Services endpoint for email"
    )
    smtp_host: str = Field("", validation_alias="SMTP_HOST", description="SMTP relay host")
    smtp_port: Annotated[int, _integer("SMTP_PORT", 1, 65535)] = Field(
        587, validation_alias="SMTP_PORT", description="SMTP relay port"
    )
    smtp_username: str = Field("", validation_alias="SMTP_USERNAME", description="SMTP login")
    smtp_password: SecretStr = Field(
        SecretStr(""), validation_alias="SMTP_PASSWORD", description="SMTP password (secret)"
    )
    smtp_starttls: Annotated[bool, _boolean("SMTP_STARTTLS")] = Field(
        True, validation_alias="SMTP_STARTTLS", description="true to require STARTTLS"
    )
    reminder_hours: Annotated[float, _positive("ALERT_REMINDER_HOURS")] = Field(
        24.0, validation_alias="ALERT_REMINDER_HOURS", description="hours between reminders for a persisting finding"
    )
    min_severity_teams: Annotated[Severity, _choice("ALERT_MIN_SEVERITY_TEAMS", Severity, _SEVERITIES)] = Field(
        Severity.INFO, validation_alias="ALERT_MIN_SEVERITY_TEAMS", description="lowest severity sent to Teams"
    )
    min_severity_email: Annotated[Severity, _choice("ALERT_MIN_SEVERITY_EMAIL", Severity, _SEVERITIES)] = Field(
        Severity.HIGH, validation_alias="ALERT_MIN_SEVERITY_EMAIL", description="lowest severity sent by email"
    )
    state_table_endpoint: str = Field(
        "",
        validation_alias="STATE_TABLE_ENDPOINT",
        description="Table Storage endpoint of the Function's storage account",
    )
    state_connection_string: SecretStr = Field(
        SecretStr(""),
        validation_alias="STATE_CONNECTION_STRING",
        description="connection string instead (local development, Azurite; secret)",
    )
    state_table_prefix: str = Field(
        "lockdown", validation_alias="STATE_TABLE_PREFIX", description="prefix of the state tables' names"
    )
    state_retention_days: Annotated[int, _integer("STATE_RETENTION_DAYS", 1, 3650)] = Field(
        DEFAULT_STATE_RETENTION_DAYS,
        validation_alias="STATE_RETENTION_DAYS",
        description="days processed event ids and resolved alert states are kept (the sweep prunes older)",
    )
    log_analytics_workspace_id: str = Field(
        "", validation_alias="LOG_ANALYTICS_WORKSPACE_ID", description="workspace for evidence (actors, denied flows)"
    )
    logs_endpoint: Annotated[str, _https("LOGS_ENDPOINT", allow_loopback_http=True)] = Field(
        "", validation_alias="LOGS_ENDPOINT", description="Logs query endpoint (sovereign clouds, local tests)"
    )
    http_auth: Annotated[HttpAuth, _choice("HTTP_AUTH", HttpAuth, "entra or key")] = Field(
        HttpAuth.KEY,
        validation_alias="HTTP_AUTH",
        description="entra when App Service authentication (Entra ID) fronts the HTTP functions, else key",
    )

    @model_validator(mode="after")
    def _one_source_of_service_tags(self) -> Settings:
        if self.service_tags_path and self.service_tags_location:
            # Two sources of truth would silently disagree; the operator must pick one.
            raise SettingsError(
                "set either SERVICE_TAGS_PATH (a file) or SERVICE_TAGS_LOCATION (the Service Tags API), not both",
                where="SERVICE_TAGS_PATH, SERVICE_TAGS_LOCATION",
            )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Only what is passed: Settings(...) in a test never picks up the process environment,
        # and from_env reads the mapping it is given (os.environ by default).
        return (init_settings,)

    @property
    def arm_scope(self) -> str:
        """Token scope for ARM, derived from the endpoint (sovereign clouds)."""
        return self.arm_endpoint.rstrip("/") + "/.default"

    @property
    def enforce(self) -> bool:
        return self.mode is Mode.ENFORCE

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read and validate; raise SettingsError naming the setting at fault.

        Values are stripped; an empty one means the default."""
        env = os.environ if env is None else env
        given: dict[str, Any] = {name: value for name in _FIELD_SETTINGS if (value := env.get(name, "").strip())}
        return cls(**given)


#: The app settings the Functions host reads itself (``%SWEEP_SCHEDULE%`` in a trigger), not the code.
_HOST_SETTINGS: dict[str, str] = {
    "SWEEP_SCHEDULE": "NCRONTAB schedule of the sweep timer (read by the Functions host: %SWEEP_SCHEDULE%)",
    "DRAIN_SCHEDULE": "NCRONTAB schedule of the timer that handles events a drain left pending (Functions host)",
}
_FIELD_SETTINGS: dict[str, str] = {str(f.validation_alias): f.description or "" for f in Settings.model_fields.values()}
#: Every app setting the code reads, with what it is for.
SETTING_NAMES: dict[str, str] = _FIELD_SETTINGS | _HOST_SETTINGS
