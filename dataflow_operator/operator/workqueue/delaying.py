"""The delaying layer (client-go's ``delaying_queue.go``): ``add_after`` on top of any :class:`Interface`."""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Hashable
from typing import Generic, Protocol, TypeVar

from .clock import Clock
from .metrics import QueueMetrics
from .queue import Interface, Wrapper

T = TypeVar("T", bound=Hashable)

# client-go's delaying queue wakes at least this often, so a clock that jumps is noticed.
MAX_WAIT = 10.0


class DelayingInterface(Interface[T], Protocol[T]):
    def add_after(self, item: T, delay: float) -> None:
        """Add ``item`` after ``delay`` seconds; an item already waiting keeps the earlier time."""


class _Waiting(Generic[T]):
    """Items not yet due, by ready time; one entry per item (the earliest time wins)."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, T]] = []
        self._ready_at: dict[T, float] = {}
        self._sequence = itertools.count()

    def schedule(self, item: T, ready: float) -> None:
        current = self._ready_at.get(item)
        if current is not None and current <= ready:
            return
        self._ready_at[item] = ready
        heapq.heappush(self._heap, (ready, next(self._sequence), item))

    def pop_due(self, now: float) -> list[T]:
        due: list[T] = []
        while self._heap and self._heap[0][0] <= now:
            ready, _, item = heapq.heappop(self._heap)
            if self._ready_at.get(item) == ready:  # else superseded by an earlier time for the same item
                del self._ready_at[item]
                due.append(item)
        return due

    def next_ready(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def clear(self) -> None:
        self._heap.clear()
        self._ready_at.clear()


class DelayingQueue(Wrapper[T]):
    def __init__(self, inner: Interface[T], metrics: QueueMetrics, clock: Clock) -> None:
        super().__init__(inner)
        self._metrics = metrics
        self._clock = clock
        self._cond = threading.Condition()
        self._waiting: _Waiting[T] = _Waiting()
        self._stopped = False
        self._waiter = threading.Thread(target=self._wait_loop, name="workqueue-delay", daemon=True)
        self._waiter.start()

    def add_after(self, item: T, delay: float) -> None:
        if self.shutting_down():
            return
        self._metrics.retry()
        if delay <= 0:
            self.add(item)
            return
        with self._cond:
            self._waiting.schedule(item, self._clock.now() + delay)
            self._cond.notify()

    def shutdown(self, timeout: float | None) -> bool:
        with self._cond:
            self._stopped = True
            self._waiting.clear()
            self._cond.notify_all()
        return super().shutdown(timeout)

    def _wait_loop(self) -> None:
        # Lock order is always this layer's condition -> the inner queue's (add).
        with self._cond:
            while not self._stopped:
                now = self._clock.now()
                for item in self._waiting.pop_due(now):
                    self.add(item)
                ready = self._waiting.next_ready()
                self._clock.wait(self._cond, MAX_WAIT if ready is None else min(ready - now, MAX_WAIT))
