"""Hostile input: Event Grid payloads, /api/reconcile bodies, baseline files and NSG JSON for
``check``, from the hand-written corpus (corpus/, see its README) and from hypothesis.

Each gets a clear error or a no-op. Asserted for every input: no unhandled exception, no hang
(each call runs under a deadline), no ARM request outside the configured subscription and no ARM
write at all (the network is compliant, so any write would be one an attacker caused), and no
secret (webhook signature, SMTP password, storage key, identity header, bearer token) in any log
record. Deterministic: ``derandomize=True``, no example database.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import io
import json
import logging
import posixpath
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import azure.functions as func
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import function_app
from devtools.emulator import Emulator
from devtools.functions_host import user_function
from remediation.baseline_file import load_baseline
from remediation.cli import main as cli_main
from remediation.errors import BaselineError, InputError, ScopeError
from remediation.events import parse_event
from tests.reliability.harness import CC, OTHER_SUB, SUB, World, make_world, network

CORPUS = Path(__file__).resolve().parent / "corpus"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SHIPPED_BASELINE = Path(__file__).resolve().parents[2] / "remediation" / "baselines" / "cyclecloud.yaml"
DEADLINE = 20.0  # seconds one input may take before it counts as a hang

SECRETS = {
    "TEAMS_WEBHOOK_URL": "https://prod-00.westeurope.logic.azure.com/workflows/a1/triggers/manual/paths/invoke?sig=S3cretSigValue0001",
    "SMTP_PASSWORD": "SmtpPassw0rdValue0002",
    "STATE_CONNECTION_STRING": "DefaultEndpointsProtocol=https;AccountName=st;AccountKey=StorageKeyValue0003==",
}
SECRET_MARKERS = ("S3cretSigValue0001", "SmtpPassw0rdValue0002", "StorageKeyValue0003", "eyJ", "access_token")

pytestmark = pytest.mark.integration


def profile(n: int) -> settings:
    return settings(
        max_examples=n,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def within(seconds: float, fn: Callable[[], Any]) -> Any:
    """``fn()`` on a thread; fails the test if it has not returned after ``seconds`` (a hang)."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:
            box["error"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(seconds)
    if t.is_alive():
        pytest.fail(f"no answer after {seconds}s: a hang")
    if "error" in box:
        raise box["error"]
    return box.get("value")


# ------------------------------------------------------------------ world


@pytest.fixture
def hostile(emulator: Emulator, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> Iterator[World]:
    """A compliant network, a runtime whose settings hold secrets, and every log record captured."""
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    world = make_world(emulator, network(drop=(), extra=()))
    assert world.rt.settings.teams_webhook_url, "the secrets are in the settings"
    function_app.runtime.use(world.rt)
    caplog.set_level(logging.DEBUG)
    yield world
    function_app.runtime.use(None)
    world.rt.close()
    assert_no_secret_logged(caplog, emulator)


def assert_no_secret_logged(caplog: pytest.LogCaptureFixture, em: Emulator) -> None:
    text = "\n".join(r.getMessage() + " " + str(r.exc_info or "") for r in caplog.records)
    for marker in (*SECRET_MARKERS, em.identity_header):
        assert marker not in text, f"a secret ({marker[:6]}...) reached a log"


def assert_contained(world: World) -> None:
    """Every ARM request stayed in the configured subscription, and nothing was written."""
    outside = []
    for r in world.arm_requests():
        path = posixpath.normpath(unquote(unquote(r["path"]))).lower()
        if not (path + "/").startswith(f"/subscriptions/{SUB}/"):
            outside.append(r["path"])
    assert outside == [], outside
    assert world.writes() == [], [r["path"] for r in world.writes()]
    assert world.rule_names(CC)  # still there


# ----------------------------------------------------------- Event Grid

NSG_OPS = [
    "Microsoft.Network/networkSecurityGroups/write",
    "Microsoft.Network/networkSecurityGroups/delete",
    "Microsoft.Network/networkSecurityGroups/securityRules/write",
    "Microsoft.Network/virtualNetworks/subnets/write",
    "Microsoft.Network/networkInterfaces/write",
    "Microsoft.Storage/storageAccounts/write",
    "",
]
HOSTILE_URIS = [
    CC,
    CC.replace(SUB, OTHER_SUB),
    f"/subscriptions/{SUB}/../../subscriptions/{OTHER_SUB}/resourceGroups/rg/providers/Microsoft.Network/networkSecurityGroups/x",
    f"/subscriptions/{SUB}/resourceGroups/rg%2F..%2F..%2Fsubscriptions%2F{OTHER_SUB}/providers/Microsoft.Network/networkSecurityGroups/x",
    f"/subscriptions/{SUB}/resourceGroups/rg-cyclecloud/providers/Microsoft.Network/networkSecurityGroups/nsg-cyclecloud/securityRules/$(id)",
    f"/subscriptions/{SUB}/resourceGroups/rg';--/providers/Microsoft.Network/networkSecurityGroups/<script>",
    f"/subscriptions/{SUB}",
    f"/subscriptions/{OTHER_SUB}",
    "/",
    "",
    "https://management.azure.com" + CC,
]
JSON_LEAF = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=40))
JSON = st.recursive(
    JSON_LEAF,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)),
    max_leaves=20,
)
URI = st.one_of(
    st.sampled_from(HOSTILE_URIS), st.text(max_size=80), st.builds(lambda s: f"{CC}/{s}", st.text(max_size=30))
)


