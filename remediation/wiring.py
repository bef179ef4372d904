"""Build the adapters from Settings: what ``function_app.py`` and the commands share.

Nothing here decides anything; it only picks and connects the adapters the
settings name (ARM client, state store, alert channels, baseline) and hands
them to :mod:`remediation.service` as one :class:`Runtime`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from azure.core.credentials import TokenCredential

from remediation.alerts.dispatch import Channel, dispatch
from remediation.alerts.email_acs import AcsEmailSink
from remediation.alerts.email_smtp import SmtpSink
from remediation.alerts.policy import Restoration, decide, settle
from remediation.alerts.teams import TeamsSink
from remediation.azure.arm import ArmNetwork, ArmOptions, default_credential
from remediation.baseline import Baseline
from remediation.baseline_file import load_baseline
from remediation.errors import SettingsError
from remediation.findings import Finding
from remediation.ports import Alert, NsgSource, NsgWriter, StateStore
from remediation.service import Notifier, Restored
from remediation.settings import Secret, Settings
from remediation.state import InMemoryStateStore, TableStateStore
from remediation.tags import TagModel, exact_from_documents

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Runtime:
    """Everything a trigger needs, built once per process."""

    settings: Settings
    source: NsgSource
    writer: NsgWriter
    baseline: Baseline
    state: StateStore | None
    alerts: Notifier | None
    tags: Any = None
    close: Callable[[], None] = lambda: None


class AlertNotifier:
    """The alert policy, delivery and alert state in one :class:`~remediation.service.Notifier`.

    decide (what to tell whom) -> dispatch (deliver, never raising) -> settle
    (undo the "sent" mark of what nobody received) -> store states and history.
    ``sent`` keeps every alert decided, newest last (the demo prints them).
    """

    def __init__(
        self,
        state: StateStore,
        channels: Sequence[Channel],
        settings: Settings,
        *,
        dispatcher: Callable[..., Any] = dispatch,
    ) -> None:
        self._state = state
        self._channels = tuple(channels)
        self._settings = settings
        self._dispatch = dispatcher
        self.sent: list[Alert] = []

    def notify(
        self,
        findings: Sequence[Finding],
        *,
        restored: Sequence[Restored],
        scopes: Sequence[str],
        actor: str | None,
        at: datetime,
    ) -> Sequence[str]:
        restorations = [Restoration(r.nsg_id, r.rules, r.fixed, actor=r.actor or actor) for r in restored]
        decision = decide(
            findings,
            self._state.alert_states(),
            at,
            reminder_hours=self._settings.reminder_hours,
            scopes=scopes,
            restorations=restorations,
            actors={f.nsg: actor for f in findings} if actor else None,
        )
        secrets: list[Secret] = [self._settings.teams_webhook_url, self._settings.smtp_password]
        delivery = self._dispatch(decision.alerts, self._channels, secrets=secrets)
        self._state.save_alert_states(settle(decision, delivery.undelivered()))
        for entry in delivery.history(decision.alerts, at):
            self._state.record_alert(entry)
        self.sent.extend(decision.alerts)
        lines = []
        for alert in decision.alerts:
            took = [d.channel for d in delivery.deliveries if d.alert is alert and d.delivered]
            lines.append(f"{alert.status.value}: {alert.title} -> {', '.join(took) or 'no channel'}")
        return lines


def build_channels(settings: Settings, credential: TokenCredential | None = None) -> list[Channel]:
    """The alert channels the settings configure (none configured: no channel)."""
    channels: list[Channel] = []
    if settings.teams_webhook_url:
        channels.append(Channel(TeamsSink(settings.teams_webhook_url), settings.min_severity_teams))
    if settings.email_to and settings.email_from and settings.acs_endpoint:
        channels.append(
            Channel(
                AcsEmailSink(
                    endpoint=settings.acs_endpoint,
                    credential=credential or default_credential(settings),
                    sender=settings.email_from,
                    recipients=settings.email_to,
                ),
                settings.min_severity_email,
            )
        )
    if settings.email_to and settings.email_from and settings.smtp_host:
        channels.append(
            Channel(
                SmtpSink(
                    host=settings.smtp_host,
                    port=settings.smtp_port,
                    sender=settings.email_from,
                    recipients=settings.email_to,
                    username=settings.smtp_username,
                    password=settings.smtp_password,
                    starttls=settings.smtp_starttls,
                ),
                settings.min_severity_email,
            )
        )
    return channels


def load_tags(settings: Settings) -> TagModel | None:
    """The exact service-tag model from SERVICE_TAGS_PATH, or None (containment)."""
    if not settings.service_tags_path:
        return None
    path = Path(settings.service_tags_path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SettingsError(f"cannot read {path}: {exc}", where="SERVICE_TAGS_PATH") from None
    return exact_from_documents([doc], where=str(path))


def build_state(settings: Settings, credential: TokenCredential | None = None) -> StateStore:
    """Table Storage when configured, else an in-memory store (local runs, the demo)."""
    if settings.state_connection_string or settings.state_table_endpoint:
        return TableStateStore.from_settings(settings, credential=credential)
    log.warning("no STATE_TABLE_ENDPOINT: state (event ids, audit, alert states) is kept in memory only")
    return InMemoryStateStore()


def build_runtime(
    settings: Settings | None = None,
    *,
    credential: TokenCredential | None = None,
    arm_options: ArmOptions | None = None,
    state: StateStore | None = None,
    channels: Sequence[Channel] | None = None,
) -> Runtime:
    """Everything from the app settings; the keyword arguments replace single parts."""
    settings = settings or Settings.from_env()
    credential = credential or default_credential(settings)
    arm = ArmNetwork.from_settings(settings, credential=credential, options=arm_options)
    baseline = load_baseline(settings.baseline_path or None)
    store = state if state is not None else build_state(settings, credential)
    chosen = list(channels) if channels is not None else build_channels(settings, credential)
    return Runtime(
        settings=settings,
        source=arm,
        writer=arm,
        baseline=baseline,
        state=store,
        alerts=AlertNotifier(store, chosen, settings),
        tags=load_tags(settings),
        close=arm.close,
    )
