"""The Function app's triggers, called as the Functions host would call them.

Real azure.functions HttpRequest / EventGridEvent / TimerRequest objects go to
the decorated functions' user code; behind them the real runtime (ARM adapter
on the Azure SDK, managed identity) talks to the local ARM emulator. Only the
alert channel is a capturing stand-in (no Teams here) and the state store is
the in-memory one.
"""

from __future__ import annotations

import copy
import json
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest
from azure.core.credentials import AccessToken
from azure.functions.timer import TimerRequest
from azure.mgmt.network import NetworkManagementClient

import function_app
from devtools.demo import RESOURCE_GROUP, cyclecloud_network, host_event
from devtools.emulator import HUMAN, REMEDIATOR, Emulator
from devtools.functions_host import bindings as host_bindings
from devtools.functions_host import user_function
from remediation.alerts.dispatch import Channel
from remediation.azure.arm import ArmOptions
from remediation.baseline_file import load_baseline
from remediation.errors import TransientError
from remediation.findings import Severity
from remediation.settings import Settings
from remediation.state import InMemoryStateStore
from remediation.wiring import build_runtime
from tests.support.inbox import AlertInbox

SUB = "00000000-0000-0000-0000-0000000000f1"
BASE = f"/subscriptions/{SUB}/resourceGroups/{RESOURCE_GROUP}/providers/Microsoft.Network"
CC = f"{BASE}/networkSecurityGroups/nsg-cyclecloud"
FAST = ArmOptions(retry_total=2, retry_backoff_factor=0.01, retry_backoff_max=0.05, polling_interval=0.01)
BASELINE = load_baseline()
STORAGE_WESTEUROPE = Path(__file__).resolve().parents[1] / "reference" / "service-tags" / "Storage.WestEurope.json"


def user_code(name: str) -> Callable[..., Any]:
    return user_function(function_app.app, name)


class Person:
    def __init__(self, em: Emulator) -> None:
        self.em = em

    def get_token(self, *scopes: str, **_: Any) -> AccessToken:
        return AccessToken(self.em.token_for(HUMAN, scopes[0].removesuffix("/.default")), int(time.time()) + 600)


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator(subscription_id=SUB) as em:
        yield em


