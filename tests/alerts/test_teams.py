"""Teams sink: real HTTP posts to a local stand-in for the Workflows webhook."""

from __future__ import annotations

import json
import time
from pathlib import Path

import jsonschema
import pytest
from pydantic import SecretStr

from remediation.alerts.redact import DeliveryError
from remediation.alerts.teams import TeamsSink
from tests.alerts.samples import new_port_alert
from tests.support.http_receiver import WebhookReceiver
from tests.support.net import free_port

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[2] / "reference/adaptive-cards/adaptive-card-1.5.json").read_text()
)


def test_posts_the_card_as_json(webhook_receiver: WebhookReceiver) -> None:
    TeamsSink(SecretStr(webhook_receiver.url()), timeout=5).send(new_port_alert())
    (post,) = webhook_receiver.posts
    assert post.path.startswith("/workflows/0123abcd/triggers/manual/paths/invoke?api-version=")
    assert post.headers["Content-Type"].startswith("application/json")
    message = post.json()
    assert message["type"] == "message"
    jsonschema.validate(message["attachments"][0]["content"], SCHEMA)


def test_http_error_names_the_status_without_the_signature(webhook_receiver: WebhookReceiver) -> None:
    webhook_receiver.fail(status=400)
    url = webhook_receiver.url(signature="TOPSECRETSIG")
    with pytest.raises(DeliveryError) as caught:
        TeamsSink(SecretStr(url), timeout=5).send(new_port_alert())
    text = str(caught.value)
    assert "HTTP 400" in text
    assert f"127.0.0.1:{webhook_receiver.port}/workflows/0123abcd" in text
    assert "TOPSECRETSIG" not in text
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


def test_unreachable_webhook_is_a_delivery_error_without_the_signature() -> None:
    url = f"http://127.0.0.1:{free_port()}/workflows/x/triggers/manual/paths/invoke?sig=TOPSECRETSIG"
    with pytest.raises(DeliveryError) as caught:
        TeamsSink(SecretStr(url), timeout=2).send(new_port_alert())
    assert "unreachable" in str(caught.value)
    assert "TOPSECRETSIG" not in str(caught.value)


def test_rejects_a_non_http_url() -> None:
    with pytest.raises(ValueError, match="must be http"):
        TeamsSink(SecretStr("file:///etc/passwd"))


def test_throttling_is_retried_after_the_wait_the_webhook_asks_for(webhook_receiver: WebhookReceiver) -> None:
    webhook_receiver.fail(status=429, times=1, retry_after=1)
    started = time.monotonic()
    TeamsSink(SecretStr(webhook_receiver.url()), timeout=5, retry_backoff_factor=0.01).send(new_port_alert())
    assert webhook_receiver.state.refused == 1
    assert len(webhook_receiver.posts) == 1
    # azure-core's RetryPolicy slept the Retry-After, not its own 0.01 s backoff.
    assert time.monotonic() - started >= 0.9


def test_a_retry_after_beyond_the_cap_is_not_slept_through(webhook_receiver: WebhookReceiver) -> None:
    webhook_receiver.fail(status=429, retry_after=3600)
    sink = TeamsSink(SecretStr(webhook_receiver.url()), timeout=5, max_retry_after=60)
    with pytest.raises(DeliveryError, match="HTTP 429"):
        sink.send(new_port_alert())
    assert webhook_receiver.state.refused == 1  # one request: the next run tries again


def test_a_client_error_is_not_retried(webhook_receiver: WebhookReceiver) -> None:
    webhook_receiver.fail(status=400)
    with pytest.raises(DeliveryError, match="HTTP 400"):
        TeamsSink(SecretStr(webhook_receiver.url()), timeout=5, retry_backoff_factor=0.01).send(new_port_alert())
    assert webhook_receiver.state.refused == 1
