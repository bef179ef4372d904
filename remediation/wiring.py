"""Build the adapters from Settings: what ``function_app.py`` and the commands share.

Nothing here decides anything; it only picks and connects the adapters the
settings name (ARM client, state store, alert channels, baseline) and hands
them to :mod:`remediation.service` as one :class:`Runtime` (a Reconciler).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from azure.core.credentials import TokenCredential

from remediation import json_input
from remediation.alerts.channels import channels_from_settings, secrets_of
from remediation.alerts.dispatch import Channel
from remediation.alerts.notify import notify
from remediation.alerts.policy import Restoration
from remediation.azure.arm import ArmNetwork, ArmOptions, default_credential
from remediation.azure.evidence import evidence_from_settings
from remediation.coalesce import CoalesceOptions, EventCoalescer
from remediation.errors import InputError, SettingsError
from remediation.findings import Finding
from remediation.ports import Alert, EvidenceSource, PendingEvents, Restored, StateStore, TopologyCache
from remediation.service import Reconciler
from remediation.state import (
    InMemoryStateStore,
    InMemoryTopologyCache,
    TablePendingEvents,
    TableStateStore,
    TableTopologyCache,
)
from remediation.tag_source import ServiceTagsCache
from remediation.tags import TagModel, exact_from_documents

if TYPE_CHECKING:
    from remediation.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class Runtime(Reconciler):
    """The :class:`~remediation.service.Reconciler` built from the app settings, once per process,
    with what closes its clients and what the status page says about its tag model.

    Replace single parts with :func:`dataclasses.replace` (``replace(rt, notifier=None)``).
    """

    close: Callable[[], None] = lambda: None
    #: Accepted events not yet handled (Table Storage); None handles each event as it comes.
    pending: PendingEvents | None = None

    def coalescer(self) -> EventCoalescer | None:
        """Events queued and drained in groups (see remediation.coalesce), when there is a pending store."""
        if self.pending is None:
            return None
        options = CoalesceOptions(nic_window=self.settings.event_coalesce_seconds)
        return EventCoalescer(self, self.pending, options=options)

    def describe_tags(self) -> dict[str, Any]:
        """Which service-tag model is in force, for the status page; never fetches.

        ``source`` is what is configured (``containment``, ``file`` or ``api``);
        ``exact`` whether exact addresses are in force now (the API's first
        load may have failed, leaving containment).
        """
        if isinstance(self.tag_source, ServiceTagsCache):
            cache = self.tag_source.describe()
            return {
                "source": "api",
                "exact": cache["exact"],
                "location": self.settings.service_tags_location,
                "changeNumber": cache["changeNumber"],
                "loadedAt": cache["loadedAt"],
                "lastError": cache["lastError"],
                "tags": cache["tags"],
            }
        if self.settings.service_tags_path:
            prefixes = self.tags.prefixes if self.tags is not None else {}
            path = self.settings.service_tags_path
            return {"source": "file", "exact": bool(prefixes), "path": path, "tags": len(prefixes)}
        return {"source": "containment", "exact": False}


class AlertNotifier:
    """:class:`~remediation.ports.Notifier` on :func:`remediation.alerts.notify.notify`.

    decide (what to tell whom) -> dispatch (never raising) -> settle -> store
    states and history; ``evidence`` (Azure Monitor) names actors and denied
    flows for new findings. ``sent`` keeps every alert decided, newest last.
    """

    def __init__(
        self,
        state: StateStore,
        channels: Sequence[Channel],
        settings: Settings,
        *,
        evidence: EvidenceSource | None = None,
    ) -> None:
        self._state = state
        self._channels = tuple(channels)
        self._settings = settings
        self._evidence = evidence
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
        done = notify(
            findings,
            store=self._state,
            channels=self._channels,
            now=at,
            reminder_hours=self._settings.reminder_hours,
            scopes=scopes,
            restorations=restorations,
            actors={f.nsg: actor for f in findings} if actor else None,
            secrets=secrets_of(self._settings),
            evidence_source=self._evidence,
        )
        self.sent.extend(done.alerts)
        lines = []
        for alert in done.alerts:
            took = [d.channel for d in done.report.deliveries if d.alert is alert and d.delivered]
            lines.append(f"{alert.status.value}: {alert.title} -> {', '.join(took) or 'no channel'}")
        return lines


def load_tags(settings: Settings) -> TagModel | None:
    """The exact service-tag model from SERVICE_TAGS_PATH, or None (containment)."""
    if not settings.service_tags_path:
        return None
    path = Path(settings.service_tags_path)
    try:
        doc = json_input.loads(path.read_text(encoding="utf-8"), where=str(path))
    except (OSError, ValueError) as exc:
        raise SettingsError(f"cannot read {path}: {exc}", where="SERVICE_TAGS_PATH") from None
    except InputError as exc:
        raise SettingsError(str(exc), where="SERVICE_TAGS_PATH") from None
    return exact_from_documents([doc], where=str(path))


def tag_source(settings: Settings, arm: ArmNetwork) -> ServiceTagsCache | None:
    """The Service Tags API as a refreshed tag model when SERVICE_TAGS_LOCATION is set, else None."""
    location = settings.service_tags_location
    if not location:
        return None
    return ServiceTagsCache(
        lambda: arm.service_tags_document(location),
        refresh_hours=settings.service_tags_refresh_hours,
        where=f"Service Tags API ({location})",
    )


def build_state(settings: Settings, credential: TokenCredential | None = None) -> StateStore:
    """Table Storage when configured, else an in-memory store (local runs, the demo)."""
    if settings.state_connection_string or settings.state_table_endpoint:
        return TableStateStore.from_settings(settings, credential=credential)
    log.warning("no STATE_TABLE_ENDPOINT: state (event ids, audit, alert states) is kept in memory only")
    return InMemoryStateStore()


def build_topology(store: StateStore, settings: Settings, credential: TokenCredential | None) -> TopologyCache:
    """The topology cache beside the state store: on Table Storage with it, else in this process's memory."""
    if isinstance(store, TableStateStore):
        return TableTopologyCache.from_settings(settings, credential=credential)
    return InMemoryTopologyCache()


