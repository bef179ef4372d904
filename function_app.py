"""Azure Functions entry point (Python v2 model): triggers only.

Each function reads its trigger's input, calls :mod:`remediation.service`
and shapes the answer: an HTTP status, or for Event Grid either returning
(done, or dropped) or raising (so Event Grid redelivers). The adapters are
built from the app settings once per process, on first use, so a cold start
that only answers ``status`` never pays for more than it needs.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

import azure.functions as func

from remediation.coalesce import EventCoalescer
from remediation.errors import InputError, RemediationError, ScopeError, TransientError
from remediation.events import parse_event
from remediation.wiring import LazyRuntime, Runtime

if TYPE_CHECKING:
    from remediation.reports import ReconcileReport
    from remediation.settings import HttpAuth

log = logging.getLogger("lockdown_guard")

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)

#: The adapters, built from the app settings on first use (``runtime()``), once per process.
runtime = LazyRuntime()


@app.function_name("on_nsg_change")
@app.event_grid_trigger(arg_name="event")
def on_nsg_change(event: func.EventGridEvent) -> None:
    """Reconcile what an NSG, rule, subnet or NIC change touched."""
    raw = _event_dict(event)
    rt = runtime()
    try:
        parsed = parse_event(raw, subscription_id=rt.settings.subscription_id or None)
    except (InputError, ScopeError) as exc:
        log.warning("dropped event %s: %s", _event_label(raw.get("id")), exc)
        return
    coalescer = rt.coalescer()
    try:
        outcome = rt.handle_event(parsed) if coalescer is None else coalescer.submit(parsed)
    except TransientError as exc:
        log.warning("event %s: transient failure, Event Grid will redeliver: %s", parsed.id, exc)
        raise
    except RemediationError as exc:
        log.error("event %s: dropped after a non-transient error: %s", parsed.id, exc)
        return
    log.info("event %s: %s %s", parsed.id, outcome.status, outcome.reason, extra=_event_fields(outcome.to_json()))
    if coalescer is not None and outcome.status == "queued":
        _drain(coalescer)


@app.function_name("drain_pending")
@app.timer_trigger(schedule="%DRAIN_SCHEDULE%", arg_name="timer", run_on_startup=False, use_monitor=False)
def drain_pending(timer: func.TimerRequest) -> None:
    """Handle the events a drain left pending (it stopped, or its instance died)."""
    coalescer = runtime().coalescer()
    if coalescer is not None:
        _drain(coalescer)


@app.function_name("sweep")
@app.timer_trigger(schedule="%SWEEP_SCHEDULE%", arg_name="timer", run_on_startup=False, use_monitor=True)
def sweep(timer: func.TimerRequest) -> None:
    """Reconcile every managed NSG of the subscription; one failing NSG does not stop the others."""
    if timer.past_due:
        log.info("sweep is running late (past due)")
    rt = runtime()
    try:
        report = rt.reconcile(None, trigger="sweep")
    except RemediationError as exc:
        # Discovery failed: nothing was judged. The next tick tries again; say so loudly now.
        log.error("sweep failed: %s", exc)
        _save_failed_sweep(rt, exc)
        raise
    summary = report.summary()
    log.info(
        "sweep: %d NSGs, %d findings, %d written, %d errors",
        summary["nsgs"],
        summary["findings"],
        len(summary["written"]),
        len(summary["errors"]),
        extra={f"sweep_{key}": value for key, value in summary.items()},
    )
    started = report.started
    coalescer = rt.coalescer()
    if coalescer is not None:
        try:
            covered = coalescer.settled_by_sweep(started)
        except Exception:  # the rows stay; the next drain handles them
            log.exception("sweep: pending events not cleared")
        else:
            log.info("sweep: %d pending events covered by the sweep", covered)


@app.function_name("reconcile")
@app.route(route="reconcile", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
def reconcile_http(req: func.HttpRequest) -> func.HttpResponse:
    """POST {"scope": "<subscription, resource group or NSG id>", "dryRun": bool, "acceptDetached": [subnet ids]}."""
    try:
        scope, dry_run, accept_detached = _reconcile_request(req)
    except InputError as exc:
        return _error(400, exc)
    rt = runtime()
    try:
        report = rt.reconcile(
            scope,
            trigger="http",
            dry_run=dry_run,
            actor=_http_actor(req, rt.settings.http_auth),
            accept_detached=accept_detached,
        )
    except ScopeError as exc:
        return _error(403, exc)
    except InputError as exc:
        return _error(400, exc)
    except TransientError as exc:
        return _error(503, exc, headers={"Retry-After": "30"})
    except RemediationError as exc:
        return _error(502, exc)
    return _reconcile_answer(report)


@app.function_name("status")
@app.route(route="status", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def status(req: func.HttpRequest) -> func.HttpResponse:
    """The last sweep's time and results, the service-tag model in force, and the recent audit trail."""
    rt = runtime()
    body: dict[str, Any] = {
        "mode": rt.settings.mode.value,
        "subscription": rt.settings.subscription_id,
        "serviceTags": rt.describe_tags(),
    }
    if rt.state is None:
        body.update(lastSweep=None, auditTrail=[], note="no state store configured")
        return _json(200, body)
    try:
        limit = max(1, min(int(req.params.get("limit", "20")), 500))
    except ValueError:
        return _error(400, f"limit must be an integer, not {req.params.get('limit')!r}")
    try:
        saved = rt.state.load_status() or {}
        trail = rt.state.audit_trail(limit=limit)
    except Exception as exc:  # the status page must say why it cannot answer
        # The exception names the storage account's host and more; that detail is for the log,
        # which only operators read, not for whoever holds a function key.
        log.exception("status: state store unreadable")
        return _json(503, {"error": f"state store unavailable ({type(exc).__name__}); see the Function's log"})
    body["lastSweep"] = saved.get("lastSweep")
    body["lastSweepFailure"] = saved.get("lastSweepFailure")
    body["auditTrail"] = [
        {
            "at": r.at.isoformat(),
            "nsg": r.nsg_id,
            "trigger": r.trigger,
            "eventId": r.event_id,
            "actor": r.actor,
            "correlationId": r.correlation_id,
            "rulesBefore": [str(x.get("name")) for x in r.rules_before],
            "rulesAfter": [str(x.get("name")) for x in r.rules_after],
        }
        for r in trail
    ]
    return _json(200, body)


