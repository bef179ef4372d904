"""The :class:`Emulator`: one HTTPS server serving ARM (Microsoft.Network), the App Service
managed-identity endpoint and the ``/_emulator/`` control API, plus the Python API tests use."""

from __future__ import annotations

import logging
import shutil
import ssl
import tempfile
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import trustme

from devtools.emulator._arm import ArmApi
from devtools.emulator._control import handle_control
from devtools.emulator._errors import ArmError
from devtools.emulator._events import EventBus, Subscriber
from devtools.emulator._faults import FaultSet
from devtools.emulator._http import Request, Response
from devtools.emulator._identity import HUMAN, REMEDIATOR, Identities, Principal
from devtools.emulator._lro import Operations
from devtools.emulator._network import NIC, NSG, VNET, Network, copy_json
from devtools.emulator._paths import PATH_CHILDREN, PATH_TYPES
from devtools.emulator._ratelimit import RateLimits, kind_of
from devtools.emulator._routes import parse
from devtools.emulator._server import make_server
from devtools.emulator._service_tags import ServiceTags

log = logging.getLogger(__name__)

DEFAULT_SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
IDENTITY_PATH = "/msi/token"
CONTROL_PREFIX = "/_emulator/"
MAX_LOG = 200_000  # request-log entries kept (oldest dropped first)


@dataclass
class EmulatorConfig:
    """Behaviour knobs; all may change while running (``emulator.config.page_size = 10``).

    page_size: NSGs (or VNets, NICs) per list page before a nextLink.
    lro_polls: how many polls of an operation answer InProgress before it settles (0: settles
      at once, the PUT body already shows Succeeded).
    lro_retry_after: the wait (seconds) suggested with 201/202 and InProgress polls: whole seconds
      go in Retry-After as ARM sends them, shorter waits in x-ms-retry-after-ms (which azure-core
      honours), so SDK pollers do not sleep for long in tests.
    lro_max_seconds: an operation nobody polls settles on its own after this long.
    lro_poll_retry_after, lro_poll_backoff: the wait suggested with the first InProgress poll, and
      the factor it grows by on each later one. Real NRP: ``lro_retry_after`` 1 to 10 s on the PUT,
      then 10, 20, 40 s between polls (``lro_poll_retry_after=10, lro_poll_backoff=2``).
    """

    page_size: int = 100
    lro_polls: int = 1
    lro_retry_after: float = 0.01
    lro_max_seconds: float = 30.0
    lro_poll_retry_after: float = 0.01
    lro_poll_backoff: float = 1.0


