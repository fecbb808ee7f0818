"""How long a failed item waits (client-go's ``default_rate_limiters.go``): per-item exponential
backoff, an overall token bucket, and the larger of several; composed as client-go's
``DefaultControllerRateLimiter``."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, Protocol, TypeVar

T = TypeVar("T", bound=Hashable)
T_contra = TypeVar("T_contra", bound=Hashable, contravariant=True)

DEFAULT_BASE_DELAY = 0.005
DEFAULT_MAX_DELAY = 1000.0
DEFAULT_QPS = 10.0
DEFAULT_BURST = 100


class RateLimiter(Protocol[T_contra]):
    def when(self, item: T_contra) -> float:
        """Seconds to wait before ``item`` may be processed again (and count this failure)."""

    def forget(self, item: T_contra) -> None:
        """Stop tracking ``item`` (it succeeded)."""


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


class BucketRateLimiter(Generic[T]):
    """A token bucket with golang.org/x/time/rate reservation semantics: every call takes a token,
    possibly borrowed from the future, and returns how long until that token exists."""

    def __init__(self, qps: float = DEFAULT_QPS, burst: int = DEFAULT_BURST,
                 now: Callable[[], float] = time.monotonic) -> None:
        if qps <= 0 or burst < 1:
            raise ValueError("qps must be positive and burst at least 1")
        self.qps = qps
        self.burst = burst
        self._now = now
        self._tokens = float(burst)
        self._last = now()
        self._lock = threading.Lock()

    def when(self, item: T) -> float:
        with self._lock:
            now = self._now()
            self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.qps)
            self._last = now
            self._tokens -= 1.0
            return 0.0 if self._tokens >= 0 else -self._tokens / self.qps

    def forget(self, item: T) -> None:
        """The bucket is shared by all items; there is nothing per item to forget."""


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


def default_controller_rate_limiter(now: Callable[[], float] = time.monotonic) -> MaxOfRateLimiter[str]:
    """client-go's ``DefaultControllerRateLimiter``: 5 ms..1000 s per key, 10 qps / burst 100 overall."""
    return MaxOfRateLimiter[str](ItemExponentialFailureRateLimiter[str](),
                                 BucketRateLimiter[str](DEFAULT_QPS, DEFAULT_BURST, now))