@st.composite
def structured_events(draw: st.DrawFn) -> dict[str, Any]:
    """Event Grid-shaped events with hostile values where the real ones go."""
    subject = draw(URI)
    data: dict[str, Any] = {
        "resourceUri": draw(st.one_of(st.just(subject), URI, JSON)),
        "operationName": draw(st.one_of(st.sampled_from(NSG_OPS), st.text(max_size=60), JSON)),
        "subscriptionId": draw(st.sampled_from([SUB, OTHER_SUB, "", "not-a-guid"])),
        "claims": draw(
            st.one_of(
                st.dictionaries(st.sampled_from(["appid", "oid", "upn", "name", "x"]), JSON, max_size=4),
                st.text(max_size=40),
                JSON,
            )
        ),
        "status": draw(st.sampled_from(["Succeeded", "Failed", ""])),
    }
    for key in draw(st.lists(st.sampled_from(list(data)), max_size=3, unique=True)):
        del data[key]
    return {
        "id": draw(st.one_of(st.uuids().map(str), st.text(max_size=40), JSON)),
        "subject": subject,
        "eventType": draw(
            st.sampled_from(
                [
                    "Microsoft.Resources.ResourceWriteSuccess",
                    "Microsoft.Resources.ResourceDeleteSuccess",
                    "Microsoft.Resources.ResourceActionSuccess",
                    "Microsoft.EventGrid.SubscriptionValidationEvent",
                    "",
                ]
            )
        ),
        "topic": draw(st.sampled_from([f"/subscriptions/{SUB}", f"/subscriptions/{OTHER_SUB}", ""])),
        "dataVersion": draw(st.sampled_from(["2", "", "1"])),
        "data": draw(st.one_of(st.just(data), JSON)),
    }


def host_event(raw: Any) -> func.EventGridEvent:
    """What the Functions host hands the trigger for a delivered event (fields as given)."""
    raw = raw if isinstance(raw, dict) else {}
    return func.EventGridEvent(
        id=raw.get("id"),
        data=raw.get("data"),
        topic=raw.get("topic"),
        subject=raw.get("subject"),
        event_type=raw.get("eventType"),
        event_time=None,
        data_version=raw.get("dataVersion"),
    )


def deliver(raw: Any) -> None:
    handler = user_function(function_app.app, "on_nsg_change")
    within(DEADLINE, lambda: handler(host_event(raw)))


def parse_cleanly(raw: Any) -> None:
    """parse_event either normalises the event or raises InputError / ScopeError."""
    with contextlib.suppress(InputError, ScopeError):
        within(DEADLINE, lambda: parse_event(raw, subscription_id=SUB))


