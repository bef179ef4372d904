"""Teams through a Workflows webhook ("When a Teams webhook request is received").

Posts the Adaptive Card message through azure-core's ``PipelineClient`` with one policy:
:class:`~remediation.retry.BoundedRetryPolicy`, which retries throttling (429), 408 and 5xx
answers and lost connections with exponential backoff, honouring ``Retry-After`` up to a cap.
That is the channel's only retry policy (the dispatcher calls a sink that retries itself once).
No logging policy is in the pipeline, and the one library below it that logs request lines
(urllib3, at DEBUG) has its query strings masked, so the signed URL never reaches a log.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from azure.core import PipelineClient
from azure.core.exceptions import AzureError
from azure.core.pipeline.transport import RequestsTransport
from azure.core.rest import HttpRequest, HttpResponse

from remediation.alerts.card import build_message, message_bytes
from remediation.alerts.redact import DeliveryError, redact, safe_url
from remediation.ports import Alert
from remediation.retry import BoundedRetryPolicy

if TYPE_CHECKING:
    from pydantic import SecretStr

_MAX_ERROR_BODY = 300
#: azure-core retries a POST on 429 only when told to: such an answer means the message was not taken.
_RETRIED_METHODS = frozenset({"POST"})


class _MaskQueryStrings(logging.Filter):
    """urllib3 logs each request line at DEBUG, query string and so the webhook's signature included."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = redact(record.getMessage()), None
        return True


logging.getLogger("urllib3.connectionpool").addFilter(_MaskQueryStrings())


class TeamsSink:
    """An :class:`~remediation.ports.AlertSink` posting to one Workflows webhook."""

    name = "teams"
    #: The sink retries by itself (its pipeline's retry policy); the dispatcher must not again.
    retries_itself = True

    def __init__(
        self,
        webhook_url: SecretStr,
        *,
        timeout: float = 10.0,
        retry_total: int = 3,
        retry_backoff_factor: float = 2.0,
        retry_backoff_max: float = 30.0,
        max_retry_after: float = 60.0,
    ) -> None:
        parts = urlsplit(webhook_url.get_secret_value())
        if parts.scheme not in ("https", "http"):
            raise ValueError(f"Teams webhook URL must be http(s), not {parts.scheme!r}")
        self._url = webhook_url
        retry = BoundedRetryPolicy(
            max_retry_after=max_retry_after,
            retry_total=retry_total,
            retry_backoff_factor=retry_backoff_factor,
            retry_backoff_max=retry_backoff_max,
        )
        transport = RequestsTransport(connection_timeout=timeout, read_timeout=timeout)
        self._client: PipelineClient[HttpRequest, HttpResponse] = PipelineClient(
            base_url=f"{parts.scheme}://{parts.netloc}", policies=[retry], transport=transport
        )

    def send(self, alert: Alert) -> None:
        url = self._url.get_secret_value()
        where = safe_url(url)
        request = HttpRequest(
            "POST",
            url,
            content=message_bytes(build_message(alert)),
            headers={"Content-Type": "application/json; charset=utf-8"},
        )
        try:
            response = self._client.send_request(request, retry_on_methods=_RETRIED_METHODS)
        except AzureError as exc:
            reason = exc.message.splitlines()[0] if exc.message else type(exc).__name__
            raise DeliveryError(redact(f"Teams webhook {where} unreachable: {reason}", [self._url])) from None
        if not 200 <= response.status_code < 300:
            detail = response.text()[:_MAX_ERROR_BODY].strip()
            message = f"Teams webhook {where} answered HTTP {response.status_code} {response.reason}: {detail}"
            raise DeliveryError(redact(message, [self._url])) from None
