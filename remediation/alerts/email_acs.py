"""Email through Azure Communication Services, authenticated by a credential (managed identity).

Imports the Azure SDK: import this module only when ACS email is configured.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from azure.communication.email import EmailClient
from azure.core.credentials import TokenCredential
from azure.core.exceptions import AzureError

from remediation.alerts.email_body import email_content
from remediation.alerts.redact import DeliveryError, redact
from remediation.ports import Alert


def acs_message(alert: Alert, sender: str, recipients: Sequence[str]) -> dict[str, Any]:
    """The ACS Email send request body."""
    content = email_content(alert)
    message: dict[str, Any] = {
        "senderAddress": sender,
        "recipients": {"to": [{"address": address} for address in recipients]},
        "content": {"subject": content.subject, "plainText": content.text, "html": content.html},
    }
    if alert.fingerprint:
        message["headers"] = {"X-Lockdown-Fingerprint": alert.fingerprint}
    return message


class AcsEmailSink:
    """An :class:`~remediation.ports.AlertSink` sending with ``azure-communication-email``.

    ``client_options`` go to ``EmailClient`` (tests pass ``connection_verify``
    for their local CA); ``timeout`` bounds the wait for the send operation.
    """

    name = "email-acs"
    #: The SDK's retry policy (429, 5xx, lost connections; Retry-After honoured) is the channel's only one.
    retries_itself = True

    def __init__(
        self,
        *,
        endpoint: str,
        credential: TokenCredential,
        sender: str,
        recipients: Sequence[str],
        timeout: float = 60.0,
        polling_interval: float = 2.0,
        **client_options: Any,
    ) -> None:
        if not recipients:
            raise ValueError("ACS email sink needs at least one recipient")
        self._endpoint = endpoint
        self._sender = sender
        self._recipients = tuple(recipients)
        self._timeout = timeout
        self._polling_interval = polling_interval
        self._client = EmailClient(
            endpoint, credential, retry_total=3, connection_timeout=10, read_timeout=30, **client_options
        )

    def send(self, alert: Alert) -> None:
        where = f"ACS email {self._endpoint}"
        try:
            poller = self._client.begin_send(
                acs_message(alert, self._sender, self._recipients), polling_interval=self._polling_interval
            )
            result = poller.result(timeout=self._timeout)
        except AzureError as exc:
            first_line = (exc.message or "").strip().split("\n", 1)[0]
            raise DeliveryError(redact(f"{where}: {type(exc).__name__}: {first_line}")) from None
        if not poller.done():
            raise DeliveryError(f"{where}: send not finished after {self._timeout:g}s")
        status = str((result or {}).get("status", "unknown"))
        if status != "Succeeded":
            error = (result or {}).get("error") or {}
            raise DeliveryError(redact(f"{where}: send ended {status}: {error.get('message', '')}".rstrip(": ")))
