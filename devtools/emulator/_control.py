"""The ``/_emulator/`` control API (JSON, no auth: it listens on loopback only).

GET    /_emulator/health                 {"status": "ok"}
GET    /_emulator/faults                 the active faults
POST   /_emulator/faults                 add one: {"kind", "method", "path", "status", "retry_after",
                                         "seconds", "times", "skip", "apply", "principal", ...} -> 201
DELETE /_emulator/faults[/{id}]          remove all / one
GET    /_emulator/requests               the request log; DELETE clears it
POST   /_emulator/reset                  forget everything (resources, faults, log, events)
PUT    /_emulator/seed                   {"resources": [ARM resources with ids]} or a bare list
GET    /_emulator/state                  {id: resource}
GET    /_emulator/config                 PUT/PATCH to change page_size, lro_polls, ...
PUT    /_emulator/events                 {"url", "duplicate", "reorder", "seed", "stringify_claims"}
GET    /_emulator/events                 the events delivered so far
POST   /_emulator/tokens                 {"principal": "human"} -> {"access_token"}
PUT    /_emulator/ratelimit              {"kind": "reads", "remaining": N, "principal": "remediator"}
"""

from __future__ import annotations

from dataclasses import fields
from typing import TYPE_CHECKING, Any

from devtools.emulator._errors import ArmError
from devtools.emulator._http import Request, Response

if TYPE_CHECKING:
    from devtools.emulator._emulator import Emulator


def _bad(message: str) -> ArmError:
    return ArmError(400, "InvalidControlRequest", message)


def _object(req: Request) -> dict[str, Any]:
    body = req.json()
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise _bad("the body must be a JSON object")
    return body


def handle_control(em: Emulator, req: Request) -> Response:
    parts = req.path.removeprefix("/_emulator/").strip("/").split("/")
    what, rest = parts[0], parts[1:]
    method = req.method
    if what == "health" and method == "GET":
        return Response(200, {"status": "ok", **em.info()})
    if what == "faults":
        if method == "GET":
            return Response(200, {"value": [f.to_json() for f in em.faults.list()]})
        if method == "POST":
            try:
                fault = em.faults.add(**_object(req))
            except (TypeError, ValueError) as exc:
                raise _bad(f"invalid fault: {exc}") from None
            return Response(201, fault.to_json())
        if method == "DELETE":
            if rest:
                if not em.faults.remove(rest[0]):
                    raise ArmError(404, "NotFound", f"no fault {rest[0]}")
            else:
                em.faults.clear()
            return Response(204)
    if what == "requests":
        if method == "GET":
            return Response(200, {"value": em.requests()})
        if method == "DELETE":
            em.clear_requests()
            return Response(204)
    if what == "reset" and method == "POST":
        em.reset()
        return Response(204)
    if what == "seed" and method in ("PUT", "POST"):
        body = req.json()
        resources = body.get("resources") if isinstance(body, dict) else body
        if not isinstance(resources, list):
            raise _bad('seed takes {"resources": [...]} or a JSON array of resources')
        return Response(200, {"seeded": em.seed(resources)})
    if what == "state" and method == "GET":
        return Response(200, em.state)
    if what == "config":
        if method in ("PUT", "PATCH"):
            known = {f.name: f.type for f in fields(em.config)}
            for key, value in _object(req).items():
                if key not in known or not isinstance(value, int | float) or isinstance(value, bool):
                    raise _bad(f"unknown or non-numeric config field {key!r}; known: {', '.join(known)}")
                setattr(em.config, key, type(getattr(em.config, key))(value))
        if method in ("GET", "PUT", "PATCH"):
            return Response(200, em.config_json())
    if what == "events":
        if method == "PUT":
            body = _object(req)
            try:
                em.set_event_subscriber(
                    body.get("url"),
                    duplicate=float(body.get("duplicate", 0.0)),
                    reorder=int(body.get("reorder", 0)),
                    seed=int(body.get("seed", 0)),
                    stringify_claims=bool(body.get("stringify_claims", False)),
                )
            except ValueError as exc:
                raise _bad(str(exc)) from None
            return Response(204)
        if method == "GET":
            return Response(200, {"value": list(em.events.delivered)})
    if what == "tokens" and method == "POST":
        body = _object(req)
        try:
            token = em.token_for(str(body.get("principal", "human")), body.get("resource"))
        except KeyError as exc:
            raise _bad(str(exc)) from None
        return Response(200, {"access_token": token, "token_type": "Bearer"})
    if what == "ratelimit" and method == "PUT":
        body = _object(req)
        try:
            em.rate_limits.set_remaining(
                str(body.get("kind", "reads")), int(body["remaining"]), str(body.get("principal", "remediator"))
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise _bad(f"ratelimit takes kind, remaining and principal: {exc}") from None
        return Response(204)
    raise ArmError(404, "NotFound", f"no control endpoint {method} {req.path}")
