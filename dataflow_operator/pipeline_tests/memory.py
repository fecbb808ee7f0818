"""In-memory stand-ins for a DataFlow's declared source and sinks, so that a pipeline test runs the
real engine — transformations, routes, the error sink, acknowledgements — with no Kafka, database or
file behind it."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar

from ..pipeline.connector import BatchLimits, ConnectorContext, Sink, Source, WriteFailure
from ..pipeline.message import Message


class MemorySource(Source):
    """Hands the test's input to the pipeline as one chunk, then is exhausted (the pipeline drains
    and ends). Counts the acknowledgements, so the runner can tell that nothing was left behind."""

    type_name: ClassVar[str] = "memory"

    def __init__(self, messages: Sequence[tuple[bytes, Mapping[str, Any]]], timestamp: datetime | None,
                 context: ConnectorContext) -> None:
        super().__init__(context)
        self._messages = messages
        self._timestamp = timestamp
        self._lock = threading.Lock()
        self.acknowledged = 0

    def connect(self) -> None:
        pass

    def _ack(self) -> None:
        with self._lock:
            self.acknowledged += 1

    def read(self) -> Iterator[list[Message]]:
        chunk = []
        for data, metadata in self._messages:
            message = Message(data=data, metadata=dict(metadata), ack=self._ack)
            if self._timestamp is not None:
                message.timestamp = self._timestamp
            chunk.append(message)
        if chunk:
            yield chunk

    def close(self) -> None:
        pass


class MemorySink(Sink):
    """Keeps what it is given, in order."""

    type_name: ClassVar[str] = "memory"

    def __init__(self, context: ConnectorContext) -> None:
        super().__init__(context)
        self.written: list[Message] = []
        self._lock = threading.Lock()

    def connect(self) -> None:
        pass

    def batch_limits(self) -> BatchLimits:
        return BatchLimits(max_messages=500, max_wait_seconds=None)

    def write(self, batch: list[Message]) -> list[WriteFailure]:
        with self._lock:
            self.written.extend(batch)
        return []

    def close(self) -> None:
        pass
