"""ARM's request pipeline for Microsoft.Network: route, authenticate, api-version, faults, then
the resource operation with ARM's status codes, conditional headers and long-running operations."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from devtools.emulator._errors import ArmError
from devtools.emulator._events import build_event
from devtools.emulator._faults import Fault
from devtools.emulator._http import Request, Response
from devtools.emulator._lro import Operation
from devtools.emulator._network import NSG, WriteResult, check_preconditions, copy_json
from devtools.emulator._ratelimit import kind_of
from devtools.emulator._routes import PROVIDER, Route, parse

if TYPE_CHECKING:
    from devtools.emulator._emulator import Emulator

_API_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}(-preview)?$")
OLDEST_API_VERSION = "2015-05-01-preview"


@dataclass(frozen=True)
class Caller:
    principal_name: str
    summary: dict[str, str]
    claims: dict[str, Any]


def rbac_action(method: str, route: Route) -> str:
    """The RBAC action a request needs, as Azure's role definitions spell it."""
    if route.kind == "operation":
        return f"{PROVIDER}/locations/operations/read"
    if route.kind == "operation_result":
        return f"{PROVIDER}/locations/operationResults/read"
    if route.kind == "service_tags":
        return f"{PROVIDER}/locations/serviceTags/read"
    verb = {"GET": "read", "PUT": "write", "PATCH": "write", "DELETE": "delete"}.get(method, "action")
    child = f"/{route.child_type}" if route.child_type else ""
    return f"{PROVIDER}/{route.type}{child}/{verb}"


_ASG_SIDES = ("sourceApplicationSecurityGroups", "destinationApplicationSecurityGroups")
JOIN_ASG = f"{PROVIDER}/applicationSecurityGroups/joinNetworkSecurityRule/action"


def linked_actions(req: Request, route: Route) -> list[str]:
    """The linked access checks ARM makes besides ``rbac_action``: a security rule that references
    an application security group needs ``joinNetworkSecurityRule`` on it, whether the rule comes
    inline in an NSG PUT or alone (Kubernetes' Azure cloud provider documents the same for its NSG
    writes). The emulator has no RBAC; the request log carries these for tests of the role."""
    if req.method != "PUT" or route.type != NSG or route.child_type not in ("", "securityRules"):
        return []
    try:
        body = req.json()
    except ArmError:
        return []
    if not isinstance(body, dict):
        return []
    props = body.get("properties")
    if not isinstance(props, dict):
        return []
    rules = (
        [props]
        if route.child_type
        else [r.get("properties") for r in props.get("securityRules") or [] if isinstance(r, dict)]
    )
    for rule in rules:
        if isinstance(rule, dict) and any(rule.get(side) for side in _ASG_SIDES):
            return [JOIN_ASG]
    return []


