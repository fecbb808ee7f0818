"""Every ``dataflow_*`` processor metric, defined once, with the contract's names, labels and buckets.

The children are small exact accumulators behind one lock each, exposed through a
``prometheus_client`` Collector (so exposition, text and OpenMetrics, is the library's). They exist
because the hot path observes ~20 values per message: prometheus_client's own children cost 2-3x
more per observation and cannot record one value ``n`` times, which chunked queues need.
``ProcessorMetrics(enabled=False)`` hands out no-op children; the benchmark uses it to price metrics.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry

from .errors import ERROR_TYPES


def exponential_buckets(start: float, factor: float, count: int) -> tuple[float, ...]:
    """Prometheus ``ExponentialBuckets``: ``count`` upper bounds, ``start * factor**i``."""
    return tuple(start * factor**i for i in range(count))


PROCESSING_BUCKETS = exponential_buckets(0.001, 2, 10)
TRANSFORMER_BUCKETS = exponential_buckets(0.0001, 2, 12)
STAGE_BUCKETS = exponential_buckets(0.0001, 2, 14)
SIZE_BUCKETS = exponential_buckets(64, 2, 16)
LATENCY_BUCKETS = exponential_buckets(0.0001, 2, 12)
E2E_BUCKETS = exponential_buckets(0.001, 2, 12)
QUEUE_WAIT_BUCKETS = exponential_buckets(0.0001, 2, 12)


class CounterChild:
    __slots__ = ("_lock", "value")

    def __init__(self) -> None:
        self.value = 0.0
        self._lock = threading.Lock()

    def inc(self, amount: float = 1.0) -> None:
        with self._lock:
            self.value += amount


class GaugeChild(CounterChild):
    __slots__ = ()

    def set(self, value: float) -> None:
        self.value = float(value)

    def dec(self, amount: float = 1.0) -> None:
        self.inc(-amount)


class HistogramChild:
    __slots__ = ("_bounds", "_lock", "counts", "sum")

    def __init__(self, bounds: Sequence[float]) -> None:
        self._bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # last slot is +Inf
        self.sum = 0.0
        self._lock = threading.Lock()

    def observe(self, value: float, count: int = 1) -> None:
        """Record ``value`` ``count`` times (one queue wait shared by a chunk of messages)."""
        index = bisect.bisect_left(self._bounds, value)
        with self._lock:
            self.counts[index] += count
            self.sum += value * count

    def observe_many(self, values: list[float]) -> None:
        """Record every value in ``values`` under one lock (a chunk's worth at a time)."""
        if not values:
            return
        bounds = self._bounds
        indexes = [bisect.bisect_left(bounds, value) for value in values]
        total = sum(values)
        with self._lock:
            counts = self.counts
            for index in indexes:
                counts[index] += 1
            self.sum += total

    def snapshot(self) -> tuple[list[int], float]:
        with self._lock:
            return list(self.counts), self.sum


class _NullChild:
    """Accepts every update and keeps nothing: metrics switched off."""

    __slots__ = ()

    def inc(self, amount: float = 1.0) -> None:
        pass

    def set(self, value: float) -> None:
        pass

    def dec(self, amount: float = 1.0) -> None:
        pass

    def observe(self, value: float, count: int = 1) -> None:
        pass

    def observe_many(self, values: list[float]) -> None:
        pass


_NULL = _NullChild()


class _Family:
    """One metric family: name, help, type, label names and (for histograms) buckets."""

    def __init__(self, name: str, documentation: str, kind: str, labels: Sequence[str],
                 buckets: Sequence[float] = ()) -> None:
        self.name = name
        self.documentation = documentation
        self.kind = kind
        self.labels = tuple(labels)
        self.buckets = tuple(buckets)
        self.children: dict[tuple[str, ...], Any] = {}
        self._lock = threading.Lock()

    def child(self, values: tuple[str, ...]) -> Any:
        found = self.children.get(values)
        if found is not None:
            return found
        with self._lock:
            found = self.children.get(values)
            if found is None:
                if len(values) != len(self.labels):
                    raise ValueError(f"{self.name} takes labels {self.labels}, got {values}")
                if self.kind == "histogram":
                    found = HistogramChild(self.buckets)
                elif self.kind == "gauge":
                    found = GaugeChild()
                else:
                    found = CounterChild()
                self.children[values] = found
            return found

    def collect(self) -> Metric:
        # prometheus_client appends "_total" to counter samples itself, so the family name drops it.
        items = list(self.children.items())
        if self.kind == "counter":
            counter = CounterMetricFamily(self.name.removesuffix("_total"), self.documentation,
                                          labels=self.labels)
            for values, child in items:
                counter.add_metric(values, child.value)
            return counter
        if self.kind == "gauge":
            gauge = GaugeMetricFamily(self.name, self.documentation, labels=self.labels)
            for values, child in items:
                gauge.add_metric(values, child.value)
            return gauge
        histogram = HistogramMetricFamily(self.name, self.documentation, labels=self.labels)
        bounds = [*(_format_bound(b) for b in self.buckets), "+Inf"]
        for values, child in items:
            counts, total = child.snapshot()
            cumulative, running = [], 0
            for bound, count in zip(bounds, counts, strict=True):
                running += count
                cumulative.append((bound, running))
            histogram.add_metric(values, cumulative, total)
        return histogram


def _format_bound(bound: float) -> str:
    return repr(float(bound))


class ConnectorMetrics:
    """The ``dataflow_connector_*`` series of one connector instance."""

    def __init__(self, metrics: ProcessorMetrics, connector_type: str, connector_name: str) -> None:
        self._metrics = metrics
        self._labels = (connector_type, connector_name)
        self.connector_type = connector_type
        self.read = metrics.child("dataflow_connector_messages_read_total", *self._labels)
        self.connection_status = metrics.child("dataflow_connector_connection_status", *self._labels)

    def written(self, route: str) -> CounterChild:
        child: CounterChild = self._metrics.child("dataflow_connector_messages_written_total",
                                                  *self._labels, route)
        return child

    def error(self, operation: str, error_type: str) -> None:
        self._metrics.child("dataflow_connector_errors_total", *self._labels, operation,
                            error_type).inc()

    def initialise_errors(self, operations: Iterable[str]) -> None:
        """Create zero-valued error series so ``rate()`` works before the first error."""
        for operation in operations:
            for error_type in ERROR_TYPES:
                self._metrics.child("dataflow_connector_errors_total", *self._labels, operation, error_type)

    def set_connected(self, connected: bool) -> None:
        self.connection_status.set(1.0 if connected else 0.0)


_DEFINITIONS: tuple[tuple[str, str, str, tuple[str, ...], tuple[float, ...]], ...] = (
    ("dataflow_messages_received_total", "Messages received from the source", "counter",
     ("source_type",), ()),
    ("dataflow_messages_sent_total", "Messages written to a sink", "counter", ("sink_type", "route"), ()),
    ("dataflow_processing_duration_seconds", "Time to run one source message through the transformations",
     "histogram", (), PROCESSING_BUCKETS),
    ("dataflow_connector_messages_read_total", "Messages read by a source connector", "counter",
     ("connector_type", "connector_name"), ()),
    ("dataflow_connector_messages_written_total", "Messages written by a sink connector", "counter",
     ("connector_type", "connector_name", "route"), ()),
    ("dataflow_connector_errors_total", "Connector errors", "counter",
     ("connector_type", "connector_name", "operation", "error_type"), ()),
    ("dataflow_connector_connection_status", "Connector connection status (1 connected, 0 disconnected)",
     "gauge", ("connector_type", "connector_name"), ()),
    ("dataflow_transformer_executions_total", "Successful transformer executions", "counter",
     ("transformer_type", "transformer_index"), ()),
    ("dataflow_transformer_errors_total", "Failed transformer executions", "counter",
     ("transformer_type", "transformer_index", "error_type"), ()),
    ("dataflow_transformer_duration_seconds", "Transformer execution time", "histogram",
     ("transformer_type", "transformer_index"), TRANSFORMER_BUCKETS),
    ("dataflow_transformer_messages_in_total", "Messages entering a transformer", "counter",
     ("transformer_type", "transformer_index"), ()),
    ("dataflow_transformer_messages_out_total", "Messages leaving a transformer", "counter",
     ("transformer_type", "transformer_index"), ()),
    ("dataflow_task_stage_duration_seconds", "Time spent in one stage of the pipeline", "histogram",
     ("stage",), STAGE_BUCKETS),
    ("dataflow_task_message_size_bytes", "Message size at a stage", "histogram", ("stage",), SIZE_BUCKETS),
    ("dataflow_task_stage_latency_seconds", "Latency between two stages", "histogram",
     ("from_stage", "to_stage"), LATENCY_BUCKETS),
    ("dataflow_task_throughput_messages_per_second", "Messages delivered per second over the last window",
     "gauge", (), ()),
    ("dataflow_task_success_rate", "Share of messages handled without error over the last window (0..1)",
     "gauge", (), ()),
    ("dataflow_task_end_to_end_latency_seconds", "Time from receipt at the source to the durable write",
     "histogram", (), E2E_BUCKETS),
    ("dataflow_task_active_messages", "Messages read and not yet written or dropped", "gauge", (), ()),
    ("dataflow_task_queue_size", "Messages waiting in an internal queue", "gauge", ("queue_type",), ()),
    ("dataflow_task_queue_wait_time_seconds", "Time a message waited in an internal queue", "histogram",
     ("queue_type",), QUEUE_WAIT_BUCKETS),
    ("dataflow_task_operations_total", "Pipeline operations by outcome", "counter",
     ("operation", "status"), ()),
    ("dataflow_task_stage_errors_total", "Errors per pipeline stage", "counter", ("stage", "error_type"), ()),
)

METRIC_NAMES = tuple(definition[0] for definition in _DEFINITIONS)


class ProcessorMetrics(Collector):
    """All processor metrics of one DataFlow; ``namespace`` and ``name`` are bound once here."""

    def __init__(self, namespace: str, name: str, *, enabled: bool = True,
                 registry: CollectorRegistry | None = None, window_seconds: float = 10.0) -> None:
        self.enabled = enabled
        self._bound = (namespace, name)
        self._families = {
            fam_name: _Family(fam_name, doc, kind, ("namespace", "name", *labels), buckets)
            for fam_name, doc, kind, labels, buckets in _DEFINITIONS
        }
        self._window = _RateWindow(window_seconds)
        self.processing_duration = self.child("dataflow_processing_duration_seconds")
        self.end_to_end_latency = self.child("dataflow_task_end_to_end_latency_seconds")
        self.active_messages = self.child("dataflow_task_active_messages")
        self.throughput = self.child("dataflow_task_throughput_messages_per_second")
        self.success_rate = self.child("dataflow_task_success_rate")
        self.success_rate.set(1.0)
        if registry is not None:
            registry.register(self)

    @property
    def window_seconds(self) -> float:
        return self._window.window_seconds

    def child(self, family: str, *labels: str) -> Any:
        if not self.enabled:
            return _NULL
        return self._families[family].child((*self._bound, *labels))

    def connector(self, connector_type: str, connector_name: str) -> ConnectorMetrics:
        return ConnectorMetrics(self, connector_type, connector_name)

    def stage_duration(self, stage: str) -> HistogramChild:
        child: HistogramChild = self.child("dataflow_task_stage_duration_seconds", stage)
        return child

    def message_size(self, stage: str) -> HistogramChild:
        child: HistogramChild = self.child("dataflow_task_message_size_bytes", stage)
        return child

    def stage_latency(self, from_stage: str, to_stage: str) -> HistogramChild:
        child: HistogramChild = self.child("dataflow_task_stage_latency_seconds", from_stage, to_stage)
        return child

    def queue_size(self, queue_type: str) -> GaugeChild:
        child: GaugeChild = self.child("dataflow_task_queue_size", queue_type)
        return child

    def queue_wait(self, queue_type: str) -> HistogramChild:
        child: HistogramChild = self.child("dataflow_task_queue_wait_time_seconds", queue_type)
        return child

    def operation(self, operation: str, status: str) -> CounterChild:
        child: CounterChild = self.child("dataflow_task_operations_total", operation, status)
        return child

    def stage_error(self, stage: str, error_type: str) -> None:
        self.child("dataflow_task_stage_errors_total", stage, error_type).inc()

    def record_outcomes(self, succeeded: int, failed: int) -> None:
        """Feed the throughput and success-rate window (delivered or filtered vs failed)."""
        if self.enabled:
            self._window.add(succeeded, failed)

    def update_rates(self, now: float | None = None) -> None:
        """Close the current window into the throughput and success-rate gauges (called every
        ``window_seconds`` by the engine's ticker; an idle window keeps the last success rate)."""
        throughput, success_rate = self._window.roll(time.monotonic() if now is None else now)
        self.throughput.set(throughput)
        if success_rate is not None:
            self.success_rate.set(success_rate)

    def collect(self) -> Iterator[Metric]:
        for family in self._families.values():
            yield family.collect()


class _RateWindow:
    def __init__(self, window_seconds: float) -> None:
        self.window_seconds = window_seconds
        self._lock = threading.Lock()
        self._succeeded = 0
        self._failed = 0
        self._started = time.monotonic()

    def add(self, succeeded: int, failed: int) -> None:
        with self._lock:
            self._succeeded += succeeded
            self._failed += failed

    def roll(self, now: float) -> tuple[float, float | None]:
        with self._lock:
            succeeded, failed, started = self._succeeded, self._failed, self._started
            self._succeeded = self._failed = 0
            self._started = now
        elapsed = max(now - started, 1e-9)
        total = succeeded + failed
        return succeeded / elapsed, (succeeded / total if total else None)
