"""Evidence from Azure Monitor Logs (``azure-monitor-query``): who changed an NSG, which flows it drops.

- the actor: the latest ``AzureActivity`` write or delete on the NSG or its
  rules since a time, not counting the remediator's own identity (the timer
  path has no actor from an event);
- denied flows: ``NTANetAnalytics`` records (VNet flow logs with traffic
  analytics) the NSG denied on the node-to-CycleCloud ports, to show a
  blocked port really drops nodes' traffic.

Never raises to the caller: a failed, throttled or partial query gives less
evidence and a note saying why. No workspace configured means no enrichment.
The Logs API takes no query parameters, so every value placed in a query is
either formatted by us (times, port numbers) or a string literal escaped by
:func:`kql_string`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from remediation.model import resource_id_part
from remediation.ports import Evidence

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.monitor.query import LogsQueryClient, LogsTable

    from remediation.settings import Settings

log = logging.getLogger(__name__)

#: Lines of denied-flow evidence at most (the alert truncates further).
MAX_FLOW_LINES = 20
#: Seconds the service may spend on one query.
SERVER_TIMEOUT = 60
DEFAULT_LOGS_ENDPOINT = "https://api.loganalytics.io"


class KqlValueError(ValueError):
    """A value that cannot be placed in a query safely."""


def kql_string(value: str) -> str:
    """``value`` as a single-quoted KQL string literal (backslash and quote escaped).

    Control characters (newlines included) are refused rather than escaped:
    no resource id or principal id contains them.
    """
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise KqlValueError(f"control character in query value {value!r}")
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def kql_datetime(at: datetime) -> str:
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return "datetime(" + at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ") + ")"


def actor_query(nsg_id: str, since: datetime, exclude: Sequence[str]) -> str:
    rid = nsg_id.rstrip("/").lower()
    lines = [
        "AzureActivity",
        f"| where TimeGenerated >= {kql_datetime(since)}",
        '| where CategoryValue == "Administrative"',
        '| where OperationNameValue startswith "MICROSOFT.NETWORK/NETWORKSECURITYGROUPS/"',
        '| where ActivityStatusValue !~ "Failure"',
        f"| where _ResourceId =~ {kql_string(rid)} or _ResourceId startswith {kql_string(rid + '/')}",
    ]
    ids = [i for i in exclude if i]
    if ids:
        lines.append(f"| where not(Caller in~ ({', '.join(kql_string(i) for i in ids)}))")
    lines += ["| top 1 by TimeGenerated desc", "| project Caller, TimeGenerated, OperationNameValue"]
    return "\n".join(lines)


def denied_flows_query(nsg_id: str, ports: Sequence[int], since: datetime) -> str:
    for port in ports:
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise KqlValueError(f"not a port number: {port!r}")
    port_list = ", ".join(str(p) for p in sorted(set(ports)))
    rid = nsg_id.rstrip("/")
    # Traffic analytics names the NSG by resource id or, as its older schema
    # did, by "subscription/resource group/name"; accept either.
    short = "/".join(
        resource_id_part(rid, part) for part in ("subscriptions", "resourceGroups", "networkSecurityGroups")
    )
    return "\n".join(
        [
            "NTANetAnalytics",
            f"| where TimeGenerated >= {kql_datetime(since)}",
            f'| where FlowStatus == "Denied" and DestPort in ({port_list})',
            f"| where AclGroup =~ {kql_string(rid)} or AclGroup =~ {kql_string(short)}",
            "| summarize Flows = sum(coalesce(DeniedInFlows, 0) + coalesce(DeniedOutFlows, 0)),"
            " Last = max(TimeGenerated) by SrcIp, DestIp, DestPort, AclRule",
            f"| top {MAX_FLOW_LINES} by Flows desc",
        ]
    )


class NoEvidence:
    """The :class:`~remediation.ports.EvidenceSource` when no workspace is configured."""

    def actor_of_change(self, nsg_id: str, since: datetime) -> Evidence:
        return Evidence()

    def denied_flows(self, nsg_id: str, ports: Sequence[int], since: datetime) -> Evidence:
        return Evidence()


class LogsEvidence:
    """:class:`~remediation.ports.EvidenceSource` querying one Log Analytics workspace."""

    def __init__(
        self,
        client: LogsQueryClient,
        workspace_id: str,
        *,
        exclude_callers: Sequence[str] = (),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._client = client
        self._workspace_id = workspace_id
        self._exclude = tuple(c for c in exclude_callers if c)
        self._clock = clock

    def actor_of_change(self, nsg_id: str, since: datetime) -> Evidence:
        try:
            query = actor_query(nsg_id, since, self._exclude)
        except KqlValueError as exc:
            return Evidence(notes=(f"actor lookup skipped: {exc}",))
        tables, notes = self._query("actor lookup", query, since)
        for table in tables:
            for row in _rows(table):
                caller = str(row.get("Caller") or "").strip()
                if caller:
                    when = _when(row.get("TimeGenerated"))
                    operation = str(row.get("OperationNameValue") or "a change")
                    return Evidence(actor=caller, lines=(f"{caller}: {operation} at {when}",), notes=notes)
        return Evidence(notes=notes)

    def denied_flows(self, nsg_id: str, ports: Sequence[int], since: datetime) -> Evidence:
        try:
            query = denied_flows_query(nsg_id, ports, since)
        except KqlValueError as exc:
            return Evidence(notes=(f"denied-flow lookup skipped: {exc}",))
        tables, notes = self._query("denied-flow lookup", query, since)
        lines = []
        for table in tables:
            for row in _rows(table):
                rule = row.get("AclRule") or "unknown rule"
                lines.append(
                    f"{row.get('SrcIp') or '?'} -> {row.get('DestIp') or '?'}:{row.get('DestPort')} denied "
                    f"{_int(row.get('Flows'))} flow(s) by {rule}, last at {_when(row.get('Last'))}"
                )
        return Evidence(lines=tuple(lines[:MAX_FLOW_LINES]), notes=notes)

    def _query(self, what: str, query: str, since: datetime) -> tuple[list[LogsTable], tuple[str, ...]]:
        """The tables of a query, and notes; never raises."""
        from azure.core.exceptions import AzureError, HttpResponseError  # noqa: PLC0415
        from azure.monitor.query import LogsQueryPartialResult  # noqa: PLC0415

        try:
            result = self._client.query_workspace(
                self._workspace_id, query, timespan=(since, self._clock()), server_timeout=SERVER_TIMEOUT
            )
        except HttpResponseError as exc:
            if exc.status_code == 429:
                note = f"{what}: Log Analytics throttled the query (HTTP 429); try again later"
            else:
                note = f"{what}: Log Analytics answered HTTP {exc.status_code}: {_first_line(exc.message)}"
            log.warning("%s", note)
            return [], (note,)
        except AzureError as exc:
            note = f"{what}: Log Analytics unreachable: {type(exc).__name__}: {_first_line(exc.message)}"
            log.warning("%s", note)
            return [], (note,)
        except Exception as exc:  # evidence is optional: an SDK surprise must not fail remediation
            note = f"{what}: query failed: {type(exc).__name__}: {_first_line(str(exc))}"
            log.warning("%s", note)
            return [], (note,)
        if isinstance(result, LogsQueryPartialResult):
            error = result.partial_error
            detail = f"{error.code}: {_first_line(error.message)}" if error is not None else "no detail"
            note = f"{what}: partial result from Log Analytics ({detail})"
            log.warning("%s", note)
            return list(result.partial_data or []), (note,)
        return list(result.tables), ()


def evidence_from_settings(
    settings: Settings, credential: TokenCredential, **client_options: Any
) -> LogsEvidence | NoEvidence:
    """Logs evidence when ``LOG_ANALYTICS_WORKSPACE_ID`` is set, else :class:`NoEvidence`."""
    if not settings.log_analytics_workspace_id:
        return NoEvidence()
    from azure.monitor.query import LogsQueryClient  # noqa: PLC0415 - the SDK only when configured

    options: dict[str, Any] = {"retry_total": 2, "connection_timeout": 10, "read_timeout": SERVER_TIMEOUT + 15}
    options.update(client_options)
    client = LogsQueryClient(credential, endpoint=settings.logs_endpoint or DEFAULT_LOGS_ENDPOINT, **options)
    return LogsEvidence(
        client,
        settings.log_analytics_workspace_id,
        exclude_callers=(settings.remediator_principal_id, settings.client_id),
    )


def _rows(table: Any) -> list[dict[str, Any]]:
    columns = list(table.columns)
    return [dict(zip(columns, list(row), strict=False)) for row in table.rows]


def _when(value: Any) -> str:
    if isinstance(value, datetime):
        at = value if value.tzinfo else value.replace(tzinfo=UTC)
        return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return str(value) if value else "an unknown time"


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _first_line(text: str | None) -> str:
    return (text or "").strip().splitlines()[0][:300] if (text or "").strip() else "no message"
