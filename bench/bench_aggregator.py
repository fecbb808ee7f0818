"""/metrics latency of the operator's processor-metrics aggregation, against a naive implementation.

    python bench/bench_aggregator.py [--pods 50,200,500] [--rounds 3]

Fake processor pods are one asyncio server in a child process (so they do not compete with the
aggregator for the GIL) listening on 127.0.0.2, 127.0.0.3, ... (all loopback on Linux), each serving
a fixed realistic body: ~1 000 ``dataflow_*`` samples produced by the processor's own metrics code
(histograms included) plus ~300 lines of ``go_*``/``process_*``/``python_*`` noise, gzip'd when asked.

For each pod count, both implementations run alternately in one process with the same worker count:

* ``aggregator``: ``ProcessorMetricsAggregator`` as the operator runs it;
* ``naive``: every whole body through ``prometheus_client.parser.text_string_to_metric_families``,
  then filter, relabel and merge the parsed families.

Reported per implementation (median of the rounds, run alternately): ``collect`` (the aggregator's own work: fetch,
parse, merge) and ``/metrics`` (collect plus prometheus_client's text exposition, i.e. what the HTTP
handler does before writing the bytes). The ratio naive/aggregator is the result; absolute times on
a shared machine are only context.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, wait
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

from dataflow_operator.operator.aggregator import PodTarget, ProcessorMetricsAggregator
from dataflow_operator.pipeline.metrics import ProcessorMetrics

DATAFLOWS = 10  # distinct bodies: pods of the same DataFlow serve the same label values
WORKERS = 32
TIMEOUT = 120.0  # generous: the naive implementation must finish too, or there is nothing to compare


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


# --- the measurement -------------------------------------------------------------------------------------


def measure(collector: ProcessorMetricsAggregator | NaiveAggregator) -> tuple[float, float, int]:
    """Seconds of one collect() (consumed family by family, as an exposition does) and of one whole
    text exposition, and the number of processor samples."""
    started = time.perf_counter()
    samples = sum(1 for family in collector.collect()
                  if not family.name.startswith("dataflow_aggregator_") for _ in family.samples)
    collect = time.perf_counter() - started
    registry = CollectorRegistry()
    registry.register(collector)
    started = time.perf_counter()
    generate_latest(registry)
    return collect, time.perf_counter() - started, samples


def medians(runs: list[tuple[float, float, int]]) -> tuple[float, float, int]:
    collects, totals, samples = zip(*runs, strict=True)
    return statistics.median(collects), statistics.median(totals), samples[0]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((address(0), 0))
        return int(probe.getsockname()[1])


def main() -> None:
    arguments = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    arguments.add_argument("--pods", default="50,200,500")
    arguments.add_argument("--rounds", type=int, default=3)
    arguments.add_argument("--serve", type=int, help=argparse.SUPPRESS)  # child mode: serve N pods
    arguments.add_argument("--port", type=int, help=argparse.SUPPRESS)
    options = arguments.parse_args()
    if options.serve:
        asyncio.run(serve(options.serve, options.port))
        return

    counts = [int(count) for count in options.pods.split(",")]
    port = free_port()
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(max(counts)), "--port", str(port)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        print(f"{'pods':>5} {'samples':>8} | {'aggregator collect':>18} {'/metrics':>9} | "
              f"{'naive collect':>13} {'/metrics':>9} | {'ratio collect':>13} {'/metrics':>9}")
        for count in counts:
            targets = [PodTarget("bench", f"flow-{index % DATAFLOWS}-pod-{index}", f"flow-{index % DATAFLOWS}",
                                 address(index), port) for index in range(count)]
            ours = ProcessorMetricsAggregator(partial(list, targets), lambda: True, timeout=TIMEOUT,
                                              workers=WORKERS)
            naive = NaiveAggregator(targets)
            try:
                list(ours.collect())  # warm up: connections, caches
                list(naive.collect())
                ours_runs, naive_runs = [], []
                for _ in range(options.rounds):  # alternating, so both see the same machine load
                    ours_runs.append(measure(ours))
                    naive_runs.append(measure(naive))
            finally:
                ours.close()
                naive.close()
            our_collect, our_total, our_samples = medians(ours_runs)
            naive_collect, naive_total, naive_samples = medians(naive_runs)
            assert our_samples == naive_samples, (our_samples, naive_samples)
            print(f"{count:>5} {our_samples:>8} | {our_collect:>17.3f}s {our_total:>8.3f}s | "
                  f"{naive_collect:>12.3f}s {naive_total:>8.3f}s | {naive_collect / our_collect:>12.1f}x "
                  f"{naive_total / our_total:>8.1f}x", flush=True)
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