def build_runtime(
    settings: Settings | None = None,
    *,
    credential: TokenCredential | None = None,
    arm_options: ArmOptions | None = None,
    state: StateStore | None = None,
    channels: Sequence[Channel] | None = None,
    topology: TopologyCache | None = None,
    pending: PendingEvents | None = None,
) -> Runtime:
    """Everything from the app settings; the keyword arguments replace single parts."""
    # pydantic and PyYAML (the baseline file's validation) are a third of a cold start's imports;
    # only building the runtime needs them, not indexing the functions or answering the host.
    from remediation.baseline_file import load_baseline  # noqa: PLC0415
    from remediation.settings import Settings  # noqa: PLC0415 - pydantic, like the baseline

    settings = settings or Settings.from_env()
    credential = credential or default_credential(settings)
    baseline = load_baseline(settings.baseline_path or None)
    store = state if state is not None else build_state(settings, credential)
    topology = topology if topology is not None else build_topology(store, settings, credential)
    if pending is None and isinstance(store, TableStateStore):
        # Coalescing needs a store every instance shares; in memory, each event is handled as it comes.
        pending = TablePendingEvents.from_settings(settings, credential=credential)
    arm = ArmNetwork.from_settings(settings, credential=credential, options=arm_options, topology=topology)
    chosen = list(channels) if channels is not None else channels_from_settings(settings, credential=credential)
    return Runtime(
        settings=settings,
        source=arm,
        writer=arm,
        baseline=baseline,
        state=store,
        notifier=AlertNotifier(store, chosen, settings, evidence=evidence_from_settings(settings, credential)),
        tags=load_tags(settings),
        tag_source=tag_source(settings, arm),
        # Used only with SERVICE_ENDPOINT_REPAIR (the service checks the setting).
        subnet_writer=arm,
        paths=arm,
        close=arm.close,
        pending=pending,
    )


class LazyRuntime:
    """The process's :class:`Runtime`, built by ``build`` on first call (thread-safe), then reused.

    :meth:`use` puts another in its place (the demo's, a test's), or with None drops it so
    the next call builds anew from the app settings.
    """

    def __init__(self, build: Callable[[], Runtime] = build_runtime) -> None:
        self._build = build
        self._runtime: Runtime | None = None
        self._lock = threading.Lock()

    def __call__(self) -> Runtime:
        with self._lock:
            if self._runtime is None:
                self._runtime = self._build()
            return self._runtime

    def use(self, runtime: Runtime | None) -> None:
        with self._lock:
            self._runtime = runtime
