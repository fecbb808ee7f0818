"""What a person running ``processor`` on a terminal sees: a live progress line and a summary.

Both read the processor's own ``dataflow_*`` counters (one home for the counts: what the progress
line says is what ``/metrics`` says), so the engine needs no hook. Everything goes to stderr through
the :class:`~..observability.terminal.StatusLine`; stdout may be the data.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

from prometheus_client.registry import Collector

from ..observability.redaction import scrub
from ..observability.terminal import StatusLine
from ..spec.api import DataFlowSpec, SinkSpec
from .connector_names import ERROR_SINK, MAIN_SINK, route_sink
from .routes import RouteTable

REFRESH_SECONDS = 0.5
RATE_WINDOW_SECONDS = 3.0


@dataclass(frozen=True)
class SinkCount:
    """Messages one sink connector wrote for one route."""

    connector_name: str   # sink, route_<i>, error_sink
    connector_type: str
    route: str
    written: int


@dataclass(frozen=True)
class Counts:
    """A snapshot of the counters the progress line and summary show."""

    read: int
    sinks: tuple[SinkCount, ...]

    @property
    def written(self) -> int:
        return sum(s.written for s in self.sinks if s.connector_name != ERROR_SINK)

    @property
    def diverted(self) -> int:
        return sum(s.written for s in self.sinks if s.connector_name == ERROR_SINK)


def read_counts(metrics: Collector) -> Counts:
    read = 0
    sinks = []
    for family in metrics.collect():
        for sample in family.samples:
            if sample.name == "dataflow_messages_received_total":
                read += int(sample.value)
            elif sample.name == "dataflow_connector_messages_written_total":
                labels = sample.labels
                sinks.append(SinkCount(labels["connector_name"], labels["connector_type"], labels["route"],
                                       int(sample.value)))
    return Counts(read, tuple(sinks))


def destinations(spec: DataFlowSpec) -> dict[str, str]:
    """Where each sink connector writes, by connector name (as the engine names them): a file's
    path, a topic, a table. Scrubbed: a name that came from a Secret is not shown."""
    connectors = {MAIN_SINK: spec.sink}
    table = RouteTable.of(entry.router for entry in spec.transformations if entry.router is not None)
    connectors.update({route_sink(index): sink for index, sink in enumerate(table.sinks.values())})
    if spec.errors is not None:
        connectors[ERROR_SINK] = spec.errors
    return {name: _destination(connector) for name, connector in connectors.items()}


#: The config field (attribute and JSON key alike) that names where each sink type writes.
_WHERE = {"file": "path", "kafka": "topic", "postgresql": "table"}


def _destination(connector: SinkSpec) -> str:
    kind = connector.type
    key = _WHERE.get(kind)
    value = getattr(connector.config, key, None) if key else None
    if not isinstance(value, str) or not value:
        return kind
    shown = "stdout" if kind == "file" and value == "-" else value
    return scrub(f"{kind} {key} {shown}" if kind != "file" else shown)


def progress_text(counts: Counts, rate: float, elapsed: float) -> str:
    return (f"read {counts.read:,} · written {counts.written:,} · to error sink {counts.diverted:,}"
            f" · {rate:,.0f} msg/s · {elapsed:.1f} s")


def summary_lines(counts: Counts, where: Mapping[str, str], elapsed: float) -> list[str]:
    lines = [f"read {counts.read:,} messages in {elapsed:.1f} s; wrote {counts.written:,}; "
             f"{counts.diverted:,} to the error sink"]
    for sink in sorted(counts.sinks, key=_sink_order):
        if sink.connector_name == ERROR_SINK:
            continue
        label = "main sink" if sink.connector_name == MAIN_SINK else f"route {sink.route}"
        lines.append(f"  {label:<28} {sink.written:>10,}  → {where.get(sink.connector_name, sink.connector_type)}")
    if counts.diverted:
        lines.append(f"  {'error sink':<28} {counts.diverted:>10,}  → {where.get(ERROR_SINK, 'error sink')}")
    return lines


def _sink_order(sink: SinkCount) -> tuple[int, str, str]:
    return (0 if sink.connector_name == MAIN_SINK else 1, sink.connector_name, sink.route)


class LiveProgress:
    """Redraws the progress line every :data:`REFRESH_SECONDS` until :meth:`finish`, which draws
    the final counts, leaves them on screen and prints the summary below."""

    def __init__(self, metrics: Collector, status: StatusLine, spec: DataFlowSpec) -> None:
        self.metrics = metrics
        self.status = status
        self.where = destinations(spec)
        self._started = time.monotonic()
        self._history: deque[tuple[float, int]] = deque([(self._started, 0)])
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="console-progress", daemon=True)

    def start(self) -> LiveProgress:
        self._thread.start()
        return self

    def finish(self) -> None:
        self._stop.set()
        self._thread.join()
        counts = self._draw()
        self.status.finish()
        for line in summary_lines(counts, self.where, time.monotonic() - self._started):
            self.status.write_above(line)

    def _loop(self) -> None:
        while True:
            self._draw()
            if self._stop.wait(REFRESH_SECONDS):
                return

    def _draw(self) -> Counts:
        now = time.monotonic()
        counts = read_counts(self.metrics)
        self.status.show(progress_text(counts, self._rate(now, counts.read), now - self._started))
        return counts

    def _rate(self, now: float, read: int) -> float:
        """Messages read per second over the last few seconds (since the start, early on)."""
        history = self._history
        history.append((now, read))
        while len(history) > 2 and now - history[1][0] >= RATE_WINDOW_SECONDS:
            history.popleft()
        then, read_then = history[0]
        return (read - read_then) / (now - then) if now > then else 0.0

