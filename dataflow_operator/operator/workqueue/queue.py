"""The base layer: a FIFO of keys, each handed to one worker at a time (client-go's ``queue.go``).

Shutdown always drains, bounded: new adds are refused, workers still get what is queued, and
:meth:`Queue.shutdown` waits up to its timeout for every item handed out to be ``done``; then
workers get ``None``. A controller that must stop promptly skips the items it gets once
:meth:`Queue.shutting_down` is true - that is cheap, and it keeps "in flight" well defined.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Hashable
from typing import Generic, Protocol, TypeVar

from .metrics import QueueMetrics

T = TypeVar("T", bound=Hashable)


class Interface(Protocol[T]):
    def add(self, item: T) -> None: ...

    def __len__(self) -> int:
        """Items waiting to be handed out."""

    def get(self) -> T | None:
        """The next item, blocking; ``None`` once shut down and drained."""

    def done(self, item: T) -> None:
        """The worker finished ``item``; an add that came meanwhile queues it again now."""

    def shutdown(self, timeout: float | None) -> bool:
        """Refuse new items and drain; True when every item handed out was done within ``timeout``."""

    def shutting_down(self) -> bool: ...


class Queue(Generic[T]):
    def __init__(self, metrics: QueueMetrics) -> None:
        self._metrics = metrics
        self._cond = threading.Condition()
        self._queue: deque[T] = deque()
        self._dirty: set[T] = set()
        self._processing: set[T] = set()
        self._shutting_down = False
        self._draining = False

    def add(self, item: T) -> None:
        with self._cond:
            if self._shutting_down or item in self._dirty:
                return
            self._metrics.add(item)
            self._dirty.add(item)
            if item in self._processing:
                return  # queued again by done()
            self._queue.append(item)
            self._cond.notify()

    def __len__(self) -> int:
        with self._cond:
            return len(self._queue)

    def get(self) -> T | None:
        with self._cond:
            while not self._queue and not (self._shutting_down and not self._waiting_for_requeue()):
                self._cond.wait()
            if not self._queue or (self._shutting_down and not self._draining):
                return None
            item = self._queue.popleft()
            self._metrics.get(item)
            self._processing.add(item)
            self._dirty.discard(item)
            return item

    def _waiting_for_requeue(self) -> bool:
        # While draining, an item still being processed may be queued again by done(), so a worker
        # that finds the queue empty waits for that instead of leaving.
        return self._draining and bool(self._processing)

    def done(self, item: T) -> None:
        with self._cond:
            self._metrics.done(item)
            self._processing.discard(item)
            if item in self._dirty:
                self._queue.append(item)
            self._cond.notify_all()

    def shutdown(self, timeout: float | None) -> bool:
        with self._cond:
            self._shutting_down = True
            self._draining = True
            self._cond.notify_all()
            drained = self._cond.wait_for(lambda: not self._queue and not self._processing, timeout)
            # Release workers still waiting for a re-queue that will not come (the timeout passed).
            self._draining = False
            self._cond.notify_all()
            return drained

    def shutting_down(self) -> bool:
        with self._cond:
            return self._shutting_down


class Wrapper(Generic[T]):
    """What Go's struct embedding gives client-go's layers: every :class:`Interface` method passes to
    the wrapped queue unless the layer defines its own."""

    def __init__(self, inner: Interface[T]) -> None:
        self._inner = inner

    def add(self, item: T) -> None:
        self._inner.add(item)

    def __len__(self) -> int:
        return len(self._inner)

    def get(self) -> T | None:
        return self._inner.get()

    def done(self, item: T) -> None:
        self._inner.done(item)

    def shutdown(self, timeout: float | None) -> bool:
        return self._inner.shutdown(timeout)

    def shutting_down(self) -> bool:
        return self._inner.shutting_down()