class ArmApi:
    def __init__(self, emulator: Emulator) -> None:
        self.em = emulator

    # ------------------------------------------------------------------ entry

    def handle(self, req: Request, note: Callable[..., None]) -> Response:
        route = parse(req.path)
        note(action=rbac_action(req.method, route), linked_actions=linked_actions(req, route))
        # ARM checks the api-version before the token (an anonymous call without one gets 400).
        api_version = req.query.get("api-version")
        if not api_version:
            raise ArmError(
                400,
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests.",
            )
        if not _API_VERSION.match(api_version) or api_version < OLDEST_API_VERSION:
            raise ArmError(
                400,
                "InvalidApiVersionParameter",
                f"The api-version '{api_version}' is invalid. The supported versions are dated "
                f"{OLDEST_API_VERSION} or later, formatted YYYY-MM-DD[-preview].",
            )
        principal, claims = self.em.identities.authenticate(req.header("authorization"), self.em.audiences())
        caller = Caller(principal.name, principal.summary(), claims)
        note(caller=principal.name, oid=principal.oid, appid=principal.appid)
        note(remaining=self.em.rate_limits.take(principal.name, kind_of(req.method)))  # 429 when spent
        delay = self.em.faults.take(req.method, req.path, principal.name, ("delay",))
        if delay is not None:
            note(fault=delay.id)
            time.sleep(delay.seconds)
        fault = self.em.faults.take(req.method, req.path, principal.name, ("status", "drop"))
        if fault is not None:
            note(fault=fault.id)
            if fault.kind == "status":
                status, code, message = fault.error()
                headers = retry_headers(fault.retry_after) if fault.retry_after is not None else {}
                raise ArmError(status, code, message, details=fault.details(req.path), headers=headers)
            if not fault.apply:
                return Response(0, drop=True)
        response = self._dispatch(req, route, caller, api_version)
        if fault is not None and fault.kind == "drop":
            return Response(0, drop=True)
        return response

    def _dispatch(self, req: Request, route: Route, caller: Caller, api_version: str) -> Response:
        method = req.method
        if route.kind == "operation":
            return self._operation_status(route)
        if route.kind == "operation_result":
            return self._operation_result(route, req, api_version)
        if route.kind == "service_tags":
            if method != "GET":
                raise ArmError(
                    405, "MethodNotAllowed", f"The requested method {method} is not allowed on '{req.path}'."
                )
            return self._service_tags(route, req, api_version)
        if method == "GET":
            if route.kind in ("item", "child"):
                return Response(200, self.em.network.get(route))
            if route.kind == "child_list":
                return Response(200, {"value": self.em.network.list_children(route)})
            return self._list(route, req, api_version)
        if method == "PUT" and route.kind in ("item", "child"):
            return self._put(route, req, caller)
        if method == "DELETE" and route.kind in ("item", "child"):
            return self._delete(route, req, caller)
        if method == "PATCH" and route.kind == "item":
            return self._patch_tags(route, req, caller)
        raise ArmError(
            405,
            "MethodNotAllowed",
            f"The requested method {method} is not allowed on '{req.path}'.",
        )

    # ----------------------------------------------------------------- reads

    def _list(self, route: Route, req: Request, api_version: str) -> Response:
        network = self.em.network
        try:
            offset = int(req.query.get("$skiptoken", "0"))
        except ValueError:
            raise ArmError(400, "InvalidSkipToken", "The $skiptoken is not one the emulator issued.") from None
        size = self.em.config.page_size
        with network.lock:
            records = network.listing(route.type, route.subscription, route.resource_group)
            page = [network.render(r) for r in records[offset : offset + size]]
            more = offset + size < len(records)
        body: dict[str, Any] = {"value": page}
        if more:
            body["nextLink"] = f"{self.em.endpoint}{req.path}?api-version={api_version}&$skiptoken={offset + size}"
        return Response(200, body)

    def _service_tags(self, route: Route, req: Request, api_version: str) -> Response:
        try:
            offset = int(req.query.get("$skipToken", req.query.get("$skiptoken", "0")))
        except ValueError:
            raise ArmError(400, "InvalidSkipToken", "The $skipToken is not one the emulator issued.") from None
        size = self.em.config.page_size
        body = self.em.service_tags.answer(route.subscription, offset=offset, page_size=size)
        if offset + size < len(self.em.service_tags.values):
            body["nextLink"] = f"{self.em.endpoint}{req.path}?api-version={api_version}&$skipToken={offset + size}"
        return Response(200, body)

    # ---------------------------------------------------------------- writes

    def _put(self, route: Route, req: Request, caller: Caller) -> Response:
        body = req.json()
        if body is None:
            raise ArmError(400, "InvalidRequestContent", "The request content was invalid: the body is empty.")
        network = self.em.network
        polls = self.em.config.lro_polls
        failing = self.em.faults.take(req.method, req.path, caller.principal_name, ("lro_failed", "superseded"))
        with network.lock:
            check_preconditions(req.header("if-match"), req.header("if-none-match"), network.current_etag(route))
            state = "Succeeded" if polls <= 0 else "Updating"
            earlier = network.pending(route.parent_id.lower())
            result = network.put(route, body, state=state, commit=failing is None)
            op = self._start_operation(
                route, req, caller, result, delete=False, fail=failing is not None, fault=failing
            )
            if earlier:
                # NRP: a write accepted while an earlier one is still running supersedes it.
                self.em.operations.supersede(earlier, by=op.id)
            if failing is not None and failing.kind == "superseded":
                network.touch(result.top_key)
                self.em.operations.supersede(op.id, by=f"{uuid.uuid4()} (injected)")
        headers = self._async_headers(route, op, with_location=False)
        self._settle_now_if_immediate(op)
        return Response(result.status, result.body, headers)

    def _delete(self, route: Route, req: Request, caller: Caller) -> Response:
        network = self.em.network
        polls = self.em.config.lro_polls
        failing = self.em.faults.take(req.method, req.path, caller.principal_name, ("lro_failed",))
        with network.lock:
            check_preconditions(req.header("if-match"), None, network.current_etag(route))
            result = network.delete(route, state="Succeeded" if polls <= 0 else "Updating", commit=failing is None)
            if result is None:
                return Response(204)
            op = self._start_operation(route, req, caller, result, delete=True, fail=failing is not None)
        headers = self._async_headers(route, op, with_location=True)
        self._settle_now_if_immediate(op)
        return Response(202, None, headers)

    def _patch_tags(self, route: Route, req: Request, caller: Caller) -> Response:
        body = req.json()
        if not isinstance(body, dict) or not isinstance(body.get("tags", {}), dict):
            raise ArmError(400, "InvalidRequestContent", 'A PATCH body is {"tags": {...}}.')
        network = self.em.network
        with network.lock:
            check_preconditions(req.header("if-match"), None, network.current_etag(route))
            current = copy_json(network.get(route))
            current["tags"] = body.get("tags") or {}
            current.pop("etag", None)
            result = network.put(route, _writable(current), state="Succeeded")
        self._emit(result, req, caller, delete=False)
        return Response(200, result.body)

    def _start_operation(
        self,
        route: Route,
        req: Request,
        caller: Caller,
        result: WriteResult,
        *,
        delete: bool,
        fail: bool,
        fault: Fault | None = None,
    ) -> Operation:
        network = self.em.network

        def done(op: Operation) -> None:
            network.settle(result.top_key, op.id, "Failed" if op.status == "Failed" else "Succeeded")
            if op.status == "Succeeded":
                self._emit(result, req, caller, delete=delete)

        location = self._location_of(route)
        op = self.em.operations.start(
            subscription=route.subscription,
            location=location,
            polls=self.em.config.lro_polls,
            fail=fail,
            kind="delete" if delete else "write",
            resource_url=req.path,
            on_done=done,
            error=(fault.code, fault.message or "The operation failed.") if fault is not None and fault.code else None,
        )
        if not fail:
            network.mark_pending(result.top_key, op.id)
        return op

    def _settle_now_if_immediate(self, op: Operation) -> None:
        if op.polls_left <= 0:
            self.em.operations.finish(op)

    def _location_of(self, route: Route) -> str:
        rec = self.em.network.record(route.type, route.parent_id)
        return rec.location if rec is not None else "westeurope"

    def _async_headers(self, route: Route, op: Operation, *, with_location: bool) -> dict[str, str]:
        base = f"{self.em.endpoint}/subscriptions/{route.subscription}/providers/{PROVIDER}/locations/{op.location}"
        headers = {
            "Azure-AsyncOperation": f"{base}/operations/{op.id}?api-version={_API_FOR_OPS}",
            **retry_headers(self.em.config.lro_retry_after),
        }
        if with_location:
            headers["Location"] = f"{base}/operationResults/{op.id}?api-version={_API_FOR_OPS}"
        return headers

    def _emit(self, result: WriteResult, req: Request, caller: Caller, *, delete: bool) -> None:
        principal = self.em.identities.get(caller.principal_name)
        event = build_event(
            delete=delete,
            resource_id=result.resource_id,
            operation=result.operation,
            principal=principal,
            claims=caller.claims,
            tenant_id=self.em.identities.tenant_id,
            correlation_id=req.header("x-ms-correlation-request-id") or "",
            client_request_id=req.header("x-ms-client-request-id") or "",
            method=req.method,
            url=req.url,
            client_ip=req.client_ip,
        )
        self.em.events.publish(event)

    # ------------------------------------------------------------ operations

    def _operation_status(self, route: Route) -> Response:
        op = self.em.operations.poll(route.operation_id)
        headers = {} if op.done else retry_headers(self._poll_wait(op))
        return Response(200, op.status_body(), headers)

    def _poll_wait(self, op: Operation) -> float:
        """The wait suggested after the ``op.polls``-th poll: NRP suggests 10, 20, 40 s (poll
        interval ``lro_poll_retry_after``, growing by ``lro_poll_backoff``)."""
        config = self.em.config
        return config.lro_poll_retry_after * config.lro_poll_backoff ** max(op.polls - 1, 0)

    def _operation_result(self, route: Route, req: Request, api_version: str) -> Response:
        op = self.em.operations.poll(route.operation_id)
        if not op.done:
            headers = {
                "Location": f"{self.em.endpoint}{req.path}?api-version={api_version}",
                **retry_headers(self._poll_wait(op)),
            }
            return Response(202, None, headers)
        if op.status in ("Failed", "Canceled"):
            raise ArmError(500, op.error_code, op.error_message)
        if op.kind == "delete":
            return Response(204)
        return Response(200, self.em.network.get(parse(op.resource_url)))


