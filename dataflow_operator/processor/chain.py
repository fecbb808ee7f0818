"""Runs one source message through the ordered transformations, with per-transformer metrics.

Each stage maps every message it receives to zero or more messages, keeping input order. A failing
call skips only that message: it is returned as a :class:`TransformFailure` so the engine can send
exactly it to the error sink (transformations.md §1.4).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from ..transformers.base import Transformer
from .errors import classify
from .message import Message
from .metrics import ProcessorMetrics

log = logging.getLogger(__name__)


@dataclass(slots=True)
class TransformFailure:
    message: Message        # the message as it entered the failing transformer
    stage: str              # transformer_<i>
    transformer_type: str
    error: BaseException


class _Stage:
    """One transformer and its metric children, bound once."""

    __slots__ = ("duration", "errors", "executions", "index", "label", "latency", "messages_in",
                 "messages_out", "metrics", "size_in", "size_out", "stage_duration", "transformer",
                 "type_name")

    def __init__(self, index: int, type_name: str, transformer: Transformer, metrics: ProcessorMetrics) -> None:
        self.index = index
        self.type_name = type_name
        self.transformer = transformer
        self.metrics = metrics
        self.label = f"transformer_{index}"
        labels = (type_name, str(index))
        self.executions = metrics.child("dataflow_transformer_executions_total", *labels)
        self.duration = metrics.child("dataflow_transformer_duration_seconds", *labels)
        self.messages_in = metrics.child("dataflow_transformer_messages_in_total", *labels)
        self.messages_out = metrics.child("dataflow_transformer_messages_out_total", *labels)
        self.stage_duration = metrics.stage_duration(self.label)
        self.size_in = metrics.message_size(f"{self.label}_input")
        self.size_out = metrics.message_size(f"{self.label}_output")
        previous = "read" if index == 0 else f"transformer_{index - 1}"
        self.latency = metrics.stage_latency(previous, self.label)
        self.errors = {error_type: metrics.child("dataflow_transformer_errors_total", *labels, error_type)
                       for error_type in ("invalid_data", "unknown")}


class TransformChain:
    def __init__(self, transformers: Sequence[tuple[str, Transformer]], metrics: ProcessorMetrics) -> None:
        self.metrics = metrics
        self.stages = [_Stage(i, type_name, t, metrics) for i, (type_name, t) in enumerate(transformers)]
        self._transform_ok = metrics.operation("transform", "success")
        self._transform_error = metrics.operation("transform", "error")
        self._chain_duration = metrics.stage_duration("transformation")

    def run(self, message: Message) -> tuple[list[Message], list[TransformFailure]]:
        """Outputs in order, and the messages that failed on the way."""
        if not self.stages:
            return [message], []
        started = time.monotonic()
        messages = [message]
        failures: list[TransformFailure] = []
        # Stage 0's latency is measured from receipt at the source, so it includes the queue wait.
        previous_end = message.received_at
        for stage in self.stages:
            stage.messages_in.inc(len(messages))
            out: list[Message] = []
            for current in messages:
                call_started = time.monotonic()
                stage.latency.observe(call_started - previous_end)
                stage.size_in.observe(len(current.data))
                try:
                    produced = stage.transformer.transform(current)
                except Exception as exc:  # noqa: BLE001 - any transformer failure is per message
                    previous_end = time.monotonic()
                    self._record_failure(stage, current, exc, failures)
                    continue
                previous_end = time.monotonic()
                elapsed = previous_end - call_started
                stage.executions.inc()
                stage.duration.observe(elapsed)
                stage.stage_duration.observe(elapsed)
                self._transform_ok.inc()
                for item in produced:
                    stage.size_out.observe(len(item.data))
                out.extend(produced)
            stage.messages_out.inc(len(out))
            messages = out
        self._chain_duration.observe(time.monotonic() - started)
        return messages, failures

    def _record_failure(self, stage: _Stage, message: Message, exc: BaseException,
                        failures: list[TransformFailure]) -> None:
        error_type = classify(exc)
        child = stage.errors.get(error_type)
        if child is None:
            child = self.metrics.child("dataflow_transformer_errors_total", stage.type_name,
                                       str(stage.index), error_type)
        child.inc()
        self.metrics.stage_error(stage.label, error_type)
        self._transform_error.inc()
        log.warning("transformation failed", extra={"stage": stage.label, "transformer": stage.type_name,
                                                    "message_id": message.describe(), "error": str(exc),
                                                    "error_type": error_type})
        failures.append(TransformFailure(message, stage.label, stage.type_name, exc))