def generated_events() -> dict[str, Any]:
    deep: list[Any] = []
    cursor = deep
    for _ in range(5000):
        cursor.append([])
        cursor = cursor[0]
    base = json.loads((CORPUS / "eventgrid" / "reference-sample.json").read_text())
    return {
        "deep-data": {
            "id": "g-deep",
            "subject": CC,
            "eventType": "Microsoft.Resources.ResourceWriteSuccess",
            "data": {"operationName": deep},
        },
        "deep-id": {"id": {"a": deep}, "subject": CC, "eventType": "x", "data": {}},
        "deep-claims-string": {
            "id": "g-deep-str",
            "subject": CC,
            "eventType": "x",
            "data": {"claims": "[" * 100_000 + "]" * 100_000},
        },
        "huge-subject": {**base, "id": "g-huge", "subject": CC + "/" + "a" * 2_000_000},
        "surrogate-id": {**base, "id": "bad\ud800id", "subject": CC},
        "many-claims": {
            **base,
            "id": "g-claims",
            "data": {**base["data"], "claims": {f"c{i}": "v" * 100 for i in range(20_000)}},
        },
    }


def test_event_grid_corpus(hostile: World) -> None:
    files = sorted((CORPUS / "eventgrid").glob("*.json"))
    assert len(files) >= 25
    cases = {f.stem: json.loads(f.read_text()) for f in files} | generated_events()
    for name, raw in cases.items():
        try:
            parse_cleanly(raw)
            deliver(raw)
        except Exception as exc:
            pytest.fail(f"event {name}: {type(exc).__name__}: {exc}")
    assert_contained(hostile)


@profile(150)
@given(raw=structured_events())
def test_event_grid_fuzzed_through_the_handler(hostile: World, raw: dict[str, Any]) -> None:
    parse_cleanly(raw)
    deliver(raw)
    assert_contained(hostile)


@profile(300)
@given(raw=JSON)
def test_event_grid_fuzzed_arbitrary_json(raw: Any) -> None:
    parse_cleanly(raw)
    parse_cleanly(json.dumps(raw))


# ------------------------------------------------------------ HTTP bodies

HOSTILE_SCOPES = [
    None,
    f"/subscriptions/{SUB}",
    f"/subscriptions/{OTHER_SUB}",
    CC,
    CC.replace(SUB, OTHER_SUB),
    f"/subscriptions/{SUB}/resourceGroups/..",
    f"/subscriptions/{SUB}/resourceGroups/../../subscriptions/{OTHER_SUB}",
    f"/subscriptions/{SUB}/resourceGroups/rg%2F..%2F..%2Fsubscriptions%2F{OTHER_SUB}",
    f"/subscriptions/{SUB}/resourceGroups/rg-cyclecloud/providers/Microsoft.Network/networkSecurityGroups/..%2F..",
    f"/subscriptions/{SUB}/resourceGroups/rg';--",
    "https://management.azure.com/subscriptions/" + OTHER_SUB,
    "",
    "/",
]


def call_reconcile(body: bytes, headers: dict[str, str] | None = None) -> func.HttpResponse:
    handler = user_function(function_app.app, "reconcile")
    request = func.HttpRequest(
        method="POST", url="http://localhost:7071/api/reconcile", headers=headers or {}, params={}, body=body
    )
    response: func.HttpResponse = within(DEADLINE, lambda: handler(request))
    return response


def assert_answered(response: func.HttpResponse, what: str) -> None:
    # 404: a well-formed scope that matches no managed NSG says so (issue 11, item 8).
    assert response.status_code in (200, 400, 403, 404), (
        f"{what}: HTTP {response.status_code} {response.get_body()[:300]!r}"
    )
    body = json.loads(response.get_body())
    if response.status_code != 200:
        assert isinstance(body.get("error"), str), what
        assert body["error"], what
    else:
        assert body["nsgs"] is not None, what
        assert body["written"] == [], what


def test_http_corpus(hostile: World) -> None:
    files = sorted((CORPUS / "http").glob("*.txt"))
    assert len(files) >= 20
    bodies = {f.name: f.read_bytes() for f in files}
    bodies["generated-huge-scope"] = json.dumps({"scope": "/subscriptions/" + "a" * 5_000_000}).encode()
    bodies["generated-deep"] = b'{"scope": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"
    for name, body in bodies.items():
        assert_answered(call_reconcile(body), name)
    for name in ("scope-other-subscription.txt", "scope-other-sub-nsg.txt"):
        assert call_reconcile(bodies[name]).status_code == 403, name
    assert call_reconcile(b"", {"x-ms-client-principal-name": "a\r\nX-Evil: 1" + "b" * 100_000}).status_code == 200
    assert_contained(hostile)


