"""Build the alert channels the settings ask for (only ``cli.py`` and ``function_app.py`` call this)."""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING, Any

from remediation.alerts.dispatch import Channel
from remediation.alerts.email_smtp import SmtpSink
from remediation.alerts.policy import EMAIL_ACS, EMAIL_SMTP, TEAMS, channel_minimums
from remediation.alerts.teams import TeamsSink
from remediation.errors import SettingsError

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from pydantic import SecretStr

    from remediation.settings import Settings


def channels_from_settings(
    settings: Settings,
    *,
    credential: TokenCredential | None = None,
    ssl_context: ssl.SSLContext | None = None,
    acs_options: dict[str, Any] | None = None,
) -> list[Channel]:
    """One channel per configured destination, with its minimum severity.

    ``credential`` (the managed identity) is needed for ACS email;
    ``ssl_context`` verifies the SMTP relay (system CAs by default; the webhook is verified
    against the system's CAs by its HTTP transport).
    """
    channels: list[Channel] = []
    for name, minimum in channel_minimums(settings).items():
        if name == TEAMS:
            channels.append(Channel(TeamsSink(settings.teams_webhook_url), minimum))
        elif name == EMAIL_SMTP:
            sink = SmtpSink(
                host=settings.smtp_host,
                port=settings.smtp_port,
                sender=settings.email_from,
                recipients=settings.email_to,
                username=settings.smtp_username,
                password=settings.smtp_password,
                starttls=settings.smtp_starttls,
                ssl_context=ssl_context,
            )
            channels.append(Channel(sink, minimum))
        elif name == EMAIL_ACS:
            if credential is None:
                raise SettingsError("ACS email needs a credential (the managed identity)", where="ACS_ENDPOINT")
            from remediation.alerts.email_acs import AcsEmailSink  # noqa: PLC0415 - the Azure SDK only when ACS is used

            acs = AcsEmailSink(
                endpoint=settings.acs_endpoint,
                credential=credential,
                sender=settings.email_from,
                recipients=settings.email_to,
                **(acs_options or {}),
            )
            channels.append(Channel(acs, minimum))
    return channels


def secrets_of(settings: Settings) -> list[SecretStr]:
    """The secrets dispatch must mask in every error it records."""
    return [s for s in (settings.teams_webhook_url, settings.smtp_password, settings.state_connection_string) if s]
