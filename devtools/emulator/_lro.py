"""Long-running operations: the Azure-AsyncOperation status resource and its Location twin.

An operation answers ``InProgress`` for a configurable number of polls, then ``Succeeded`` (or
``Failed`` when a fault said so, or ``Canceled`` when a later write to the same resource
superseded it, as NRP does). Operations nobody polls settle on their own after
``max_seconds``, as ARM's do, so an abandoned poller cannot leave a resource ``Updating``.

A failed or canceled operation answers what real ARM answers (azure-cli's recorded
test_express_route_gateway_connection_inbound_outbound_routemap):
``{"status": "Failed", "error": {"code", "message", "details": []}}``.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from devtools.emulator._errors import ArmError


@dataclass
class Operation:
    id: str
    subscription: str
    location: str
    polls_left: int
    fail: bool
    on_done: Callable[[Operation], None]
    kind: str  # "write" or "delete"
    resource_url: str  # where the final GET of a PUT goes (path only)
    started: float = field(default_factory=time.monotonic)
    start_time: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z")
    status: str = "InProgress"
    end_time: str = ""
    ended: float = 0.0
    polls: int = 0  # polls answered so far (the wait suggested grows with them)
    error_code: str = "InternalServerError"
    error_message: str = "An error occurred while processing the operation (injected by the emulator)."

    @property
    def done(self) -> bool:
        return self.status != "InProgress"

    def status_body(self) -> dict[str, Any]:
        if self.status in ("Failed", "Canceled"):
            return {
                "status": self.status,
                "error": {"code": self.error_code, "message": self.error_message, "details": []},
            }
        body: dict[str, Any] = {"name": self.id, "status": self.status, "startTime": self.start_time}
        if self.end_time:
            body["endTime"] = self.end_time
        return body


class Operations:
    def __init__(self, *, max_seconds: float = 30.0) -> None:
        self.max_seconds = max_seconds
        self._ops: dict[str, Operation] = {}
        self._lock = threading.Lock()

    def clear(self) -> None:
        with self._lock:
            self._ops.clear()

    def start(
        self,
        *,
        subscription: str,
        location: str,
        polls: int,
        fail: bool,
        kind: str,
        resource_url: str,
        on_done: Callable[[Operation], None],
        error: tuple[str, str] | None = None,
    ) -> Operation:
        op = Operation(
            id=str(uuid.uuid4()),
            subscription=subscription,
            location=location,
            polls_left=polls,
            fail=fail,
            on_done=on_done,
            kind=kind,
            resource_url=resource_url,
        )
        if error is not None:
            op.error_code, op.error_message = error
        with self._lock:
            self._ops[op.id] = op
        return op

    def finish(self, op: Operation) -> None:
        """Settle ``op`` now (used for ``polls=0`` and by the expiry sweep)."""
        self._finish(op)

    def _finish(self, op: Operation, status: str | None = None) -> None:
        with self._lock:
            if op.done:
                return
            op.status = status or ("Failed" if op.fail else "Succeeded")
            op.ended = time.monotonic()
            op.end_time = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z"
        op.on_done(op)

    def supersede(self, op_id: str, by: str) -> None:
        """A later write to the same resource took over: ``op_id`` ends ``Canceled`` (NRP's
        CanceledAndSupersededDueToAnotherOperation); what it wrote stands only as far as the
        later write kept it."""
        with self._lock:
            op = self._ops.get(op_id)
        if op is None or op.done:
            return
        op.error_code = "CanceledAndSupersededDueToAnotherOperation"
        op.error_message = (
            f"Operation was canceled and superseded by operation {by} because another operation was "
            "started on the same resource."
        )
        self._finish(op, "Canceled")

    def poll(self, op_id: str) -> Operation:
        with self._lock:
            op = self._ops.get(op_id.lower())
            if op is None:
                raise ArmError(404, "OperationNotFound", f"Operation {op_id} was not found.")
            settle = False
            op.polls += 1
            if not op.done:
                if op.polls_left > 0:
                    op.polls_left -= 1
                else:
                    settle = True
        if settle:
            self._finish(op)
        return op

    def peek(self, op_id: str) -> Operation:
        with self._lock:
            op = self._ops.get(op_id)
        if op is None:
            raise ArmError(404, "OperationNotFound", f"Operation {op_id} was not found.")
        return op

    def settle_expired(self, keep_seconds: float = 3600.0) -> None:
        """Settle operations older than ``max_seconds``; forget those ended ``keep_seconds`` ago."""
        now = time.monotonic()
        with self._lock:
            expired = [o for o in self._ops.values() if not o.done and now - o.started >= self.max_seconds]
            for stale in [k for k, o in self._ops.items() if o.done and now - o.ended > keep_seconds]:
                del self._ops[stale]
        for op in expired:
            self._finish(op)

    def pending(self) -> int:
        with self._lock:
            return sum(1 for o in self._ops.values() if not o.done)
