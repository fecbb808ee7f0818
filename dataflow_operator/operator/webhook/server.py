"""The webhook's HTTPS listener.

Built on ``http.server`` rather than the WSGI server of ``/metrics`` because a webhook must control
the body it reads: the API server sends one JSON AdmissionReview with a Content-Length, and anything
else is refused before it costs memory or a thread for long.

- TLS: each accepted connection is wrapped with the context its :class:`TlsSource` holds *now*,
  so a rotated certificate is served from the next connection on, without a restart. The handshake
  runs in the connection's thread, under the same timeout as the request.
- Bounds: at most :data:`MAX_REVIEW_BYTES` of body (an AdmissionReview carries the object and the
  old object, each at most the API server's 1.5 MiB, plus metadata), read within
  :data:`REQUEST_DEADLINE` seconds in total (the API server gives up after at most 30), with at
  most :data:`MAX_CONNECTIONS` connections served at once; more are closed at once.
- Answers: 200 with an AdmissionReview for every request the API server could send; 400/404/405/
  411/413 with a one-line text otherwise. Never a traceback: failed handshakes and broken
  connections are logged at DEBUG and the server goes on.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final, Protocol

from ...observability.http import parse_bind_address
from .review import BadReviewError, answer

log = logging.getLogger(__name__)

PATH: Final = "/validate-dataflow"
MAX_REVIEW_BYTES: Final = 6 * 1024 * 1024
REQUEST_DEADLINE: Final = 30.0
IDLE_TIMEOUT: Final = 10.0
MAX_CONNECTIONS: Final = 64
DEFAULT_PORT: Final = 9443
_CHUNK = 64 * 1024


class TlsSource(Protocol):
    """Where the listener takes its certificate from; None until there is one."""

    def context(self) -> ssl.SSLContext | None: ...


class RequestTooSlowError(Exception):
    pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the API server reuses connections
    timeout = IDLE_TIMEOUT
    server: WebhookServer

    def setup(self) -> None:
        self.request.settimeout(self.timeout)
        if isinstance(self.request, ssl.SSLSocket):
            self.request.do_handshake()
        super().setup()

    def do_POST(self) -> None:
        if self.path.split("?", 1)[0] != PATH:
            self._text(404, "not found")
            return
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self._text(411, "a Content-Length is required")
            return
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self._text(411, "a Content-Length is required")
            return
        if length < 0:
            self._text(400, "invalid Content-Length")
            return
        if length > MAX_REVIEW_BYTES:
            self._text(413, f"body larger than {MAX_REVIEW_BYTES} bytes")
            return
        try:
            body = self._read(length)
        except RequestTooSlowError:
            self.close_connection = True
            return
        try:
            review = answer(body)
        except BadReviewError as exc:
            self._text(400, str(exc))
            return
        except Exception:  # never expected: the fuzz tests assert it is not reached
            log.exception("webhook review failed")
            self._text(500, "internal error")
            return
        response = review["response"]
        log.debug("admission review", extra={"uid": response["uid"], "allowed": response["allowed"],
                                             "warnings": len(response.get("warnings", ()))})
        self._send(200, "application/json", json.dumps(review).encode())

    def _read(self, length: int) -> bytes:
        """``length`` bytes, within the request deadline, however slowly they trickle in."""
        deadline = time.monotonic() + REQUEST_DEADLINE
        chunks: list[bytes] = []
        remaining = length
        while remaining:
            if time.monotonic() > deadline:
                raise RequestTooSlowError
            chunk = self.rfile.read1(min(remaining, _CHUNK))
            if not chunk:
                raise RequestTooSlowError  # closed before the announced length
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)

    def do_GET(self) -> None:
        self._text(405 if self.path.split("?", 1)[0] == PATH else 404, "method not allowed")

    do_PUT = do_DELETE = do_PATCH = do_HEAD = do_GET  # noqa: N815  (http.server's naming)

    def _text(self, status: int, text: str) -> None:
        self.close_connection = True  # an unread body may still be in the pipe
        self._send(status, "text/plain; charset=utf-8", text.encode("utf-8", "backslashreplace") + b"\n")

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # The base class answers malformed request lines with an HTML page quoting the input.
        self._text(code, message or "bad request")

    def log_message(self, format: str, *args: Any) -> None:
        pass


class WebhookServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: str, tls: TlsSource) -> None:
        host, port = parse_bind_address(address, DEFAULT_PORT)
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        super().__init__((host, port), _Handler)
        self.tls = tls
        self.port: int = self.server_address[1]
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        # Open connections, closed by stop(): the API server keeps connections alive, and a stopped
        # webhook must not go on answering on them.
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        self._thread = threading.Thread(target=self.serve_forever, name=f"webhook-{self.port}", daemon=True)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = super().get_request()
        context = self.tls.context()
        if context is None:
            sock.close()
            raise OSError("no serving certificate yet")  # socketserver drops the connection quietly
        return context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), address

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._open_lock:
                self._open.discard(request)
            self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Failed handshakes, resets and timeouts: the peer's problem, not a traceback on stderr.
        log.debug("webhook connection failed", exc_info=True)

    def start(self) -> WebhookServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        with self._open_lock:
            connections = list(self._open)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
