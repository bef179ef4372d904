"""Teams sink: real HTTP posts to a local stand-in for the Workflows webhook."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from remediation.alerts.redact import DeliveryError
from remediation.alerts.teams import TeamsSink
from remediation.settings import Secret
from tests.alerts.samples import new_port_alert
from tests.support.http_receiver import WebhookReceiver
from tests.support.net import free_port

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[2] / "reference/adaptive-cards/adaptive-card-1.5.json").read_text()
)


def test_posts_the_card_as_json(webhook_receiver: WebhookReceiver) -> None:
    TeamsSink(Secret(webhook_receiver.url()), timeout=5).send(new_port_alert())
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
        TeamsSink(Secret(url), timeout=5).send(new_port_alert())
    text = str(caught.value)
    assert "HTTP 400" in text
    assert f"127.0.0.1:{webhook_receiver.port}/workflows/0123abcd" in text
    assert "TOPSECRETSIG" not in text
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


def test_unreachable_webhook_is_a_delivery_error_without_the_signature() -> None:
    url = f"http://127.0.0.1:{free_port()}/workflows/x/triggers/manual/paths/invoke?sig=TOPSECRETSIG"
    with pytest.raises(DeliveryError) as caught:
        TeamsSink(Secret(url), timeout=2).send(new_port_alert())
    assert "unreachable" in str(caught.value)
    assert "TOPSECRETSIG" not in str(caught.value)


def test_rejects_a_non_http_url() -> None:
    with pytest.raises(ValueError, match="must be http"):
        TeamsSink(Secret("file:///etc/passwd"))
