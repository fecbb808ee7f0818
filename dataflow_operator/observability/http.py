"""A small threaded HTTP server for ``/metrics`` and probes, shared by operator and processor.

``/metrics`` is prometheus_client's WSGI app over a registry, which negotiates the text format or
OpenMetrics from the ``Accept`` header and gzips when asked, or a WSGI app of the caller's that does the
same (the operator's, which streams its processors' families).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app

from ..contract import METRICS_PORT
from .redaction import scrub

Probe = Callable[[], tuple[bool, str]]


def parse_bind_address(address: str, default_port: int) -> tuple[str, int]:
    """``:9090`` → all interfaces; ``127.0.0.2:9090``; ``[::1]:9090``; ``0`` picks a free port."""
    host, _, port = address.rpartition(":")
    if not _:
        host, port = address, str(default_port)
    host = host.strip("[]") or "0.0.0.0"
    try:
        return host, int(port)
    except ValueError as exc:
        raise ValueError(f"invalid bind address {address!r} (expected HOST:PORT or :PORT)") from exc


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _QuietHandler(WSGIRequestHandler):
    #: Seconds a connection may stay silent: without a timeout, clients that open connections and
    #: send nothing hold one thread each for ever.
    timeout = 10

    def log_message(self, format: str, *args: Any) -> None:
        pass


WsgiApp = Callable[..., Iterable[bytes]]


def _app(metrics_app: WsgiApp | None, probes: dict[str, Probe]) -> WsgiApp:

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics" and metrics_app is not None:
            result: Iterable[bytes] = metrics_app(environ, start_response)
            return result
        probe = probes.get(path)
        if probe is None:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found\n"]
        ok, reason = probe()
        start_response("200 OK" if ok else "503 Service Unavailable", [("Content-Type", "text/plain")])
        # A probe's reason may be a connector's error text: it leaves the process like a log line.
        return [scrub(reason).encode("utf-8", "backslashreplace") + b"\n"]

    return app


class HttpServer:
    def __init__(self, address: str, *, registry: CollectorRegistry | None = None, probes: dict[str, Probe],
                 default_port: int = METRICS_PORT, metrics_app: WsgiApp | None = None) -> None:
        """``/metrics`` is ``metrics_app`` if given, else the registry's (if any)."""
        host, port = parse_bind_address(address, default_port)
        if metrics_app is None and registry is not None:
            metrics_app = make_wsgi_app(registry)
        self._server = make_server(host, port, _app(metrics_app, probes), server_class=_Server,
                                   handler_class=_QuietHandler)
        self.port = self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"http-{port}", daemon=True)

    def start(self) -> HttpServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
