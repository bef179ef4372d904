"""Sweep after sweep through the real pieces: policy, Table Storage (Azurite), Teams receiver, SMTP."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from datetime import timedelta

from pydantic import SecretStr

from remediation.alerts.dispatch import Channel
from remediation.alerts.email_smtp import SmtpSink
from remediation.alerts.notify import Notified, notify
from remediation.alerts.teams import TeamsSink
from remediation.findings import Finding, Severity
from remediation.settings import Settings
from remediation.state import TableStateStore
from tests.alerts.samples import T0, missing_rule, port_blocked
from tests.support.http_receiver import WebhookReceiver
from tests.support.net import LocalCA
from tests.support.smtp_server import PASSWORD, USERNAME, SmtpServer


def store_for(azurite: str) -> TableStateStore:
    settings = Settings(state_connection_string=SecretStr(azurite), state_table_prefix="n" + uuid.uuid4().hex[:12])
    return TableStateStore.from_settings(settings)


def teams(receiver: WebhookReceiver) -> Channel:
    return Channel(TeamsSink(SecretStr(receiver.url()), timeout=5), Severity.MEDIUM)


def email(server: SmtpServer, ca: LocalCA) -> Channel:
    sink = SmtpSink(
        host="127.0.0.1",
        port=server.port,
        sender="guard@contoso.example",
        recipients=["ops@contoso.example"],
        username=USERNAME,
        password=SecretStr(PASSWORD),
        timeout=5,
        ssl_context=ca.client_context(),
    )
    return Channel(sink, Severity.HIGH)


def titles(receiver: WebhookReceiver) -> list[str]:
    # The card's title is markdown-escaped; undo the backslashes to compare names.
    texts = [p.json()["attachments"][0]["content"]["body"][1]["text"] for p in receiver.posts]
    return [re.sub(r"\\(.)", r"\1", t) for t in texts]


def test_new_then_quiet_then_reminder_then_resolved(
    azurite: str, webhook_receiver: WebhookReceiver, smtp_server: SmtpServer, local_ca: LocalCA
) -> None:
    store = store_for(azurite)
    channels = [teams(webhook_receiver), email(smtp_server, local_ca)]

    def sweep(findings: Sequence[Finding], hours: float) -> Notified:
        return notify(
            findings,
            store=store,
            channels=channels,
            now=T0 + timedelta(hours=hours),
            reminder_hours=24,
            sleep=lambda s: None,
        )

    both = [port_blocked(), missing_rule()]
    first = sweep(both, 0)
    assert first.report.ok
    assert titles(webhook_receiver) == [
        "Port blocked amqp_5672 on nsg-cluster",
        "Missing rule AllowAzureStorage on nsg-cyclecloud",
    ]
    assert len(smtp_server.messages) == 1  # email takes high and above: the blocked port only

    for quarter in range(1, 12):  # three hours of 15-minute sweeps: nothing new to say
        assert sweep(both, quarter / 4).alerts == ()
    assert len(webhook_receiver.posts) == 2

    sweep(both, 24)
    assert titles(webhook_receiver)[2:] == [
        "Reminder: port blocked amqp_5672 on nsg-cluster",
        "Reminder: missing rule AllowAzureStorage on nsg-cyclecloud",
    ]
    assert len(smtp_server.messages) == 2

    sweep([missing_rule()], 25)
    assert titles(webhook_receiver)[4:] == ["Resolved: port blocked amqp_5672 on nsg-cluster"]
    assert (
        smtp_server.messages[-1].message["Subject"].strip().endswith("Resolved: port blocked amqp_5672 on nsg-cluster")
    )
    assert sweep([missing_rule()], 25.25).alerts == ()

    history = store.alert_history(port_blocked().fingerprint)
    assert [(h.status, h.delivered) for h in history] == [
        ("resolved", ("teams", "email-smtp")),
        ("reminder", ("teams", "email-smtp")),
        ("new", ("teams", "email-smtp")),
    ]


def test_alert_nobody_received_is_sent_on_the_next_sweep(azurite: str, webhook_receiver: WebhookReceiver) -> None:
    store = store_for(azurite)
    channels = [teams(webhook_receiver)]
    webhook_receiver.fail(status=503)
    down = notify([port_blocked()], store=store, channels=channels, now=T0, reminder_hours=24, sleep=lambda s: None)
    assert not down.report.ok
    assert webhook_receiver.posts == []
    assert store.alert_history(port_blocked().fingerprint)[0].failed == ("teams",)

    webhook_receiver.recover()
    later = T0 + timedelta(minutes=15)
    again = notify([port_blocked()], store=store, channels=channels, now=later, reminder_hours=24, sleep=lambda s: None)
    assert again.report.ok
    assert titles(webhook_receiver) == ["Port blocked amqp_5672 on nsg-cluster"]
    assert store.alert_states()[port_blocked().fingerprint].first_seen == T0
    quiet = notify(
        [port_blocked()], store=store, channels=channels, now=later + timedelta(minutes=15), reminder_hours=24
    )
    assert quiet.alerts == ()
