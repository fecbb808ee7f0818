"""A client-go style work queue, in three layers as client-go separates them.

- :class:`Queue`: FIFO of keys with a *dirty* set (an item queued twice is queued once) and a
  *processing* set (an item handed to a worker is not handed to another until :meth:`Queue.done`;
  adds in between are remembered and the item is queued again on ``done``).
- :class:`DelayingQueue`: adds :meth:`DelayingQueue.add_after` - a heap of (ready time, item) and one
  thread that waits on a Condition until the earliest entry is due.
- :class:`RateLimitingQueue`: adds :meth:`RateLimitingQueue.add_rate_limited` /
  :meth:`RateLimitingQueue.forget`, delegating *how long* to a :class:`RateLimiter`.

Rate limiters compose like client-go's: per-item exponential backoff (5 ms doubling to 1000 s) and
an overall token bucket (10 qps, burst 100), combined by taking the larger delay.

One deliberate difference from client-go: after :meth:`Queue.shutdown` workers get ``None`` at once
instead of draining what is queued - a leader that lost its lease must stop promptly, and the next
leader relists everything anyway. :meth:`Queue.shutdown_with_drain` keeps client-go's drain semantics.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from typing import Generic, Protocol, TypeVar

T = TypeVar("T", bound=Hashable)
T_contra = TypeVar("T_contra", bound=Hashable, contravariant=True)
Clock = Callable[[], float]

DEFAULT_BASE_DELAY = 0.005
DEFAULT_MAX_DELAY = 1000.0
DEFAULT_QPS = 10.0
DEFAULT_BURST = 100
# client-go's delaying queue wakes at least this often, so a clock that jumps is noticed.
MAX_WAIT = 10.0


class RateLimiter(Protocol[T_contra]):
    def when(self, item: T_contra) -> float:
        """Seconds to wait before ``item`` may be processed again (and count this failure)."""

    def forget(self, item: T_contra) -> None:
        """Stop tracking ``item`` (it succeeded)."""

    def num_requeues(self, item: T_contra) -> int:
        """Failures counted for ``item`` since it was last forgotten."""


class ItemExponentialFailureRateLimiter(Generic[T]):
    """``base * 2**failures``, capped at ``max_delay``; per item."""

    def __init__(self, base_delay: float = DEFAULT_BASE_DELAY, max_delay: float = DEFAULT_MAX_DELAY) -> None:
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._failures: dict[T, int] = {}
        self._lock = threading.Lock()

    def when(self, item: T) -> float:
        with self._lock:
            exponent = self._failures.get(item, 0)
            self._failures[item] = exponent + 1
        # 2**exponent overflows a float past ~1024; the cap is reached long before that.
        if exponent >= 64:
            return self.max_delay
        return float(min(self.base_delay * 2 ** exponent, self.max_delay))

    def forget(self, item: T) -> None:
        with self._lock:
            self._failures.pop(item, None)

    def num_requeues(self, item: T) -> int:
        with self._lock:
            return self._failures.get(item, 0)


class BucketRateLimiter(Generic[T]):
    """A token bucket with golang.org/x/time/rate reservation semantics: every call takes a token,
    possibly borrowed from the future, and returns how long until that token exists."""

    def __init__(self, qps: float = DEFAULT_QPS, burst: int = DEFAULT_BURST,
                 clock: Clock = time.monotonic) -> None:
        if qps <= 0 or burst < 1:
            raise ValueError("qps must be positive and burst at least 1")
        self.qps = qps
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock()
        self._lock = threading.Lock()

    def when(self, item: T) -> float:
        with self._lock:
            now = self._clock()
            self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.qps)
            self._last = now
            self._tokens -= 1.0
            return 0.0 if self._tokens >= 0 else -self._tokens / self.qps

    def forget(self, item: T) -> None:
        """The bucket is shared by all items; there is nothing per item to forget."""

    def num_requeues(self, item: T) -> int:
        return 0


class MaxOfRateLimiter(Generic[T]):
    """The longest delay of its limiters; every limiter sees every call."""

    def __init__(self, *limiters: RateLimiter[T]) -> None:
        if not limiters:
            raise ValueError("at least one rate limiter is required")
        self._limiters = limiters

    def when(self, item: T) -> float:
        return max(limiter.when(item) for limiter in self._limiters)

    def forget(self, item: T) -> None:
        for limiter in self._limiters:
            limiter.forget(item)

    def num_requeues(self, item: T) -> int:
        return max(limiter.num_requeues(item) for limiter in self._limiters)


def default_controller_rate_limiter(clock: Clock = time.monotonic) -> MaxOfRateLimiter[str]:
    """client-go's ``DefaultControllerRateLimiter``: 5 ms..1000 s per key, 10 qps / burst 100 overall."""
    return MaxOfRateLimiter[str](ItemExponentialFailureRateLimiter[str](),
                                 BucketRateLimiter[str](DEFAULT_QPS, DEFAULT_BURST, clock))