@profile(120)
@given(
    body=st.one_of(
        st.binary(max_size=300),
        st.builds(
            lambda d: json.dumps(d).encode(),
            st.one_of(
                JSON,
                st.fixed_dictionaries(
                    {"scope": st.one_of(st.sampled_from(HOSTILE_SCOPES), st.text(max_size=60), JSON)},
                    optional={"dryRun": st.one_of(st.booleans(), JSON), "extra": JSON},
                ),
                st.builds(lambda s: {"scope": f"/subscriptions/{SUB}/{s}", "dryRun": True}, st.text(max_size=60)),
            ),
        ),
    )
)
def test_http_fuzzed(hostile: World, body: bytes) -> None:
    assert_answered(call_reconcile(body), repr(body[:80]))
    assert_contained(hostile)


# --------------------------------------------------------------- baselines


def load_cleanly(path: Path) -> None:
    with contextlib.suppress(BaselineError):
        within(DEADLINE, lambda: load_baseline(str(path)))


def test_baseline_corpus(tmp_path: Path) -> None:
    files = sorted((CORPUS / "baseline").glob("*.yaml"))
    assert len(files) >= 15
    for f in files:
        try:
            load_cleanly(f)
        except Exception as exc:
            pytest.fail(f"baseline {f.name}: {type(exc).__name__}: {exc}")
    for name in ("alias-bomb.yaml", "alias-bomb-in-rules.yaml", "deep.yaml", "python-tag.yaml"):
        path = str(CORPUS / "baseline" / name)
        with pytest.raises(BaselineError, match=re.escape(name)):
            within(DEADLINE, functools.partial(load_baseline, path))
    missing = tmp_path / "missing.yaml"
    with pytest.raises(BaselineError, match=r"missing\.yaml"):
        load_baseline(str(missing))


def test_baseline_alias_bomb_is_refused_quickly() -> None:
    """Regression: duplicate-key detection walked every expanded path of an alias bomb (9**8
    paths here: minutes), and deep nesting escaped as RecursionError."""
    for name in ("alias-bomb.yaml", "deep.yaml"):
        with pytest.raises(BaselineError) as caught:
            within(5.0, functools.partial(load_baseline, str(CORPUS / "baseline" / name)))
        assert name in str(caught.value)


SHIPPED_LINES = SHIPPED_BASELINE.read_text(encoding="utf-8").splitlines()


@st.composite
def mutated_baselines(draw: st.DrawFn) -> str:
    lines = list(SHIPPED_LINES)
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["delete", "value", "insert", "duplicate", "indent"]))
        if op == "delete":
            del lines[i]
        elif op == "value" and ":" in lines[i]:
            key = lines[i].split(":", 1)[0]
            lines[i] = (
                f"{key}: {draw(st.one_of(st.text(max_size=30), st.integers().map(str), st.sampled_from(['[]', '{}', 'null', '*', '&a x', '*a', '~', '-1', '1e999', '10.0.0.0/33', '0-70000'])))}"
            )
        elif op == "insert":
            lines.insert(i, draw(st.text(max_size=40)))
        elif op == "duplicate":
            lines.insert(i, lines[i])
        else:
            lines[i] = " " * draw(st.integers(0, 6)) + lines[i].lstrip()
    return "\n".join(lines) + "\n"


@profile(200)
@given(text=st.one_of(mutated_baselines(), st.text(max_size=300)))
def test_baseline_fuzzed(tmp_path_factory: pytest.TempPathFactory, text: str) -> None:
    path = tmp_path_factory.mktemp("baseline") / "fuzzed.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    load_cleanly(path)


# ------------------------------------------------------------ NSG JSON for check

NETWORK_FILES = [str(FIXTURES / "compliant" / "arm" / n) for n in ("vnet.json", "nsg-cluster.json", "nics.json")]
GOOD_NSG = json.loads((FIXTURES / "compliant" / "arm" / "nsg-cyclecloud.json").read_text())


