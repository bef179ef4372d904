"""HTTPS transport: a threading HTTP/1.1 server on 127.0.0.1 whose connections are wrapped in
TLS on their own thread (so a slow or silent client never blocks the accept loop)."""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import traceback
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from devtools.emulator._errors import ArmError
from devtools.emulator._http import Request, Response

log = logging.getLogger(__name__)

Handler = Callable[[Request], Response]


class _TlsServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], context: ssl.SSLContext, handler: Handler) -> None:
        self.tls = context
        self.app = handler
        super().__init__(address, _RequestHandler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        # Runs on the connection's own thread: do the TLS handshake here, not in accept().
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        request.settimeout(60)
        try:
            tls_sock = self.tls.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            log.debug("TLS handshake with %s failed: %s", client_address, exc)
            return
        try:
            _RequestHandler(tls_sock, client_address, self)
        finally:
            with contextlib.suppress(OSError):
                tls_sock.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("connection error from %s:\n%s", client_address, traceback.format_exc())


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _TlsServer

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.client_address[0], *args)

    def _serve(self) -> None:
        split = urlsplit(self.path)
        body = self._read_body()
        host = self.headers.get("Host", "")
        req = Request(
            method=self.command,
            path=split.path,
            query=dict(parse_qsl(split.query, keep_blank_values=True)),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            client_ip=self.client_address[0],
            url=f"https://{host}{self.path}",
        )
        try:
            resp = self.server.app(req)
        except Exception:
            log.exception("emulator failed on %s %s", self.command, self.path)
            err = ArmError(500, "InternalServerError", "The emulator failed; see its log.")
            resp = Response(500, err.body())
        if resp.drop:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        payload = resp.payload()
        self.send_response(resp.status)
        for name, value in resp.headers.items():
            self.send_header(name, value)
        if resp.body is not None:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if payload and self.command != "HEAD":
            self.wfile.write(payload)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = do_HEAD = _serve


def make_server(host: str, port: int, context: ssl.SSLContext, handler: Handler) -> _TlsServer:
    return _TlsServer((host, port), context, handler)
