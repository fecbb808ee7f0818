"""A local Sentry ingest endpoint: the DSN target for tests that send events through the real SDK
and transport, keeping every envelope it receives."""

from __future__ import annotations

import gzip
import json
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class SentryIngest(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.envelopes: list[bytes] = []
        self._lock = threading.Lock()

    def dsn(self, project: int = 42) -> str:
        return f"http://publickey@127.0.0.1:{self.server_port}/{project}"

    def received(self, body: bytes) -> None:
        with self._lock:
            self.envelopes.append(body)

    def raw(self) -> bytes:
        """Everything received, decompressed (to search for what must not be there)."""
        with self._lock:
            return b"\n".join(self.envelopes)

    def events(self) -> list[dict[str, Any]]:
        """The event items (errors and messages, not sessions or client reports) of every envelope."""
        found = []
        for line in self.raw().split(b"\n"):
            try:
                item = json.loads(line)
            except ValueError:
                continue
            if isinstance(item, dict) and ("exception" in item or "logentry" in item or "message" in item) \
                    and "event_id" in item:
                found.append(item)
        return found


class _Handler(BaseHTTPRequestHandler):
    server: SentryIngest

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        encoding = self.headers.get("Content-Encoding", "")
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "deflate":
            body = zlib.decompress(body)
        self.server.received(body)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def sentry_ingest() -> Iterator[SentryIngest]:
    server = SentryIngest()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
