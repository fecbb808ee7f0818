"""Every ``dataflow_*`` processor metric, defined once, with the contract's names, labels and buckets.

Each family is a typed attribute of :class:`ProcessorMetrics` whose ``labels(...)`` hands out a
:class:`Counter`, :class:`Gauge` or :class:`Histogram`, so using a family that does not exist, or
observing a counter, is a type error rather than a surprise at run time.

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
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Generic, Protocol, TypeVar

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


class Counter(Protocol):
    def inc(self, amount: float = 1.0) -> None: ...


class Gauge(Counter, Protocol):
    def set(self, value: float) -> None: ...

    def dec(self, amount: float = 1.0) -> None: ...


class Histogram(Protocol):
    def observe(self, value: float, count: int = 1) -> None: ...

    def observe_many(self, values: list[float]) -> None: ...


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

ChildT = TypeVar("ChildT", CounterChild, GaugeChild, HistogramChild)


class MetricFamily(ABC, Generic[ChildT]):
    """One metric family of one DataFlow: name, help, label names; children by label values, each
    made on first use. ``namespace`` and ``name`` are bound here, callers give the other labels."""

    def __init__(self, name: str, documentation: str, labels: Sequence[str], *, bound: tuple[str, str],
                 enabled: bool) -> None:
        self.name = name
        self.documentation = documentation
        self.label_names = ("namespace", "name", *labels)
        self._bound = bound
        self._enabled = enabled
        self._children: dict[tuple[str, ...], ChildT] = {}
        self._lock = threading.Lock()

    @abstractmethod
    def _new_child(self) -> ChildT:
        ...

    @abstractmethod
    def labels(self, *values: str) -> Counter | Histogram:
        """The child for these label values (after ``namespace`` and ``name``), made on first use."""

    @abstractmethod
    def collect(self) -> Metric:
        ...

    def _child(self, values: tuple[str, ...]) -> ChildT:
        values = (*self._bound, *values)
        found = self._children.get(values)
        if found is not None:
            return found
        with self._lock:
            found = self._children.get(values)
            if found is None:
                if len(values) != len(self.label_names):
                    raise ValueError(f"{self.name} takes labels {self.label_names}, got {values}")
                found = self._children[values] = self._new_child()
            return found


class CounterFamily(MetricFamily[CounterChild]):
    def _new_child(self) -> CounterChild:
        return CounterChild()

    def labels(self, *values: str) -> Counter:
        return self._child(values) if self._enabled else _NULL

    def collect(self) -> Metric:
        # prometheus_client appends "_total" to counter samples itself, so the family name drops it.
        return _with_values(CounterMetricFamily(self.name.removesuffix("_total"), self.documentation,
                                                labels=self.label_names), self._children)


class GaugeFamily(MetricFamily[GaugeChild]):
    def _new_child(self) -> GaugeChild:
        return GaugeChild()

    def labels(self, *values: str) -> Gauge:
        return self._child(values) if self._enabled else _NULL

    def collect(self) -> Metric:
        return _with_values(GaugeMetricFamily(self.name, self.documentation, labels=self.label_names),
                            self._children)


def _with_values(metric: CounterMetricFamily | GaugeMetricFamily,
                 children: Mapping[tuple[str, ...], CounterChild]) -> Metric:
    """``metric`` with one sample per child (counters and gauges alike hold one value)."""
    for values, child in list(children.items()):
        metric.add_metric(values, child.value)
    return metric


class HistogramFamily(MetricFamily[HistogramChild]):
    def __init__(self, name: str, documentation: str, labels: Sequence[str], *, buckets: Sequence[float],
                 bound: tuple[str, str], enabled: bool) -> None:
        super().__init__(name, documentation, labels, bound=bound, enabled=enabled)
        self.buckets = tuple(buckets)

    def _new_child(self) -> HistogramChild:
        return HistogramChild(self.buckets)

    def labels(self, *values: str) -> Histogram:
        return self._child(values) if self._enabled else _NULL

    def collect(self) -> Metric:
        histogram = HistogramMetricFamily(self.name, self.documentation, labels=self.label_names)
        bounds = [*(_format_bound(b) for b in self.buckets), "+Inf"]
        for values, child in list(self._children.items()):
            counts, total = child.snapshot()
            cumulative, running = [], 0
            for bound, count in zip(bounds, counts, strict=True):
                running += count
                cumulative.append((bound, running))
            histogram.add_metric(values, cumulative, total)
        return histogram


def _format_bound(bound: float) -> str:
    return repr(float(bound))


FamilyT = TypeVar("FamilyT", bound=MetricFamily[Any])


class ConnectorMetrics:
    """The ``dataflow_connector_*`` series of one connector instance."""

    def __init__(self, metrics: ProcessorMetrics, connector_type: str, connector_name: str) -> None:
        self._metrics = metrics
        self._labels = (connector_type, connector_name)
        self.connector_type = connector_type
        self.read = metrics.connector_messages_read.labels(*self._labels)
        self.connection_status = metrics.connector_connection_status.labels(*self._labels)

    def written(self, route: str) -> Counter:
        return self._metrics.connector_messages_written.labels(*self._labels, route)

    def error(self, operation: str, error_type: str) -> None:
        self._metrics.connector_errors.labels(*self._labels, operation, error_type).inc()

    def initialise_errors(self, operations: Iterable[str]) -> None:
        """Create zero-valued error series so ``rate()`` works before the first error."""
        for operation in operations:
            for error_type in ERROR_TYPES:
                self._metrics.connector_errors.labels(*self._labels, operation, error_type)

    def set_connected(self, connected: bool) -> None:
        self.connection_status.set(1.0 if connected else 0.0)


class ProcessorMetrics(Collector):
    """All processor metrics of one DataFlow, each family a typed attribute (a misspelt family is a
    type error, not a runtime ``KeyError``); ``namespace`` and ``name`` are bound once here."""

    def __init__(self, namespace: str, name: str, *, enabled: bool = True,
                 registry: CollectorRegistry | None = None, window_seconds: float = 10.0) -> None:
        self.enabled = enabled
        self.families: dict[str, MetricFamily[Any]] = {}
        counter, gauge, histogram = self._families_of((namespace, name), enabled)
        self.messages_received = counter("dataflow_messages_received_total", "Messages received from the source",
                                         "source_type")
        self.messages_sent = counter("dataflow_messages_sent_total", "Messages written to a sink",
                                     "sink_type", "route")
        self.processing_durations = histogram(
            "dataflow_processing_duration_seconds", "Time to run one source message through the transformations",
            PROCESSING_BUCKETS)
        self.connector_messages_read = counter("dataflow_connector_messages_read_total",
                                               "Messages read by a source connector",
                                               "connector_type", "connector_name")
        self.connector_messages_written = counter("dataflow_connector_messages_written_total",
                                                  "Messages written by a sink connector",
                                                  "connector_type", "connector_name", "route")
        self.connector_errors = counter("dataflow_connector_errors_total", "Connector errors",
                                        "connector_type", "connector_name", "operation", "error_type")
        self.connector_connection_status = gauge("dataflow_connector_connection_status",
                                                 "Connector connection status (1 connected, 0 disconnected)",
                                                 "connector_type", "connector_name")
        self.transformer_executions = counter("dataflow_transformer_executions_total",
                                              "Successful transformer executions",
                                              "transformer_type", "transformer_index")
        self.transformer_errors = counter("dataflow_transformer_errors_total", "Failed transformer executions",
                                          "transformer_type", "transformer_index", "error_type")
        self.transformer_durations = histogram("dataflow_transformer_duration_seconds",
                                               "Transformer execution time", TRANSFORMER_BUCKETS,
                                               "transformer_type", "transformer_index")
        self.transformer_messages_in = counter("dataflow_transformer_messages_in_total",
                                               "Messages entering a transformer",
                                               "transformer_type", "transformer_index")
        self.transformer_messages_out = counter("dataflow_transformer_messages_out_total",
                                                "Messages leaving a transformer",
                                                "transformer_type", "transformer_index")
        self.stage_durations = histogram("dataflow_task_stage_duration_seconds",
                                         "Time spent in one stage of the pipeline", STAGE_BUCKETS, "stage")
        self.message_sizes = histogram("dataflow_task_message_size_bytes", "Message size at a stage", SIZE_BUCKETS,
                                       "stage")
        self.stage_latencies = histogram("dataflow_task_stage_latency_seconds", "Latency between two stages",
                                         LATENCY_BUCKETS, "from_stage", "to_stage")
        self.throughputs = gauge("dataflow_task_throughput_messages_per_second",
                                 "Messages delivered per second over the last window")
        self.success_rates = gauge("dataflow_task_success_rate",
                                   "Share of messages handled without error over the last window (0..1)")
        self.end_to_end_latencies = histogram("dataflow_task_end_to_end_latency_seconds",
                                              "Time from receipt at the source to the durable write", E2E_BUCKETS)
        self.active = gauge("dataflow_task_active_messages", "Messages read and not yet written or dropped")
        self.queue_sizes = gauge("dataflow_task_queue_size", "Messages waiting in an internal queue", "queue_type")
        self.queue_waits = histogram("dataflow_task_queue_wait_time_seconds",
                                     "Time a message waited in an internal queue", QUEUE_WAIT_BUCKETS, "queue_type")
        self.operations = counter("dataflow_task_operations_total", "Pipeline operations by outcome",
                                  "operation", "status")
        self.stage_errors = counter("dataflow_task_stage_errors_total", "Errors per pipeline stage",
                                    "stage", "error_type")
        self._window = _RateWindow(window_seconds)
        self.processing_duration = self.processing_durations.labels()
        self.end_to_end_latency = self.end_to_end_latencies.labels()
        self.active_messages = self.active.labels()
        self.throughput = self.throughputs.labels()
        self.success_rate = self.success_rates.labels()
        self.success_rate.set(1.0)
        if registry is not None:
            registry.register(self)

    def _families_of(self, bound: tuple[str, str], enabled: bool) -> tuple[
            Callable[..., CounterFamily], Callable[..., GaugeFamily], Callable[..., HistogramFamily]]:
        """Constructors that bind the DataFlow's labels and record each family for exposition."""
        def counter(name: str, documentation: str, *labels: str) -> CounterFamily:
            return self._add(CounterFamily(name, documentation, labels, bound=bound, enabled=enabled))

        def gauge(name: str, documentation: str, *labels: str) -> GaugeFamily:
            return self._add(GaugeFamily(name, documentation, labels, bound=bound, enabled=enabled))

        def histogram(name: str, documentation: str, buckets: Sequence[float], *labels: str) -> HistogramFamily:
            return self._add(HistogramFamily(name, documentation, labels, buckets=buckets, bound=bound,
                                             enabled=enabled))

        return counter, gauge, histogram

    def _add(self, family: FamilyT) -> FamilyT:
        self.families[family.name] = family
        return family

    @property
    def window_seconds(self) -> float:
        return self._window.window_seconds

    def connector(self, connector_type: str, connector_name: str) -> ConnectorMetrics:
        return ConnectorMetrics(self, connector_type, connector_name)

    def stage_duration(self, stage: str) -> Histogram:
        return self.stage_durations.labels(stage)

    def message_size(self, stage: str) -> Histogram:
        return self.message_sizes.labels(stage)

    def stage_latency(self, from_stage: str, to_stage: str) -> Histogram:
        return self.stage_latencies.labels(from_stage, to_stage)

    def queue_size(self, queue_type: str) -> Gauge:
        return self.queue_sizes.labels(queue_type)

    def queue_wait(self, queue_type: str) -> Histogram:
        return self.queue_waits.labels(queue_type)

    def operation(self, operation: str, status: str) -> Counter:
        return self.operations.labels(operation, status)

    def stage_error(self, stage: str, error_type: str) -> None:
        self.stage_errors.labels(stage, error_type).inc()

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
        for family in self.families.values():
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
