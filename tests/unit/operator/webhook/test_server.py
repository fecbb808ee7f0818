"""The webhook's HTTPS listener under requests nobody should send, and across a certificate change."""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from dataflow_operator.operator.webhook import server as server_module
from dataflow_operator.operator.webhook.certificates import FileCertificates
from dataflow_operator.operator.webhook.pki import Policy, WebhookPki, plan
from dataflow_operator.operator.webhook.server import MAX_REVIEW_BYTES, PATH, WebhookServer
from tests.unit.observability.test_http_hostile import HEADERS, METHODS, VERSIONS, compose
from tests.unit.operator.webhook.reviews import body

VALID = {"apiVersion": "dataflow.dataflow.io/v1", "kind": "DataFlow", "metadata": {"name": "orders"},
         "spec": {"source": {"type": "file", "config": {"path": "/in.jsonl"}},
                  "sink": {"type": "file", "config": {"path": "/out.jsonl"}}}}


def issue() -> WebhookPki:
    pki = plan(None, datetime.now(UTC), ["127.0.0.1"], Policy(), published=False)
    assert pki is not None
    return pki


def install(directory: Path, pki: WebhookPki) -> Path:
    (directory / "tls.crt").write_bytes(pki.cert)
    (directory / "tls.key").write_bytes(pki.key)
    ca = directory / "ca.crt"
    ca.write_bytes(pki.ca_bundle)
    return ca


class Listener:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.ca = install(directory, issue())
        self.certificates = FileCertificates(directory, interval=3600)
        self.certificates.sync()
        self.server = WebhookServer("127.0.0.1:0", self.certificates).start()
        self.url = f"https://127.0.0.1:{self.server.port}{PATH}"

    def post(self, data: bytes, ca: Path | None = None) -> requests.Response:
        return requests.post(self.url, data=data, verify=str(ca or self.ca), timeout=10,
                             headers={"Content-Type": "application/json"})

    def raw(self, data: bytes) -> bytes:
        context = ssl.create_default_context(cafile=str(self.ca))
        with socket.create_connection(("127.0.0.1", self.server.port), timeout=10) as plain, \
                context.wrap_socket(plain, server_hostname="127.0.0.1") as sock:
            chunks = []
            # The server may answer and close before a long request is sent whole.
            with contextlib.suppress(ssl.SSLError, ConnectionError):
                sock.sendall(data)
            with contextlib.suppress(ssl.SSLError, ConnectionError):
                while chunk := sock.recv(65536):
                    chunks.append(chunk)
        return b"".join(chunks)


@pytest.fixture(scope="module")
def listener(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Listener]:
    running = Listener(tmp_path_factory.mktemp("tls"))
    yield running
    running.server.stop()


def test_a_review_is_answered_over_tls(listener: Listener) -> None:
    response = listener.post(body(VALID, dry_run=True))
    assert response.status_code == 200 and response.headers["Content-Type"] == "application/json"
    assert response.json()["response"]["allowed"] is True
    invalid = {**VALID, "spec": {**VALID["spec"], "replicas": 0}}
    refused = listener.post(body(invalid)).json()["response"]
    assert refused["allowed"] is False and refused["status"]["details"]["causes"][0]["field"] == "spec.replicas"


