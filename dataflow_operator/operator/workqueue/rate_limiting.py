"""The rate-limiting layer (client-go's ``rate_limiting_queue.go``): failures wait as long as a
:class:`~.rate_limiters.RateLimiter` says, on top of any :class:`DelayingInterface`."""

from __future__ import annotations

from collections.abc import Hashable
from typing import TypeVar

from .clock import Clock
from .delaying import DelayingInterface, DelayingQueue
from .metrics import WorkqueueMetrics
from .queue import Queue, Wrapper
from .rate_limiters import RateLimiter

T = TypeVar("T", bound=Hashable)


class RateLimitingQueue(Wrapper[T]):
    def __init__(self, inner: DelayingInterface[T], rate_limiter: RateLimiter[T]) -> None:
        super().__init__(inner)
        self._delaying = inner
        self._limiter = rate_limiter

    def add_after(self, item: T, delay: float) -> None:
        self._delaying.add_after(item, delay)

    def add_rate_limited(self, item: T) -> None:
        """Add ``item`` once the rate limiter allows it (a failure: its backoff grows)."""
        self._delaying.add_after(item, self._limiter.when(item))

    def forget(self, item: T) -> None:
        """``item`` succeeded: reset its backoff (it is not removed from the queue)."""
        self._limiter.forget(item)


def new_rate_limiting_queue(name: str, rate_limiter: RateLimiter[T], metrics: WorkqueueMetrics,
                            clock: Clock) -> RateLimitingQueue[T]:
    """The three layers stacked, reporting as ``name`` (client-go's ``NewRateLimitingQueueWithConfig``)."""
    handle = metrics.for_queue(name, clock)
    return RateLimitingQueue(DelayingQueue(Queue(handle), handle, clock), rate_limiter)
