"""Event Grid delivery of Microsoft.Resources.ResourceWriteSuccess / ResourceDeleteSuccess events.

Delivery runs on its own thread, never the request's. Like Event Grid it is at least once and
unordered when asked: ``duplicate`` is the probability of delivering an event twice, ``reorder``
the size of a window whose events are shuffled before delivery (seeded, so tests repeat).
"""

from __future__ import annotations

import json
import logging
import random
import ssl
import threading
import time
import urllib.request
import uuid
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from devtools.emulator._identity import Principal

log = logging.getLogger(__name__)

Subscriber = str | Callable[[list[dict[str, Any]]], object]
MAX_KEPT = 100_000

# The well-known role definition id of Network Contributor, named in data.authorization.evidence.
NETWORK_CONTRIBUTOR = "4d97b98b-1d4f-4787-a291-c67834d212e7"


def build_event(
    *,
    delete: bool,
    resource_id: str,
    operation: str,
    principal: Principal,
    claims: dict[str, Any],
    tenant_id: str,
    correlation_id: str,
    client_request_id: str,
    method: str,
    url: str,
    client_ip: str = "127.0.0.1",
) -> dict[str, Any]:
    parts = resource_id.split("/")
    subscription, resource_group = parts[2], parts[4]
    event_claims: dict[str, Any] = {
        "aud": claims.get("aud", ""),
        "iss": claims.get("iss", ""),
        "iat": str(claims.get("iat", "")),
        "nbf": str(claims.get("nbf", "")),
        "exp": str(claims.get("exp", "")),
        "appid": principal.appid,
        "appidacr": claims.get("appidacr", ""),
        "http://schemas.microsoft.com/identity/claims/identityprovider": f"https://sts.windows.net/{tenant_id}/",
        "http://schemas.microsoft.com/identity/claims/objectidentifier": principal.oid,
        "http://schemas.microsoft.com/identity/claims/tenantid": tenant_id,
        "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/nameidentifier": principal.oid,
        "idtyp": claims.get("idtyp", ""),
        "uti": claims.get("uti", ""),
        "ver": "1.0",
    }
    if principal.kind == "User":
        event_claims.update(
            {
                "name": principal.display_name,
                "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name": principal.upn,
                "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn": principal.upn,
                "http://schemas.microsoft.com/identity/claims/scope": "user_impersonation",
                "ipaddr": client_ip,
            }
        )
    return {
        "subject": resource_id,
        "eventType": "Microsoft.Resources.ResourceDeleteSuccess"
        if delete
        else "Microsoft.Resources.ResourceWriteSuccess",
        "eventTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "id": str(uuid.uuid4()),
        "data": {
            "authorization": {
                "scope": resource_id,
                "action": operation,
                "evidence": {
                    "role": "Network Contributor",
                    "roleAssignmentScope": f"/subscriptions/{subscription}",
                    "roleAssignmentId": uuid.uuid5(uuid.NAMESPACE_URL, principal.oid).hex,
                    "roleDefinitionId": NETWORK_CONTRIBUTOR,
                    "principalId": principal.oid,
                    "principalType": principal.kind,
                },
            },
            "claims": event_claims,
            "correlationId": correlation_id,
            "httpRequest": {
                "clientRequestId": client_request_id,
                "clientIpAddress": client_ip,
                "method": method,
                "url": url,
            },
            "resourceProvider": "Microsoft.Network",
            "resourceUri": resource_id,
            "operationName": operation,
            "status": "Succeeded",
            "subscriptionId": subscription,
            "tenantId": tenant_id,
        },
        "dataVersion": "2",
        "metadataVersion": "1",
        "topic": f"/subscriptions/{subscription}/resourceGroups/{resource_group}",
    }


