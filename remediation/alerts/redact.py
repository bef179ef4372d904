"""Keep secrets out of messages: webhook signatures, passwords, query strings.

A Workflows webhook URL carries its signature in the query string
(``...?api-version=...&sp=...&sig=<secret>``), and HTTP libraries quote the
URL, or just its path and query, in their errors. Every message a sink
raises passes through :func:`redact` first.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from remediation.errors import RemediationError

if TYPE_CHECKING:
    from pydantic import SecretStr

REDACTED = "***"

# A query string anywhere: "?" then everything up to whitespace or a quote.
_QUERY = re.compile(r"\?[^\s'\"<>]+")
_MIN_SECRET_PART = 6


class DeliveryError(RemediationError):
    """An alert that a channel did not accept; the message is already redacted."""


def safe_url(url: str) -> str:
    """``url`` without its query and fragment (where signatures live), for messages."""
    parts = urlsplit(url)
    query = "?" + REDACTED if parts.query else ""
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")) + query


def redact(text: str, secrets: Iterable[SecretStr | str] = ()) -> str:
    """``text`` with every secret value, every query-string value of a secret URL, and every query string masked."""
    for secret in secrets:
        value = secret if isinstance(secret, str) else secret.get_secret_value()
        if not value:
            continue
        text = text.replace(value, REDACTED)
        for _, part in parse_qsl(urlsplit(value).query, keep_blank_values=False):
            if len(part) >= _MIN_SECRET_PART:
                text = text.replace(part, REDACTED)
    return _QUERY.sub("?" + REDACTED, text)
