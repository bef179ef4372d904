"""The exact service-tag model from the Service Tags API, loaded on first use and refreshed.

Service tags change weekly at most, and exact mode is a refinement: without
it the engine still judges tags by containment. So this source never blocks
remediation: a failed first load answers ``None`` (containment) and logs an
error; a failed refresh keeps the model it has and logs a warning. Either
way the next attempt waits ``retry_minutes``, so an API outage does not add
a failing request to every event.

The answer's ``changeNumber`` says whether anything changed: an unchanged
answer keeps the model it has (and with it the engine's memoised work).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from remediation.tags import TagModel, exact_from_documents

log = logging.getLogger(__name__)

DEFAULT_RETRY_MINUTES = 15.0


def _utcnow() -> datetime:
    return datetime.now(UTC)


class ServiceTagsCache:
    """``current()`` -> the exact :class:`TagModel`, or None (containment) until one has loaded.

    ``fetch`` returns the Service Tags API's answer (``{"changeNumber", "values": [...]}``);
    ``where`` names the source in logs and in the model's ``source``. Thread-safe: concurrent
    invocations share one fetch.
    """

    def __init__(
        self,
        fetch: Callable[[], Mapping[str, Any]],
        *,
        refresh_hours: float,
        where: str = "Service Tags API",
        clock: Callable[[], datetime] = _utcnow,
        retry_minutes: float = DEFAULT_RETRY_MINUTES,
    ) -> None:
        self._fetch = fetch
        self._refresh = timedelta(hours=refresh_hours)
        self._retry = timedelta(minutes=retry_minutes)
        self._where = where
        self._clock = clock
        self._lock = threading.Lock()
        self._model: TagModel | None = None
        self._change_number: str | None = None
        self._next_attempt: datetime | None = None  # None: load now
        self.loaded_at: datetime | None = None
        self.last_error: str | None = None

    @property
    def change_number(self) -> str | None:
        """The ``changeNumber`` of the answer the current model was built from."""
        return self._change_number

    def describe(self) -> dict[str, Any]:
        """What this cache holds, for a status page; never fetches."""
        with self._lock:
            model = self._model
            return {
                "where": self._where,
                "exact": model is not None,
                "changeNumber": self._change_number,
                "loadedAt": self.loaded_at.isoformat() if self.loaded_at else None,
                "lastError": self.last_error,
                "tags": len(model.prefixes) if model is not None else 0,
            }

    def current(self) -> TagModel | None:
        with self._lock:
            now = self._clock()
            if self._next_attempt is None or now >= self._next_attempt:
                self._load(now)
            return self._model

    def _load(self, now: datetime) -> None:
        try:
            doc = self._fetch()
            change = doc.get("changeNumber")
            change_number = None if change is None else str(change)
            if self._model is None or change_number is None or change_number != self._change_number:
                model = exact_from_documents([dict(doc)], where=self._where)
            else:
                model = self._model
        except Exception as exc:  # any failure: containment or the previous model, never an outage
            self.last_error = f"{type(exc).__name__}: {exc}"
            self._next_attempt = now + min(self._retry, self._refresh)
            if self._model is None:
                log.error(
                    "service tags from %s could not be loaded (%s); judging tags by containment until %s",
                    self._where,
                    self.last_error,
                    self._next_attempt.isoformat(),
                )
            else:
                log.warning(
                    "service tags from %s could not be refreshed (%s); keeping changeNumber %s loaded at %s",
                    self._where,
                    self.last_error,
                    self._change_number,
                    self.loaded_at.isoformat() if self.loaded_at else "?",
                )
            return
        if model is not self._model:
            log.info(
                "service tags from %s: changeNumber %s (was %s), %d tags",
                self._where,
                change_number,
                self._change_number,
                len(model.prefixes),
            )
        self._model, self._change_number = model, change_number
        self.loaded_at, self.last_error = now, None
        self._next_attempt = now + self._refresh
