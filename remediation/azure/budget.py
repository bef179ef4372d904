"""ARM's read budget, shared with CycleCloud: read it on every answer, slow down before it runs low.

Azure Resource Manager allows each principal about 12,000 subscription reads an hour and says on
every answer how many are left (``x-ms-ratelimit-remaining-subscription-reads``). CycleCloud's
autoscaler draws on the same subscription's limits to create VMs and NICs; a guard that spends
them throttles the cluster it protects. So the ARM client carries :class:`ReadBudgetPolicy`,
which keeps the last count ARM reported in a :class:`ReadBudget` and, before each request:

- sends it at once while at least ``slow_below`` reads are left (half the hourly limit);
- below that, waits before each read, longer the closer the count gets to ``floor`` (up to
  ``max_delay`` seconds), so the guard's share shrinks as the budget does;
- at or below ``floor``, or while a 429's ``Retry-After`` runs, sends nothing: the call fails at
  once with :class:`BudgetExhausted` (a TransientError: the event stays pending, the trigger
  retries later). One 429 stops every thread of the process until its wait is over, so a
  throttled subscription never sees a retry storm from the guard.

Writes (the restore itself) have their own, separate limit and are not held back by reads.
"""

from __future__ import annotations

import email.utils
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from azure.core.pipeline import PipelineRequest, PipelineResponse
from azure.core.pipeline.policies import SansIOHTTPPolicy

from remediation.errors import TransientError

log = logging.getLogger(__name__)

REMAINING_READS = "x-ms-ratelimit-remaining-subscription-reads"
_READ_METHODS = frozenset({"GET", "HEAD"})


class BudgetExhausted(TransientError):
    """No request was sent: ARM's read budget is at the floor, or a 429's wait is still running."""


@dataclass(frozen=True, slots=True)
class BudgetOptions:
    """When to slow down and stop. Defaults: the hourly limit of 12,000 reads a principal has."""

    slow_below: int = 6000
    floor: int = 1000
    max_delay: float = 2.0
    max_throttle_wait: float = 3600.0


class ReadBudget:
    """The last remaining-reads count ARM reported, and a 429's wait. Thread-safe, one per process."""

    def __init__(
        self,
        options: BudgetOptions | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.options = options or BudgetOptions()
        if not 0 <= self.options.floor < self.options.slow_below:
            raise ValueError("the budget needs 0 <= floor < slow_below")
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._remaining: int | None = None
        self._blocked_until = 0.0
        self.delayed_seconds = 0.0
        self.refused = 0

    @property
    def remaining(self) -> int | None:
        """The count on the latest answer (None before any)."""
        with self._lock:
            return self._remaining

    def delay_for(self, remaining: int | None) -> float:
        """Seconds to wait before a read when ``remaining`` reads are left (0 above ``slow_below``)."""
        o = self.options
        if remaining is None or remaining >= o.slow_below:
            return 0.0
        spent = (o.slow_below - max(remaining, o.floor)) / (o.slow_below - o.floor)
        return o.max_delay * spent

    def before_read(self, what: str) -> None:
        """Wait as long as the budget asks, or raise BudgetExhausted without sending anything."""
        with self._lock:
            remaining, blocked = self._remaining, self._blocked_until - self._clock()
        if blocked > 1.0:  # a retry azure-core makes after sleeping the Retry-After is let through
            self._refuse(f"{what}: ARM answered 429 Too Many Requests; no reads for {blocked:.0f} s more")
        if remaining is not None and remaining <= self.options.floor:
            self._refuse(
                f"{what}: only {remaining} ARM reads left this hour (floor {self.options.floor}); "
                "left to CycleCloud and the rest of the subscription"
            )
        delay = self.delay_for(remaining)
        if delay > 0:
            with self._lock:
                self.delayed_seconds += delay
            self._sleep(delay)

    def observe(self, status: int, headers: Any, *, read: bool = True) -> None:
        """Note an answer's remaining-reads count, and the Retry-After of a read's 429 (a write's 429
        is the write budget's, which holds back no read: the restore's poll must still go out)."""
        value = headers.get(REMAINING_READS)
        throttled = status == 429 and read
        retry_after = _retry_after(headers) if throttled else None
        with self._lock:
            if value is not None:
                try:
                    self._remaining = int(value)
                except ValueError:
                    log.warning("unreadable %s header: %r", REMAINING_READS, value)
            if throttled and retry_after:  # without a wait named, azure-core's own backoff spaces the retries
                wait = min(retry_after, self.options.max_throttle_wait)
                self._blocked_until = max(self._blocked_until, self._clock() + wait)
                log.warning("ARM throttled the guard (429): no reads for %.1f s", wait)

    def _refuse(self, message: str) -> None:
        with self._lock:
            self.refused += 1
        raise BudgetExhausted(message)

    def describe(self) -> dict[str, Any]:
        """For the status page and the benchmarks."""
        with self._lock:
            return {
                "remainingReads": self._remaining,
                "blockedSeconds": max(0.0, round(self._blocked_until - self._clock(), 1)),
                "delayedSeconds": round(self.delayed_seconds, 3),
                "refused": self.refused,
                "slowBelow": self.options.slow_below,
                "floor": self.options.floor,
            }


class ReadBudgetPolicy(SansIOHTTPPolicy[Any, Any]):
    """The pipeline's side of :class:`ReadBudget`: runs on every attempt (a per-retry policy), so a
    retry after a 429 is held back like a first try."""

    def __init__(self, budget: ReadBudget) -> None:
        self.budget = budget

    def on_request(self, request: PipelineRequest[Any]) -> None:
        http = request.http_request
        if http.method.upper() in _READ_METHODS:
            self.budget.before_read(f"{http.method} {http.url.split('?', 1)[0]}")

    def on_response(self, request: PipelineRequest[Any], response: PipelineResponse[Any, Any]) -> None:
        read = request.http_request.method.upper() in _READ_METHODS
        self.budget.observe(response.http_response.status_code, response.http_response.headers, read=read)


def _retry_after(headers: Any) -> float | None:
    """The wait a 429 names, as azure-core reads it: retry-after-ms, x-ms-retry-after-ms, then Retry-After."""
    for name in ("retry-after-ms", "x-ms-retry-after-ms"):
        value = headers.get(name)
        if value:
            try:
                return max(0.0, float(value) / 1000)
            except ValueError:
                continue
    return _retry_after_seconds(headers.get("Retry-After"))


def _retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds: a number, or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
