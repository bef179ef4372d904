"""Switchable faults: answer with an error status, drop the connection, slow down, let the
long-running operation end Failed, or have a later write supersede it (it ends Canceled).
Each fault matches a method and a path regex and fires a limited number of times."""

from __future__ import annotations

import re
import threading
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

FaultKind = Literal["status", "drop", "delay", "lro_failed", "superseded"]
KINDS: tuple[str, ...] = ("status", "drop", "delay", "lro_failed", "superseded")

#: NRP's throttling of a write while another operation updates the resource, as recorded
#: (azure-cli's test_network_vpn_connection_nat_rule): 429 ``RetryableError`` with this detail,
#: no Retry-After header; the wait is only in the message.
RETRYABLE = "RetryableError"

# ARM's error code for each injected status when the fault names none.
DEFAULT_CODES: dict[int, tuple[str, str]] = {
    403: (
        "AuthorizationFailed",
        "The client does not have authorization to perform this action or the scope is invalid. (injected)",
    ),
    409: (
        "AnotherOperationInProgress",
        "Another operation on this or dependent resource is in progress. To retrieve status of the operation "
        "use uri: (injected by the emulator).",
    ),
    412: ("PreconditionFailed", "The condition specified using HTTP conditional header(s) is not met."),
    429: (
        "TooManyRequests",
        "The request is being throttled as the limit has been reached for operation type. (injected)",
    ),
    500: ("InternalServerError", "An unexpected error occurred while processing the request. (injected)"),
    502: ("BadGateway", "The gateway did not receive a response in time. (injected)"),
    503: ("ServiceUnavailable", "The service is temporarily unavailable. (injected)"),
    504: ("GatewayTimeout", "The gateway did not receive a response within the specified time period. (injected)"),
}


@dataclass
class Fault:
    """One fault. ``times=None`` fires forever; ``skip`` lets that many matching requests pass first.

    kind ``status``: answer ``status`` with an ARM error (``code``/``message`` default by status;
    ``retry_after`` seconds sent as Retry-After). ``drop``: close the connection without an answer
    (``apply=True``: carry the request out first, then drop, so the client loses the answer of a
    write that happened). ``delay``: wait ``seconds`` then answer normally. ``lro_failed``: the
    write is validated and accepted (201/202) but its operation ends ``Failed`` and nothing changes.
    ``superseded``: the write is accepted, then a later write by someone else re-writes the
    resource as it was (new etag, nothing of this write kept) and this operation ends
    ``Canceled`` with ``CanceledAndSupersededDueToAnotherOperation``. ``status`` 429 with
    ``code="RetryableError"`` answers NRP's RetryableErrorDueToAnotherOperation (no Retry-After).
    ``lro_failed`` ends the operation with ``code``/``message`` when given.
    ``principal`` restricts the fault to calls by that principal (e.g. "remediator").
    """

    kind: FaultKind = "status"
    method: str | None = None
    path: str = ""
    status: int = 500
    code: str | None = None
    message: str | None = None
    retry_after: float | None = None
    seconds: float = 0.0
    times: int | None = 1
    skip: int = 0
    apply: bool = False
    principal: str | None = None
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    hits: int = 0
    seen: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"fault kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if self.kind == "status" and not 400 <= int(self.status) <= 599:
            raise ValueError(f"fault status must be 400-599, got {self.status!r}")
        re.compile(self.path)  # fail at creation, not at the first request

    def matches(self, method: str, path: str, principal: str | None) -> bool:
        if self.method and self.method.upper() != method.upper():
            return False
        if self.principal and self.principal != principal:
            return False
        return re.search(self.path, path, re.IGNORECASE) is not None

    @property
    def spent(self) -> bool:
        return self.times is not None and self.hits >= self.times

    def error(self) -> tuple[int, str, str]:
        if self.code == RETRYABLE:
            return self.status, RETRYABLE, self.message or "A retryable error occurred."
        code, message = DEFAULT_CODES.get(self.status, ("InjectedFault", "Injected by the emulator."))
        return self.status, self.code or code, self.message or message

    def details(self, path: str) -> list[dict[str, Any]] | None:
        """ARM's ``error.details`` for this fault (only RetryableError carries any)."""
        if self.code != RETRYABLE:
            return None
        return [
            {
                "code": "RetryableErrorDueToAnotherOperation",
                "message": f"Operation PutNetworkSecurityGroupOperation ({uuid.uuid4()}) is updating resource "
                f"{path}. The call can be retried in 12 seconds.",
            }
        ]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class FaultSet:
    """The active faults, first added first matched. Thread-safe."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, fault: Fault | None = None, /, **fields: Any) -> Fault:
        """``faults.add(kind="status", method="PUT", path="networkSecurityGroups", status=429, retry_after=1)``."""
        if fault is None:
            unknown = set(fields) - {f for f in Fault.__dataclass_fields__ if f not in ("id", "hits", "seen")}
            if unknown:
                raise ValueError(f"unknown fault field(s): {', '.join(sorted(unknown))}")
            fault = Fault(**fields)
        with self._lock:
            self._faults.append(fault)
        return fault

    def take(self, method: str, path: str, principal: str | None, kinds: tuple[str, ...]) -> Fault | None:
        """The first live fault of one of ``kinds`` matching this request; counts it as fired."""
        with self._lock:
            for fault in self._faults:
                if fault.kind not in kinds or fault.spent or not fault.matches(method, path, principal):
                    continue
                fault.seen += 1
                if fault.seen <= fault.skip:
                    continue
                fault.hits += 1
                return fault
        return None

    def remove(self, fault_id: str) -> bool:
        with self._lock:
            before = len(self._faults)
            self._faults = [f for f in self._faults if f.id != fault_id]
            return len(self._faults) != before

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def list(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)
