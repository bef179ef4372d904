"""Transport-neutral request and response objects passed between the server and the handlers."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from devtools.emulator._errors import ArmError


@dataclass
class Request:
    method: str
    path: str  # without the query string
    query: dict[str, str]
    headers: dict[str, str]  # keys lower-cased
    body: bytes = b""
    client_ip: str = "127.0.0.1"
    url: str = ""  # the full URL as the client addressed it

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def json(self) -> Any:
        if not self.body:
            return None
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise ArmError(
                400,
                "InvalidRequestContent",
                f"The request content was invalid and could not be deserialized: '{exc}'.",
            ) from None


@dataclass
class Response:
    status: int
    body: Any = None  # JSON-able, or None for no body
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False  # close the connection instead of answering

    def payload(self) -> bytes:
        if self.body is None:
            return b""
        return json.dumps(self.body, separators=(",", ":")).encode()