class Queue(Generic[T]):
    def __init__(self) -> None:
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
            self._dirty.add(item)
            if item in self._processing:
                return  # queued again by done()
            self._queue.append(item)
            self._cond.notify()

    def __len__(self) -> int:
        """Items waiting to be handed out (the work-queue depth)."""
        with self._cond:
            return len(self._queue)

    def get(self) -> T | None:
        """The next item, blocking; ``None`` once the queue is shut down (see the module docstring)."""
        with self._cond:
            while not self._queue and not (self._shutting_down and not self._waiting_for_drain()):
                self._cond.wait()
            if not self._queue or (self._shutting_down and not self._draining):
                return None
            item = self._queue.popleft()
            self._processing.add(item)
            self._dirty.discard(item)
            return item

    def _waiting_for_drain(self) -> bool:
        # While draining, an item still being processed may be queued again by done(), so a worker
        # that finds the queue empty waits for that instead of leaving.
        return self._draining and bool(self._processing)

    def done(self, item: T) -> None:
        with self._cond:
            self._processing.discard(item)
            if item in self._dirty:
                self._queue.append(item)
            self._cond.notify_all()

    def shutdown(self) -> None:
        """Refuse new items; workers get ``None`` from now on (in-flight items may still call done)."""
        with self._cond:
            self._shutting_down = True
            self._cond.notify_all()

    def shutdown_with_drain(self, timeout: float | None = None) -> bool:
        """Refuse new items, let workers finish everything queued and in flight; True when drained
        within ``timeout``."""
        with self._cond:
            self._shutting_down = True
            self._draining = True
            self._cond.notify_all()
            drained = self._cond.wait_for(lambda: not self._queue and not self._processing, timeout)
            # Wake workers still waiting for a re-queue that will not come.
            self._draining = False
            self._cond.notify_all()
            return drained

    def shutting_down(self) -> bool:
        with self._cond:
            return self._shutting_down

    def processing(self) -> int:
        with self._cond:
            return len(self._processing)


class DelayingQueue(Queue[T]):
    def __init__(self, clock: Clock = time.monotonic) -> None:
        super().__init__()
        self._clock = clock
        self._waiting_cond = threading.Condition()
        self._heap: list[tuple[float, int, T]] = []
        self._ready_at: dict[T, float] = {}
        self._sequence = itertools.count()
        self._stopped = False
        self._waiter = threading.Thread(target=self._wait_loop, name="workqueue-delay", daemon=True)
        self._waiter.start()

    def add_after(self, item: T, delay: float) -> None:
        """Add ``item`` after ``delay`` seconds; an item already waiting keeps the earlier time."""
        if self.shutting_down():
            return
        if delay <= 0:
            self.add(item)
            return
        ready = self._clock() + delay
        with self._waiting_cond:
            current = self._ready_at.get(item)
            if current is not None and current <= ready:
                return
            self._ready_at[item] = ready
            heapq.heappush(self._heap, (ready, next(self._sequence), item))
            self._waiting_cond.notify()

    def waiting(self) -> dict[T, float]:
        """Items waiting for their delay, with the clock time at which each becomes due."""
        with self._waiting_cond:
            return dict(self._ready_at)

    def _wait_loop(self) -> None:
        # Lock order is always waiting_cond -> the queue's cond (add); shutdown takes them one at a time.
        with self._waiting_cond:
            while not self._stopped:
                now = self._clock()
                while self._heap and self._heap[0][0] <= now:
                    ready, _, item = heapq.heappop(self._heap)
                    if self._ready_at.get(item) != ready:
                        continue  # superseded by an earlier add_after for the same item
                    del self._ready_at[item]
                    self.add(item)
                timeout = min(self._heap[0][0] - now, MAX_WAIT) if self._heap else MAX_WAIT
                self._waiting_cond.wait(timeout)

    def _stop_waiter(self) -> None:
        with self._waiting_cond:
            self._stopped = True
            self._heap.clear()
            self._ready_at.clear()
            self._waiting_cond.notify_all()

    def shutdown(self) -> None:
        super().shutdown()
        self._stop_waiter()

    def shutdown_with_drain(self, timeout: float | None = None) -> bool:
        self._stop_waiter()
        return super().shutdown_with_drain(timeout)


class RateLimitingQueue(DelayingQueue[T]):
    def __init__(self, rate_limiter: RateLimiter[T], clock: Clock = time.monotonic) -> None:
        super().__init__(clock)
        self._limiter = rate_limiter

    def add_rate_limited(self, item: T) -> None:
        """Add ``item`` once the rate limiter allows it (a failure: its backoff grows)."""
        self.add_after(item, self._limiter.when(item))

    def forget(self, item: T) -> None:
        """``item`` succeeded: reset its backoff (it is not removed from the queue)."""
        self._limiter.forget(item)

    def num_requeues(self, item: T) -> int:
        return self._limiter.num_requeues(item)
