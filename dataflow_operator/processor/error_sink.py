"""The error sink: the exact messages that failed, wrapped with why, written durably.

Record shape (connectors.md §2.8)::

    {"error": {"message", "type", "timestamp", "original_sink", "stage", "metadata"},
     "original_message": <the JSON payload>}          # or "original_data": "<raw text>" if not JSON

``ackPolicy`` decides whether the source position may move once the record is written:
``afterWrite`` yes; ``never`` and ``afterMainSinkSuccess`` no (the message is read again after a
restart). A failing error-sink write stops the pipeline without acknowledging anything.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from ..connectors.base import Sink
from .checkpoint import deferred_saves
from .errors import classify, is_retryable
from .message import Message
from .metrics import ConnectorMetrics, ProcessorMetrics


@dataclass(slots=True)
class Failure:
    """A message that could not reach its destination, and where and why."""

    message: Message
    error: BaseException
    stage: str            # sink_write, transformer_<i>, ...
    route: str            # the route label of the message ("default" or a condition)


def jsonable(value: Any) -> Any:
    """Metadata values as JSON: datetimes as RFC3339, bytes as text (or base64 when binary)."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, datetime):
        return rfc3339(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return base64.b64encode(value).decode("ascii")
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def rfc3339(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def error_record(failure: Failure, original_sink: str, now: datetime) -> Message:
    message = failure.message
    timestamp = rfc3339(now)
    body: dict[str, Any] = {
        "error": {
            "message": str(failure.error) or type(failure.error).__name__,
            "type": classify(failure.error),
            "timestamp": timestamp,
            "original_sink": original_sink,
            "stage": failure.stage,
            "metadata": jsonable(message.metadata),
        }
    }
    try:
        body["original_message"] = json.loads(message.data)
    except (ValueError, UnicodeDecodeError):
        body["original_data"] = message.data.decode("utf-8", errors="replace")
    metadata = dict(message.metadata)
    metadata.update(error=body["error"]["message"], error_timestamp=timestamp, original_sink=original_sink,
                    is_error_message=True)
    return Message(data=json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8"),
                   metadata=metadata, timestamp=message.timestamp, received_at=message.received_at)


class ErrorSinkError(Exception):
    """The error sink could not take the failed messages: the pipeline must stop unacknowledged."""


class ErrorSinkWriter:
    """Shared by every writer thread and the transform thread; one write at a time."""

    def __init__(self, sink: Sink, *, sink_type: str, ack_policy: str, original_sink: str,
                 metrics: ProcessorMetrics, connector_metrics: ConnectorMetrics,
                 retry_delays: tuple[float, ...] = (0.5, 1.0)) -> None:
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
        records = [error_record(failure, self.original_sink, now) for failure in failures]
        with self._lock:
            self._write_with_retry(records)
        with deferred_saves():
            for failure in failures:
                self.connector_metrics.written(failure.route).inc()
                if self.ack_policy == "afterWrite":
                    failure.message.acknowledge()
                else:
                    failure.message.ack = None  # the position stays put: re-read after a restart

    def _write_with_retry(self, records: list[Message]) -> None:
        pending = records
        for attempt in range(len(self.retry_delays) + 1):
            started = time.monotonic()
            try:
                failed = self.sink.write(pending)
            except Exception as exc:
                failed_errors: list[BaseException] = [exc]
                failed_messages = pending
            else:
                failed_errors = [f.error for f in failed]
                failed_messages = [f.message for f in failed]
            self._duration.observe(time.monotonic() - started)
            if not failed_messages:
                self._ok.inc()
                return
            self._error.inc()
            for error in failed_errors:
                error_type = classify(error)
                self.connector_metrics.error("write", error_type)
                self.metrics.stage_error("error_sink_write", error_type)
            retryable = all(is_retryable(error) for error in failed_errors)
            if not retryable or attempt == len(self.retry_delays):
                raise ErrorSinkError(
                    f"error sink ({self.sink_type}) could not write {len(failed_messages)} record(s): "
                    f"{failed_errors[0]}") from failed_errors[0]
            time.sleep(self.retry_delays[attempt])
            pending = failed_messages
