"""ARM's subscription request limits: per principal, per hour, reads / writes / deletes apart.

Azure Resource Manager allows each principal 12,000 subscription reads (1,200 writes, 15,000
deletes) an hour and says on every answer how many are left, in
``x-ms-ratelimit-remaining-subscription-{reads,writes,deletes}``. A request beyond the limit is
refused with 429 ``SubscriptionRequestsThrottled`` and a ``Retry-After`` of the seconds to the
window's end. The emulator counts the same way, so a client's reading of the header and its
answer to the 429 can be tested; ``set_remaining`` starts a test close to the limit.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from devtools.emulator._errors import ArmError

#: The hourly limits (learn.microsoft.com, "Understand how Azure Resource Manager throttles requests").
LIMITS = {"reads": 12000, "writes": 1200, "deletes": 15000}
WINDOW_SECONDS = 3600.0


def kind_of(method: str) -> str:
    """Which budget a request draws on: GET and HEAD read, DELETE deletes, the rest write."""
    return {"GET": "reads", "HEAD": "reads", "DELETE": "deletes"}.get(method.upper(), "writes")


class RateLimits:
    """Remaining requests per (principal, kind) in the current window. Thread-safe."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._used: dict[tuple[str, str], tuple[int, int]] = {}  # -> (window, remaining)

    def _window(self) -> int:
        return int(self._clock() // WINDOW_SECONDS)

    def take(self, principal: str, kind: str) -> int:
        """Spend one request; the remaining count after it. Raises 429 when none is left."""
        window = self._window()
        with self._lock:
            used_window, remaining = self._used.get((principal, kind), (window, LIMITS[kind]))
            if used_window != window:
                remaining = LIMITS[kind]
            if remaining <= 0:
                self._used[(principal, kind)] = (window, 0)
                wait = max(1, math.ceil((window + 1) * WINDOW_SECONDS - self._clock()))
                raise ArmError(
                    429,
                    "SubscriptionRequestsThrottled",
                    f"Number of '{kind[:-1]}' requests for subscription exceeded the limit of "
                    f"'{LIMITS[kind]}' for time interval '01:00:00'. Please try again after '{wait}' seconds.",
                    headers={"Retry-After": str(wait), f"x-ms-ratelimit-remaining-subscription-{kind}": "0"},
                )
            remaining -= 1
            self._used[(principal, kind)] = (window, remaining)
            return remaining

    def set_remaining(self, kind: str, remaining: int, principal: str = "remediator") -> None:
        """Start the current window with ``remaining`` requests of ``kind`` left for ``principal``."""
        if kind not in LIMITS:
            raise ValueError(f"kind must be one of {', '.join(LIMITS)}, not {kind!r}")
        if remaining < 0:
            raise ValueError("remaining must be 0 or more")
        with self._lock:
            self._used[(principal, kind)] = (self._window(), remaining)

    def clear(self) -> None:
        with self._lock:
            self._used.clear()