class EventBus:
    """Queues events and delivers them, one per POST (Event Grid's default batch of one)."""

    def __init__(self, *, ca_bundle: str | None = None) -> None:
        self._cond = threading.Condition()
        self._queue: list[dict[str, Any]] = []
        self._busy = False
        self._stopped = False
        self._paused = False
        self._subscriber: Subscriber | None = None
        self._duplicate = 0.0
        self._reorder = 0
        self._stringify = False
        self._rng = random.Random(0)
        self._ssl = ssl.create_default_context(cafile=ca_bundle) if ca_bundle else None
        # Bounded, so a long-running emulator process does not grow without limit.
        self.published: deque[dict[str, Any]] = deque(maxlen=MAX_KEPT)  # every event, subscriber or not
        self.delivered: deque[dict[str, Any]] = deque(maxlen=MAX_KEPT)
        self.failures: deque[str] = deque(maxlen=MAX_KEPT)
        self._thread = threading.Thread(target=self._run, name="emulator-events", daemon=True)
        self._thread.start()

    def subscribe(
        self,
        target: Subscriber | None,
        *,
        duplicate: float = 0.0,
        reorder: int = 0,
        seed: int = 0,
        stringify_claims: bool = False,
    ) -> None:
        """Deliver to ``target`` (an http(s) URL POSTed a JSON array, or a callable given the list);
        ``None`` stops delivery. ``stringify_claims`` sends data.claims and data.authorization as
        JSON strings, as some senders do."""
        if not 0.0 <= duplicate <= 1.0:
            raise ValueError(f"duplicate is a probability in [0, 1], got {duplicate}")
        if isinstance(target, str) and not target.startswith(("http://", "https://")):
            raise ValueError(f"an event subscriber URL must be http(s), got {target!r}")
        if reorder < 0:
            raise ValueError(f"reorder is a window size >= 0, got {reorder}")
        with self._cond:
            self._subscriber = target
            self._duplicate = duplicate
            self._reorder = reorder
            self._stringify = stringify_claims
            self._rng = random.Random(seed)

    def publish(self, event: dict[str, Any]) -> None:
        with self._cond:
            self.published.append(event)
            if self._subscriber is None:
                return
            self._queue.append(event)
            if self._rng.random() < self._duplicate:
                self._queue.append(event)
            self._cond.notify_all()

    def pause(self) -> None:
        """Hold deliveries (events still queue) until :meth:`resume`: lets a test line up a burst."""
        with self._cond:
            self._paused = True

    def resume(self) -> None:
        with self._cond:
            self._paused = False
            self._cond.notify_all()

    def reset(self) -> None:
        with self._cond:
            self._paused = False
            self._queue.clear()
            self.delivered.clear()
            self.published.clear()
            self.failures.clear()
            self._subscriber = None
            self._duplicate, self._reorder, self._stringify = 0.0, 0, False

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Block until every queued event was handed to the subscriber; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while (self._queue and not self._paused) or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        self._thread.join(timeout=2)

    def _next_batch(self) -> tuple[list[dict[str, Any]], Subscriber | None, bool] | None:
        with self._cond:
            while (not self._queue or self._paused) and not self._stopped:
                self._cond.wait()
            if self._stopped:
                return None
            if self._reorder > 1:
                # Give the window a moment to fill, then shuffle it.
                deadline = time.monotonic() + 0.05
                while len(self._queue) < self._reorder and time.monotonic() < deadline and not self._stopped:
                    self._cond.wait(deadline - time.monotonic())
                window = self._queue[: self._reorder]
                self._rng.shuffle(window)
                self._queue[: self._reorder] = window
            event = self._queue.pop(0)
            self._busy = True
            return [event], self._subscriber, self._stringify

    def _run(self) -> None:
        while True:
            nxt = self._next_batch()
            if nxt is None:
                return
            batch, target, stringify = nxt
            if stringify:
                batch = [self._stringified(e) for e in batch]
            try:
                if target is not None:
                    self._deliver(target, batch)
                    with self._cond:
                        self.delivered.extend(batch)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    @staticmethod
    def _stringified(event: dict[str, Any]) -> dict[str, Any]:
        data = dict(event["data"])
        data["claims"] = json.dumps(data["claims"])
        data["authorization"] = json.dumps(data["authorization"])
        return {**event, "data": data}

    def _deliver(self, target: Subscriber, batch: list[dict[str, Any]]) -> None:
        # Event Grid retries failed deliveries; three quick attempts are enough for a local tool.
        for attempt in range(3):
            try:
                if callable(target):
                    target(batch)
                else:
                    # The scheme was checked in subscribe(): http(s) only.
                    request = urllib.request.Request(  # noqa: S310
                        target,
                        data=json.dumps(batch).encode(),
                        method="POST",
                        headers={"Content-Type": "application/json", "aeg-event-type": "Notification"},
                    )
                    with urllib.request.urlopen(request, timeout=10, context=self._ssl) as response:  # noqa: S310
                        response.read()
                return
            except Exception as exc:  # a subscriber's failure must not kill delivery
                log.warning("event delivery to %r failed (attempt %d): %s", target, attempt + 1, exc)
                if attempt == 2:
                    self.failures.append(f"{batch[0]['id']}: {exc}")
                time.sleep(0.05 * (attempt + 1))
