"""The state store: alert states and their history, processed event ids, the audit trail, sweep status.

Two implementations of :class:`~remediation.ports.StateStore`:
:class:`TableStateStore` on Azure Table Storage (the Function's own storage
account, identity-based; Azurite locally) and :class:`InMemoryStateStore` for
the demo and unit tests.

Tables (``<prefix>`` is ``STATE_TABLE_PREFIX``):

- ``<prefix>alerts``: one entity per finding fingerprint, partition ``state``, row key the
  percent-encoded lower-cased resource id, ``!``, the fingerprint: an event reads the states of
  the resources it judged with row-key ranges, not the whole table (rows of the first layout,
  partition ``alert`` keyed by fingerprint alone, are moved to it by the first read that finds them);
- ``<prefix>alerthistory``: every alert decided, partition = fingerprint;
- ``<prefix>events``: processed Event Grid event ids (insert-if-absent);
- ``<prefix>audit``: every remediation, newest first (inverted-time row keys);
- ``<prefix>status``: the last sweep's status;
- ``<prefix>attachments``: subnet id -> the managed NSG it was last seen
  attached to (partition ``attachment``, row key a hash of the lowercased
  subnet id), so a detachment is found after the NSG's back-reference is gone;
  partition ``managed``: NSG id -> its roles when last seen managed, so losing
  the lockdown tag or a role is noticed (and alerted) instead of silently
  ending the guarding (same row key; an event reads its NSGs' rows only);
- ``<prefix>topology``: the topology cache the sweep rebuilds and events read
  (:class:`TableTopologyCache`);
- ``<prefix>pending``: screened events queued for the drainer, and its lease
  (:class:`TablePendingEvents`).

A string property holds at most 64 KiB, so rule lists and status are stored
as zlib-compressed JSON split over binary properties (``<name>_0`` ...).
"""

from __future__ import annotations

import bisect
import hashlib
import json
import re
import threading
import uuid
import zlib
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from remediation.errors import InputError, SettingsError, TransientError
from remediation.findings import Severity
from remediation.ports import AlertHistoryEntry, AlertState, AlertStatus, AuditRecord, CachedResource, PendingEvent
from remediation.scope import within

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.data.tables import TableClient, TableServiceClient

    from remediation.settings import Settings

#: Bytes per binary property: under the service's 64 KiB limit.
CHUNK_BYTES = 60_000
#: Chunks per packed value; two packed values stay well under the 1 MiB entity limit.
MAX_CHUNKS = 7
_BATCH = 100  # entity group transactions hold at most 100 operations
_MAX_TICKS = 10**19
_TABLE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]{2,62}$")
_AUDIT_PARTITION = "audit"
_STATE_PARTITION = "state"
_LEGACY_ALERT_PARTITION = "alert"
_ATTACHMENT_PARTITION = "attachment"
_MANAGED_PARTITION = "managed"


def _now() -> datetime:
    return datetime.now(UTC)


def _event_digest(event_id: str) -> str:
    """The row key of an event id; ``surrogatepass`` so that any Python string has one, the same each time."""
    return hashlib.sha256(event_id.encode("utf-8", "surrogatepass")).hexdigest()


