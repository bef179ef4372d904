"""Dispatch: retries with backoff, a down channel never blocks the others, no secret in any log line."""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import replace

import pytest
from pydantic import SecretStr

from remediation.alerts.dispatch import Channel, dispatch
from remediation.alerts.email_smtp import SmtpSink
from remediation.alerts.redact import DeliveryError
from remediation.alerts.teams import TeamsSink
from remediation.findings import Severity
from remediation.ports import Alert
from tests.alerts.samples import T0, new_port_alert, restored_alert
from tests.support.http_receiver import WebhookReceiver
from tests.support.net import LocalCA, free_port
from tests.support.smtp_server import PASSWORD, USERNAME, SmtpServer

SIGNATURE = "sIgNaTuRe-0123456789abcdef"


class Recorder:
    """Stands in for time.sleep so backoff is observable and instant."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


class SlowSink:
    name = "slow"

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def send(self, alert: Alert) -> None:
        time.sleep(self.seconds)


class TimedSink:
    """Wraps a sink and records when each send finished."""

    def __init__(self, inner: TeamsSink) -> None:
        self.inner = inner
        self.name = "timed-" + inner.name
        self.finished: list[float] = []

    def send(self, alert: Alert) -> None:
        self.inner.send(alert)
        self.finished.append(time.monotonic())


class ExplodingSink:
    name = "exploding"

    def send(self, alert: Alert) -> None:
        raise RuntimeError(f"bug while posting to https://hooks.example/x?sig={SIGNATURE}")


def smtp_sink(server: SmtpServer, ca: LocalCA, password: str = PASSWORD) -> SmtpSink:
    return SmtpSink(
        host="127.0.0.1",
        port=server.port,
        sender="guard@contoso.example",
        recipients=["ops@contoso.example"],
        username=USERNAME,
        password=SecretStr(password),
        timeout=5,
        ssl_context=ca.client_context(),
    )


def test_down_channel_does_not_block_the_others(
    webhook_receiver: WebhookReceiver, smtp_server: SmtpServer, local_ca: LocalCA
) -> None:
    down_url = SecretStr(f"http://127.0.0.1:{free_port()}/workflows/x/triggers/manual/paths/invoke?sig={SIGNATURE}")
    down = TeamsSink(down_url, timeout=2, retry_total=1, retry_backoff_factor=0.01)
    down.name = "teams-down"
    alerts = [new_port_alert(), replace(new_port_alert(), fingerprint="f2", title="second")]
    sleep = Recorder()
    report = dispatch(
        alerts,
        [
            Channel(down, Severity.INFO),
            Channel(TeamsSink(SecretStr(webhook_receiver.url()), timeout=5), Severity.INFO),
            Channel(smtp_sink(smtp_server, local_ca), Severity.INFO),
        ],
        sleep=sleep,
        secrets=[down_url],
    )
    assert len(webhook_receiver.posts) == 2
    assert len(smtp_server.messages) == 2
    failed = {(d.channel, d.alert.title): d for d in report.failures}
    assert set(failed) == {("teams-down", alerts[0].title), ("teams-down", "second")}
    first = failed[("teams-down", alerts[0].title)]
    assert first.attempts == 1  # Teams retries in its own pipeline: one retry policy per channel
    assert "unreachable" in first.error
    assert sleep.delays == []  # so the dispatcher never sleeps for it; then the channel counts as down
    assert failed[("teams-down", "second")].attempts == 0
    assert "channel down" in failed[("teams-down", "second")].error
    assert report.undelivered() == set()  # every alert reached at least one channel


def test_slow_channel_does_not_delay_the_others(webhook_receiver: WebhookReceiver) -> None:
    timed = TimedSink(TeamsSink(SecretStr(webhook_receiver.url()), timeout=5))
    start = time.monotonic()
    report = dispatch(
        [new_port_alert(), new_port_alert()],
        [Channel(SlowSink(0.6), Severity.INFO), Channel(timed, Severity.INFO)],
        sleep=Recorder(),
    )
    elapsed = time.monotonic() - start
    assert report.ok
    assert elapsed >= 1.2
    assert max(timed.finished) - start < 0.6  # done before the slow channel's first send returned


class FlakySink:
    """Fails its first ``failures`` sends; retries nothing itself (the dispatcher's policy applies)."""

    name = "flaky"

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.sent: list[Alert] = []

    def send(self, alert: Alert) -> None:
        if self.failures:
            self.failures -= 1
            raise DeliveryError("relay answered 451 try again later")
        self.sent.append(alert)


def test_retry_with_backoff_then_delivered() -> None:
    sink = FlakySink(failures=2)
    sleep = Recorder()
    report = dispatch([new_port_alert()], [Channel(sink, Severity.INFO)], sleep=sleep, base_delay=0.5)
    assert report.ok
    assert report.deliveries[0].attempts == 3
    assert sleep.delays == [0.5, 1.0]
    assert len(sink.sent) == 1


def test_a_sink_that_retries_itself_is_called_once(webhook_receiver: WebhookReceiver) -> None:
    webhook_receiver.fail(status=503, times=2)
    sleep = Recorder()
    teams = TeamsSink(SecretStr(webhook_receiver.url()), timeout=5, retry_backoff_factor=0.01)
    report = dispatch([new_port_alert()], [Channel(teams, Severity.INFO)], sleep=sleep, base_delay=0.5)
    assert report.ok
    assert report.deliveries[0].attempts == 1  # the two 503s were retried inside the Teams pipeline
    assert sleep.delays == []
    assert webhook_receiver.state.refused == 2  # not 2 x 3: the retries are not multiplied
    assert len(webhook_receiver.posts) == 1


def test_backoff_is_bounded() -> None:
    sleep = Recorder()
    alert = new_port_alert()
    report = dispatch(
        [alert],
        [Channel(FlakySink(failures=100), Severity.INFO)],
        sleep=sleep,
        attempts=6,
        base_delay=4,
        max_delay=10,
    )
    assert sleep.delays == [4, 8, 10, 10, 10]
    assert report.undelivered() == {new_port_alert().fingerprint}
    (entry,) = report.history([alert], T0)
    assert entry.failed == ("flaky",)
    assert entry.delivered == ()


def test_minimum_severity_per_channel(
    webhook_receiver: WebhookReceiver, smtp_server: SmtpServer, local_ca: LocalCA
) -> None:
    alerts = [new_port_alert(), restored_alert()]
    report = dispatch(
        alerts,
        [
            Channel(TeamsSink(SecretStr(webhook_receiver.url()), timeout=5), Severity.INFO),
            Channel(smtp_sink(smtp_server, local_ca), Severity.HIGH),
        ],
        sleep=Recorder(),
    )
    assert report.ok
    assert len(webhook_receiver.posts) == 2
    assert [m.message["X-Lockdown-Fingerprint"] for m in smtp_server.messages] == [new_port_alert().fingerprint]
    history = report.history(alerts, T0)
    assert [(h.status, h.delivered) for h in history] == [("new", ("teams", "email-smtp")), ("restored", ("teams",))]


def test_a_buggy_sink_is_recorded_not_raised() -> None:
    report = dispatch([new_port_alert()], [Channel(ExplodingSink(), Severity.INFO)], sleep=Recorder())
    (failure,) = report.failures
    assert failure.error.startswith("RuntimeError: bug while posting to https://hooks.example/x?***")
    assert report.undelivered() == {new_port_alert().fingerprint}


def test_nothing_to_send() -> None:
    assert dispatch([], [Channel(ExplodingSink(), Severity.INFO)]).deliveries == ()
    assert dispatch([new_port_alert()], []).deliveries == ()


def test_no_secret_in_any_log_line(
    caplog: pytest.LogCaptureFixture, webhook_receiver: WebhookReceiver, smtp_server: SmtpServer, local_ca: LocalCA
) -> None:
    caplog.set_level(logging.DEBUG)
    good_url = SecretStr(webhook_receiver.url(signature=SIGNATURE))
    wrong_password = SecretStr("Wr0ng-" + PASSWORD)
    bad_smtp = smtp_sink(smtp_server, local_ca, password=wrong_password.get_secret_value())
    bad_smtp.name = "smtp-bad-login"
    down_url = SecretStr(f"http://127.0.0.1:{free_port()}/workflows/y/triggers/manual/paths/invoke?sig={SIGNATURE}2")
    down = TeamsSink(down_url, timeout=2, retry_total=1, retry_backoff_factor=0.01)
    down.name = "teams-down"
    secrets = [good_url, down_url, SecretStr(PASSWORD), wrong_password]

    # First the webhook throttles (retried inside the Teams pipeline, urllib3 logging each request
    # line at DEBUG), then it accepts.
    webhook_receiver.fail(status=429, times=1, retry_after=0)
    report = dispatch(
        [new_port_alert(), restored_alert()],
        [
            Channel(TeamsSink(good_url, timeout=5), Severity.INFO),
            Channel(smtp_sink(smtp_server, local_ca), Severity.INFO),
            Channel(bad_smtp, Severity.INFO),
            Channel(down, Severity.INFO),
            Channel(ExplodingSink(), Severity.INFO),
        ],
        sleep=Recorder(),
        secrets=secrets,
    )
    assert len(webhook_receiver.posts) == 2
    assert len(smtp_server.messages) == 2
    assert {d.channel for d in report.failures} == {"smtp-bad-login", "teams-down", "exploding"}

    assert caplog.records, "dispatch logs what it does"
    assert any(r.levelno == logging.WARNING for r in caplog.records)
    assert "/workflows/0123abcd/triggers/manual/paths/invoke?***" in caplog.text  # the redaction was exercised
    everything = [caplog.text, json.dumps(report.to_json())]
    everything += [r.getMessage() for r in caplog.records]
    everything += [repr(r.args) for r in caplog.records]
    for text in everything:
        for secret in [SIGNATURE, PASSWORD, *(s.get_secret_value() for s in secrets)]:
            assert secret not in text


def test_dispatch_runs_in_threads_and_returns() -> None:
    # Returns after every channel thread has finished: no thread is left behind.
    before = threading.active_count()
    dispatch([new_port_alert()], [Channel(SlowSink(0.05), Severity.INFO)], sleep=Recorder())
    assert threading.active_count() == before


def test_each_channel_has_one_retry_policy() -> None:
    """Teams retries in its azure-core pipeline and ACS in its SDK, so the dispatcher calls them once;
    SMTP has no retry of its own, so the dispatcher's backoff is its policy."""
    from remediation.alerts.email_acs import AcsEmailSink

    assert TeamsSink.retries_itself
    assert AcsEmailSink.retries_itself
    assert not getattr(SmtpSink, "retries_itself", False)
