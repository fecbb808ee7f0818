"""Runs source messages through the ordered transformations, with per-transformer metrics.

Each stage maps every message it receives to zero or more messages, keeping input order. A failing
call skips only that message: it is returned as a :class:`TransformFailure` so the engine can send
exactly it to the error sink (transformations.md §1.4).

Metric values are gathered in plain lists and counters while a chunk is transformed and handed to
the metric children once per chunk (:meth:`TransformChain.flush_metrics`): one lock per child per
chunk instead of per message keeps the metrics' cost within budget. Only the transform thread
touches the buffers. What a stage takes in is what the stage before it gave out, so input sizes are
measured once, at the first stage, and each later stage records its predecessor's output sizes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from ..pipeline.errors import classify
from ..pipeline.message import Message
from ..pipeline.metrics import ProcessorMetrics

log = logging.getLogger(__name__)


@dataclass(slots=True)
class TransformFailure:
    message: Message        # the message as it entered the failing transformer
    stage: str              # transformer_<i>
    transformer_type: str
    error: BaseException


class Step(Protocol):
    """One entry of ``spec.transformations`` as the chain runs it: a transformer, or a router's
    route choice (processor/routes.py)."""

    def transform(self, message: Message, /) -> list[Message]: ...


class _Stage:
    """One transformer, its metric children, and this chunk's not yet recorded values."""

    __slots__ = (
        "_children",
        "durations",
        "executions",
        "index",
        "label",
        "latencies",
        "messages_in",
        "messages_out",
        "metrics",
        "sizes_in",
        "sizes_out",
        "transformer",
        "type_name",
    )

    def __init__(self, index: int, type_name: str, transformer: Step, metrics: ProcessorMetrics) -> None:
        self.index = index
        self.type_name = type_name
        self.transformer = transformer
        self.metrics = metrics
        self.label = f"transformer_{index}"
        labels = (type_name, str(index))
        previous = "read" if index == 0 else f"transformer_{index - 1}"
        self._children = (
            metrics.transformer_executions.labels(*labels),
            metrics.transformer_messages_in.labels(*labels),
            metrics.transformer_messages_out.labels(*labels),
            metrics.transformer_durations.labels(*labels),
            metrics.stage_duration(self.label),
            metrics.stage_latency(previous, self.label),
            metrics.message_size(f"{self.label}_input"),
            metrics.message_size(f"{self.label}_output"),
            metrics.operation("transform", "success"),
        )
        for error_type in ("invalid_data", "unknown"):  # the usual ones exist at 0 from the start
            metrics.transformer_errors.labels(*labels, error_type)
        self.executions = self.messages_in = self.messages_out = 0
        self.durations: list[float] = []
        self.latencies: list[float] = []
        self.sizes_in: list[float] = []  # stage 0 only: later stages take their predecessor's sizes_out
        self.sizes_out: list[float] = []

    def flush(self, sizes_in: list[float]) -> None:
        executions, messages_in, messages_out, duration, stage_duration, latency, size_in, size_out, ok = \
            self._children
        if self.messages_in:
            messages_in.inc(self.messages_in)
            messages_out.inc(self.messages_out)
        if self.executions:
            executions.inc(self.executions)
            ok.inc(self.executions)
        duration.observe_many(self.durations)
        stage_duration.observe_many(self.durations)
        latency.observe_many(self.latencies)
        size_in.observe_many(sizes_in)
        size_out.observe_many(self.sizes_out)

    def reset(self) -> None:
        self.executions = self.messages_in = self.messages_out = 0
        self.durations, self.latencies, self.sizes_in, self.sizes_out = [], [], [], []


class TransformChain:
    def __init__(self, transformers: Sequence[tuple[str, Step]], metrics: ProcessorMetrics) -> None:
        self.metrics = metrics
        self.stages = [_Stage(i, type_name, t, metrics) for i, (type_name, t) in enumerate(transformers)]
        self._transform_error = metrics.operation("transform", "error")
        self._chain_duration = metrics.stage_duration("transformation")
        self._processing_duration = metrics.processing_duration
        self._durations: list[float] = []  # per source message: processing and "transformation" time
        self._first_sizes_in = self.stages[0].sizes_in if self.stages else []

    def run(self, message: Message) -> tuple[list[Message], list[TransformFailure]]:
        """Outputs in order, and the messages that failed on the way."""
        monotonic = time.monotonic
        started = monotonic()
        if not self.stages:
            self._durations.append(monotonic() - started)
            return [message], []
        messages = [message]
        failures: list[TransformFailure] = []
        self._first_sizes_in.append(len(message.data))
        # Stage 0's latency is measured from receipt at the source, so it includes the queue wait.
        previous_end = message.received_at
        for stage in self.stages:
            stage.messages_in += len(messages)
            out: list[Message] = []
            transform = stage.transformer.transform
            latencies, durations, sizes_out = stage.latencies, stage.durations, stage.sizes_out
            for current in messages:
                call_started = monotonic()
                latencies.append(call_started - previous_end)
                try:
                    produced = transform(current)
                except Exception as exc:
                    previous_end = monotonic()
                    self._record_failure(stage, current, exc, failures)
                    continue
                previous_end = monotonic()
                stage.executions += 1
                durations.append(previous_end - call_started)
                if len(produced) == 1:
                    sizes_out.append(len(produced[0].data))
                    out.append(produced[0])
                else:
                    sizes_out.extend(len(item.data) for item in produced)
                    out.extend(produced)
            stage.messages_out += len(out)
            messages = out
        for current in messages:
            current.doc = None  # the decoded form is for the steps; queues and sinks hold bytes only
        self._durations.append(monotonic() - started)
        return messages, failures

    def flush_metrics(self) -> None:
        """Record what the chunk just transformed produced (called once per chunk)."""
        sizes_in = self._first_sizes_in
        for stage in self.stages:
            stage.flush(sizes_in)
            sizes_in = stage.sizes_out
        for stage in self.stages:
            stage.reset()
        self._first_sizes_in = self.stages[0].sizes_in if self.stages else []
        self._processing_duration.observe_many(self._durations)
        if self.stages:
            self._chain_duration.observe_many(self._durations)
        self._durations = []

    def _record_failure(self, stage: _Stage, message: Message, exc: BaseException,
                        failures: list[TransformFailure]) -> None:
        error_type = classify(exc)
        self.metrics.transformer_errors.labels(stage.type_name, str(stage.index), error_type).inc()
        self.metrics.stage_error(stage.label, error_type)
        self._transform_error.inc()
        log.warning("transformation failed", extra={"stage": stage.label, "transformer": stage.type_name,
                                                    "message_id": message.describe(), "error": str(exc),
                                                    "error_type": error_type})
        failures.append(TransformFailure(message, stage.label, stage.type_name, exc))
