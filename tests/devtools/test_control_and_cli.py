"""The /_emulator/ control API, the request log, concurrency, and the emulator as a process."""

from __future__ import annotations

import http.client
import json
import os
import signal
import ssl
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from devtools.emulator import Emulator
from tests.devtools.rest import API, Rest, nsg_body, nsg_id, rule

ROOT = Path(__file__).resolve().parents[2]


def test_control_api_round_trip(rest: Rest, arm_emulator: Emulator) -> None:
    assert rest.control("GET", "health").json()["endpoint"] == arm_emulator.endpoint
    seeded = rest.control("PUT", "seed", {"resources": [{"id": nsg_id(), "location": "westeurope", "properties": {}}]})
    assert seeded.json() == {"seeded": [nsg_id()]}
    assert list(rest.control("GET", "state").json()) == [nsg_id()]
    assert rest.control("PUT", "config", {"page_size": 7}).json()["page_size"] == 7
    assert rest.control("PUT", "config", {"nope": 1}).status_code == 400
    token = rest.control("POST", "tokens", {"principal": "human"}).json()["access_token"]
    got = requests.get(
        arm_emulator.endpoint + nsg_id(),
        params={"api-version": API},
        headers={"Authorization": f"Bearer {token}"},
        verify=arm_emulator.ca_bundle,
        timeout=10,
    )
    assert got.status_code == 200
    assert rest.control("POST", "reset").status_code == 204
    assert rest.control("GET", "state").json() == {}
    assert rest.control("GET", "requests").json() == {"value": []}
    assert rest.control("GET", "nothing").status_code == 404


def test_request_log_names_method_path_version_status_caller_and_action(rest: Rest, arm_emulator: Emulator) -> None:
    rest.put(nsg_id(), nsg_body(("r", rule())))
    rest.get(f"{nsg_id()}/securityRules/r")
    rest.get(nsg_id(), auth=False)
    log = rest.control("GET", "requests").json()["value"]
    assert [(e["method"], e["status"], e["caller"], e["action"]) for e in log] == [
        ("PUT", 201, "human", "Microsoft.Network/networkSecurityGroups/write"),
        ("GET", 200, "human", "Microsoft.Network/networkSecurityGroups/securityRules/read"),
        ("GET", 401, None, "Microsoft.Network/networkSecurityGroups/read"),
    ]
    assert log[0]["path"] == nsg_id()
    assert log[0]["api_version"] == API


def test_every_answer_carries_arms_tracking_headers(rest: Rest) -> None:
    first = rest.get(nsg_id())
    second = rest.get(nsg_id(), headers={"x-ms-correlation-request-id": "mine"})
    assert first.headers["x-ms-request-id"] != second.headers["x-ms-request-id"]
    assert second.headers["x-ms-correlation-request-id"] == "mine"
    remaining = [int(r.headers["x-ms-ratelimit-remaining-subscription-reads"]) for r in (first, second)]
    assert remaining[0] > remaining[1]
    assert "x-ms-ratelimit-remaining-subscription-writes" in rest.put(nsg_id(), nsg_body()).headers


def test_many_concurrent_requests(rest: Rest, arm_emulator: Emulator) -> None:
    arm_emulator.config.lro_polls = 0
    rest.put(nsg_id(), nsg_body())

    def add(i: int) -> int:
        return Rest(arm_emulator).put(f"{nsg_id()}/securityRules/r{i}", {"properties": rule(100 + i)}).status_code

    def read(_: int) -> int:
        return Rest(arm_emulator).get(nsg_id()).status_code

    with ThreadPoolExecutor(max_workers=32) as pool:
        writes = list(pool.map(add, range(60)))
        reads = list(pool.map(read, range(100)))
    assert writes == [201] * 60
    assert reads == [200] * 100
    assert len(arm_emulator.state[nsg_id()]["properties"]["securityRules"]) == 60


def test_cli_runs_the_emulator_as_a_process(tmp_path: Path) -> None:
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps({"resources": [{"id": nsg_id(), "location": "westeurope", "properties": {}}]}))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "remediation", "emulator", "--seed", str(seed), "--page-size", "5"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        assert set(info) >= {"endpoint", "ca_bundle", "identity_endpoint", "identity_header"}
        token = requests.get(
            info["identity_endpoint"],
            params={"api-version": "2019-08-01", "resource": info["endpoint"]},
            headers={"X-IDENTITY-HEADER": info["identity_header"]},
            verify=info["ca_bundle"],
            timeout=10,
        ).json()["access_token"]
        got = requests.get(
            info["endpoint"] + nsg_id(),
            params={"api-version": API},
            headers={"Authorization": f"Bearer {token}"},
            verify=info["ca_bundle"],
            timeout=10,
        )
        assert got.status_code == 200
        assert got.json()["name"] == "nsg1"
        config = requests.get(info["endpoint"] + "/_emulator/config", verify=info["ca_bundle"], timeout=10).json()
        assert config["page_size"] == 5
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0


def test_cli_reports_a_bad_seed_file(tmp_path: Path) -> None:
    seed = tmp_path / "seed.json"
    seed.write_text(
        '{"resources": [{"id": "/subscriptions/s/resourceGroups/r/providers/Microsoft.Network/networkSecurityGroups/n"}]}'
    )
    result = subprocess.run(
        [sys.executable, "-m", "remediation", "emulator", "--seed", str(seed)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "LocationRequired" in result.stderr


def test_chunked_request_bodies_are_read(arm_emulator: Emulator) -> None:
    context = ssl.create_default_context(cafile=arm_emulator.ca_bundle)
    conn = http.client.HTTPSConnection("127.0.0.1", arm_emulator.port, context=context, timeout=10)
    body = json.dumps(nsg_body(("r", rule()))).encode()
    conn.request(
        "PUT",
        f"{nsg_id()}?api-version={API}",
        body=iter([body[:7], body[7:]]),
        headers={"Authorization": f"Bearer {arm_emulator.token_for()}", "Content-Type": "application/json"},
        encode_chunked=True,
    )
    response = conn.getresponse()
    assert response.status == 201
    assert json.loads(response.read())["properties"]["securityRules"][0]["name"] == "r"
    conn.close()


def test_the_read_limit_counts_down_per_principal_and_refuses_with_429_when_spent(
    rest: Rest, arm_emulator: Emulator
) -> None:
    rest.put(nsg_id(), nsg_body())
    arm_emulator.rate_limits.set_remaining("reads", 2, principal="human")
    first, second = rest.get(nsg_id()), rest.get(nsg_id())
    # Two reads were left: the answers say 1, then 0.
    assert [r.headers["x-ms-ratelimit-remaining-subscription-reads"] for r in (first, second)] == ["1", "0"]
    refused = rest.get(nsg_id())
    # None left: ARM's 429, with the wait to the hour's end and nothing served.
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "SubscriptionRequestsThrottled"
    assert 1 <= int(refused.headers["Retry-After"]) <= 3600
    assert refused.headers["x-ms-ratelimit-remaining-subscription-reads"] == "0"
    # Writes are a budget of their own.
    assert rest.put(nsg_id(), nsg_body()).status_code in (200, 201)
    log = arm_emulator.requests()
    assert [e["remaining"] for e in log if e["method"] == "GET"] == [1, 0, None]
    assert rest.control("PUT", "ratelimit", {"kind": "reads", "remaining": 5, "principal": "human"}).status_code == 204
    assert rest.get(nsg_id()).headers["x-ms-ratelimit-remaining-subscription-reads"] == "4"
    assert rest.control("PUT", "ratelimit", {"kind": "nope", "remaining": 5}).status_code == 400