def run_check(path: Path, *extra: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()

    def run() -> int:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            return cli_main(["check", str(path), *extra, "--format", "json"])

    code = within(DEADLINE * 3, run)
    return code, out.getvalue(), err.getvalue()


def assert_checked(path: Path, *extra: str) -> int:
    code, out, err = run_check(path, *extra)
    assert code in (0, 1, 2), (path.name, code, err)
    if code == 2:
        assert err.startswith("error: "), (path.name, err[:300])
        assert "Traceback" not in err
    else:
        json.loads(out)
    return code


def test_check_corpus(tmp_path: Path) -> None:
    files = sorted((CORPUS / "nsg").glob("*.json"))
    assert len(files) >= 25
    deep = tmp_path / "generated-deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    many = copy.deepcopy(GOOD_NSG)
    template = many["properties"]["securityRules"][0]
    many["properties"]["securityRules"] = [
        {
            **template,
            "name": f"R{i}",
            "properties": {**template["properties"], "priority": 100 + i, "destinationPortRange": str(1000 + i)},
        }
        for i in range(1000)  # ARM's limit per NSG
    ]
    big = tmp_path / "generated-1000-rules.json"
    big.write_text(json.dumps(many))
    for f in [*files, deep, big]:
        try:
            assert_checked(f)
            assert_checked(f, *NETWORK_FILES)
        except AssertionError:
            raise
        except Exception as exc:
            pytest.fail(f"check {f.name}: {type(exc).__name__}: {exc}")
    assert assert_checked(CORPUS / "nsg" / "not-utf8.json") == 2
    assert assert_checked(deep) == 2
    assert assert_checked(CORPUS / "nsg" / "name-unicode.json") == 2  # U+202E, an emoji and NUL: ARM refuses it
    for name, text in refused_by_arm().items():
        path = tmp_path / f"generated-{name}.json"
        path.write_text(text, encoding="utf-8")
        assert assert_checked(path) == 2, name


def refused_by_arm() -> dict[str, str]:
    """NSG documents ARM would refuse and json.loads alone misreads (issue 11 items 6 and 7): each exits 2."""
    rule = GOOD_NSG["properties"]["securityRules"][0]

    def with_rule(**change: Any) -> str:
        doc = copy.deepcopy(GOOD_NSG)
        doc["properties"]["securityRules"][0] = {
            **rule,
            **change.pop("top", {}),
            "properties": {**rule["properties"], **change},
        }
        return json.dumps(doc)

    good = json.dumps(GOOD_NSG)
    return {
        "port-arabic-indic": with_rule(destinationPortRange="\u0665\u0666\u0667\u0662"),
        "port-fullwidth": with_rule(destinationPortRange="\uff15\uff16\uff17\uff12"),
        "port-padded": with_rule(destinationPortRange=" 5672 "),
        "priority-string-150": with_rule(priority="150"),
        "name-empty": with_rule(top={"name": ""}),
        "name-100000": with_rule(top={"name": "A" * 100_000}),
        "name-escape": with_rule(top={"name": "Allow\x1b]0;pwned\x07"}),
        "priority-5000-digits": good.replace('"priority": 100', '"priority": ' + "1" * 5000, 1),
        "duplicate-access": good.replace('"access": "Allow"', '"access": "Allow", "access": "Deny"', 1),
    }


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


NSG_PATHS = _paths(GOOD_NSG)[1:]


@st.composite
def mutated_nsgs(draw: st.DrawFn) -> Any:
    doc = copy.deepcopy(GOOD_NSG)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(NSG_PATHS))
        parent: Any = doc
        try:
            for part in path[:-1]:
                parent = parent[part]
            if draw(st.booleans()) and isinstance(parent, dict):
                parent.pop(path[-1], None)
            else:
                parent[path[-1]] = draw(JSON)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed the way there
    return doc


@profile(150)
@given(doc=mutated_nsgs(), with_network=st.booleans())
def test_check_fuzzed(tmp_path_factory: pytest.TempPathFactory, doc: Any, with_network: bool) -> None:
    path = tmp_path_factory.mktemp("nsg") / "fuzzed.json"
    path.write_text(json.dumps(doc))
    assert_checked(path, *(NETWORK_FILES if with_network else []))
