"""The aggregator against real HTTP servers on loopback addresses (127.0.0.x), healthy and broken.

Every server binds its own 127.0.0.x address on a free port, like processor pods with their own IPs.
"""

from __future__ import annotations

import contextlib
import gzip
import socket
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import count
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import Metric
from prometheus_client.exposition import MetricsHandler
from prometheus_client.openmetrics import exposition as om_exposition
from prometheus_client.openmetrics import parser as om_parser
from prometheus_client.parser import text_string_to_metric_families

from dataflow_operator.operator.aggregator import PodTarget, ProcessorMetricsAggregator
from dataflow_operator.operator.status_counts import Counts

TIMEOUT = 1.5
# Time the collect may take beyond its deadline: thread hand-offs and the merge on a loaded 2-core box.
SLACK = 0.75

_addresses = count(20)  # 127.0.0.20, .21, ...; the e2e suites use the low ones


def next_address() -> str:
    return f"127.0.0.{next(_addresses)}"


def processor_registry(pod: str) -> CollectorRegistry:
    registry = CollectorRegistry()
    Counter("dataflow_messages_received", "Messages received", ["namespace", "name", "source_type"],
            registry=registry).labels("ns", "df", "file").inc(5)
    Histogram("dataflow_processing_duration_seconds", "Processing time", ["namespace", "name"],
              buckets=(0.01, 0.1), registry=registry).labels("ns", "df").observe(0.05)
    Counter("process_noise", "not ours", registry=registry).inc()
    Counter("dataflow_marker", "which pod served this", ["served_by"], registry=registry).labels(pod).inc()
    return registry


