"""Teams through a Workflows webhook ("When a Teams webhook request is received").

Posts the Adaptive Card message with the standard library's HTTP client: it
logs nothing, so the signed URL cannot leak through a library's debug log.
"""

from __future__ import annotations

import ssl
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from remediation.alerts.card import build_message, message_bytes
from remediation.alerts.redact import DeliveryError, redact, safe_url
from remediation.ports import Alert
from remediation.settings import Secret

_MAX_ERROR_BODY = 300


class TeamsSink:
    """An :class:`~remediation.ports.AlertSink` posting to one Workflows webhook."""

    name = "teams"

    def __init__(
        self, webhook_url: Secret, *, timeout: float = 10.0, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        scheme = urlsplit(webhook_url.reveal()).scheme
        if scheme not in ("https", "http"):
            raise ValueError(f"Teams webhook URL must be http(s), not {scheme!r}")
        self._url = webhook_url
        self._timeout = timeout
        self._ssl_context = ssl_context

    def send(self, alert: Alert) -> None:
        url = self._url.reveal()
        where = safe_url(url)
        request = urllib.request.Request(  # noqa: S310 - the scheme is checked in __init__
            url,
            data=message_bytes(build_message(alert)),
            headers={"Content-Type": "application/json; charset=utf-8"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self._timeout, context=self._ssl_context) as response:  # noqa: S310
                status = int(response.status)
        except urllib.error.HTTPError as exc:
            detail = exc.read(_MAX_ERROR_BODY).decode("utf-8", "replace").strip()
            message = f"Teams webhook {where} answered HTTP {exc.code} {exc.reason}: {detail}"
            raise DeliveryError(redact(message, [self._url])) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise DeliveryError(redact(f"Teams webhook {where} unreachable: {reason}", [self._url])) from None
        if not 200 <= status < 300:
            raise DeliveryError(f"Teams webhook {where} answered HTTP {status}")
