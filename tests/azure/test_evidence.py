"""Evidence from the Logs query API, through the real LogsQueryClient against a local HTTPS server.

The server answers in the Logs query API's format (tables with typed columns
and rows, the PartialError variant, 429 throttling). It cannot run KQL, so
tests about the query itself assert on the query text the client sent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from remediation.azure.evidence import (
    LogsEvidence,
    NoEvidence,
    actor_query,
    denied_flows_query,
    evidence_from_settings,
    kql_string,
)
from remediation.settings import Settings
from tests.support.credential import StaticCredential
from tests.support.https_server import Answer, HttpsServer, Request, Responder
from tests.support.net import LocalCA, free_port

WORKSPACE = "11111111-2222-3333-4444-555555555555"
REMEDIATOR = "99999999-8888-7777-6666-555555555555"
NSG = "/subscriptions/0000/resourceGroups/rg-cluster/providers/Microsoft.Network/networkSecurityGroups/nsg-cluster"
SINCE = datetime(2026, 11, 26, 5, 0, tzinfo=UTC)
NOW = SINCE + timedelta(hours=1)


def table(columns: list[tuple[str, str]], rows: list[list[Any]]) -> dict[str, Any]:
    return {
        "tables": [{"name": "PrimaryResult", "columns": [{"name": n, "type": t} for n, t in columns], "rows": rows}]
    }


ACTOR_TABLE = table(
    [("Caller", "string"), ("TimeGenerated", "datetime"), ("OperationNameValue", "string")],
    [["alice@contoso.example", "2026-11-26T05:42:00Z", "MICROSOFT.NETWORK/NETWORKSECURITYGROUPS/SECURITYRULES/WRITE"]],
)
FLOWS_TABLE = table(
    [
        ("SrcIp", "string"),
        ("DestIp", "string"),
        ("DestPort", "int"),
        ("AclRule", "string"),
        ("Flows", "long"),
        ("Last", "datetime"),
    ],
    [
        ["10.1.0.4", "10.0.0.4", 5672, "DenyCycleCloudAmqp", 12, "2026-11-26T05:58:00Z"],
        ["10.1.0.5", "10.0.0.4", 9443, "DenyCycleCloudAmqp", 3, "2026-11-26T05:57:00Z"],
    ],
)


def by_table(request: Request) -> Answer:
    query = request.json()["query"]
    return Answer(200, ACTOR_TABLE if query.startswith("AzureActivity") else FLOWS_TABLE)


def source(server: HttpsServer, ca: LocalCA, credential: StaticCredential | None = None) -> LogsEvidence | NoEvidence:
    settings = Settings(
        log_analytics_workspace_id=WORKSPACE,
        logs_endpoint=server.url,
        remediator_principal_id=REMEDIATOR,
    )
    evidence = evidence_from_settings(settings, credential or StaticCredential(), connection_verify=str(ca.ca_path))
    assert isinstance(evidence, LogsEvidence)
    evidence._clock = lambda: NOW
    return evidence


@pytest.fixture
def serve(https_server: Callable[[Responder], HttpsServer]) -> Callable[[Responder], HttpsServer]:
    return https_server


def test_actor_of_change(serve: Callable[[Responder], HttpsServer], local_ca: LocalCA) -> None:
    server = serve(by_table)
    credential = StaticCredential()
    evidence = source(server, local_ca, credential).actor_of_change(NSG, SINCE)
    assert evidence.actor == "alice@contoso.example"
    assert evidence.lines == (
        "alice@contoso.example: MICROSOFT.NETWORK/NETWORKSECURITYGROUPS/SECURITYRULES/WRITE at 2026-11-26 05:42 UTC",
    )
    assert evidence.notes == ()
    (request,) = server.requests
    assert request.method == "POST"
    assert request.path == f"/v1/workspaces/{WORKSPACE}/query"
    assert request.headers["Authorization"] == "Bearer static-test-token"
    assert credential.scopes == [(server.url + "/.default",)]
    body = request.json()
    assert body["timespan"].startswith("2026-11-26T05:00:00")
    assert f"_ResourceId =~ '{NSG.lower()}'" in body["query"]
    assert f"not(Caller in~ ('{REMEDIATOR}'))" in body["query"]  # the remediator's own writes do not count


def test_no_actor_found(serve: Callable[[Responder], HttpsServer], local_ca: LocalCA) -> None:
    server = serve(lambda r: Answer(200, table([("Caller", "string")], [])))
    evidence = source(server, local_ca).actor_of_change(NSG, SINCE)
    assert (evidence.actor, evidence.lines, evidence.notes) == (None, (), ())


def test_denied_flows(serve: Callable[[Responder], HttpsServer], local_ca: LocalCA) -> None:
    server = serve(by_table)
    evidence = source(server, local_ca).denied_flows(NSG, [9443, 5672], SINCE)
    assert evidence.lines == (
        "10.1.0.4 -> 10.0.0.4:5672 denied 12 flow(s) by DenyCycleCloudAmqp, last at 2026-11-26 05:58 UTC",
        "10.1.0.5 -> 10.0.0.4:9443 denied 3 flow(s) by DenyCycleCloudAmqp, last at 2026-11-26 05:57 UTC",
    )
    query = server.requests[0].json()["query"]
    assert 'FlowStatus == "Denied" and DestPort in (5672, 9443)' in query
    assert f"AclGroup =~ '{NSG}' or AclGroup =~ '0000/rg-cluster/nsg-cluster'" in query


def test_partial_result_keeps_the_data_and_says_so(
    serve: Callable[[Responder], HttpsServer], local_ca: LocalCA, caplog: pytest.LogCaptureFixture
) -> None:
    partial = dict(FLOWS_TABLE)
    partial["error"] = {
        "code": "PartialError",
        "message": "There were some errors when processing your query.",
        "details": [{"code": "EngineError", "message": "Query exceeded the memory limit"}],
    }
    server = serve(lambda r: Answer(200, partial))
    with caplog.at_level(logging.WARNING):
        evidence = source(server, local_ca).denied_flows(NSG, [5672], SINCE)
    assert len(evidence.lines) == 2
    (note,) = evidence.notes
    assert note.startswith("denied-flow lookup: partial result from Log Analytics (PartialError")
    assert note in caplog.text


def test_throttling_is_a_note_after_bounded_retries(
    serve: Callable[[Responder], HttpsServer], local_ca: LocalCA
) -> None:
    throttled = {"error": {"code": "TooManyRequests", "message": "Too many requests"}}
    server = serve(lambda r: Answer(429, throttled, {"Retry-After": "0"}))
    evidence = source(server, local_ca).actor_of_change(NSG, SINCE)
    assert evidence.actor is None
    assert evidence.notes == ("actor lookup: Log Analytics throttled the query (HTTP 429); try again later",)
    assert len(server.requests) == 3  # the SDK's retries are capped (retry_total=2)


def test_server_error_is_a_note(serve: Callable[[Responder], HttpsServer], local_ca: LocalCA) -> None:
    bad = {"error": {"code": "BadArgumentError", "message": "The request had some invalid properties"}}
    server = serve(lambda r: Answer(400, bad))
    evidence = source(server, local_ca).denied_flows(NSG, [5672], SINCE)
    assert evidence.lines == ()
    (note,) = evidence.notes
    assert note.startswith("denied-flow lookup: Log Analytics answered HTTP 400")


def test_unreachable_workspace_is_a_note(local_ca: LocalCA) -> None:
    settings = Settings(log_analytics_workspace_id=WORKSPACE, logs_endpoint=f"https://127.0.0.1:{free_port()}")
    evidence = evidence_from_settings(settings, StaticCredential(), connection_verify=str(local_ca.ca_path))
    result = evidence.actor_of_change(NSG, SINCE)
    assert result.actor is None
    assert result.notes[0].startswith("actor lookup: Log Analytics unreachable: ServiceRequestError")


def test_no_workspace_means_no_enrichment() -> None:
    evidence = evidence_from_settings(Settings(), StaticCredential())
    assert isinstance(evidence, NoEvidence)
    assert evidence.actor_of_change(NSG, SINCE).actor is None
    assert evidence.denied_flows(NSG, [5672], SINCE).lines == ()


def unquote(literal: str) -> str:
    """Read one KQL single-quoted literal; fail if anything follows its closing quote."""
    assert literal[0] == "'"
    out, i = [], 1
    while i < len(literal):
        c = literal[i]
        if c == "\\":
            out.append(literal[i + 1])
            i += 2
            continue
        if c == "'":
            assert i == len(literal) - 1, f"literal ends early at {i}: {literal!r}"
            return "".join(out)
        out.append(c)
        i += 1
    raise AssertionError(f"unterminated literal {literal!r}")


@pytest.mark.parametrize(
    "value",
    [
        NSG,
        "x' or 1==1 | union AzureActivity //",
        "back\\slash'\\'",
        "/subscriptions/0/resourceGroups/rg'; drop/providers/x",
    ],
)
def test_kql_string_cannot_be_escaped(value: str) -> None:
    assert unquote(kql_string(value)) == value


def test_control_characters_skip_the_lookup(serve: Callable[[Responder], HttpsServer], local_ca: LocalCA) -> None:
    server = serve(by_table)
    evidence = source(server, local_ca).actor_of_change(NSG + "\n| take 1", SINCE)
    assert evidence.actor is None
    assert evidence.notes[0].startswith("actor lookup skipped: control character")
    assert server.requests == []


def test_ports_must_be_numbers() -> None:
    with pytest.raises(ValueError, match="not a port number"):
        denied_flows_query(NSG, [5672, "9443) | union X"], SINCE)  # type: ignore[list-item]


def test_actor_query_without_identity_to_exclude() -> None:
    assert "Caller in~" not in actor_query(NSG, SINCE, [])
