"""One writer thread per sink (the main sink and each router route).

It gathers a batch as the sink asks (:class:`BatchLimits`), writes it, retries timeout-like
failures after each of ``retry_delays`` (assembly.RETRY_DELAYS in production), acknowledges
exactly the messages that were written, and hands exactly the failed ones to the error sink, or
stops the pipeline when there is none.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from ..pipeline.checkpoint import deferred_saves
from ..pipeline.connector import BatchLimits, Sink
from ..pipeline.errors import classify, is_environmental, is_retryable
from ..pipeline.message import Message
from ..pipeline.metrics import ConnectorMetrics, ProcessorMetrics
from ..pipeline.progress import ProgressTracker
from .batch_isolation import write_isolating
from .error_sink import ErrorSinkError, ErrorSinkWriter, Failure
from .queues import ChunkQueue

log = logging.getLogger(__name__)

class WriteStoppedError(RuntimeError):
    """The writer stops the pipeline unacknowledged: the sink is unavailable, or a message failed
    with no error sink to take it."""


class SinkWriter(threading.Thread):
    def __init__(self, *, route: str, sink: Sink, sink_type: str, queue: ChunkQueue,
                 metrics: ProcessorMetrics, connector_metrics: ConnectorMetrics,
                 error_sink: ErrorSinkWriter | None, progress: ProgressTracker,
                 abort: threading.Event, fail: Callable[[BaseException], None],
                 retry_delays: tuple[float, ...]) -> None:
        super().__init__(name=f"writer-{connector_metrics.connector_type}-{route[:40]}", daemon=True)
        self.route = route
        self.sink = sink
        self.sink_type = sink_type
        self.queue = queue
        self.metrics = metrics
        self.connector_metrics = connector_metrics
        self.error_sink = error_sink
        self.progress = progress
        self.abort = abort
        self.fail = fail
        self.retry_delays = retry_delays
        self._sent = metrics.messages_sent.labels(sink_type, route)
        self._written = connector_metrics.written(route)
        self._write_duration = metrics.stage_duration("write")
        self._sink_write_duration = metrics.stage_duration("sink_write")
        self._output_size = metrics.message_size("output")
        self._ops = {(op, status): metrics.operation(op, status)
                     for op in ("write", "sink_write") for status in ("success", "error", "cancelled")}

    def run(self) -> None:
        try:
            limits = self.sink.batch_limits()
            while not self.abort.is_set():
                batch = self._gather(limits)
                if batch is None:
                    return
                if batch:
                    self._write(batch)
        except (ErrorSinkError, WriteStoppedError) as exc:
            self.fail(exc)  # expected ways to stop: the engine logs them in one line
        except Exception as exc:
            log.exception("writer failed", extra={"route": self.route})
            self.fail(exc)

    def _gather(self, limits: BatchLimits) -> list[Message] | None:
        """A batch, ``[]`` when nothing came in time, ``None`` once the queue is closed and drained."""
        first = self.queue.get(limits.max_messages, timeout=0.2)
        if not first:
            return first
        batch = first
        if limits.max_wait_seconds:
            deadline = time.monotonic() + limits.max_wait_seconds
            while len(batch) < limits.max_messages:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.abort.is_set():
                    break
                more = self.queue.get(limits.max_messages - len(batch), timeout=remaining)
                if more is None:
                    break
                batch.extend(more)
        return batch

    def _write(self, batch: list[Message]) -> None:
        started = time.monotonic()
        pending = batch
        failures: list[Failure] = []
        for attempt in range(len(self.retry_delays) + 1):
            failures = self._attempt(pending)
            if not failures:
                break
            if attempt == len(self.retry_delays) or not all(is_retryable(f.error) for f in failures):
                break
            if self.abort.wait(self.retry_delays[attempt]):
                break
            log.warning("retrying writes that timed out", extra={"route": self.route, "messages": len(failures),
                                                             "attempt": attempt + 2})
            pending = [f.message for f in failures]
        self._write_duration.observe(time.monotonic() - started)
        self._ops[("write", "error" if failures else "success")].inc()
        self.metrics.record_outcomes(len(batch) - len(failures), len(failures))
        if failures:
            self._handle_failures(failures)

    def _attempt(self, batch: list[Message]) -> list[Failure]:
        """Write once; acknowledge what was written; return what was not."""
        started = time.monotonic()
        failures = [Failure(f.message, f.error, "sink_write", self.route)
                    for f in write_isolating(self.sink.write, batch)]
        self._sink_write_duration.observe(time.monotonic() - started)
        self._ops[("sink_write", "error" if failures else "success")].inc()
        for failure in failures:
            error_type = classify(failure.error)
            self.connector_metrics.error("write", error_type)
            self.metrics.stage_error("sink_write", error_type)
        failed_ids = {id(f.message) for f in failures}
        written = [m for m in batch if id(m) not in failed_ids] if failures else batch
        if written:
            self._acknowledge(written)
        return failures

    def _acknowledge(self, written: list[Message]) -> None:
        now = time.monotonic()
        count = len(written)
        self._sent.inc(count)
        self._written.inc(count)
        self.metrics.end_to_end_latency.observe_many([now - message.received_at for message in written])
        self._output_size.observe_many([len(message.data) for message in written])
        with deferred_saves():
            for message in written:
                message.acknowledge()
        self.metrics.active_messages.dec(count)
        self.progress.bump()

    def _handle_failures(self, failures: list[Failure]) -> None:
        first = failures[0]
        unreachable = [f for f in failures if is_environmental(f.error)]
        if unreachable:
            # The sink itself is unavailable: that says nothing about the messages, so they must not
            # be diverted to the error sink. Stop unacknowledged; the restart writes them again.
            cause = unreachable[0]
            raise WriteStoppedError(
                f"sink {self.sink_type} (route {self.route}) is unavailable ({classify(cause.error)}) after "
                f"{len(self.retry_delays) + 1} attempts: {cause.error}") from cause.error
        if self.error_sink is None:
            # No error sink: stop without acknowledging; the messages are read again after a restart.
            raise WriteStoppedError(
                f"sink {self.sink_type} (route {self.route}) failed to write {len(failures)} message(s) "
                f"({first.message.describe()}): {first.error}") from first.error
        log.warning("sending failed messages to the error sink",
                    extra={"route": self.route, "messages": len(failures), "error": str(first.error),
                           "error_type": classify(first.error)})
        self.error_sink.write(failures)
        self.metrics.active_messages.dec(len(failures))