@pytest.fixture
def app(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    emulator.reset()
    remediator = emulator.identities.get(REMEDIATOR)
    for key in ("AZURE_TENANT_ID", "AZURE_CLIENT_SECRET", "AZURE_FEDERATED_TOKEN_FILE", "MSI_ENDPOINT"):
        monkeypatch.delenv(key, raising=False)
    for key, value in emulator.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AZURE_CLIENT_ID", remediator.appid)
    monkeypatch.setenv("REMEDIATOR_PRINCIPAL_ID", remediator.oid)
    monkeypatch.setenv("REMEDIATION_MODE", "enforce")
    emulator.seed(cyclecloud_network(SUB, BASELINE))
    sink = AlertInbox("teams")
    state = InMemoryStateStore()
    rt = build_runtime(Settings.from_env(), arm_options=FAST, state=state, channels=[Channel(sink, Severity.INFO)])
    function_app.runtime.use(rt)
    events: list[dict[str, Any]] = []
    emulator.set_event_subscriber(events.extend)
    yield {"em": emulator, "sink": sink, "state": state, "events": events}
    function_app.runtime.use(None)
    rt.close()


def person(em: Emulator) -> NetworkManagementClient:
    return NetworkManagementClient(
        Person(em),  # type: ignore[arg-type]
        SUB,
        base_url=em.endpoint,
        credential_scopes=[em.endpoint + "/.default"],
        connection_verify=em.ca_bundle,
        polling_interval=0.01,
    )


def break_storage_rule(ctx: dict[str, Any]) -> dict[str, Any]:
    """A person deletes AllowAzureStorage; returns the Event Grid event the emulator sent."""
    em = ctx["em"]
    with person(em) as client:
        client.security_rules.begin_delete(RESOURCE_GROUP, "nsg-cyclecloud", "AllowAzureStorage").result()
    assert em.events.wait_idle(5)
    [event] = [e for e in ctx["events"] if e["data"]["operationName"].endswith("securityRules/delete")]
    ctx["events"].clear()
    em.clear_requests()
    return event


def post(body: Any, raw: bytes | None = None) -> func.HttpResponse:
    req = func.HttpRequest(
        method="POST",
        url="/api/reconcile",
        headers={"Content-Type": "application/json"},
        body=raw if raw is not None else json.dumps(body).encode(),
    )
    response: func.HttpResponse = user_code("reconcile")(req)
    return response


def arm_calls(em: Emulator, method: str | None = None) -> list[dict[str, Any]]:
    return [r for r in em.requests() if r["path"] != "/msi/token" and (method is None or r["method"] == method)]


def names(em: Emulator) -> list[str]:
    return [r["name"] for r in em.state[CC]["properties"]["securityRules"]]


def test_functions_are_declared_as_the_host_expects() -> None:
    declared = host_bindings(function_app.app)
    assert set(declared) == {"on_nsg_change", "sweep", "drain_pending", "reconcile", "status"}
    bindings = {name: b[0] for name, b in declared.items()}
    assert bindings["on_nsg_change"]["type"] == "eventGridTrigger"
    assert bindings["sweep"]["type"] == "timerTrigger"
    assert bindings["sweep"]["schedule"] == "%SWEEP_SCHEDULE%"
    assert bindings["sweep"]["runOnStartup"] is False
    assert bindings["drain_pending"]["type"] == "timerTrigger"
    assert bindings["drain_pending"]["schedule"] == "%DRAIN_SCHEDULE%"
    assert bindings["reconcile"]["route"] == "reconcile"
    assert [str(m.value) for m in bindings["reconcile"]["methods"]] == ["POST"]
    assert str(bindings["reconcile"]["authLevel"].value) == "function"
    assert bindings["status"]["route"] == "status"
    assert [str(m.value) for m in bindings["status"]["methods"]] == ["GET"]


def test_event_from_a_person_restores_the_rule(app: dict[str, Any]) -> None:
    em = app["em"]
    event = break_storage_rule(app)
    user_code("on_nsg_change")(host_event(event))
    assert "AllowAzureStorage" in names(em)
    assert len(arm_calls(em, "PUT")) == 1
    [record] = app["state"].audit_trail()
    assert record.actor == "ada.operator@contoso.example"
    assert record.event_id == event["id"]
    assert [a.status.value for a in app["sink"].alerts] == ["restored"]


def test_outcomes_are_logged_as_fields_application_insights_can_query(
    app: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="lockdown_guard")
    event = break_storage_rule(app)
    user_code("on_nsg_change")(host_event(event))
    [handled] = [r for r in caplog.records if getattr(r, "event_id", None) == event["id"]]
    assert handled.event_status == "handled"  # type: ignore[attr-defined]
    assert handled.event_written == [CC]  # type: ignore[attr-defined]
    assert handled.event_errors == []  # type: ignore[attr-defined]
    assert "{" not in handled.getMessage(), "no JSON inside the message"
    user_code("sweep")(TimerRequest(past_due=False))
    [swept] = [r for r in caplog.records if hasattr(r, "sweep_findings")]
    assert swept.sweep_trigger == "sweep"  # type: ignore[attr-defined]
    assert swept.sweep_written == []  # type: ignore[attr-defined]  the event already restored it


def test_own_write_and_duplicate_events_make_no_arm_call(app: dict[str, Any]) -> None:
    em = app["em"]
    event = break_storage_rule(app)
    handler = user_code("on_nsg_change")
    handler(host_event(event))
    assert em.events.wait_idle(5)
    own = [e for e in app["events"] if e["data"]["claims"]["appid"] == em.identities.get(REMEDIATOR).appid]
    assert own, "the remediator's PUT produced an event"
    em.clear_requests()
    handler(host_event(own[0]))
    handler(host_event(event))  # Event Grid delivers at least once
    assert arm_calls(em) == []


def test_malformed_foreign_and_unrelated_events_are_dropped(app: dict[str, Any]) -> None:
    em = app["em"]
    event = break_storage_rule(app)
    handler = user_code("on_nsg_change")
    malformed = copy.deepcopy(event)
    malformed["id"] = "bad-1"
    malformed["data"] = {"resourceUri": "", "claims": "{not json"}
    malformed["subject"] = ""
    handler(host_event(malformed))
    foreign = copy.deepcopy(event)
    foreign["id"] = "foreign-1"
    other = "00000000-0000-0000-0000-0000000000f2"
    foreign["subject"] = foreign["subject"].replace(SUB, other)
    foreign["data"]["resourceUri"] = foreign["data"]["resourceUri"].replace(SUB, other)
    foreign["data"]["subscriptionId"] = other
    handler(host_event(foreign))
    unrelated = copy.deepcopy(event)
    unrelated["id"] = "storage-1"
    unrelated["data"]["operationName"] = "Microsoft.Storage/storageAccounts/write"
    handler(host_event(unrelated))
    assert arm_calls(em) == []
    assert "AllowAzureStorage" not in names(em)


def test_transient_arm_failure_is_raised_for_event_grid_to_retry(app: dict[str, Any]) -> None:
    em = app["em"]
    event = break_storage_rule(app)
    fault = em.faults.add(kind="status", method="PUT", path="networkSecurityGroups", status=503, times=None)
    with pytest.raises(TransientError):
        user_code("on_nsg_change")(host_event(event))
    em.faults.remove(fault.id)
    user_code("on_nsg_change")(host_event(event))  # the redelivery is not taken for a duplicate
    assert "AllowAzureStorage" in names(em)


def test_sweep_restores_and_status_reports_it(app: dict[str, Any]) -> None:
    em = app["em"]
    break_storage_rule(app)
    user_code("sweep")(TimerRequest(past_due=False))
    assert "AllowAzureStorage" in names(em)
    response = user_code("status")(func.HttpRequest(method="GET", url="/api/status", body=b"", params={}))
    assert response.status_code == 200
    body = json.loads(response.get_body())
    assert body["lastSweep"]["written"] == [CC]
    assert body["lastSweep"]["trigger"] == "sweep"
    finished = datetime.fromisoformat(body["lastSweep"]["finished"])
    assert (datetime.now(UTC) - finished).total_seconds() < 60
    assert body["auditTrail"][0]["nsg"] == CC
    assert "AllowAzureStorage" in body["auditTrail"][0]["rulesAfter"]


def test_http_reconcile_dry_run_then_enforce(app: dict[str, Any]) -> None:
    em = app["em"]
    break_storage_rule(app)
    dry = post({"scope": f"/subscriptions/{SUB}/resourceGroups/{RESOURCE_GROUP}", "dryRun": True})
    assert dry.status_code == 200
    report = json.loads(dry.get_body())
    assert report["dryRun"] is True
    assert [f["kind"] for f in report["findings"]] == ["missing_rule"]
    assert report["plans"][0]["added"] == ["AllowAzureStorage"]
    assert report["written"] == []
    assert arm_calls(em, "PUT") == []
    done = post({"scope": CC})
    assert done.status_code == 200
    assert json.loads(done.get_body())["written"][0]["nsg"] == CC
    assert "AllowAzureStorage" in names(em)


@pytest.mark.parametrize(
    ("body", "raw", "status", "message"),
    [
        (None, b"{not json", 400, "not JSON"),
        (["scope"], None, 400, "JSON object"),
        ({"scope": 5}, None, 400, "scope"),
        ({"dryRun": "yes"}, None, 400, "dryRun"),
        ({"scop": "x"}, None, 400, "unknown field"),
        ({"scope": "/subscriptions/nope"}, None, 400, "not a subscription GUID"),
        ({"scope": "/resourceGroups/rg"}, None, 400, "is not a subscription, resource group"),
        ({"scope": "/subscriptions/00000000-0000-0000-0000-0000000000f2"}, None, 403, "outside"),
    ],
)
def test_http_reconcile_bad_input(app: dict[str, Any], body: Any, raw: bytes | None, status: int, message: str) -> None:
    response = post(body, raw)
    assert response.status_code == status
    assert message in json.loads(response.get_body())["error"]
    assert arm_calls(app["em"]) == []


def get_status() -> dict[str, Any]:
    response = user_code("status")(func.HttpRequest(method="GET", url="/api/status", body=b"", params={}))
    assert response.status_code == 200
    body: dict[str, Any] = json.loads(response.get_body())
    return body


@contextmanager
def runtime_with(monkeypatch: pytest.MonkeyPatch, **env: str) -> Iterator[None]:
    """The app's runtime rebuilt with extra settings (the ``app`` fixture restores its own afterwards)."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    rt = build_runtime(Settings.from_env(), arm_options=FAST, state=InMemoryStateStore(), channels=[])
    function_app.runtime.use(rt)
    try:
        yield
    finally:
        rt.close()


def test_status_says_tags_are_judged_by_containment_by_default(app: dict[str, Any]) -> None:
    assert get_status()["serviceTags"] == {"source": "containment", "exact": False}


def test_status_names_the_service_tags_file(app: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    path = str(STORAGE_WESTEUROPE)
    with runtime_with(monkeypatch, SERVICE_TAGS_PATH=path):
        assert get_status()["serviceTags"] == {"source": "file", "exact": True, "path": path, "tags": 1}


def test_status_shows_the_service_tags_api_model_once_loaded(
    app: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    with runtime_with(monkeypatch, SERVICE_TAGS_LOCATION="westeurope"):
        before = get_status()["serviceTags"]
        assert before == {
            "source": "api",
            "exact": False,
            "location": "westeurope",
            "changeNumber": None,
            "loadedAt": None,
            "lastError": None,
            "tags": 0,
        }, "the status page itself never fetches"
        assert not [r for r in app["em"].requests() if r["path"].lower().endswith("/servicetags")]
        user_code("sweep")(TimerRequest(past_due=False))
        after = get_status()["serviceTags"]
        assert after["source"] == "api"
        assert after["exact"] is True
        assert after["location"] == "westeurope"
        assert after["changeNumber"]
        assert after["tags"] > 1
        assert after["lastError"] is None
        assert (datetime.now(UTC) - datetime.fromisoformat(after["loadedAt"])).total_seconds() < 60


def test_status_reports_a_failed_service_tags_load(app: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    em = app["em"]
    fault = em.faults.add(kind="status", method="GET", path="serviceTags", status=503, times=None)
    try:
        with runtime_with(monkeypatch, SERVICE_TAGS_LOCATION="westeurope"):
            user_code("sweep")(TimerRequest(past_due=False))
            tags = get_status()["serviceTags"]
    finally:
        em.faults.remove(fault.id)
    assert (tags["source"], tags["exact"], tags["loadedAt"], tags["changeNumber"]) == ("api", False, None, None)
    assert "503" in (tags["lastError"] or ""), tags["lastError"]


# ---- who asked (issue 11, item 5) and what the HTTP answers say (item 8) ----

FORGED = "ceo@contoso.com"


def post_as(body: Any, headers: dict[str, str] | None = None) -> func.HttpResponse:
    req = func.HttpRequest(
        method="POST",
        url="/api/reconcile",
        headers={"Content-Type": "application/json", **(headers or {})},
        body=json.dumps(body).encode(),
    )
    response: func.HttpResponse = user_code("reconcile")(req)
    return response


def test_with_the_function_key_alone_a_principal_header_is_not_believed(
    app: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    # Before the fix: "http:ceo@contoso.com" in the report, the audit trail and the log.
    break_storage_rule(app)
    response = post_as({"scope": CC}, headers={"x-ms-client-principal-name": FORGED})
    assert response.status_code == 200
    report = json.loads(response.get_body())
    assert report["actor"] == "http:function-key"
    (audit,) = app["state"].audit_trail(limit=5)
    assert audit.actor == "http:function-key"
    assert FORGED not in response.get_body().decode()
    assert FORGED not in caplog.text


def test_behind_app_service_authentication_the_platforms_principal_is_recorded(
    app: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    break_storage_rule(app)
    with runtime_with(monkeypatch, HTTP_AUTH="entra"):
        response = post_as({"scope": CC}, headers={"X-MS-CLIENT-PRINCIPAL-NAME": "operator@contoso.com"})
    assert response.status_code == 200
    assert json.loads(response.get_body())["actor"] == "http:entra:operator@contoso.com"


def test_a_scope_that_matches_nothing_says_so(app: dict[str, Any]) -> None:
    empty_rg = f"/subscriptions/{SUB}/resourceGroups/rg-without-nsgs"
    response = post_as({"scope": empty_rg})
    assert response.status_code == 404
    body = json.loads(response.get_body())
    assert "matches no managed NSG" in body["error"]
    assert body["nsgs"] == []


@pytest.mark.parametrize(
    ("fault", "status"),
    [
        ({"kind": "status", "status": 429, "retry_after": 0.01}, 503),
        ({"kind": "status", "status": 503}, 503),
        ({"kind": "lro_failed", "code": "InternalServerError"}, 503),
        ({"kind": "status", "status": 403}, 502),
    ],
    ids=["429", "503", "operation-failed", "403"],
)
def test_a_reconcile_whose_write_failed_is_not_200(app: dict[str, Any], fault: dict[str, Any], status: int) -> None:
    break_storage_rule(app)
    app["em"].faults.add(method="PUT", path="networkSecurityGroups/nsg-cyclecloud$", times=None, **fault)
    response = post_as({"scope": f"/subscriptions/{SUB}/resourceGroups/{RESOURCE_GROUP}"})
    assert response.status_code == status
    body = json.loads(response.get_body())
    assert body["error"].startswith("the reconcile did not complete")
    assert CC in body["error"]
    assert "AllowAzureStorage" not in names(app["em"])
    if status == 503:
        assert response.headers["Retry-After"] == "30"


def test_error_answers_are_bounded(app: dict[str, Any]) -> None:
    huge = "/subscriptions/" + "x" * 10_000_000
    response = post_as({"scope": huge})
    assert response.status_code == 400
    assert len(response.get_body()) < 4_000


class _UnreadableStore(InMemoryStateStore):
    def load_status(self) -> dict[str, Any] | None:
        raise OSError("Connection to lockdownstate.table.core.windows.net:443 refused")


def test_the_status_function_does_not_name_the_storage_host(
    app: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    rt = function_app.runtime()
    function_app.runtime.use(replace(rt, state=_UnreadableStore()))
    try:
        response = user_code("status")(func.HttpRequest(method="GET", url="/api/status", body=b"", params={}))
    finally:
        function_app.runtime.use(rt)
    assert response.status_code == 503
    text = response.get_body().decode()
    assert "table.core.windows.net" not in text
    assert "state store unavailable" in text
    assert "table.core.windows.net" in caplog.text, "the log keeps the detail for operators"
