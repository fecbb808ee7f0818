"""The metrics/probe server under requests nobody should send: it answers or closes, and keeps serving."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import suppress

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter

from dataflow_operator.observability.http import HttpServer, _QuietHandler


@pytest.fixture(scope="module")
def server() -> Iterator[HttpServer]:
    registry = CollectorRegistry()
    Counter("dataflow_test_total", "a counter", registry=registry).inc()
    http = HttpServer("127.0.0.1:0", registry=registry, probes={
        "/healthz": lambda: (True, "ok"),
        "/readyz": lambda: (False, "sink failed: cannot encode '\ud800'"),  # a reason no UTF-8 can hold
    }).start()
    yield http
    http.stop()


def raw_request(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        # The server may answer (400, 414) and close before it has read everything we send.
        with suppress(OSError):
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_a_probe_reason_that_is_not_utf8_is_answered(server: HttpServer) -> None:
    response = requests.get(f"http://127.0.0.1:{server.port}/readyz", timeout=5)
    assert response.status_code == 503 and "\\ud800" in response.text


METHODS = st.sampled_from([b"GET", b"POST", b"HEAD", b"DELETE", b"BREW", b"", b"G\x00T"])
PATHS = st.sampled_from([b"/metrics", b"/healthz", b"/readyz", b"/", b"//metrics", b"/%ff%00", b"/" + b"a" * 70_000,
                         b"/metrics?name[]=x", b"*", b"http://x/metrics"]) | st.binary(max_size=30)
HEADERS = st.lists(st.sampled_from([b"Accept: application/openmetrics-text; version=1.0.0",
                                    b"Accept-Encoding: gzip", b"Accept: \xff\xfe", b"Content-Length: -1",
                                    b"Content-Length: 99999999999", b"Transfer-Encoding: chunked",
                                    b"X-Long: " + b"h" * 70_000, b"no colon here", b"\x00: \x00"]) | st.binary(max_size=20),
                   max_size=5)


VERSIONS = st.sampled_from([b"HTTP/1.1", b"HTTP/1.0", b"HTTP/9", b""])


def compose(method: bytes, path: bytes, version: bytes, headers: list[bytes], body: bytes) -> bytes:
    request_line = b" ".join(part for part in (method, path, version) if part) + b"\r\n"
    return request_line + b"".join(header + b"\r\n" for header in headers) + b"\r\n" + body


@settings(max_examples=60, deadline=None)
@given(request=st.builds(compose, METHODS, PATHS, VERSIONS, HEADERS, st.binary(max_size=64)))
def test_hostile_requests_get_an_answer_and_the_server_lives_on(server: HttpServer, request: bytes) -> None:
    answer = raw_request(server.port, request)
    # Any answer will do (a request line without a version is HTTP/0.9, answered with a bare body),
    # as long as it gives nothing of the process away and the server serves the next request.
    assert b"Traceback" not in answer and b"File \"" not in answer, answer[:300]
    assert requests.get(f"http://127.0.0.1:{server.port}/healthz", timeout=5).status_code == 200


def test_a_silent_connection_is_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_QuietHandler, "timeout", 0.3)
    http = HttpServer("127.0.0.1:0", registry=None, probes={"/healthz": lambda: (True, "ok")}).start()
    try:
        with socket.create_connection(("127.0.0.1", http.port), timeout=10) as idle:
            assert idle.recv(1024) == b""  # closed by the server, not by our own timeout (which raises)
    finally:
        http.stop()