def _utc(at: datetime) -> datetime:
    """A plain, UTC-aware datetime (the SDK returns a subclass; naive means UTC)."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    at = at.astimezone(UTC)
    return datetime(at.year, at.month, at.day, at.hour, at.minute, at.second, at.microsecond, tzinfo=UTC)


def _newest_first_key(at: datetime) -> str:
    """A row key that sorts newest first, unique even within one microsecond."""
    ticks = int(_utc(at).timestamp() * 1_000_000)
    return f"{_MAX_TICKS - ticks:020d}-{uuid.uuid4().hex[:12]}"


def pack(name: str, value: Any) -> dict[str, Any]:
    """Properties holding ``value`` as compressed JSON chunks (or a note that it was too large)."""
    data = zlib.compress(json.dumps(value, separators=(",", ":"), sort_keys=True).encode("utf-8"), 9)
    chunks = [data[i : i + CHUNK_BYTES] for i in range(0, len(data), CHUNK_BYTES)] or [b""]
    if len(chunks) > MAX_CHUNKS:
        return {f"{name}_chunks": 0, f"{name}_omitted": f"{len(data)} bytes compressed exceed the entity size limit"}
    props: dict[str, Any] = {f"{name}_chunks": len(chunks)}
    props.update({f"{name}_{i}": chunk for i, chunk in enumerate(chunks)})
    return props


def unpack(entity: dict[str, Any], name: str, default: Any = None) -> Any:
    count = int(entity.get(f"{name}_chunks") or 0)
    if count == 0:
        return default
    data = b"".join(bytes(entity[f"{name}_{i}"]) for i in range(count))
    return json.loads(zlib.decompress(data))


class TableStateStore:
    """:class:`~remediation.ports.StateStore` on Azure Table Storage (``azure-data-tables``).

    Errors from the service become :class:`~remediation.errors.TransientError`
    naming the table, so triggers retry them.
    """

    def __init__(
        self,
        service: TableServiceClient,
        *,
        prefix: str = "lockdown",
        clock: Callable[[], datetime] = _now,
        create_tables: bool = True,
    ) -> None:
        self._clock = clock
        names = {
            "alerts": f"{prefix}alerts",
            "history": f"{prefix}alerthistory",
            "events": f"{prefix}events",
            "audit": f"{prefix}audit",
            "status": f"{prefix}status",
            "attachments": f"{prefix}attachments",
        }
        for table_name in names.values():
            if not _TABLE_NAME.match(table_name):
                raise SettingsError(
                    f"table name {table_name!r} must be 3-63 letters or digits starting with a letter",
                    where="STATE_TABLE_PREFIX",
                )
        self._tables: dict[str, TableClient] = {}
        for key, table_name in names.items():
            if not create_tables:  # readers (the audit CLI) may not be allowed to create tables
                self._tables[key] = service.get_table_client(table_name)
                continue
            with self._errors(table_name, "create"):
                self._tables[key] = service.create_table_if_not_exists(table_name)

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        credential: TokenCredential | None = None,
        clock: Callable[[], datetime] = _now,
        create_tables: bool = True,
        **client_options: Any,
    ) -> TableStateStore:
        """Connect with ``STATE_CONNECTION_STRING`` (Azurite) or ``STATE_TABLE_ENDPOINT`` + ``credential``."""
        from azure.data.tables import TableServiceClient  # noqa: PLC0415 - the SDK only for this store

        if settings.state_connection_string:
            service = TableServiceClient.from_connection_string(
                settings.state_connection_string.get_secret_value(), **client_options
            )
        elif settings.state_table_endpoint:
            if credential is None:
                raise SettingsError("a credential is needed with a table endpoint", where="STATE_TABLE_ENDPOINT")
            service = TableServiceClient(settings.state_table_endpoint, credential=credential, **client_options)
        else:
            raise SettingsError("set STATE_TABLE_ENDPOINT (or STATE_CONNECTION_STRING for Azurite)", where="state")
        return cls(service, prefix=settings.state_table_prefix, clock=clock, create_tables=create_tables)

    def _errors(self, table: str, action: str) -> AbstractContextManager[None]:
        return _table_errors(table, action)

    def _table(self, key: str) -> TableClient:
        return self._tables[key]

    # -- events ---------------------------------------------------------------

    def seen_event(self, event_id: str) -> bool:
        from azure.core.exceptions import ResourceExistsError  # noqa: PLC0415

        if not event_id:
            raise InputError("empty event id", where="seen_event")
        digest = _event_digest(event_id)
        table = self._table("events")
        # The id as text for people; escaped where it is not valid Unicode, which no table can hold.
        shown = event_id[:1024].encode("utf-8", "backslashreplace").decode("utf-8")
        entity = {"PartitionKey": digest[:2], "RowKey": digest, "event_id": shown, "at": _utc(self._clock())}
        try:
            with self._errors(table.table_name, "record event"):
                table.create_entity(entity)
        except ResourceExistsError:
            return True
        return False

    def forget_event(self, event_id: str) -> None:
        """Undo :meth:`seen_event` after a transient failure, so Event Grid's redelivery is handled."""
        from azure.core.exceptions import ResourceNotFoundError  # noqa: PLC0415

        digest = _event_digest(event_id)
        table = self._table("events")
        try:
            with self._errors(table.table_name, "forget event"):
                table.delete_entity(partition_key=digest[:2], row_key=digest)
        except ResourceNotFoundError:
            return

    # -- audit trail ----------------------------------------------------------

    def record_audit(self, record: AuditRecord) -> None:
        entity: dict[str, Any] = {
            "PartitionKey": _AUDIT_PARTITION,
            "RowKey": _newest_first_key(record.at),
            "at": _utc(record.at),
            "nsg_id": record.nsg_id,
            "nsg_key": record.nsg_id.lower(),
            "trigger": record.trigger,
        }
        for name in ("event_id", "actor", "correlation_id"):
            value = getattr(record, name)
            if value is not None:
                entity[name] = value
        entity.update(pack("rules_before", list(record.rules_before)))
        entity.update(pack("rules_after", list(record.rules_after)))
        if record.changes:
            entity["changes"] = json.dumps(list(record.changes))
        table = self._table("audit")
        with self._errors(table.table_name, "record audit"):
            table.create_entity(entity)

    def audit_trail(self, nsg_id: str | None = None, limit: int = 100) -> list[AuditRecord]:
        table = self._table("audit")
        query = "PartitionKey eq @pk"
        params: dict[str, Any] = {"pk": _AUDIT_PARTITION}
        if nsg_id:
            query += " and nsg_key eq @nsg"
            params["nsg"] = nsg_id.lower()
        records: list[AuditRecord] = []
        with self._errors(table.table_name, "read audit"), _absent_is_empty():
            for entity in table.query_entities(query, parameters=params, results_per_page=min(max(limit, 1), 1000)):
                records.append(_audit_from_entity(entity))
                if len(records) >= limit:
                    break
        return records

    # -- status ---------------------------------------------------------------

    def save_status(self, status: dict[str, Any]) -> None:
        from azure.data.tables import UpdateMode  # noqa: PLC0415

        entity = {"PartitionKey": "status", "RowKey": "last", "at": _utc(self._clock()), **pack("status", status)}
        table = self._table("status")
        with self._errors(table.table_name, "save status"):
            table.upsert_entity(entity, mode=UpdateMode.REPLACE)

    def load_status(self) -> dict[str, Any] | None:
        from azure.core.exceptions import ResourceNotFoundError  # noqa: PLC0415

        table = self._table("status")
        try:
            with self._errors(table.table_name, "load status"):
                entity = table.get_entity("status", "last")
        except ResourceNotFoundError:
            return None
        status: dict[str, Any] | None = unpack(dict(entity), "status")
        return status

    # -- alerts ---------------------------------------------------------------

    def alert_states(self, scopes: Collection[str] | None = None) -> dict[str, AlertState]:
        table = self._table("alerts")
        states: dict[str, AlertState] = {}
        if scopes is None:
            queries: list[tuple[str, dict[str, Any]]] = [("PartitionKey eq @pk", {"pk": _STATE_PARTITION})]
        else:
            queries = list(_scope_queries(scopes))
        with self._errors(table.table_name, "read alert states"), _absent_is_empty():
            for query, params in queries:
                for entity in table.query_entities(query, parameters=params):
                    state = _state_from_entity(dict(entity))
                    states[state.fingerprint] = state
        legacy = self._legacy_alert_states(table)
        if scopes is not None:
            inside = within(scopes)
            # A range also returns ids that merely start like a scope ("nsg-1" for "nsg-10"): only the scope's own.
            states = {fp: s for fp, s in states.items() if inside(s.resource_id)}
            legacy = {fp: s for fp, s in legacy.items() if inside(s.resource_id)}
        for fp, state in legacy.items():
            states.setdefault(fp, state)
        return states

    def _legacy_alert_states(self, table: TableClient) -> dict[str, AlertState]:
        """States in the first layout (partition ``alert``, keyed by fingerprint), moved to the keyed one.

        After the move the query finds nothing: one cheap empty answer per read.
        """
        legacy: dict[str, AlertState] = {}
        with self._errors(table.table_name, "read alert states"), _absent_is_empty():
            for entity in table.query_entities("PartitionKey eq @pk", parameters={"pk": _LEGACY_ALERT_PARTITION}):
                state = _state_from_entity(dict(entity))
                legacy[state.fingerprint] = state
        if legacy:
            with self._errors(table.table_name, "read alert states"):
                current = {
                    str(e["fingerprint"])
                    for e in table.query_entities(
                        "PartitionKey eq @pk", parameters={"pk": _STATE_PARTITION}, select=["fingerprint"]
                    )
                }
            # A state already written in the keyed layout is newer than its first-layout row.
            self.save_alert_states([s for fp, s in legacy.items() if fp not in current])
            self._delete(table, [(_LEGACY_ALERT_PARTITION, fp) for fp in sorted(legacy)])
            legacy = {fp: s for fp, s in legacy.items() if fp not in current}
        return legacy

    def save_alert_states(self, states: Sequence[AlertState]) -> None:
        from azure.data.tables import UpdateMode  # noqa: PLC0415

        table = self._table("alerts")
        operations = [("upsert", _state_to_entity(s), {"mode": UpdateMode.REPLACE}) for s in states]
        with self._errors(table.table_name, "save alert states"):
            for start in range(0, len(operations), _BATCH):
                table.submit_transaction(operations[start : start + _BATCH])

    def record_alert(self, entry: AlertHistoryEntry) -> None:
        entity = {
            "PartitionKey": entry.fingerprint or "restored",
            "RowKey": _newest_first_key(entry.at),
            "at": _utc(entry.at),
            "fingerprint": entry.fingerprint,
            "status": entry.status,
            "severity": entry.severity.value,
            "title": entry.title[:4000],
            "delivered": ",".join(entry.delivered),
            "failed": ",".join(entry.failed),
        }
        table = self._table("history")
        with self._errors(table.table_name, "record alert"):
            table.create_entity(entity)

    def alert_history(self, fingerprint: str, limit: int = 100) -> list[AlertHistoryEntry]:
        table = self._table("history")
        entries: list[AlertHistoryEntry] = []
        with self._errors(table.table_name, "read alert history"), _absent_is_empty():
            for entity in table.query_entities("PartitionKey eq @pk", parameters={"pk": fingerprint or "restored"}):
                entries.append(
                    AlertHistoryEntry(
                        at=_utc(entity["at"]),
                        fingerprint=str(entity.get("fingerprint", "")),
                        status=str(entity["status"]),
                        severity=Severity(entity["severity"]),
                        title=str(entity.get("title", "")),
                        delivered=_split(entity.get("delivered")),
                        failed=_split(entity.get("failed")),
                    )
                )
                if len(entries) >= limit:
                    break
        return entries

    # -- attachments ----------------------------------------------------------

    def attachments(self, *, near: Collection[str] | None = None) -> dict[str, str]:
        if near is None:
            unkeyed: dict[str, str] = {}
            pairs = self._pairs(_ATTACHMENT_PARTITION, "subnet_id", "nsg_id", "read attachments", unkeyed)
            if unkeyed:  # rows from before the keys existed: rewritten once, so lookups near a VNet find them
                self.save_attachments(unkeyed)
            return pairs
        keys = {k.lower().rstrip("/") for k in near}
        return self._pairs_where(
            _ATTACHMENT_PARTITION, "subnet_id", "nsg_id", ("vnet_key", "nsg_key"), keys, "read attachments"
        )

    def save_attachments(self, current: Mapping[str, str], forget: Collection[str] = ()) -> None:
        self._save_pairs(_ATTACHMENT_PARTITION, "subnet_id", "nsg_id", current, forget, "save attachments")

    def managed_nsgs(self, ids: Collection[str] | None = None) -> dict[str, str]:
        if ids is None:
            return self._pairs(_MANAGED_PARTITION, "nsg_id", "roles", "read managed NSGs")
        # Each row is keyed by its NSG's hashed lower-cased id: an event reads its NSGs' rows, not the partition.
        keys = {_subnet_key(nsg_id) for nsg_id in ids}
        return self._pairs_where(_MANAGED_PARTITION, "nsg_id", "roles", ("RowKey",), keys, "read managed NSGs")

    def save_managed_nsgs(self, current: Mapping[str, str], forget: Collection[str] = ()) -> None:
        self._save_pairs(_MANAGED_PARTITION, "nsg_id", "roles", current, forget, "save managed NSGs")

    def _pairs(
        self, partition: str, key_field: str, value_field: str, what: str, unkeyed: dict[str, str] | None = None
    ) -> dict[str, str]:
        """Every pair in ``partition``; those written before the lookup keys existed also go in ``unkeyed``."""
        table = self._table("attachments")
        pairs: dict[str, str] = {}
        with self._errors(table.table_name, what), _absent_is_empty():
            for entity in table.query_entities("PartitionKey eq @pk", parameters={"pk": partition}):
                pairs[str(entity[key_field])] = str(entity[value_field])
                if unkeyed is not None and "vnet_key" not in entity:
                    unkeyed[str(entity[key_field])] = str(entity[value_field])
        return pairs

    def _pairs_where(
        self,
        partition: str,
        key_field: str,
        value_field: str,
        fields: Sequence[str],
        keys: Collection[str],
        what: str,
    ) -> dict[str, str]:
        """The pairs in ``partition`` whose ``fields`` (any of them) equal one of ``keys``, by filtered queries."""
        table = self._table("attachments")
        pairs: dict[str, str] = {}
        ordered = sorted(keys)
        # The service allows 15 comparisons in a filter: the partition and the rest for the keys.
        per_query = max(1, 14 // len(fields))
        for start in range(0, len(ordered), per_query):
            chunk = ordered[start : start + per_query]
            either = " or ".join(f"{field} eq @k{i}" for i in range(len(chunk)) for field in fields)
            params: dict[str, Any] = {"pk": partition, **{f"k{i}": k for i, k in enumerate(chunk)}}
            with self._errors(table.table_name, what), _absent_is_empty():
                # (a space ends a parameter name for the SDK)
                for entity in table.query_entities(f"PartitionKey eq @pk and ( {either} )", parameters=params):
                    pairs[str(entity[key_field])] = str(entity[value_field])
        return pairs

    def _save_pairs(
        self,
        partition: str,
        key_field: str,
        value_field: str,
        current: Mapping[str, str],
        forget: Collection[str],
        what: str,
    ) -> None:
        """Upsert ``current`` (resource id -> value) in ``partition``; delete the ids in ``forget``."""
        from azure.core.exceptions import ResourceNotFoundError  # noqa: PLC0415
        from azure.data.tables import UpdateMode  # noqa: PLC0415

        at = _utc(self._clock())
        upserts: dict[str, dict[str, Any]] = {}
        for resource_id, value in current.items():
            key = _subnet_key(resource_id)
            upserts[key] = {
                "PartitionKey": partition,
                "RowKey": key,
                key_field: resource_id,
                value_field: value,
                **(_near_keys(resource_id, value) if partition == _ATTACHMENT_PARTITION else {}),
                "seen_at": at,
            }
        operations = [("upsert", e, {"mode": UpdateMode.REPLACE}) for e in upserts.values()]
        table = self._table("attachments")
        with self._errors(table.table_name, what):
            for start in range(0, len(operations), _BATCH):
                table.submit_transaction(operations[start : start + _BATCH])
        # One by one: a row already gone would fail a whole transaction, and there are few.
        for key in {_subnet_key(r) for r in forget} - upserts.keys():
            try:
                with self._errors(table.table_name, what):
                    table.delete_entity(partition_key=partition, row_key=key)
            except ResourceNotFoundError:
                continue

    # -- retention ------------------------------------------------------------

    def prune(self, older_than: datetime) -> int:
        """Delete event ids recorded and resolved alert states last seen before ``older_than``.

        Open alert states, the alert history and the audit trail (the record) stay.
        """
        cutoff = _utc(older_than)
        events = self._table("events")
        alerts = self._table("alerts")
        with self._errors(events.table_name, "list old event ids"), _absent_is_empty():
            old_events = [
                (str(e["PartitionKey"]), str(e["RowKey"]))
                for e in events.query_entities(
                    "at lt @cutoff", parameters={"cutoff": cutoff}, select=["PartitionKey", "RowKey"]
                )
            ]
        with self._errors(alerts.table_name, "list resolved alert states"), _absent_is_empty():
            old_states = [
                (str(e["PartitionKey"]), str(e["RowKey"]))
                for e in alerts.query_entities(
                    "PartitionKey eq @pk and status eq @status and last_seen lt @cutoff",
                    parameters={"pk": _STATE_PARTITION, "status": AlertStatus.RESOLVED.value, "cutoff": cutoff},
                    select=["PartitionKey", "RowKey"],
                )
            ]
        return self._delete(events, old_events) + self._delete(alerts, old_states)

    def _delete(self, table: TableClient, keys: Sequence[tuple[str, str]]) -> int:
        """Delete these (partition, row) keys in per-partition transactions; how many were asked for."""
        from azure.data.tables import TableTransactionError  # noqa: PLC0415

        by_partition: dict[str, list[str]] = {}
        for partition, row in keys:
            by_partition.setdefault(partition, []).append(row)
        deleted = 0
        for partition, rows in sorted(by_partition.items()):
            for start in range(0, len(rows), _BATCH):
                chunk = rows[start : start + _BATCH]
                operations = [("delete", {"PartitionKey": partition, "RowKey": row}) for row in chunk]
                with self._errors(table.table_name, "prune"):
                    try:
                        table.submit_transaction(operations)
                    except TableTransactionError:
                        pass  # a row went meanwhile (forget_event, another sweep): go one by one
                    else:
                        deleted += len(chunk)
                        continue
                for row in chunk:
                    with self._errors(table.table_name, "prune"):
                        table.delete_entity(partition_key=partition, row_key=row)  # quiet when already gone
                    deleted += 1
        return deleted


@contextmanager
def _table_errors(table: str, action: str) -> Iterator[None]:
    """The service's failures as TransientError naming the table; "exists" and "not found" pass as answers."""
    from azure.core.exceptions import AzureError, ResourceExistsError, ResourceNotFoundError  # noqa: PLC0415

    try:
        yield
    except (ResourceExistsError, ResourceNotFoundError):
        raise  # answers, not failures: the callers decide what they mean
    except AzureError as exc:
        raise TransientError(f"state table {table}: {action} failed: {type(exc).__name__}: {exc.message}") from None


def _near_keys(subnet_id: str, nsg_id: str) -> dict[str, str]:
    """What an attachment row is looked up by: its subnet's VNet and its NSG, lower-cased."""
    return {"vnet_key": _vnet_key(subnet_id), "nsg_key": nsg_id.lower()}


def _vnet_key(subnet_id: str) -> str:
    """The lower-cased VNet id of a subnet id ("" when it is none)."""
    lowered = subnet_id.lower().rstrip("/")
    cut = lowered.rfind("/subnets/")
    return lowered[:cut] if cut > 0 else ""


def _subnet_key(subnet_id: str) -> str:
    return hashlib.sha256(subnet_id.lower().encode("utf-8")).hexdigest()


def _absent_is_empty() -> AbstractContextManager[None]:
    """A table that does not exist yet (a reader that may not create it) holds nothing."""
    from azure.core.exceptions import ResourceNotFoundError  # noqa: PLC0415

    return suppress(ResourceNotFoundError)


def _split(text: Any) -> tuple[str, ...]:
    return tuple(p for p in str(text or "").split(",") if p)


def _audit_from_entity(entity: Any) -> AuditRecord:
    data = dict(entity)
    return AuditRecord(
        at=_utc(data["at"]),
        nsg_id=str(data["nsg_id"]),
        trigger=str(data["trigger"]),
        event_id=data.get("event_id"),
        actor=data.get("actor"),
        rules_before=unpack(data, "rules_before", []),
        rules_after=unpack(data, "rules_after", []),
        correlation_id=data.get("correlation_id"),
        changes=tuple(json.loads(data["changes"])) if data.get("changes") else (),
    )


def _resource_key(resource_id: str) -> str:
    """A resource id as a row-key prefix: lower-cased, percent-encoded (no ``/``, ``#``, ``?``, ``\\``, ``!``).

    Encoding keeps prefixes: the rows of the resources under an id start with its key and ``%2F``.
    """
    return quote(resource_id.lower().rstrip("/"), safe="")


def _state_row_key(state: AlertState) -> str:
    return f"{_resource_key(state.resource_id)}{_KEY_END}{state.fingerprint}"


#: Ends a resource key in a row key; ``quote`` encodes it, so it never occurs inside one.
_KEY_END = "!"


def _scope_queries(scopes: Collection[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Filters for the alert states of ``scopes`` and what lies under them: one row-key range per scope.

    A scope's rows start with its key then ``!`` (its own) or ``%2F`` (under it); the range from
    ``key!`` up to ``key%2G`` holds both (and ids that merely start alike, dropped by the caller).
    The service allows 15 comparisons in a filter: the partition and two for each of 7 scopes.
    """
    keys = sorted({_resource_key(s) for s in scopes if s.strip("/")})
    for start in range(0, len(keys), 7):
        chunk = keys[start : start + 7]
        ranges = " or ".join(f"( RowKey ge @lo{i} and RowKey lt @hi{i} )" for i in range(len(chunk)))
        params: dict[str, Any] = {"pk": _STATE_PARTITION}
        for i, key in enumerate(chunk):
            params[f"lo{i}"] = key + _KEY_END
            params[f"hi{i}"] = key + "%2G"
        # (a space ends a parameter name for the SDK)
        yield f"PartitionKey eq @pk and ( {ranges} )", params


def _state_to_entity(state: AlertState) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "PartitionKey": _STATE_PARTITION,
        "RowKey": _state_row_key(state),
        "fingerprint": state.fingerprint,
        "resource_id": state.resource_id,
        "severity": state.severity.value,
        "first_seen": _utc(state.first_seen),
        "last_seen": _utc(state.last_seen),
        "status": state.status,
        "count": state.count,
        **pack("finding", state.finding),
    }
    if state.last_sent is not None:
        entity["last_sent"] = _utc(state.last_sent)
    return entity


def _state_from_entity(entity: dict[str, Any]) -> AlertState:
    last_sent = entity.get("last_sent")
    return AlertState(
        fingerprint=str(entity.get("fingerprint") or entity["RowKey"]),
        resource_id=str(entity["resource_id"]),
        severity=Severity(entity["severity"]),
        first_seen=_utc(entity["first_seen"]),
        last_seen=_utc(entity["last_seen"]),
        last_sent=None if last_sent is None else _utc(last_sent),
        status=str(entity["status"]),
        count=int(entity["count"]),
        finding=unpack(entity, "finding", {}),
    )


class InMemoryStateStore:
    """:class:`~remediation.ports.StateStore` in memory (demo, unit tests). Thread-safe."""

    def __init__(self, *, clock: Callable[[], datetime] = _now) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._events: dict[str, datetime] = {}
        self._audit: list[AuditRecord] = []
        self._status: dict[str, Any] | None = None
        self._alerts: dict[str, AlertState] = {}
        self._by_resource: dict[str, set[str]] = {}  # lower-cased resource id -> fingerprints
        self._resources: list[str] | None = None  # _by_resource's keys sorted, for prefix lookups
        self._history: dict[str, list[AlertHistoryEntry]] = {}
        self._attachments: dict[str, tuple[str, str, datetime]] = {}
        self._managed: dict[str, tuple[str, str]] = {}
        self._near: dict[str, set[str]] = {}  # VNet or NSG (lower-cased) -> subnet keys

    def seen_event(self, event_id: str) -> bool:
        if not event_id:
            raise InputError("empty event id", where="seen_event")
        with self._lock:
            if event_id in self._events:
                return True
            self._events[event_id] = self._clock()
            return False

    def forget_event(self, event_id: str) -> None:
        with self._lock:
            self._events.pop(event_id, None)

    def record_audit(self, record: AuditRecord) -> None:
        # Copies, as a real store would: later changes by the caller must not rewrite history.
        frozen = replace(
            record,
            rules_before=json.loads(json.dumps(list(record.rules_before))),
            rules_after=json.loads(json.dumps(list(record.rules_after))),
            changes=tuple(record.changes),
        )
        with self._lock:
            self._audit.append(frozen)

    def audit_trail(self, nsg_id: str | None = None, limit: int = 100) -> list[AuditRecord]:
        with self._lock:
            records = list(reversed(self._audit))
        records.sort(key=lambda r: _utc(r.at), reverse=True)
        if nsg_id:
            records = [r for r in records if r.nsg_id.lower() == nsg_id.lower()]
        return records[:limit]

    def save_status(self, status: dict[str, Any]) -> None:
        with self._lock:
            self._status = json.loads(json.dumps(status))

    def load_status(self) -> dict[str, Any] | None:
        with self._lock:
            return None if self._status is None else json.loads(json.dumps(self._status))

    def alert_states(self, scopes: Collection[str] | None = None) -> dict[str, AlertState]:
        with self._lock:
            if scopes is None:
                return dict(self._alerts)
            # Through the index (resource -> fingerprints), so an event does not scan the subscription's states.
            inside = within(scopes)
            if self._resources is None:
                self._resources = sorted(self._by_resource)
            found: dict[str, AlertState] = {}
            for scope in {s.lower().rstrip("/") for s in scopes if s.strip("/")}:
                at = bisect.bisect_left(self._resources, scope)
                while at < len(self._resources) and self._resources[at].startswith(scope):
                    resource = self._resources[at]
                    if inside(resource):
                        found.update((fp, self._alerts[fp]) for fp in self._by_resource[resource])
                    at += 1
            return found

    def save_alert_states(self, states: Sequence[AlertState]) -> None:
        with self._lock:
            for state in states:
                self._drop_alert(state.fingerprint)
                self._alerts[state.fingerprint] = state
                resource = state.resource_id.lower().rstrip("/")
                if resource not in self._by_resource:
                    self._resources = None
                self._by_resource.setdefault(resource, set()).add(state.fingerprint)

    def _drop_alert(self, fingerprint: str) -> None:
        old = self._alerts.pop(fingerprint, None)
        if old is not None:
            self._by_resource.get(old.resource_id.lower().rstrip("/"), set()).discard(fingerprint)

    def record_alert(self, entry: AlertHistoryEntry) -> None:
        with self._lock:
            self._history.setdefault(entry.fingerprint or "restored", []).append(entry)

    def alert_history(self, fingerprint: str, limit: int = 100) -> list[AlertHistoryEntry]:
        with self._lock:
            entries = list(reversed(self._history.get(fingerprint or "restored", [])))
        return entries[:limit]

    def attachments(self, *, near: Collection[str] | None = None) -> dict[str, str]:
        with self._lock:
            if near is None:
                return {subnet_id: nsg_id for subnet_id, nsg_id, _ in self._attachments.values()}
            keys = {k.lower().rstrip("/") for k in near}
            # Through the index (VNet or NSG -> subnets), so an event does not scan the subscription's memory.
            subnets = {s for k in keys for s in self._near.get(k, ())}
            return {self._attachments[s][0]: self._attachments[s][1] for s in subnets if s in self._attachments}

    def save_attachments(self, current: Mapping[str, str], forget: Collection[str] = ()) -> None:
        at = self._clock()
        with self._lock:
            for subnet_id in forget:
                self._unindex(subnet_id.lower())
            for subnet_id, nsg_id in current.items():
                key = subnet_id.lower()
                self._unindex(key)
                self._attachments[key] = (subnet_id, nsg_id, at)
                for near in (_vnet_key(subnet_id), nsg_id.lower()):
                    self._near.setdefault(near, set()).add(key)

    def _unindex(self, key: str) -> None:
        old = self._attachments.pop(key, None)
        if old is not None:
            for near in (_vnet_key(old[0]), old[1].lower()):
                self._near.get(near, set()).discard(key)

    def managed_nsgs(self, ids: Collection[str] | None = None) -> dict[str, str]:
        with self._lock:
            if ids is None:
                return dict(self._managed.values())
            return dict(self._managed[k] for k in {i.lower() for i in ids} if k in self._managed)

    def save_managed_nsgs(self, current: Mapping[str, str], forget: Collection[str] = ()) -> None:
        with self._lock:
            for nsg_id in forget:
                self._managed.pop(nsg_id.lower(), None)
            for nsg_id, roles in current.items():
                self._managed[nsg_id.lower()] = (nsg_id, roles)

    def prune(self, older_than: datetime) -> int:
        cutoff = _utc(older_than)
        with self._lock:
            events = [e for e, at in self._events.items() if _utc(at) < cutoff]
            states = [
                fp for fp, s in self._alerts.items() if s.status == AlertStatus.RESOLVED and _utc(s.last_seen) < cutoff
            ]
            for event_id in events:
                del self._events[event_id]
            for fp in states:
                self._drop_alert(fp)
        return len(events) + len(states)


# -- the topology cache ---------------------------------------------------------------------------

_TOPOLOGY_KINDS = ("nsg", "vnet", "nic")
_CYCLECLOUD_PARTITION = "cyclecloud"
_META_PARTITION = "meta"


def _table_service(settings: Settings, credential: TokenCredential | None, what: str) -> TableServiceClient:
    """The Table service of the state store's settings (Azurite's connection string, or endpoint + identity)."""
    from azure.data.tables import TableServiceClient  # noqa: PLC0415

    if settings.state_connection_string:
        return TableServiceClient.from_connection_string(settings.state_connection_string.get_secret_value())
    if settings.state_table_endpoint and credential is not None:
        return TableServiceClient(settings.state_table_endpoint, credential=credential)
    raise SettingsError(f"{what} needs STATE_TABLE_ENDPOINT and a credential", where="state")


def _open_table(service: TableServiceClient, name: str) -> TableClient:
    if not _TABLE_NAME.match(name):
        raise SettingsError(
            f"table name {name!r} must be 3-63 letters or digits starting with a letter", where="STATE_TABLE_PREFIX"
        )
    with _table_errors(name, "create"):
        return service.create_table_if_not_exists(name)


def _id_key(resource_id: str) -> str:
    return hashlib.sha256(resource_id.lower().encode("utf-8")).hexdigest()


def _topology_partition(kind: str) -> str:
    if kind not in _TOPOLOGY_KINDS:
        raise InputError(f"unknown resource kind {kind!r} (valid: {', '.join(_TOPOLOGY_KINDS)})", where="topology")
    return kind


def _cached_from_entity(entity: Mapping[str, Any]) -> CachedResource:
    return CachedResource(
        id=str(entity["resource_id"]),
        kind=str(entity["kind"]),
        etag=str(entity.get("arm_etag") or ""),
        body=unpack(dict(entity), "body", {}),
        vnet_id=str(entity.get("vnet_id") or ""),
        cyclecloud=bool(entity.get("cyclecloud")),
    )


class TableTopologyCache:
    """:class:`~remediation.ports.TopologyCache` on one table, ``<prefix>topology``.

    Partitions: ``nsg``, ``vnet``, ``nic`` (only NICs that matter: with an NSG, or CycleCloud's;
    ``vnet_key`` finds a VNet's) and ``cyclecloud`` (pointers to what locates CycleCloud), row keys
    hashes of lowercased resource ids; ``meta/built`` says when a sweep last rebuilt it. A
    resource's body (ARM's JSON) is packed like the audit trail's rules. Every lookup an event
    makes is a point read or a query of the few cached NICs, so its cost does not grow with the
    number of NSGs.
    """

    def __init__(self, service: TableServiceClient, *, prefix: str = "lockdown", clock: Callable[[], datetime] = _now):
        self._clock = clock
        self._table = _open_table(service, f"{prefix}topology")

    @classmethod
    def from_settings(
        cls, settings: Settings, *, credential: TokenCredential | None = None, clock: Callable[[], datetime] = _now
    ) -> TableTopologyCache:
        return cls(
            _table_service(settings, credential, "the topology cache"), prefix=settings.state_table_prefix, clock=clock
        )

    def _errors(self, action: str) -> AbstractContextManager[None]:
        return _table_errors(self._table.table_name, action)

    def get(self, kind: str, ids: Collection[str]) -> dict[str, CachedResource]:
        from azure.core.exceptions import ResourceNotFoundError  # noqa: PLC0415

        partition = _topology_partition(kind)
        found: dict[str, CachedResource] = {}
        for resource_id in dict.fromkeys(i.lower() for i in ids):
            try:
                with self._errors(f"read {kind}"):
                    entity = self._table.get_entity(partition, _id_key(resource_id))
            except ResourceNotFoundError:
                continue
            found[resource_id] = _cached_from_entity(entity)
        return found

    def nics_in(self, vnet_ids: Collection[str]) -> list[CachedResource]:
        nics: list[CachedResource] = []
        for vnet_id in dict.fromkeys(v.lower() for v in vnet_ids):
            with self._errors("read NICs"), _absent_is_empty():
                query = self._table.query_entities(
                    "PartitionKey eq @pk and vnet_key eq @vnet", parameters={"pk": "nic", "vnet": vnet_id}
                )
                nics += [_cached_from_entity(e) for e in query]
        return nics

    def cyclecloud(self) -> list[CachedResource]:
        with self._errors("read CycleCloud pointers"), _absent_is_empty():
            pointers = list(self._table.query_entities("PartitionKey eq @pk", parameters={"pk": _CYCLECLOUD_PARTITION}))
        out: list[CachedResource] = []
        for pointer in pointers:
            out += self.get(str(pointer["kind"]), [str(pointer["resource_id"])]).values()
        return out

    def _entity(self, r: CachedResource) -> dict[str, Any]:
        return {
            "PartitionKey": _topology_partition(r.kind),
            "RowKey": _id_key(r.id),
            "resource_id": r.id,
            "kind": r.kind,
            "arm_etag": r.etag,
            "vnet_id": r.vnet_id,
            "vnet_key": r.vnet_id.lower(),
            "cyclecloud": r.cyclecloud,
            "read_at": _utc(self._clock()),
            **pack("body", r.body),
        }

    def _pointer(self, r: CachedResource) -> dict[str, Any]:
        return {
            "PartitionKey": _CYCLECLOUD_PARTITION,
            "RowKey": _id_key(r.id),
            "resource_id": r.id,
            "kind": r.kind,
        }

    def put(self, resources: Sequence[CachedResource], forget: Collection[tuple[str, str]] = ()) -> None:
        from azure.core.exceptions import ResourceNotFoundError  # noqa: PLC0415
        from azure.data.tables import UpdateMode  # noqa: PLC0415

        for r in resources:
            with self._errors(f"store {r.kind}"):
                self._table.upsert_entity(self._entity(r), mode=UpdateMode.REPLACE)
                if r.cyclecloud:
                    self._table.upsert_entity(self._pointer(r), mode=UpdateMode.REPLACE)
            if not r.cyclecloud:
                forget = [*forget, ("pointer", r.id)]
        for kind, resource_id in forget:
            keys = [(_CYCLECLOUD_PARTITION, _id_key(resource_id))]
            if kind != "pointer":
                keys.append((_topology_partition(kind), _id_key(resource_id)))
            for partition, row in keys:
                try:
                    with self._errors(f"drop {kind}"):
                        self._table.delete_entity(partition_key=partition, row_key=row)
                except ResourceNotFoundError:
                    continue

    def rebuild(self, resources: Sequence[CachedResource]) -> int:
        """Write what changed (by ARM etag), drop what the sweep no longer saw, in per-partition batches."""
        from azure.data.tables import UpdateMode  # noqa: PLC0415

        with self._errors("list"), _absent_is_empty():
            existing = {
                (str(e["PartitionKey"]), str(e["RowKey"])): str(e.get("arm_etag") or "")
                for e in self._table.query_entities(
                    "PartitionKey ne @meta",
                    parameters={"meta": _META_PARTITION},
                    select=["PartitionKey", "RowKey", "arm_etag"],
                )
            }
        wanted: dict[tuple[str, str], dict[str, Any]] = {}
        for r in resources:
            entity = self._entity(r)
            wanted[(entity["PartitionKey"], entity["RowKey"])] = entity
            if r.cyclecloud:
                pointer = self._pointer(r)
                wanted[(pointer["PartitionKey"], pointer["RowKey"])] = pointer
        operations: dict[str, list[Any]] = {}
        for key, entity in wanted.items():
            if key in existing and existing[key] == str(entity.get("arm_etag", "")):
                continue  # unchanged since the last sweep (or the event that stored it)
            operations.setdefault(key[0], []).append(("upsert", entity, {"mode": UpdateMode.REPLACE}))
        for key in existing.keys() - wanted.keys():
            operations.setdefault(key[0], []).append(("delete", {"PartitionKey": key[0], "RowKey": key[1]}))
        count = 0
        with self._errors("rebuild"):
            for partition, ops in operations.items():
                for chunk in _transactions(ops):
                    self._table.submit_transaction(chunk)
                    count += len(chunk) if partition != _CYCLECLOUD_PARTITION else 0  # resources, not pointers
            self._table.upsert_entity(
                {"PartitionKey": _META_PARTITION, "RowKey": "built", "at": _utc(self._clock())}, mode=UpdateMode.REPLACE
            )
        return count

    def built_at(self) -> datetime | None:
        from azure.core.exceptions import ResourceNotFoundError  # noqa: PLC0415

        try:
            with self._errors("read meta"):
                entity = self._table.get_entity(_META_PARTITION, "built")
        except ResourceNotFoundError:
            return None
        return _utc(entity["at"])


def _transactions(operations: Sequence[Any], max_bytes: int = 2_000_000) -> Iterator[list[Any]]:
    """Operations in transactions of at most 100, and well under the service's 4 MiB per transaction."""
    chunk: list[Any] = []
    size = 0
    for op in operations:
        weight = sum(len(v) for v in op[1].values() if isinstance(v, bytes)) + 1024
        if chunk and (len(chunk) == _BATCH or size + weight > max_bytes):
            yield chunk
            chunk, size = [], 0
        chunk.append(op)
        size += weight
    if chunk:
        yield chunk


class InMemoryTopologyCache:
    """:class:`~remediation.ports.TopologyCache` in memory (demo, unit tests, no state store). Thread-safe;
    indexed by VNet and by CycleCloud's mark, so an event's lookups do not scan the subscription."""

    def __init__(self, *, clock: Callable[[], datetime] = _now) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._items: dict[tuple[str, str], CachedResource] = {}
        self._nics_by_vnet: dict[str, set[str]] = {}
        self._cyclecloud: set[tuple[str, str]] = set()
        self._built: datetime | None = None

    def get(self, kind: str, ids: Collection[str]) -> dict[str, CachedResource]:
        with self._lock:
            found = {i.lower(): self._items.get((kind, i.lower())) for i in ids}
        return {k: v for k, v in found.items() if v is not None}

    def nics_in(self, vnet_ids: Collection[str]) -> list[CachedResource]:
        with self._lock:
            keys = {k for v in vnet_ids for k in self._nics_by_vnet.get(v.lower(), ())}
            return [self._items[("nic", k)] for k in sorted(keys)]

    def cyclecloud(self) -> list[CachedResource]:
        with self._lock:
            return [self._items[k] for k in sorted(self._cyclecloud)]

    def _drop(self, kind: str, key: str) -> None:
        old = self._items.pop((kind, key), None)
        if old is not None and kind == "nic":
            self._nics_by_vnet.get(old.vnet_id.lower(), set()).discard(key)
        self._cyclecloud.discard((kind, key))

    def _keep(self, r: CachedResource) -> None:
        self._drop(r.kind, r.key)
        self._items[(r.kind, r.key)] = r
        if r.kind == "nic":
            self._nics_by_vnet.setdefault(r.vnet_id.lower(), set()).add(r.key)
        if r.cyclecloud:
            self._cyclecloud.add((r.kind, r.key))

    def put(self, resources: Sequence[CachedResource], forget: Collection[tuple[str, str]] = ()) -> None:
        with self._lock:
            for kind, resource_id in forget:
                self._drop(kind, resource_id.lower())
            for r in resources:
                self._keep(r)

    def rebuild(self, resources: Sequence[CachedResource]) -> int:
        with self._lock:
            before = self._items
            self._items, self._nics_by_vnet, self._cyclecloud = {}, {}, set()
            for r in resources:
                self._keep(r)
            self._built = self._clock()
            changed = sum(1 for k, r in self._items.items() if k not in before or before[k].etag != r.etag)
            return changed + len(before.keys() - self._items.keys())

    def built_at(self) -> datetime | None:
        with self._lock:
            return self._built


# -- pending events and the drain lease -------------------------------------------------------------

_PENDING_PARTITION = "pending"
_LEASE_PARTITION = "lease"
_LEASE_ROW = "drain"


def _pending_row(event: PendingEvent) -> str:
    """Rows of one resource sort together; the same event twice is the same row."""
    return f"{_id_key(event.key)[:32]}-{hashlib.sha256(event.event_id.encode('utf-8')).hexdigest()[:32]}"


class TablePendingEvents:
    """:class:`~remediation.ports.PendingEvents` on one table, ``<prefix>pending``: partition
    ``pending`` holds a row per accepted event, ``lease/drain`` who drains until when (taken with
    the entity's ETag, so two instances never both hold it)."""

    def __init__(self, service: TableServiceClient, *, prefix: str = "lockdown") -> None:
        self._table = _open_table(service, f"{prefix}pending")

    @classmethod
    def from_settings(cls, settings: Settings, *, credential: TokenCredential | None = None) -> TablePendingEvents:
        return cls(_table_service(settings, credential, "pending events"), prefix=settings.state_table_prefix)

    def _errors(self, action: str) -> AbstractContextManager[None]:
        return _table_errors(self._table.table_name, action)

    def add(self, event: PendingEvent) -> None:
        from azure.core.exceptions import ResourceExistsError  # noqa: PLC0415

        entity = {
            "PartitionKey": _PENDING_PARTITION,
            "RowKey": _pending_row(event),
            "key": event.key,
            "kind": event.kind,
            "event_id": event.event_id[:1024],
            "actor": event.actor or "",
            "at": _utc(event.at),
        }
        try:
            with self._errors("add pending event"):
                self._table.create_entity(entity)
        except ResourceExistsError:
            return  # the same event again: one row is enough

    def pending(self) -> list[PendingEvent]:
        with self._errors("read pending events"), _absent_is_empty():
            rows = list(self._table.query_entities("PartitionKey eq @pk", parameters={"pk": _PENDING_PARTITION}))
        events = [
            PendingEvent(
                key=str(e["key"]),
                kind=str(e["kind"]),
                event_id=str(e["event_id"]),
                actor=str(e.get("actor") or "") or None,
                at=_utc(e["at"]),
            )
            for e in rows
        ]
        return sorted(events, key=lambda e: e.at)

    def remove(self, events: Sequence[PendingEvent]) -> None:
        from azure.core.exceptions import ResourceNotFoundError  # noqa: PLC0415

        for event in events:
            try:
                with self._errors("remove pending event"):
                    self._table.delete_entity(partition_key=_PENDING_PARTITION, row_key=_pending_row(event))
            except ResourceNotFoundError:
                continue

    def claim(self, owner: str, now: datetime, seconds: float) -> bool:
        from azure.core import MatchConditions  # noqa: PLC0415
        from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError  # noqa: PLC0415
        from azure.data.tables import UpdateMode  # noqa: PLC0415

        lease = {
            "PartitionKey": _LEASE_PARTITION,
            "RowKey": _LEASE_ROW,
            "owner": owner,
            "until": _utc(now) + timedelta(seconds=seconds),
        }
        try:
            with self._errors("take the drain lease"):
                self._table.create_entity(lease)
            return True
        except ResourceExistsError:
            pass
        try:
            with self._errors("read the drain lease"):
                held = self._table.get_entity(_LEASE_PARTITION, _LEASE_ROW)
        except ResourceNotFoundError:
            return False  # released meanwhile: the next round takes it
        if held.get("owner") != owner and _utc(held["until"]) > _utc(now):
            return False
        try:
            with self._errors("renew the drain lease"):
                self._table.update_entity(
                    lease,
                    mode=UpdateMode.REPLACE,
                    etag=held.metadata["etag"],
                    match_condition=MatchConditions.IfNotModified,
                )
        except (HttpResponseError, ResourceNotFoundError) as exc:
            if getattr(exc, "status_code", None) in (404, 409, 412):
                return False  # another instance took it first
            raise
        return True

    def release(self, owner: str) -> None:
        from azure.core import MatchConditions  # noqa: PLC0415
        from azure.core.exceptions import HttpResponseError, ResourceNotFoundError  # noqa: PLC0415

        try:
            with self._errors("read the drain lease"):
                held = self._table.get_entity(_LEASE_PARTITION, _LEASE_ROW)
            if held.get("owner") != owner:
                return
            with self._errors("release the drain lease"):
                self._table.delete_entity(
                    _LEASE_PARTITION,
                    _LEASE_ROW,
                    etag=held.metadata["etag"],
                    match_condition=MatchConditions.IfNotModified,
                )
        except (HttpResponseError, ResourceNotFoundError):
            return  # expired and taken, or gone: not ours any more


class InMemoryPendingEvents:
    """:class:`~remediation.ports.PendingEvents` in memory (demo, unit tests, no state store). Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rows: dict[str, PendingEvent] = {}
        self._lease: tuple[str, datetime] | None = None

    def add(self, event: PendingEvent) -> None:
        with self._lock:
            self._rows.setdefault(_pending_row(event), event)

    def pending(self) -> list[PendingEvent]:
        with self._lock:
            return sorted(self._rows.values(), key=lambda e: e.at)

    def remove(self, events: Sequence[PendingEvent]) -> None:
        with self._lock:
            for event in events:
                self._rows.pop(_pending_row(event), None)

    def claim(self, owner: str, now: datetime, seconds: float) -> bool:
        with self._lock:
            if self._lease is not None and self._lease[0] != owner and self._lease[1] > _utc(now):
                return False
            self._lease = (owner, _utc(now) + timedelta(seconds=seconds))
            return True

    def release(self, owner: str) -> None:
        with self._lock:
            if self._lease is not None and self._lease[0] == owner:
                self._lease = None
