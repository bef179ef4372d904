"""Send alerts to every channel that wants them, without ever failing the caller.

Each channel gets its own worker thread, so a channel that hangs until its
timeout or sleeps between retries does not delay the others. Each channel has
one retry policy: a sink that retries by itself (``retries_itself``: Teams
through azure-core's RetryPolicy, ACS through its SDK's) is called once; any
other failed send is retried here with exponential backoff. A channel that exhausts its retries is
considered down for the rest of this dispatch (its remaining alerts are
recorded as failed without being tried). Everything ends up in the returned
:class:`DeliveryReport`; nothing is raised. Error texts are redacted.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from remediation.alerts.redact import DeliveryError, redact
from remediation.findings import Severity
from remediation.ports import Alert, AlertHistoryEntry, AlertSink

if TYPE_CHECKING:
    from pydantic import SecretStr

log = logging.getLogger(__name__)

DEFAULT_ATTEMPTS = 3
DEFAULT_BASE_DELAY = 2.0
DEFAULT_MAX_DELAY = 30.0


@dataclass(frozen=True, slots=True)
class Channel:
    """A sink and the lowest severity it receives."""

    sink: AlertSink
    min_severity: Severity

    @property
    def name(self) -> str:
        return self.sink.name

    def wants(self, alert: Alert) -> bool:
        return alert.severity.rank >= self.min_severity.rank


@dataclass(frozen=True, slots=True)
class Delivery:
    """One alert on one channel: delivered or not, after how many attempts, and why not."""

    alert: Alert
    channel: str
    delivered: bool
    attempts: int
    error: str = ""

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "alert": self.alert.title,
            "status": self.alert.status.value,
            "fingerprint": self.alert.fingerprint or None,
            "channel": self.channel,
            "delivered": self.delivered,
            "attempts": self.attempts,
        }
        if self.error:
            body["error"] = self.error
        return body


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    deliveries: tuple[Delivery, ...] = ()

    @property
    def failures(self) -> tuple[Delivery, ...]:
        return tuple(d for d in self.deliveries if not d.delivered)

    @property
    def ok(self) -> bool:
        return not self.failures

    def undelivered(self) -> set[str]:
        """Fingerprints of alerts no chosen channel took (for ``policy.settle``)."""
        taken: dict[str, bool] = {}
        for d in self.deliveries:
            if d.alert.fingerprint:
                taken[d.alert.fingerprint] = taken.get(d.alert.fingerprint, False) or d.delivered
        return {fp for fp, ok in taken.items() if not ok}

    def history(self, alerts: Iterable[Alert], now: datetime) -> list[AlertHistoryEntry]:
        """One history entry per alert, naming the channels that took it and those that failed."""
        entries = []
        for alert in alerts:
            mine = [d for d in self.deliveries if d.alert is alert]
            entries.append(
                AlertHistoryEntry(
                    at=alert.at or now,
                    fingerprint=alert.fingerprint,
                    status=alert.status.value,
                    severity=alert.severity,
                    title=alert.title,
                    delivered=tuple(d.channel for d in mine if d.delivered),
                    failed=tuple(d.channel for d in mine if not d.delivered),
                )
            )
        return entries

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "deliveries": [d.to_json() for d in self.deliveries]}


def dispatch(
    alerts: Sequence[Alert],
    channels: Sequence[Channel],
    *,
    attempts: int = DEFAULT_ATTEMPTS,
    base_delay: float = DEFAULT_BASE_DELAY,
    max_delay: float = DEFAULT_MAX_DELAY,
    sleep: Callable[[float], None] = time.sleep,
    secrets: Sequence[SecretStr] = (),
) -> DeliveryReport:
    """Send each alert to each channel whose minimum severity it meets; never raises.

    ``secrets`` are masked in every recorded or logged error, on top of the
    query strings :func:`~remediation.alerts.redact.redact` always masks.
    """
    if not alerts or not channels:
        return DeliveryReport()
    attempts = max(1, attempts)

    def run(channel: Channel) -> list[Delivery]:
        try:
            return _deliver_all(alerts, channel, attempts, base_delay, max_delay, sleep, secrets)
        except Exception as exc:  # a bug in a sink must not cost the other channels their report
            error = redact(f"{type(exc).__name__}: {exc}", secrets)
            log.error("alert channel %s failed unexpectedly: %s", channel.name, error)
            return [Delivery(a, channel.name, False, 0, error) for a in alerts if channel.wants(a)]

    with ThreadPoolExecutor(max_workers=len(channels), thread_name_prefix="alert") as pool:
        results = list(pool.map(run, channels))
    report = DeliveryReport(tuple(d for per_channel in results for d in per_channel))
    for failure in report.failures:
        log.warning("alert %r not delivered to %s: %s", failure.alert.title, failure.channel, failure.error)
    return report


def _deliver_all(
    alerts: Sequence[Alert],
    channel: Channel,
    attempts: int,
    base_delay: float,
    max_delay: float,
    sleep: Callable[[float], None],
    secrets: Sequence[SecretStr],
) -> list[Delivery]:
    deliveries: list[Delivery] = []
    down = ""
    for alert in alerts:
        if not channel.wants(alert):
            continue
        if down:
            deliveries.append(Delivery(alert, channel.name, False, 0, f"not tried: channel down ({down})"))
            continue
        tries = 1 if getattr(channel.sink, "retries_itself", False) else attempts
        delivery = _deliver(alert, channel, tries, base_delay, max_delay, sleep, secrets)
        deliveries.append(delivery)
        if not delivery.delivered:
            down = delivery.error
    return deliveries


def _deliver(
    alert: Alert,
    channel: Channel,
    attempts: int,
    base_delay: float,
    max_delay: float,
    sleep: Callable[[float], None],
    secrets: Sequence[SecretStr],
) -> Delivery:
    error = ""
    for attempt in range(1, attempts + 1):
        try:
            channel.sink.send(alert)
        except DeliveryError as exc:
            error = redact(str(exc), secrets)
        except Exception as exc:  # any sink failure is recorded, never raised
            error = redact(f"{type(exc).__name__}: {exc}", secrets)
        else:
            log.info("alert %r delivered to %s (attempt %d)", alert.title, channel.name, attempt)
            return Delivery(alert, channel.name, True, attempt)
        log.info("alert %r to %s failed (attempt %d/%d): %s", alert.title, channel.name, attempt, attempts, error)
        if attempt < attempts:
            sleep(min(max_delay, base_delay * 2 ** (attempt - 1)))
    return Delivery(alert, channel.name, False, attempts, error)
