"""The error sink: the exact messages that failed, wrapped with why, written durably.

The records are built by :mod:`.error_record`. ``ackPolicy`` decides whether the source position may
move once a record is written: ``afterWrite`` yes; ``never`` and ``afterMainSinkSuccess`` no (the
message is read again after a restart).

A record the error sink refuses *as data* (larger than the topic allows, say) is written once more
without the original payload — its size, SHA-256 and the refusal instead — so one oversized message
cannot stop the pipeline on every restart. Any other failure of the error sink stops the pipeline
without acknowledging anything.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NoReturn

from ..pipeline.checkpoint import deferred_saves
from ..pipeline.connector import Sink, WriteFailure
from ..pipeline.errors import classify, is_environmental, is_retryable
from ..pipeline.message import Message
from ..pipeline.metrics import ConnectorMetrics, ProcessorMetrics
from .batch_isolation import write_isolating
from .error_record import error_record


@dataclass(slots=True)
class Failure:
    """A message that could not reach its destination, and where and why."""

    message: Message
    error: BaseException
    stage: str            # sink_write, transformer_<i>, ...
    route: str            # the route label of the message ("default" or a condition)


class ErrorSinkError(Exception):
    """The error sink could not take the failed messages: the pipeline must stop unacknowledged."""


class ErrorSinkWriter:
    """Shared by every writer thread and the transform thread; one write at a time."""

    def __init__(self, sink: Sink, *, sink_type: str, ack_policy: str, original_sink: str,
                 metrics: ProcessorMetrics, connector_metrics: ConnectorMetrics,
                 retry_delays: tuple[float, ...]) -> None:
        self.sink = sink
        self.sink_type = sink_type
        self.ack_policy = ack_policy
        self.original_sink = original_sink
        self.metrics = metrics
        self.connector_metrics = connector_metrics
        self.retry_delays = retry_delays
        self._lock = threading.Lock()
        self._duration = metrics.stage_duration("error_sink_write")
        self._ok = metrics.operation("error_sink_write", "success")
        self._error = metrics.operation("error_sink_write", "error")

    def write(self, failures: list[Failure]) -> None:
        """Write a record for every failure, then acknowledge per ``ackPolicy``; raise
        :class:`ErrorSinkError` when any record could not be written."""
        if not failures:
            return
        now = datetime.now(UTC)
        records: dict[int, tuple[Message, Failure]] = {}
        for failure in failures:
            record = self._record(failure, now)
            records[id(record)] = (record, failure)
        with self._lock:
            self._write_with_retry(records, now)
        with deferred_saves():
            for failure in failures:
                self.connector_metrics.written(failure.route).inc()
                if self.ack_policy == "afterWrite":
                    failure.message.acknowledge()
                else:
                    failure.message.ack = None  # the position stays put: re-read after a restart

    def _record(self, failure: Failure, now: datetime, omit_because: str | None = None) -> Message:
        return error_record(failure.message, failure.error, stage=failure.stage, original_sink=self.original_sink,
                            now=now, omit_original_because=omit_because)

    def _write_with_retry(self, records: dict[int, tuple[Message, Failure]], now: datetime) -> None:
        pending = [record for record, _ in records.values()]
        retries = iter(self.retry_delays)
        omitted: set[int] = set()
        while True:
            started = time.monotonic()
            failed = write_isolating(self.sink.write, pending)
            self._duration.observe(time.monotonic() - started)
            if not failed:
                self._ok.inc()
                return
            self._error.inc()
            for refusal in failed:
                error_type = classify(refusal.error)
                self.connector_metrics.error("write", error_type)
                self.metrics.stage_error("error_sink_write", error_type)
            environmental = [f for f in failed if is_environmental(f.error)]
            pending = []
            for refused in failed:
                record, original = records[id(refused.message)]
                if is_environmental(refused.error):
                    pending.append(record)
                elif id(record) in omitted:
                    self._give_up(failed, refused)
                else:
                    smaller = self._record(original, now, omit_because=str(refused.error))
                    records[id(smaller)] = (smaller, original)
                    omitted.add(id(smaller))
                    pending.append(smaller)
            if not environmental:
                continue  # only records rebuilt without their payload are left: write them at once
            delay = next(retries, None)
            if delay is None or not all(is_retryable(f.error) for f in environmental):
                self._give_up(failed, environmental[0])
            time.sleep(delay)

    def _give_up(self, failed: list[WriteFailure], cause: WriteFailure) -> NoReturn:
        raise ErrorSinkError(f"error sink ({self.sink_type}) could not write {len(failed)} record(s): "
                             f"{cause.error}") from cause.error
