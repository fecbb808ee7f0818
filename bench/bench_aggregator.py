"""The operator's /metrics at 200, 500 and 1 000 processor pods, through its real HTTP server, against
the naive approach, side by side in one run.

    python bench/bench_aggregator.py [--pods 200,500,1000] [--rounds 3]

Fake processor pods are one asyncio server in a child process listening on 127.0.0.2, 127.0.0.3, ...
(all loopback on Linux), each serving a fixed realistic body: ~1 000 ``dataflow_*`` samples produced by
the processor's own metrics code (histograms included) plus ~300 lines of ``go_*``/``process_*``/
``python_*`` noise, gzip'd when asked.

Each operator is a child process of its own, so its peak RSS is its own (``ru_maxrss``, which includes
start-up), serving /metrics with ``HttpServer`` exactly as ``dataflow-operator run`` does:

* ``ours``: the operator's registry and ``ProcessorMetricsAggregator`` behind ``operator_metrics_app``;
* ``naive``: every whole body through ``prometheus_client.parser.text_string_to_metric_families`` into
  metric objects (filtered, relabelled, merged) in a Collector, exposed by prometheus_client's own WSGI
  app (``generate_latest``, then gzip).

Each round requests /metrics from both, one after the other, with Prometheus 3's headers (OpenMetrics
preferred, ``Accept-Encoding: gzip``) and with the plain text format without gzip, and times the whole
response to its last byte (the naive one only in the first ``--naive-rounds`` rounds: it takes minutes
at 1 000 pods). Every response is checked: same processor sample count from both. Reported:
medians per format, the operator's peak RSS and CPU seconds per request (what sizes its CPU limit),
and naive/ours; the last line is the largest pod count's.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import resource
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script, installed or not

import requests
from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client.core import Metric
from prometheus_client.gc_collector import GCCollector
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.samples import Sample
from requests.adapters import HTTPAdapter

from dataflow_operator.observability.http import HttpServer
from dataflow_operator.operator.aggregator import PodTarget, ProcessorMetricsAggregator
from dataflow_operator.operator.metrics import OperatorMetrics
from dataflow_operator.operator.metrics_endpoint import operator_metrics_app
from dataflow_operator.pipeline.metrics import ProcessorMetrics

DATAFLOWS = 10  # distinct bodies: pods of the same DataFlow serve the same label values
WORKERS = 32
TIMEOUT = 300.0  # generous: the naive implementation must finish too, or there is nothing to compare
PROMETHEUS_3 = {  # what Prometheus 3 sends by default
    "Accept": "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,"
              "application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;"
              "q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1",
    "Accept-Encoding": "gzip",
}
PLAIN_TEXT = {"Accept": "text/plain;version=0.0.4", "Accept-Encoding": "identity"}
FORMATS = {"openmetrics+gzip": PROMETHEUS_3, "text": PLAIN_TEXT}


# --- the fake pods ---------------------------------------------------------------------------------------


def processor_body(dataflow: str, samples: int = 1000) -> bytes:
    """What a processor with a few connectors, transformers, routes and stages exposes."""
    registry = CollectorRegistry()
    metrics = ProcessorMetrics("bench", dataflow, registry=registry)
    for stage in ("read", "transformation", "write", "sink_write", "error_sink_write",
                  "transformer_0", "transformer_1", "transformer_2"):
        metrics.stage_duration(stage).observe(0.003)
    for stage in ("input", "output", "transformer_0_input", "transformer_0_output"):
        metrics.message_size(stage).observe(900)
    for before, after in (("read", "transformation"), ("transformation", "write"), ("write", "sink_write")):
        metrics.stage_latency(before, after).observe(0.001)
    for queue in ("routing", "output", "default"):
        metrics.queue_wait(queue).observe(0.002)
        metrics.queue_size(queue).set(3)
    for index, kind in enumerate(("filter", "mask", "flatten")):
        metrics.transformer_durations.labels(kind, str(index)).observe(0.0002)
        for family in (metrics.transformer_executions, metrics.transformer_messages_in,
                       metrics.transformer_messages_out):
            family.labels(kind, str(index)).inc(100)
    source, sink = metrics.connector("kafka", "source"), metrics.connector("postgresql", "sink")
    source.initialise_errors(("read", "commit"))
    sink.initialise_errors(("write",))
    source.read.inc(1000)
    sink.written("default").inc(990)
    for operation in ("transform", "write", "sink_write", "error_sink_write"):
        for status in ("success", "error", "cancelled"):
            metrics.operation(operation, status).inc(10)
    metrics.processing_duration.observe(0.01)
    metrics.end_to_end_latency.observe(0.05)
    route = 0
    while True:  # pad with per-route error series up to the wanted sample count
        body = generate_latest(registry)
        if sum(1 for line in body.splitlines() if line.startswith(b"dataflow_")) >= samples:
            return body
        for error_type in ("timeout", "invalid_data", "transient", "unknown"):
            metrics.stage_error(f"route_{route}", error_type)
        route += 1


def noise_body(lines: int = 300) -> bytes:
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    GCCollector(registry=registry)
    PlatformCollector(registry=registry)
    filler = Gauge("go_memstats_by_size_class", "noise", ["size"], registry=registry)
    size = 0
    while generate_latest(registry).count(b"\n") < lines:
        filler.labels(str(size)).set(size)
        size += 8
    return generate_latest(registry)


def address(index: int) -> str:
    index += 2  # 127.0.0.2 upwards
    return f"127.0.{index // 256}.{index % 256}"


async def serve(pods: int, port: int) -> None:
    noise = noise_body()
    plain = [noise + processor_body(f"flow-{flow}") for flow in range(DATAFLOWS)]
    zipped = [gzip.compress(body, 6) for body in plain]

    def responder(flow: int) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
        async def respond(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while True:  # keep-alive: one connection serves every scrape of this pod
                    request = await reader.readuntil(b"\r\n\r\n")
                    gzipped = b"gzip" in request.lower()
                    body = zipped[flow] if gzipped else plain[flow]
                    encoding = b"Content-Encoding: gzip\r\n" if gzipped else b""
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
                                 + encoding + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
                    await writer.drain()
            except (asyncio.IncompleteReadError, ConnectionError):
                writer.close()
        return respond

    servers = [await asyncio.start_server(responder(index % DATAFLOWS), address(index), port, backlog=256)
               for index in range(pods)]
    print("ready", flush=True)
    await asyncio.gather(*(server.serve_forever() for server in servers))


# --- the naive implementation ----------------------------------------------------------------------------


class NaiveAggregator:
    """Same fetching and concurrency, but the whole body parsed by prometheus_client's parser."""

    def __init__(self, targets: list[PodTarget]) -> None:
        self.targets = targets
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.mount("http://", HTTPAdapter(pool_connections=1024, pool_maxsize=WORKERS))
        self.executor = ThreadPoolExecutor(WORKERS)

    def _scrape(self, target: PodTarget) -> list[Metric]:
        response = self.session.get(target.url, timeout=TIMEOUT, headers={"Accept-Encoding": "gzip"})
        response.raise_for_status()
        families = []
        for family in text_string_to_metric_families(response.text):
            if not family.name.startswith("dataflow_"):
                continue
            family.samples = [Sample(s.name, {**s.labels, "pod": target.name}, s.value, s.timestamp)
                              for s in family.samples if not s.name.endswith("_created")]
            families.append(family)
        return families

    def collect(self) -> Iterator[Metric]:
        futures = [self.executor.submit(self._scrape, target) for target in self.targets]
        wait(futures, timeout=TIMEOUT)
        merged: dict[str, Metric] = {}
        for future in futures:
            for family in future.result():
                existing = merged.setdefault(family.name, Metric(family.name, family.documentation, family.type))
                existing.samples.extend(family.samples)
        yield from merged.values()

    def close(self) -> None:
        self.executor.shutdown()
        self.session.close()