class Pods:
    """Starts pod-like servers; each returns the PodTarget that points at it."""

    def __init__(self) -> None:
        self._servers: list[ThreadingHTTPServer] = []
        self._sockets: list[socket.socket] = []
        self.stop_event = threading.Event()

    def _serve(self, handler: type[BaseHTTPRequestHandler], name: str) -> PodTarget:
        server = ThreadingHTTPServer((next_address(), 0), handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self._servers.append(server)
        host, port = server.server_address[:2]
        return PodTarget("ns", name, "df", str(host), int(port))

    def healthy(self, name: str) -> PodTarget:
        """A processor as it really serves: prometheus_client's handler (gzip when asked)."""
        return self._serve(MetricsHandler.factory(processor_registry(name)), name)

    def responding(self, name: str, respond: Callable[[BaseHTTPRequestHandler], None]) -> PodTarget:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                # The aggregator hanging up on us is expected for the oversized pods.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    respond(self)

            def log_message(self, *args: Any) -> None:
                pass

        return self._serve(Handler, name)

    def hung(self, name: str) -> PodTarget:
        """Accepts connections (the kernel does, from the backlog) and never answers."""
        listener = socket.create_server((next_address(), 0), backlog=64)
        self._sockets.append(listener)
        host, port = listener.getsockname()[:2]
        return PodTarget("ns", name, "df", host, port)

    def refusing(self, name: str) -> PodTarget:
        with socket.create_server((next_address(), 0)) as probe:  # a port that was free a moment ago
            host, port = probe.getsockname()[:2]
        return PodTarget("ns", name, "df", host, port)

    def close(self) -> None:
        self.stop_event.set()
        for server in self._servers:
            server.shutdown()
            server.server_close()
        for listener in self._sockets:
            listener.close()


@pytest.fixture
def pods() -> Iterator[Pods]:
    servers = Pods()
    yield servers
    servers.close()


def send(handler: BaseHTTPRequestHandler, status: int, body: bytes, headers: dict[str, str] | None = None,
         content_length: bool = True) -> None:
    handler.send_response(status)
    for key, value in (headers or {"Content-Type": "text/plain; version=0.0.4"}).items():
        handler.send_header(key, value)
    if content_length:
        handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def stream(handler: BaseHTTPRequestHandler, chunk: bytes, stop: threading.Event, *, pause: float = 0.0,
           total: int | None = None) -> None:
    """A close-delimited body (HTTP/1.0, no Content-Length): ``chunk`` repeated, ``total`` bytes or until
    the client hangs up, ``pause`` seconds between chunks."""
    handler.send_response(200)
    handler.send_header("Content-Type", "text/plain; version=0.0.4")
    handler.end_headers()
    sent = 0
    while not stop.is_set() and (total is None or sent < total):
        handler.wfile.write(chunk)
        sent += len(chunk)
        if pause:
            time.sleep(pause)


class Scrape:
    def __init__(self, aggregator: ProcessorMetricsAggregator) -> None:
        self.aggregator = aggregator
        started = time.monotonic()
        self.families: list[Metric] = list(aggregator.collect())
        self.seconds = time.monotonic() - started

    def text(self) -> str:
        return generate_latest(self).decode()

    def openmetrics(self) -> str:
        output: bytes = om_exposition.generate_latest(self)  # type: ignore[no-untyped-call]
        return output.decode()

    def collect(self) -> list[Metric]:
        return self.families

    def pods_with_series(self) -> set[str]:
        return {s.labels["pod"] for f in self.families if not f.name.startswith("dataflow_aggregator_")
                for s in f.samples}

    def errors(self) -> dict[tuple[str, str], float]:
        return {(s.labels["pod"], s.labels["reason"]): s.value for f in self.families
                if f.name == "dataflow_aggregator_pod_scrape_errors" for s in f.samples
                if s.name.endswith("_total")}

    def gauge(self, name: str) -> float:
        return next(s.value for f in self.families if f.name == name for s in f.samples)


def aggregator_for(targets: list[PodTarget], **options: Any) -> ProcessorMetricsAggregator:
    return ProcessorMetricsAggregator(lambda: targets, lambda: True, timeout=TIMEOUT, **options)


def test_broken_pods_cost_only_their_own_series_and_are_counted_by_reason(pods: Pods) -> None:
    stop = pods.stop_event
    filler_line = b'dataflow_filler{namespace="ns",name="df",i="' + b"x" * 200 + b'"} 1\n'
    targets = [
        pods.healthy("good-1"),
        pods.hung("hung"),
        pods.responding("garbage", lambda h: send(h, 200, b"dataflow_x{{{ this is not metrics\n")),
        pods.responding("error-500", lambda h: send(h, 500, b"internal error")),
        pods.responding("huge", lambda h: stream(h, filler_line * 256, stop, total=50 << 20)),
        pods.responding("huge-declared", lambda h: send(h, 200, b"", {"Content-Length": str(50 << 20)},
                                                         content_length=False)),
        pods.refusing("refused"),
        pods.healthy("good-2"),
    ]
    aggregator = aggregator_for(targets)
    try:
        scrape = Scrape(aggregator)
    finally:
        aggregator.close()

    assert scrape.seconds < TIMEOUT + SLACK
    assert scrape.pods_with_series() == {"good-1", "good-2"}
    assert scrape.errors() == {
        ("hung", "timeout"): 1.0, ("garbage", "parse_error"): 1.0, ("error-500", "http_status"): 1.0,
        ("huge", "too_large"): 1.0, ("huge-declared", "too_large"): 1.0,
        ("refused", "connection_error"): 1.0}
    assert scrape.gauge("dataflow_aggregator_pods_scraped") == 2.0

    text = scrape.text()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert {s.labels["served_by"]: s.labels["pod"] for s in families["dataflow_marker"].samples} == {
        "good-1": "good-1", "good-2": "good-2"}
    assert text.count("# TYPE dataflow_processing_duration_seconds histogram\n") == 1
    assert not [name for name in families if name.startswith("process_")]
    assert "dataflow_messages_received_created" not in text
    om = {f.name: f for f in om_parser.text_string_to_metric_families(scrape.openmetrics())}
    assert {s.labels["pod"] for s in om["dataflow_messages_received"].samples} == {"good-1", "good-2"}


def test_a_hung_pod_does_not_hold_a_worker_past_the_deadline(pods: Pods) -> None:
    hung, good = pods.hung("hung"), pods.healthy("good")
    targets = [hung]
    aggregator = ProcessorMetricsAggregator(lambda: targets, lambda: True, timeout=TIMEOUT, workers=1)
    try:
        first = Scrape(aggregator)
        targets[:] = [good]
        second = Scrape(aggregator)  # the only worker must be free again by now
    finally:
        aggregator.close()
    assert first.errors() == {("hung", "timeout"): 1.0}
    assert first.seconds < TIMEOUT + SLACK
    assert second.pods_with_series() == {"good"}
    assert second.seconds < TIMEOUT + SLACK


def test_a_pod_that_trickles_its_body_is_cut_off_at_the_deadline(pods: Pods) -> None:
    stop = pods.stop_event
    trickle = pods.responding("trickle", lambda h: stream(h, b"dataflow_a 1\n", stop, pause=0.05))
    aggregator = aggregator_for([trickle, pods.healthy("good")])
    try:
        scrape = Scrape(aggregator)
    finally:
        aggregator.close()
    assert scrape.seconds < TIMEOUT + SLACK
    assert scrape.errors() == {("trickle", "timeout"): 1.0}
    assert scrape.pods_with_series() == {"good"}


def test_late_pods_beyond_the_workers_are_timeouts_not_a_late_scrape(pods: Pods) -> None:
    targets = [pods.hung(f"hung-{i}") for i in range(3)] + [pods.healthy("good")]
    aggregator = aggregator_for(targets, workers=3)  # "good" waits behind three hung pods
    try:
        scrape = Scrape(aggregator)
    finally:
        aggregator.close()
    assert scrape.seconds < TIMEOUT + SLACK
    assert scrape.errors() == {(f"hung-{i}", "timeout"): 1.0 for i in range(3)} | {("good", "timeout"): 1.0}
    assert scrape.gauge("dataflow_aggregator_pods_scraped") == 0.0


def test_gzip_is_used_and_a_gzip_bomb_is_too_large(pods: Pods) -> None:
    seen: list[str] = []
    body = generate_latest(processor_registry("zipped"))
    bomb = gzip.compress(b"dataflow_a 1\n" * 2_000_000)  # 26 MB inflated, ~50 kB on the wire

    def zipped(handler: BaseHTTPRequestHandler) -> None:
        seen.append(handler.headers.get("Accept-Encoding", "") + "|" + handler.headers.get("Accept", ""))
        send(handler, 200, gzip.compress(body), {"Content-Type": "text/plain; version=0.0.4",
                                                "Content-Encoding": "gzip"})

    targets = [pods.responding("zipped", zipped), pods.responding("bomb", lambda h: send(
        h, 200, bomb, {"Content-Type": "text/plain", "Content-Encoding": "gzip"}))]
    aggregator = aggregator_for(targets, max_bytes=1 << 20)
    try:
        scrape = Scrape(aggregator)
    finally:
        aggregator.close()
    assert seen and "gzip" in seen[0].split("|")[0] and "text/plain;version=0.0.4" in seen[0].split("|")[1]
    assert scrape.pods_with_series() == {"zipped"}
    assert scrape.errors() == {("bomb", "too_large"): 1.0}


def test_an_openmetrics_answer_is_read_as_openmetrics(pods: Pods) -> None:
    body = om_exposition.generate_latest(processor_registry("om"))  # type: ignore[no-untyped-call]
    target = pods.responding("om", lambda h: send(
        h, 200, body, {"Content-Type": "application/openmetrics-text; version=1.0.0; charset=utf-8"}))
    aggregator = aggregator_for([target])
    try:
        scrape = Scrape(aggregator)
    finally:
        aggregator.close()
    assert scrape.errors() == {}
    families = {f.name: f for f in text_string_to_metric_families(scrape.text())}
    assert [s.value for s in families["dataflow_messages_received"].samples] == [5.0]
    assert "dataflow_messages_received_created" not in families


def test_error_series_of_pods_that_are_gone_are_dropped(pods: Pods) -> None:
    broken = pods.responding("broken", lambda h: send(h, 503, b""))
    targets = [broken]
    aggregator = aggregator_for(targets)
    try:
        assert Scrape(aggregator).errors() == {("broken", "http_status"): 1.0}
        assert Scrape(aggregator).errors() == {("broken", "http_status"): 2.0}
        targets.clear()
        assert Scrape(aggregator).errors() == {}
    finally:
        aggregator.close()


def test_leadership_switches_processor_series_on_and_off(pods: Pods) -> None:
    leader = [False]
    target = pods.healthy("good")
    aggregator = ProcessorMetricsAggregator(lambda: [target], lambda: leader[0], timeout=TIMEOUT)
    try:
        follower = Scrape(aggregator)
        leader[0] = True
        leading = Scrape(aggregator)
    finally:
        aggregator.close()
    assert follower.pods_with_series() == set()
    assert follower.gauge("dataflow_aggregator_pods_scraped") == 0.0
    assert leading.pods_with_series() == {"good"}


def test_a_pod_serving_more_than_the_scrape_budget_is_left_out_and_the_scrape_stays_within_it(pods: Pods) -> None:
    budget = 4 << 20
    filler_line = b'dataflow_filler{namespace="ns",name="df",i="' + b"x" * 200 + b'"} 1\n'
    huge = pods.responding("huge", lambda h: stream(h, filler_line * 256, pods.stop_event, total=64 << 20))
    targets = [pods.healthy("good-1"), huge, pods.healthy("good-2")]
    # The size limit per pod would let 128 MB through: only the budget stops the huge pod.
    aggregator = aggregator_for(targets, max_bytes=128 << 20, budget_bytes=budget)
    tracemalloc.start()
    try:
        exposition = aggregator.expose()
        try:
            _, peak = tracemalloc.get_traced_memory()
            output = b"".join(exposition.pieces(openmetrics=False))
            health = {metric.name: metric for metric in exposition.health}
        finally:
            exposition.close()
    finally:
        tracemalloc.stop()
        aggregator.close()

    errors = {(s.labels["pod"], s.labels["reason"]): s.value
              for s in health["dataflow_aggregator_pod_scrape_errors"].samples if s.name.endswith("_total")}
    assert errors == {("huge", "too_large"): 1.0}
    assert health["dataflow_aggregator_pods_scraped"].samples[0].value == 2.0
    assert b'pod="good-1"' in output and b'pod="good-2"' in output and b"dataflow_filler" not in output
    # Everything the scrape allocated, the huge pod's reads included, stayed within the budget (and
    # the socket buffers a read needs): without it, this scrape would have held 64 MB.
    assert peak < budget + (1 << 20), peak


def test_scrapes_take_turns_so_two_never_hold_a_budget_each(pods: Pods) -> None:
    aggregator = aggregator_for([pods.healthy("good")])
    try:
        first = aggregator.expose()
        started = time.monotonic()
        second_done = threading.Event()

        def second_scrape() -> None:
            aggregator.expose().close()
            second_done.set()

        threading.Thread(target=second_scrape, daemon=True).start()
        assert not second_done.wait(0.3)  # waits for the first, still being written out
        first.close()
        assert second_done.wait(TIMEOUT)
        assert time.monotonic() - started < TIMEOUT + SLACK
    finally:
        aggregator.close()


def test_a_pod_that_keeps_connections_alive_is_scraped_over_one_connection(pods: Pods) -> None:
    body = gzip.compress(generate_latest(processor_registry("kept")))
    connections: list[Any] = []

    class KeepAlive(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            connections.append(self.client_address)

        def do_GET(self) -> None:
            send(self, 200, body, {"Content-Type": "text/plain; version=0.0.4", "Content-Encoding": "gzip"})

        def log_message(self, *args: Any) -> None:
            pass

    target = pods._serve(KeepAlive, "kept")
    aggregator = aggregator_for([target])
    try:
        scrapes = [Scrape(aggregator) for _ in range(3)]
    finally:
        aggregator.close()
    assert [scrape.pods_with_series() for scrape in scrapes] == [{"kept"}] * 3
    assert len(connections) == 1


def test_every_kind_of_scrape_tells_the_status_counts_what_each_pod_counted(pods: Pods) -> None:
    """The /metrics request path (expose), the Collector path and a refresh with no request all hand
    the observer each answering pod's counts, and every pod that was asked."""
    targets = [pods.healthy("good-1"), pods.refusing("gone-1")]
    seen: list[tuple[list[tuple[str, Counts]], list[str]]] = []

    def observe(scraped: list[tuple[PodTarget, Counts]], asked: list[PodTarget]) -> None:
        seen.append(([(target.name, counts) for target, counts in scraped], [target.name for target in asked]))

    aggregator = aggregator_for(targets, on_scraped=observe)
    try:
        aggregator.expose().close()
        list(aggregator.collect())
        aggregator.refresh()
    finally:
        aggregator.close()
    assert seen == [([("good-1", Counts(processed=5, errors=0))], ["good-1", "gone-1"])] * 3
