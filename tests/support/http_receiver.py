"""A real HTTP server on 127.0.0.1 standing in for a Teams Workflows webhook."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Post:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class ReceiverState:
    posts: list[Post] = field(default_factory=list)
    #: HTTP status to answer instead of 202 (None: accept); ``fail_times`` limits it (None: always).
    fail_status: int | None = None
    fail_times: int | None = None
    #: Retry-After (seconds) sent with the failures; ``refused`` counts the posts answered with one.
    retry_after: float | None = None
    refused: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class WebhookReceiver:
    """Records every POST; :meth:`fail` switches it to answer errors (all, or the next N)."""

    def __init__(self) -> None:
        self.state = ReceiverState()
        state = self.state

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                with state.lock:
                    failing = state.fail_status is not None and (state.fail_times is None or state.fail_times > 0)
                    if failing and state.fail_times is not None:
                        state.fail_times -= 1
                    if not failing:
                        state.posts.append(Post(self.path, dict(self.headers.items()), body))
                    else:
                        state.refused += 1
                    retry_after = state.retry_after if failing else None
                status = state.fail_status if failing and state.fail_status is not None else 202
                payload = b'{"error": "test receiver told to fail"}' if failing else b""
                self.send_response(status)
                if retry_after is not None:
                    self.send_header("Retry-After", f"{retry_after:g}")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def url(self, signature: str = "s3cr3t-SIGNATURE-value") -> str:
        """A URL shaped like a Workflows trigger URL, with its signature in the query."""
        return (
            f"http://127.0.0.1:{self.port}/workflows/0123abcd/triggers/manual/paths/invoke"
            f"?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig={signature}"
        )

    @property
    def posts(self) -> list[Post]:
        with self.state.lock:
            return list(self.state.posts)

    def fail(self, status: int = 503, times: int | None = None, retry_after: float | None = None) -> None:
        with self.state.lock:
            self.state.fail_status = status
            self.state.fail_times = times
            self.state.retry_after = retry_after

    def recover(self) -> None:
        with self.state.lock:
            self.state.fail_status = None
            self.state.fail_times = None

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