# --- the operators ---------------------------------------------------------------------------------------


def targets(pods: int, port: int) -> list[PodTarget]:
    return [PodTarget("bench", f"flow-{index % DATAFLOWS}-pod-{index}", f"flow-{index % DATAFLOWS}",
                      address(index), port) for index in range(pods)]


def run_operator(kind: str, pods: int, pod_port: int) -> None:
    """Child mode: serve /metrics over ``pods`` fake pods until stdin closes; ``usage`` on stdin
    prints the peak RSS in MiB and the CPU seconds used so far."""
    scraped = targets(pods, pod_port)
    registry = CollectorRegistry()
    if kind == "ours":
        OperatorMetrics(registry)
        aggregator = ProcessorMetricsAggregator(partial(list, scraped), lambda: True, timeout=TIMEOUT,
                                                workers=WORKERS)
        server = HttpServer("127.0.0.1:0", probes={}, metrics_app=operator_metrics_app(registry, aggregator))
    else:
        registry.register(NaiveAggregator(scraped))
        server = HttpServer("127.0.0.1:0", registry=registry, probes={})
    server.start()
    print("ready", server.port, flush=True)
    for command in sys.stdin:
        if command.strip() == "usage":
            usage = resource.getrusage(resource.RUSAGE_SELF)
            print(usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime, flush=True)
    server.stop()