# ---------------------------------------------------------------------- helpers


def _event_dict(event: func.EventGridEvent) -> dict[str, Any]:
    """The Event Grid schema's fields, as parse_event reads them."""
    try:
        data = event.get_json()
    except ValueError:
        data = None
    event_time = event.event_time
    return {
        "id": event.id,
        "topic": event.topic,
        "subject": event.subject,
        "eventType": event.event_type,
        "eventTime": event_time.isoformat() if event_time is not None else None,
        "dataVersion": event.data_version,
        "data": data,
    }


def _event_label(value: Any) -> str:
    """An event id fit for a log line: a hostile delivery may put anything there (a nested object
    too deep to print, megabytes, line breaks)."""
    return repr(value[:200]) if isinstance(value, str) and value else "<no usable id>"


def _reconcile_request(req: func.HttpRequest) -> tuple[str | None, bool, list[str]]:
    # pydantic loads here, not at import: a cold start that answers anything else never pays for it.
    from remediation.http_body import parse_reconcile_body  # noqa: PLC0415

    body = parse_reconcile_body(req.get_body())
    return body.scope, body.dry_run, body.accept_detached


def _http_actor(req: func.HttpRequest, auth: HttpAuth) -> str:
    """Who asked, as far as anyone vouches for it. Only App Service authentication sets
    X-MS-CLIENT-PRINCIPAL-* so that a client cannot (it drops them from incoming requests);
    with the function key alone they are whatever the caller wrote, so the key is the caller."""
    if auth != "entra":  # HttpAuth.ENTRA; HttpAuth itself loads with the runtime (pydantic), not at indexing
        return "http:function-key"
    principal = req.headers.get("x-ms-client-principal-name") or req.headers.get("x-ms-client-principal-id")
    return f"http:entra:{_bounded(principal, 200)}" if principal else "http:entra:unknown"


#: Longest error text an HTTP answer carries: errors may quote input (a scope, a field), and an
#: answer must not echo megabytes back.
MAX_ERROR_CHARS = 1000


def _bounded(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit} more characters)"


def _error(code: int, error: Exception | str, headers: dict[str, str] | None = None) -> func.HttpResponse:
    return _json(code, {"error": _bounded(str(error))}, headers=headers)


def _reconcile_answer(report: ReconcileReport) -> func.HttpResponse:
    """200 only when the reconcile completed. A write that failed (429, 5xx, an operation that
    ended Failed: transient) answers 503 with Retry-After, anything else that failed 502, and a
    scope that matched no managed NSG 404; the report is the body in every case."""
    body = report.to_json()
    errors = report.all_errors()
    if not report.nsgs and not report.findings and not errors:
        body["error"] = (
            f"the scope {_bounded(report.scope, 300)} matches no managed NSG (none carries the lockdown tag)"
        )
        return _json(404, body)
    if not errors:
        return _json(200, body)
    body["error"] = "the reconcile did not complete: " + _bounded("; ".join(errors))
    if report.transient_failure:
        return _json(503, body, headers={"Retry-After": "30"})
    return _json(502, body)


def _json(code: int, body: Any, headers: dict[str, str] | None = None) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps(body, indent=2, default=str),
        status_code=code,
        mimetype="application/json",
        headers=headers,
    )


def _event_fields(outcome: dict[str, Any]) -> dict[str, Any]:
    """One handled event's outcome as log record fields (Application Insights custom dimensions)."""
    report = outcome.get("report") or {}
    return {
        "event_id": outcome.get("eventId"),
        "event_status": outcome.get("status"),
        "event_reason": outcome.get("reason") or "",
        "event_written": [w.get("nsg") for w in report.get("written", [])],
        "event_errors": report.get("errors", []),
    }


def _drain(coalescer: EventCoalescer) -> None:
    """Handle what is due; the events stay queued whatever fails here (the next drain retries)."""
    try:
        outcomes = coalescer.drain()
    except Exception:
        log.exception("draining pending events failed; they stay pending")
        return
    for outcome in outcomes:
        log.info("events %s: %s", outcome.event_id, outcome.status, extra=_event_fields(outcome.to_json()))


def _save_failed_sweep(rt: Runtime, exc: Exception) -> None:
    if rt.state is None:
        return
    try:
        saved = rt.state.load_status() or {}
        saved["lastSweepFailure"] = {"error": str(exc), "type": type(exc).__name__}
        rt.state.save_status(saved)
    except Exception:
        log.exception("could not record the failed sweep")
