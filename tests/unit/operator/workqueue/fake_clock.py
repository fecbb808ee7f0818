"""A fake clock for the work queue, after k8s.io/utils/clock/testing: time moves only by
:meth:`FakeClock.step`, which returns once every waiter has woken and waited again - so whatever the
step made due has been handed on by then, and a test never sleeps."""

from __future__ import annotations

import threading

from prometheus_client import CollectorRegistry

from dataflow_operator.operator.workqueue.metrics import QueueMetrics, WorkqueueMetrics

SETTLE_TIMEOUT = 10.0  # real seconds; only reached when the code under test is broken


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self._now = start
        self._lock = threading.Condition()
        self._waiters: set[threading.Condition] = set()
        self._waits = 0

    def now(self) -> float:
        with self._lock:
            return self._now

    def wait(self, condition: threading.Condition, timeout: float) -> None:
        # The caller holds ``condition``; registering under it means step() can only acquire it while
        # this waiter is inside condition.wait().
        with self._lock:
            self._waiters.add(condition)
            self._waits += 1
            self._lock.notify_all()
        condition.wait()  # fake time: only a notify or a step ends the wait
        with self._lock:
            self._waiters.discard(condition)

    def advance(self, seconds: float) -> None:
        """Move time without waking anyone (for code that only reads the clock)."""
        with self._lock:
            self._now += seconds

    def step(self, seconds: float) -> None:
        """Move time and let every waiter act on it before returning."""
        with self._lock:
            self._now += seconds
            if not self._lock.wait_for(lambda: self._waiters, SETTLE_TIMEOUT):
                raise AssertionError("nothing waits on the clock")
            waiters = list(self._waiters)
        for condition in waiters:
            with condition:
                with self._lock:
                    if condition not in self._waiters:
                        continue
                    before = self._waits
                condition.notify_all()
            self._wait_again(before)

    def _wait_again(self, waits: int) -> None:
        with self._lock:
            if not self._lock.wait_for(lambda: self._waits > waits, SETTLE_TIMEOUT):
                raise AssertionError("a waiter did not wait again after the step")


def queue_metrics(clock: FakeClock, name: str = "test") -> QueueMetrics:
    return WorkqueueMetrics(CollectorRegistry()).for_queue(name, clock)