class Operator:
    def __init__(self, kind: str, pods: int, pod_port: int) -> None:
        self.kind = kind
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--operator", kind, "--pods", str(pods), "--port", str(pod_port)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None and self.process.stdin is not None
        ready, port = self.process.stdout.readline().split()
        assert ready == "ready"
        self.url = f"http://127.0.0.1:{port}/metrics"

    def scrape(self, headers: dict[str, str]) -> tuple[float, int]:
        """Seconds to the last byte of one /metrics response, and its processor sample count (the
        operator's own samples carry no pod label)."""
        started = time.perf_counter()
        with requests.get(self.url, headers=headers, stream=True, timeout=TIMEOUT) as response:
            response.raise_for_status()
            body = response.raw.read(decode_content=False)
        seconds = time.perf_counter() - started
        if response.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        samples = sum(1 for line in body.split(b"\n") if line.startswith(b"dataflow_") and b'pod="' in line
                      and not line.startswith(b"dataflow_aggregator_"))
        return seconds, samples

    def usage(self) -> tuple[float, float]:
        """Peak RSS in MiB, and CPU seconds so far."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write("usage\n")
        self.process.stdin.flush()
        rss, cpu = self.process.stdout.readline().split()
        return float(rss), float(cpu)

    def stop(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=60)


# --- the measurement -------------------------------------------------------------------------------------


@dataclass
class Result:
    seconds: dict[str, list[float]]
    samples: int = 0
    peak_rss_mib: float = 0.0
    cpu_per_request: float = 0.0

    def median(self, form: str) -> float:
        return statistics.median(self.seconds[form])


def measure(operators: dict[str, Operator], rounds: int, naive_rounds: int) -> dict[str, Result]:
    results = {kind: Result({form: [] for form in FORMATS}) for kind in operators}
    operators["ours"].scrape(PROMETHEUS_3)  # warm up: connections, the families' expressions
    cpu_before = {kind: operator.usage()[1] for kind, operator in operators.items()}
    for number in range(rounds):  # alternating, so both see the same machine load
        for form, headers in FORMATS.items():
            for kind, operator in operators.items():
                if kind == "naive" and number >= naive_rounds:
                    continue
                seconds, samples = operator.scrape(headers)
                results[kind].seconds[form].append(seconds)
                assert results[kind].samples in (0, samples), (kind, form, samples)
                results[kind].samples = samples
    assert results["ours"].samples == results["naive"].samples, {k: r.samples for k, r in results.items()}
    for kind, operator in operators.items():
        results[kind].peak_rss_mib, cpu = operator.usage()
        requests_made = sum(len(seconds) for seconds in results[kind].seconds.values())
        results[kind].cpu_per_request = (cpu - cpu_before[kind]) / requests_made
    return results


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((address(0), 0))
        return int(probe.getsockname()[1])


def main() -> None:
    arguments = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    arguments.add_argument("--pods", default="200,500,1000")
    arguments.add_argument("--rounds", type=int, default=3)
    arguments.add_argument("--naive-rounds", type=int, default=1, help="the naive one takes minutes at 1 000 pods")
    arguments.add_argument("--serve", type=int, help=argparse.SUPPRESS)  # child mode: serve N pods
    arguments.add_argument("--operator", choices=("ours", "naive"), help=argparse.SUPPRESS)  # child mode
    arguments.add_argument("--port", type=int, help=argparse.SUPPRESS)
    options = arguments.parse_args()
    if options.serve:
        asyncio.run(serve(options.serve, options.port))
        return
    if options.operator:
        run_operator(options.operator, int(options.pods), options.port)
        return

    counts = [int(count) for count in options.pods.split(",")]
    port = free_port()
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(max(counts)), "--port", str(port)],
                              stdout=subprocess.PIPE, text=True)
    last = ""
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        print(f"{'pods':>5} {'samples':>8} | {'ours om+gzip':>12} {'text':>7} {'peak RSS':>9} {'CPU/req':>8} | "
              f"{'naive om+gzip':>13} {'text':>7} {'peak RSS':>9} | {'ratio om+gzip':>13} {'text':>6}")
        for count in counts:
            operators = {kind: Operator(kind, count, port) for kind in ("ours", "naive")}
            try:
                results = measure(operators, options.rounds, options.naive_rounds)
            finally:
                for operator in operators.values():
                    operator.stop()
            ours, naive = results["ours"], results["naive"]
            ratios = {form: naive.median(form) / ours.median(form) for form in FORMATS}
            print(f"{count:>5} {ours.samples:>8} | {ours.median('openmetrics+gzip'):>11.2f}s "
                  f"{ours.median('text'):>6.2f}s {ours.peak_rss_mib:>6.0f}MiB {ours.cpu_per_request:>7.2f}s | "
                  f"{naive.median('openmetrics+gzip'):>12.2f}s {naive.median('text'):>6.2f}s "
                  f"{naive.peak_rss_mib:>6.0f}MiB | {ratios['openmetrics+gzip']:>12.1f}x {ratios['text']:>5.1f}x",
                  flush=True)
            last = (f"aggregator pods={count} samples={ours.samples} "
                    f"http_seconds={ours.median('openmetrics+gzip'):.2f} peak_rss_mib={ours.peak_rss_mib:.0f} "
                    f"naive_ratio={ratios['openmetrics+gzip']:.1f}")
    finally:
        server.terminate()
        server.wait()
    print(last)


if __name__ == "__main__":
    main()