_API_FOR_OPS = "2024-05-01"


def retry_headers(seconds: float) -> dict[str, str]:
    """ARM's Retry-After is whole seconds (the SDK parses it as int). Shorter waits go in
    x-ms-retry-after-ms, which azure-core also honours; 0 becomes 1 ms because azure-core treats
    a zero delay as "no hint" and falls back to its 30 s polling interval."""
    if seconds >= 1 and float(seconds).is_integer():
        return {"Retry-After": str(int(seconds))}
    return {"x-ms-retry-after-ms": str(max(1, round(seconds * 1000)))}


def _writable(rendered: dict[str, Any]) -> dict[str, Any]:
    """A rendered resource turned back into a PUT body (PATCH re-uses the PUT path)."""
    body: dict[str, Any] = {k: rendered[k] for k in ("location", "tags") if k in rendered}
    props = dict(rendered.get("properties", {}))
    children = {"securityRules", "subnets", "ipConfigurations"}
    for key in children & props.keys():
        if all("name" in c and "properties" in c for c in props[key]):
            props[key] = [{"name": c["name"], "properties": c["properties"]} for c in props[key]]
        else:
            del props[key]  # read-only back-references ({id} only), such as an NSG's subnets
    body["properties"] = props
    return body


__all__ = ["NSG", "ArmApi", "rbac_action"]