class Emulator:
    """A local, faithful-enough Azure Resource Manager for Microsoft.Network.

    ``with Emulator() as em:`` starts it on a free 127.0.0.1 port; ``em.endpoint``,
    ``em.ca_bundle``, ``em.identity_endpoint``, ``em.identity_header`` say how to reach and trust it.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        config: EmulatorConfig | None = None,
        subscription_id: str = DEFAULT_SUBSCRIPTION,
        identity_header: str | None = None,
    ) -> None:
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(f"the emulator listens on loopback only, not {host!r}")
        self.host = host
        self.config = config or EmulatorConfig()
        self.subscription_id = subscription_id
        self.identity_header = identity_header or uuid.uuid4().hex
        self.identities = Identities()
        self.network = Network()
        self.service_tags = ServiceTags()
        self.faults = FaultSet()
        self.operations = Operations(max_seconds=self.config.lro_max_seconds)
        self._tmp = Path(tempfile.mkdtemp(prefix="arm-emulator-"))
        ca = trustme.CA(organization_name="CycleCloud Lockdown Guard emulator CA")
        self.ca_bundle = str(self._tmp / "ca.pem")
        ca.cert_pem.write_to_path(self.ca_bundle)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1", "localhost", "::1").configure_cert(context)
        self.events = EventBus(ca_bundle=self.ca_bundle)
        self._arm = ArmApi(self)
        self._log: deque[dict[str, Any]] = deque(maxlen=MAX_LOG)
        self._log_lock = threading.Lock()
        self.rate_limits = RateLimits()
        self._server = make_server(host, port, context, self.handle)
        self.port: int = self._server.server_address[1]
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()

    # ------------------------------------------------------------- lifecycle

    @property
    def endpoint(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}"

    @property
    def identity_endpoint(self) -> str:
        return f"{self.endpoint}{IDENTITY_PATH}"

    def info(self) -> dict[str, str]:
        """What a client needs (the CLI prints this as its first line)."""
        return {
            "endpoint": self.endpoint,
            "ca_bundle": self.ca_bundle,
            "identity_endpoint": self.identity_endpoint,
            "identity_header": self.identity_header,
            "subscription_id": self.subscription_id,
        }

    def env(self) -> dict[str, str]:
        """Environment that points an unchanged product process at this emulator, running as the
        "remediator" managed identity (AZURE_CLIENT_ID selects it, REMEDIATOR_PRINCIPAL_ID lets
        the product recognise its own writes in events)."""
        remediator = self.identities.get(REMEDIATOR)
        return {
            "ARM_ENDPOINT": self.endpoint,
            "AZURE_CLIENT_ID": remediator.appid,
            "REMEDIATOR_PRINCIPAL_ID": remediator.oid,
            "IDENTITY_ENDPOINT": self.identity_endpoint,
            "IDENTITY_HEADER": self.identity_header,
            "REQUESTS_CA_BUNDLE": self.ca_bundle,
            "SSL_CERT_FILE": self.ca_bundle,
            "AZURE_SUBSCRIPTION_ID": self.subscription_id,
        }

    def start(self) -> Emulator:
        serve = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        sweep = threading.Thread(target=self._sweep_operations, daemon=True)
        self._threads = [serve, sweep]
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self.events.stop()
        for t in self._threads:
            t.join(timeout=2)
        shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _sweep_operations(self) -> None:
        while not self._stopping.wait(0.2):
            self.operations.max_seconds = self.config.lro_max_seconds
            self.operations.settle_expired()

    # ------------------------------------------------------------ Python API

    def reset(self) -> None:
        """Forget resources, faults, operations, the request log, events, the subscriber and any
        principal added since start (the built-in "remediator" and "human" keep their ids)."""
        self.network.clear()
        self.service_tags.reset()
        self.identities.reset()
        self.faults.clear()
        self.operations.clear()
        self.events.reset()
        self.rate_limits.clear()
        with self._log_lock:
            self._log.clear()

    def requests(self) -> list[dict[str, Any]]:
        """The request log: one entry per ARM or identity request, oldest first."""
        with self._log_lock:
            return [dict(e) for e in self._log]

    def clear_requests(self) -> None:
        with self._log_lock:
            self._log.clear()

    def seed(self, resources: Iterable[Mapping[str, Any]]) -> list[str]:
        """Load ARM-shaped resources (each with its ``id``) straight into the state: validated like
        a PUT, but no operation, no event, no log entry. NSGs load before VNets before NICs; a
        firewall policy's rule collection groups (its children, own resources in ARM) after it."""
        # Route tables, policies and IP groups first too: subnets and firewalls name them.
        order = {NSG.lower(): 0, VNET.lower(): 1, NIC.lower(): 2} | {t.lower(): 0 for t in PATH_TYPES}
        items = []
        for raw in resources:
            rid = raw.get("id")
            if not isinstance(rid, str):
                raise ArmError(400, "InvalidSeed", f"a seeded resource needs an 'id': {dict(raw)!r:.200}")
            route = parse(rid)
            if route.kind == "child" and route.type in PATH_CHILDREN:
                items.append((3, route, raw))
                continue
            if route.kind != "item":
                raise ArmError(400, "InvalidSeed", f"seed top-level resources only, not {rid}")
            items.append((order[route.type.lower()], route, raw))
        ids = []
        for _, route, raw in sorted(items, key=lambda x: x[0]):
            body = {k: val for k, val in raw.items() if k in ("location", "tags", "properties")}
            ids.append(self.network.put(route, body, state="Succeeded").resource_id)
        return ids

    @property
    def state(self) -> dict[str, dict[str, Any]]:
        """A snapshot: resource id -> the resource as GET would render it."""
        with self.network.lock:
            return {
                rec.id: copy_json(self.network.render(rec))
                for bucket in self.network.records.values()
                for rec in bucket.values()
            }

    def set_event_subscriber(
        self,
        target: Subscriber | None,
        *,
        duplicate: float = 0.0,
        reorder: int = 0,
        seed: int = 0,
        stringify_claims: bool = False,
    ) -> None:
        """Deliver Event Grid events to an http(s) URL (POSTed a JSON array) or a callable taking
        the list; see :meth:`EventBus.subscribe` for the options."""
        self.events.subscribe(
            target, duplicate=duplicate, reorder=reorder, seed=seed, stringify_claims=stringify_claims
        )

    def token_for(self, principal: str = HUMAN, resource: str | None = None) -> str:
        """A bearer token for a known principal ("human", "remediator", or one from add_principal)."""
        token, _ = self.identities.token(self.identities.get(principal), resource or self.endpoint)
        return token

    def add_principal(self, name: str, **fields: Any) -> Principal:
        return self.identities.add(name, **fields)

    def audiences(self) -> set[str]:
        return {
            self.endpoint,
            f"https://localhost:{self.port}",
            "https://management.azure.com",
            "https://management.core.windows.net",
        }

    # ---------------------------------------------------------------- server

    def handle(self, req: Request) -> Response:
        if req.path.startswith(CONTROL_PREFIX):
            try:
                return handle_control(self, req)
            except ArmError as err:
                return Response(err.status, err.body(), dict(err.headers))
        request_id = str(uuid.uuid4())
        correlation = req.header("x-ms-correlation-request-id") or str(uuid.uuid4())
        req.headers["x-ms-correlation-request-id"] = correlation
        entry: dict[str, Any] = {
            "time": time.time(),
            "method": req.method,
            "path": req.path,
            "api_version": req.query.get("api-version"),
            "status": None,
            "caller": None,
            "oid": None,
            "appid": None,
            "action": None,
            "linked_actions": [],
            "fault": None,
            "remaining": None,
            "correlation_id": correlation,
            "request_id": request_id,
        }

        def note(**fields: Any) -> None:
            entry.update(fields)

        try:
            if req.path.rstrip("/") == IDENTITY_PATH:
                response = self._identity(req, note)
            else:
                response = self._arm.handle(req, note)
        except ArmError as err:
            response = Response(err.status, err.body(), dict(err.headers))
            if err.status < 500:
                response.headers.setdefault("x-ms-failure-cause", "gateway" if err.status == 401 else "service")
        entry["status"] = "dropped" if response.drop else response.status
        with self._log_lock:
            self._log.append(entry)
        if not response.drop:
            for name, value in self._common_headers(req, request_id, correlation, entry).items():
                response.headers.setdefault(name, value)  # a 429's own remaining count (0) stands
        return response

    def _common_headers(self, req: Request, request_id: str, correlation: str, entry: dict[str, Any]) -> dict[str, str]:
        headers = {
            "x-ms-request-id": request_id,
            "x-ms-correlation-request-id": correlation,
            "x-ms-routing-request-id": f"WESTEUROPE:{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}:{request_id}",
            "Cache-Control": "no-cache",
            "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
        }
        if req.header("x-ms-client-request-id"):
            headers["x-ms-client-request-id"] = req.header("x-ms-client-request-id") or ""
        kind = kind_of(req.method)
        remaining = entry["remaining"]
        if remaining is None:  # refused before the budget was drawn on (400, 401): counted for nobody
            try:
                remaining = self.rate_limits.take("anonymous", kind)
            except ArmError:
                remaining = 0
        headers[f"x-ms-ratelimit-remaining-subscription-{kind}"] = str(remaining)
        headers[f"x-ms-ratelimit-remaining-subscription-global-{kind}"] = str(remaining * 3)
        return headers

    def _identity(self, req: Request, note: Any) -> Response:
        """App Service's managed-identity endpoint (api-version 2019-08-01), as azure-identity and
        MSAL call it: GET with X-IDENTITY-HEADER, ``resource`` and optionally ``client_id``."""
        note(action="identity/token")
        delay = self.faults.take(req.method, req.path, None, ("delay",))
        if delay is not None:
            note(fault=delay.id)
            time.sleep(delay.seconds)
        fault = self.faults.take(req.method, req.path, None, ("status", "drop"))
        if fault is not None:
            note(fault=fault.id)
            if fault.kind == "drop":
                return Response(0, drop=True)
            status, _, message = fault.error()
            return Response(status, {"statusCode": status, "message": message})
        if req.method != "GET":
            return Response(405, {"statusCode": 405, "message": "Use GET."})
        if req.header("x-identity-header") != self.identity_header:
            return Response(401, {"statusCode": 401, "message": "X-IDENTITY-HEADER is missing or wrong."})
        if req.query.get("api-version") != "2019-08-01":
            return Response(400, {"statusCode": 400, "message": "api-version must be 2019-08-01."})
        resource = req.query.get("resource")
        if not resource:
            return Response(400, {"statusCode": 400, "message": "The 'resource' query parameter is required."})
        principal = self.identities.get(REMEDIATOR)
        for key in ("client_id", "object_id", "principal_id", "mi_res_id"):
            wanted = req.query.get(key)
            if not wanted:
                continue
            found = self.identities.by_client_id(wanted) if key == "client_id" else None
            if key in ("object_id", "principal_id"):
                found = self.identities.by_oid(wanted)
            if found is None or found.kind != "ServicePrincipal":
                return Response(
                    400,
                    {
                        "statusCode": 400,
                        "message": "No User Assigned or Delegated Managed Identity found for specified "
                        f"ClientId/ResourceId/PrincipalId ({key}={wanted}).",
                    },
                )
            principal = found
        note(caller=principal.name, oid=principal.oid, appid=principal.appid)
        token, expires_on = self.identities.token(principal, resource)
        return Response(
            200,
            {
                "access_token": token,
                "expires_on": str(expires_on),
                "resource": resource,
                "token_type": "Bearer",
                "client_id": principal.appid,
            },
        )

    def config_json(self) -> dict[str, Any]:
        return asdict(self.config)
