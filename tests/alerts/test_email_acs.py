"""ACS email sink: the real EmailClient against a local HTTPS server speaking the ACS Email API.

The server implements just the send operation and its status polling
(202 + Operation-Location, then GET the operation), as ACS does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pydantic import SecretStr

from remediation.alerts.channels import channels_from_settings, secrets_of
from remediation.alerts.email_acs import AcsEmailSink, acs_message
from remediation.alerts.redact import DeliveryError
from remediation.errors import SettingsError
from remediation.findings import Severity
from remediation.settings import Settings
from tests.alerts.samples import new_port_alert
from tests.support.credential import StaticCredential
from tests.support.https_server import Answer, HttpsServer, Request, Responder
from tests.support.net import LocalCA


class FakeAcs:
    """The two ACS Email endpoints; ``final`` is the status the operation ends in."""

    def __init__(self, final: str = "Succeeded", send_status: int = 202) -> None:
        self.final = final
        self.send_status = send_status
        self.server: HttpsServer | None = None
        self.sent: list[dict[str, Any]] = []

    def __call__(self, request: Request) -> Answer:
        assert self.server is not None
        if request.method == "POST" and request.path.startswith("/emails:send"):
            if self.send_status != 202:
                return Answer(self.send_status, {"error": {"code": "Unauthorized", "message": "Denied by test server"}})
            self.sent.append(request.json())
            location = f"{self.server.url}/emails/operations/op-1?api-version=2025-09-01"
            return Answer(
                202, {"id": "op-1", "status": "Running"}, {"Operation-Location": location, "Retry-After": "0"}
            )
        if request.method == "GET" and request.path.startswith("/emails/operations/op-1"):
            body: dict[str, Any] = {"id": "op-1", "status": self.final}
            if self.final == "Failed":
                body["error"] = {"code": "InvalidRecipient", "message": "The recipient does not exist"}
            return Answer(200, body)
        return Answer(404, {"error": {"code": "NotFound", "message": request.path}})


def start(https_server: Callable[[Responder], HttpsServer], fake: FakeAcs) -> HttpsServer:
    server = https_server(fake)
    fake.server = server
    return server


def sink(server: HttpsServer, ca: LocalCA, credential: StaticCredential | None = None) -> AcsEmailSink:
    return AcsEmailSink(
        endpoint=server.url,
        credential=credential or StaticCredential(),
        sender="DoNotReply@guard.contoso.example",
        recipients=["ops@contoso.example"],
        timeout=10,
        polling_interval=0,
        connection_verify=str(ca.ca_path),
    )


def test_sends_through_acs_with_a_bearer_token(
    https_server: Callable[[Responder], HttpsServer], local_ca: LocalCA
) -> None:
    fake = FakeAcs()
    server = start(https_server, fake)
    credential = StaticCredential()
    alert = new_port_alert()
    sink(server, local_ca, credential).send(alert)
    (sent,) = fake.sent
    assert sent == acs_message(alert, "DoNotReply@guard.contoso.example", ["ops@contoso.example"])
    assert sent["content"]["subject"].endswith("Port blocked amqp_5672 on nsg-cluster")
    assert "Deciding rule" in sent["content"]["plainText"]
    assert "<table" in sent["content"]["html"]
    assert server.requests[0].headers["Authorization"] == "Bearer static-test-token"
    assert credential.scopes[0] == ("https://communication.azure.com//.default",)


def test_failed_send_is_a_delivery_error(https_server: Callable[[Responder], HttpsServer], local_ca: LocalCA) -> None:
    server = start(https_server, FakeAcs(final="Failed"))
    with pytest.raises(DeliveryError, match=r"HttpResponseError: \(InvalidRecipient\) The recipient does not exist$"):
        sink(server, local_ca).send(new_port_alert())


def test_rejected_request_is_a_delivery_error(
    https_server: Callable[[Responder], HttpsServer], local_ca: LocalCA
) -> None:
    server = start(https_server, FakeAcs(send_status=401))
    with pytest.raises(DeliveryError, match=r"ACS email https://127\.0\.0\.1:\d+: .*Denied by test server"):
        sink(server, local_ca).send(new_port_alert())


def test_channels_from_settings(https_server: Callable[[Responder], HttpsServer], local_ca: LocalCA) -> None:
    server = start(https_server, FakeAcs())
    settings = Settings(
        teams_webhook_url=SecretStr("https://hooks.example/workflows/x?sig=abcdefgh"),
        email_to=("ops@contoso.example",),
        email_from="guard@contoso.example",
        acs_endpoint=server.url,
        smtp_host="smtp.contoso.example",
        smtp_password=SecretStr("pw-123456"),
        min_severity_teams=Severity.INFO,
    )
    channels = channels_from_settings(
        settings, credential=StaticCredential(), acs_options={"connection_verify": str(local_ca.ca_path)}
    )
    assert [(c.name, c.min_severity) for c in channels] == [
        ("teams", Severity.INFO),
        ("email-acs", Severity.HIGH),
        ("email-smtp", Severity.HIGH),
    ]
    assert secrets_of(settings) == [settings.teams_webhook_url, settings.smtp_password]
    with pytest.raises(SettingsError, match="ACS_ENDPOINT"):
        channels_from_settings(settings)