@pytest.mark.parametrize(("request_bytes", "status"), [
    (b"POST /validate-dataflow HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nnope!", 400),
    (b"POST /validate-dataflow HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 411),
    (b"POST /validate-dataflow HTTP/1.1\r\nHost: x\r\n\r\n", 411),
    (b"POST /validate-dataflow HTTP/1.1\r\nHost: x\r\nContent-Length: -3\r\n\r\n", 400),
    (f"POST /validate-dataflow HTTP/1.1\r\nHost: x\r\nContent-Length: {MAX_REVIEW_BYTES + 1}\r\n\r\n".encode(), 413),
    (b"GET /validate-dataflow HTTP/1.1\r\nHost: x\r\n\r\n", 405),
    (b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 404),
])
def test_requests_that_are_not_reviews(listener: Listener, request_bytes: bytes, status: int) -> None:
    answer = listener.raw(request_bytes)
    assert answer.startswith(f"HTTP/1.1 {status} ".encode()), answer[:200]
    assert b"Traceback" not in answer


@settings(max_examples=40, deadline=None)
@given(request=st.builds(compose, METHODS, st.sampled_from([b"/validate-dataflow", b"/validate-dataflow?timeout=10s",
                                                             b"/", b"/%ff"]) | st.binary(max_size=30),
                         VERSIONS, HEADERS, st.binary(max_size=64)))
def test_hostile_requests_get_an_answer_and_the_server_lives_on(listener: Listener, request: bytes) -> None:
    answer = listener.raw(request)
    assert b"Traceback" not in answer and b'File "' not in answer, answer[:300]
    assert listener.post(body(VALID)).status_code == 200


def test_a_body_that_never_arrives_is_dropped(listener: Listener, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server_module, "REQUEST_DEADLINE", 0.5)
    monkeypatch.setattr(server_module._Handler, "timeout", 0.3)
    context = ssl.create_default_context(cafile=str(listener.ca))
    with socket.create_connection(("127.0.0.1", listener.server.port), timeout=10) as plain, \
            context.wrap_socket(plain, server_hostname="127.0.0.1") as sock:
        sock.sendall(b"POST /validate-dataflow HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        assert sock.recv(1024) == b""  # closed by the server, with nothing said
    assert listener.post(body(VALID)).status_code == 200


def test_a_silent_or_plaintext_client_does_not_hold_the_server(listener: Listener,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server_module._Handler, "timeout", 0.3)
    with socket.create_connection(("127.0.0.1", listener.server.port), timeout=10) as idle:
        assert idle.recv(1024) == b""  # no handshake within the timeout: closed
    with socket.create_connection(("127.0.0.1", listener.server.port), timeout=10) as plain:
        plain.sendall(b"POST /validate-dataflow HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}")
        answer = plain.recv(1024)
        assert b"HTTP" not in answer and b"Traceback" not in answer
    assert listener.post(body(VALID)).status_code == 200


def test_no_certificate_no_connection(tmp_path: Path) -> None:
    certificates = FileCertificates(tmp_path, interval=3600)
    certificates.sync()  # nothing there yet
    webhook = WebhookServer("127.0.0.1:0", certificates).start()
    try:
        with socket.create_connection(("127.0.0.1", webhook.port), timeout=10) as sock:
            assert sock.recv(1024) == b""
    finally:
        webhook.stop()


def test_a_rotated_certificate_is_served_from_the_next_connection(tmp_path: Path) -> None:
    listener = Listener(tmp_path)
    try:
        old_ca = tmp_path / "old-ca.crt"
        old_ca.write_bytes(listener.ca.read_bytes())
        fresh = issue()
        install(tmp_path, WebhookPki(fresh.ca_bundle, fresh.ca_key, b"half-written", fresh.key))
        listener.certificates.sync()  # a pair that does not load: the old one stays
        assert listener.post(body(VALID), ca=old_ca).status_code == 200
        install(tmp_path, fresh)
        listener.certificates.sync()
        assert listener.post(body(VALID), ca=listener.ca).json()["response"]["allowed"] is True
        with pytest.raises(requests.exceptions.SSLError):
            listener.post(body(VALID), ca=old_ca)
    finally:
        listener.server.stop()


def test_the_answer_is_json_without_secrets(listener: Listener) -> None:
    invalid = {**VALID, "spec": {**VALID["spec"], "checkpointSaveInterval": "postgres://u:s3cr3t-pw@db/x"}}
    text = listener.post(body(invalid)).text
    assert "spec.checkpointSaveInterval" in text and "s3cr3t-pw" not in text
    json.loads(text)


def test_stop_closes_kept_alive_connections(tmp_path: Path) -> None:
    listener = Listener(tmp_path)
    session = requests.Session()
    first = session.post(listener.url, data=body(VALID), verify=str(listener.ca), timeout=10)
    assert first.status_code == 200 and first.headers.get("Connection") != "close"
    listener.server.stop()
    # A stopped webhook answers nothing more, not even on a connection the client kept open.
    with pytest.raises(requests.exceptions.ConnectionError):
        session.post(listener.url, data=body(VALID), verify=str(listener.ca), timeout=10)
