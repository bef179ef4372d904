"""SMTP sink: real mail to a local aiosmtpd server requiring STARTTLS and AUTH."""

from __future__ import annotations

import ssl

import pytest
from pydantic import SecretStr

from remediation.alerts.email_smtp import SmtpSink
from remediation.alerts.redact import DeliveryError
from tests.alerts.samples import new_port_alert
from tests.support.net import LocalCA
from tests.support.smtp_server import PASSWORD, USERNAME, SmtpServer


def sink(server: SmtpServer, ca: LocalCA, *, password: str = PASSWORD, starttls: bool = True) -> SmtpSink:
    return SmtpSink(
        host="127.0.0.1",
        port=server.port,
        sender="guard@contoso.example",
        recipients=["ops@contoso.example", "oncall@contoso.example"],
        username=USERNAME,
        password=SecretStr(password),
        starttls=starttls,
        timeout=5,
        ssl_context=ca.client_context(),
    )


def test_sends_text_and_html_over_starttls_with_login(smtp_server: SmtpServer, local_ca: LocalCA) -> None:
    alert = new_port_alert()
    sink(smtp_server, local_ca).send(alert)
    (received,) = smtp_server.messages
    assert received.mail_from == "guard@contoso.example"
    assert received.rcpt_tos == ["ops@contoso.example", "oncall@contoso.example"]
    message = received.message
    assert message["Subject"].strip() == "[CycleCloud Lockdown Guard] CRITICAL: Port blocked amqp_5672 on nsg-cluster"
    assert message["X-Lockdown-Fingerprint"] == alert.fingerprint
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None
    assert html is not None
    assert "Deciding rule:  DenyCycleCloudAmqp" in text.get_content()
    assert "<th" in html.get_content()


def test_wrong_password_is_a_delivery_error_without_the_password(smtp_server: SmtpServer, local_ca: LocalCA) -> None:
    with pytest.raises(DeliveryError) as caught:
        sink(smtp_server, local_ca, password="Wrong-pa55-word").send(new_port_alert())
    assert "refused the login" in str(caught.value)
    assert "Wrong-pa55-word" not in str(caught.value)
    assert smtp_server.messages == []


def test_untrusted_certificate_is_refused(smtp_server: SmtpServer, local_ca: LocalCA) -> None:
    server_sink = sink(smtp_server, local_ca)
    server_sink._ssl_context = ssl.create_default_context()  # the system CAs do not know the test CA
    with pytest.raises(DeliveryError, match="CERTIFICATE_VERIFY_FAILED"):
        server_sink.send(new_port_alert())


def test_never_logs_in_without_tls(smtp_server: SmtpServer, local_ca: LocalCA) -> None:
    with pytest.raises(DeliveryError, match="refusing to log in without STARTTLS"):
        sink(smtp_server, local_ca, starttls=False).send(new_port_alert())
