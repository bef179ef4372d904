"""Serve recorded real ARM answers to the unchanged ARM adapter.

The recordings (Azure CLI's VCR cassettes, Cloud Custodian's JSON cassettes) are read at run time
from ``../shared/reference/arm-recordings/`` beside the project; they are public test data and are
never copied into the project. A :class:`Replay` is a ``requests`` transport adapter mounted on the
session that azure-core's own ``RequestsTransport`` uses, so everything above the socket (the
SDK's serialisation, azure-core's retry, bearer-token and polling policies, the adapter) runs as in
production. Real ARM cannot run here: this is the one part replaced, and the answers it gives are
ARM's own, byte for byte.

Each step is a scripted expectation: the next request must have the step's method and path
(api-version aside: the recordings were made with older SDKs); anything unscripted fails the test.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3
import yaml
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

RECORDINGS = Path(__file__).resolve().parents[2] / ".." / "shared" / "reference" / "arm-recordings"
#: Headers describing the recorded wire encoding, which the replayed body no longer has.
_WIRE_HEADERS = frozenset({"content-length", "content-encoding", "transfer-encoding", "connection"})


@dataclass(frozen=True)
class Exchange:
    """One side of an HTTP exchange: what was sent, or what was answered."""

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes

    @property
    def path(self) -> str:
        return urlsplit(self.url).path

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class Recorded(Exchange):
    """A recorded answer, with the method and URL of the request it answered."""

    status: int = 200
    source: str = ""


@cache
def _interactions(name: str) -> tuple[dict[str, Any], ...]:
    path = RECORDINGS / name
    text = path.read_text(encoding="utf-8")
    doc = yaml.safe_load(text) if path.suffix == ".yaml" else json.loads(text)
    return tuple(doc["interactions"])


def recorded(name: str, index: int) -> Recorded:
    """Interaction ``index`` of recording ``name`` (e.g. ``"azure-cli/test_network_nic.yaml"``)."""
    it = _interactions(name)[index]
    request, response = it["request"], it["response"]
    raw = response["body"].get("string", response["body"].get("data"))
    if raw is None:
        body = b""
    elif isinstance(raw, str):
        body = raw.encode()
    else:
        body = json.dumps(raw).encode()
    headers = {
        k: (v[0] if isinstance(v, list) else str(v))
        for k, v in (response.get("headers") or {}).items()
        if k.lower() not in _WIRE_HEADERS
    }
    return Recorded(
        source=f"{name}#{index}",
        method=request["method"].upper(),
        url=request["uri"],
        status=int(response["status"]["code"]),
        headers=headers,
        body=body,
    )


@dataclass
class Replay(BaseAdapter):
    """Answers each request with the next scripted recorded answer (see the module docstring)."""

    steps: list[tuple[str, str, Recorded]]  # (method, path expected, answer)
    sent: list[Exchange] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__()

    def session(self) -> requests.Session:
        session = requests.Session()
        session.mount("https://", self)
        session.mount("http://", self)
        return session

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        body = request.body or b""
        sent = Exchange(
            str(request.method),
            str(request.url),
            dict(request.headers),
            body.encode() if isinstance(body, str) else body,
        )
        self.sent.append(sent)
        if not self.steps:
            raise AssertionError(f"unscripted request {sent.method} {sent.url}")
        method, path, answer = self.steps.pop(0)
        if sent.method != method or sent.path.lower() != path.lower():
            raise AssertionError(f"expected {method} {path}, the adapter sent {sent.method} {sent.url}")
        headers = {**answer.headers, "content-length": str(len(answer.body))}
        raw = urllib3.HTTPResponse(
            body=io.BytesIO(answer.body), headers=headers, status=answer.status, preload_content=False
        )
        response = requests.Response()
        response.status_code = answer.status
        response.reason = HTTPStatus(answer.status).phrase
        response.headers = CaseInsensitiveDict(headers)
        response.raw = raw
        response.url = sent.url
        response.request = request
        response.encoding = "utf-8"
        return response

    def close(self) -> None:
        pass
