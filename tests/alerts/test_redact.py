"""Redaction of webhook signatures, passwords and query strings in error texts."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from remediation.alerts.redact import redact, safe_url

WEBHOOK = (
    "https://prod-12.westeurope.logic.azure.com:443/workflows/abc/triggers/manual/paths/invoke"
    "?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=Zm9vYmFyYmF6cXV4"
)


def test_safe_url_drops_the_query() -> None:
    assert safe_url(WEBHOOK) == (
        "https://prod-12.westeurope.logic.azure.com:443/workflows/abc/triggers/manual/paths/invoke?***"
    )
    assert safe_url("https://example.test/path") == "https://example.test/path"


@pytest.mark.parametrize(
    "text",
    [
        f"POST {WEBHOOK} failed",
        # urllib3 style: only the path and query, no scheme or host
        "Max retries exceeded with url: /workflows/abc/triggers/manual/paths/invoke?api-version=2016-06-01&sig=Zm9vYmFyYmF6cXV4 (Caused by ...)",
        # the signature alone, e.g. echoed back in a response body
        '{"error": "bad signature Zm9vYmFyYmF6cXV4"}',
    ],
)
def test_the_signature_never_survives(text: str) -> None:
    out = redact(text, [SecretStr(WEBHOOK)])
    assert "Zm9vYmFyYmF6cXV4" not in out


def test_passwords_are_masked_and_plain_text_kept() -> None:
    assert redact("login failed for bob with hunter2-pw", [SecretStr("hunter2-pw"), SecretStr("")]) == (
        "login failed for bob with ***"
    )
    assert redact("nothing secret here: HTTP 503") == "nothing secret here: HTTP 503"
