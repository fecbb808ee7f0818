"""A bounded queue of message chunks whose capacity counts messages, not chunks.

Chunks amortise the per-item cost of a Python queue (lock, condition, wake-up) over many messages,
while ``channelBufferSize`` keeps its meaning: at most that many messages wait in one queue (a
single chunk larger than the capacity is admitted into an empty queue, so nothing deadlocks).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

from ..pipeline.message import Message
from ..pipeline.metrics import Gauge, Histogram


@dataclass(slots=True)
class Chunk:
    messages: list[Message]
    enqueued_at: float


class ChunkQueue:
    def __init__(self, capacity: int, size_gauge: Gauge, *wait_histograms: Histogram) -> None:
        self.capacity = capacity
        self._chunks: deque[Chunk] = deque()
        self._size = 0
        self._closed = False
        self._lock = threading.Lock()
        self._not_empty = threading.Condition(self._lock)
        self._not_full = threading.Condition(self._lock)
        self._size_gauge = size_gauge
        self._waits = wait_histograms

    def put(self, messages: list[Message]) -> None:
        """Blocks while the queue is full. Putting into a closed queue is a programming error."""
        if not messages:
            return
        with self._not_full:
            while self._size and self._size + len(messages) > self.capacity and not self._closed:
                self._not_full.wait()
            if self._closed:
                raise RuntimeError("put on a closed queue")
            self._chunks.append(Chunk(messages, time.monotonic()))
            self._size += len(messages)
            self._size_gauge.set(self._size)
            self._not_empty.notify()

    def get(self, max_messages: int, timeout: float | None) -> list[Message] | None:
        """Up to ``max_messages`` (whole chunks are split if needed); ``[]`` on timeout, ``None``
        once the queue is closed and empty."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._not_empty:
            while not self._chunks:
                if self._closed:
                    return None
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return []
                self._not_empty.wait(remaining)
            taken: list[Message] = []
            now = time.monotonic()
            while self._chunks and len(taken) < max_messages:
                chunk = self._chunks[0]
                room = max_messages - len(taken)
                if len(chunk.messages) <= room:
                    self._chunks.popleft()
                    part = chunk.messages
                else:
                    part, chunk.messages = chunk.messages[:room], chunk.messages[room:]
                taken.extend(part)
                for histogram in self._waits:
                    histogram.observe(now - chunk.enqueued_at, len(part))
            self._size -= len(taken)
            self._size_gauge.set(self._size)
            self._not_full.notify_all()
            return taken

    def close(self) -> None:
        """No more puts; getters drain what is left and then see ``None``."""
        with self._lock:
            self._closed = True
            self._not_empty.notify_all()
            self._not_full.notify_all()

    def __len__(self) -> int:
        return self._size
