"""Reconciler workers: N threads over a rate-limited work queue, one leadership term at a time.

:meth:`Controller.start` (on becoming leader) makes a fresh queue, enqueues every DataFlow in the
cache and starts the workers; :meth:`Controller.stop` (on losing the lease, or shutting down) shuts
the queue down and waits, bounded, for the reconciles in flight; keys still queued are handed out
and skipped, since a worker touches nothing once the queue is shutting down. Informer
handlers call :meth:`Controller.enqueue` at any time; between terms it is a no-op, since the next
term enqueues everything anyway.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .metrics import OperatorMetrics
from .workqueue.clock import RealClock
from .workqueue.rate_limiters import default_controller_rate_limiter
from .workqueue.rate_limiting import RateLimitingQueue, new_rate_limiting_queue

log = logging.getLogger(__name__)

QUEUE_NAME = "dataflows"  # the work-queue metrics' ``name`` label


@dataclass(frozen=True, slots=True)
class ReconcileResult:
    error: bool = False                 # the reconcile failed (counted as result="error")
    retry: bool = False                 # requeue with the key's backoff
    requeue_after: float | None = None  # requeue after this many seconds (e.g. a maintenance boundary)


class Controller:
    def __init__(self, reconcile: Callable[[str], ReconcileResult], *, workers: int, metrics: OperatorMetrics,
                 keys: Callable[[], Iterable[str]], is_leader: Callable[[], bool] = lambda: True,
                 drain_timeout: float = 5.0) -> None:
        if workers < 1:
            raise ValueError("at least one worker is required")
        self._reconcile = reconcile
        self._workers = workers
        self._metrics = metrics
        self._keys = keys
        self._is_leader = is_leader
        self._drain_timeout = drain_timeout
        self._lock = threading.Lock()
        self._queue: RateLimitingQueue[str] | None = None
        self._threads: list[threading.Thread] = []
        metrics.watch_depth(self.depth)

    def _current(self) -> RateLimitingQueue[str] | None:
        with self._lock:
            return self._queue

    def depth(self) -> int:
        queue = self._current()
        return len(queue) if queue is not None else 0

    def enqueue(self, key: str) -> None:
        queue = self._current()
        if queue is not None:
            queue.add(key)

    def running(self) -> bool:
        return self._current() is not None

    def start(self) -> None:
        with self._lock:
            if self._queue is not None:
                return
            queue: RateLimitingQueue[str] = new_rate_limiting_queue(
                QUEUE_NAME, default_controller_rate_limiter(), self._metrics.workqueue, RealClock())
            self._queue = queue
            self._threads = [threading.Thread(target=self._work, args=(queue,), name=f"reconcile-{index}",
                                              daemon=True) for index in range(self._workers)]
        for key in self._keys():
            queue.add(key)
        for thread in self._threads:
            thread.start()
        log.info("reconcile workers started", extra={"workers": self._workers})

    def stop(self) -> None:
        with self._lock:
            queue, self._queue = self._queue, None
            threads, self._threads = self._threads, []
        if queue is None:
            return
        deadline = time.monotonic() + self._drain_timeout
        queue.shutdown(self._drain_timeout)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        still_running = sum(thread.is_alive() for thread in threads)
        if still_running:
            log.warning("reconciles still running after stop", extra={"count": still_running})
        # Only the leader reports phases; a stale one-hot series would be counted twice.
        self._metrics.forget_all()
        log.info("reconcile workers stopped")

    def _work(self, queue: RateLimitingQueue[str]) -> None:
        while (key := queue.get()) is not None:
            try:
                self._process(queue, key)
            finally:
                queue.done(key)

    def _process(self, queue: RateLimitingQueue[str], key: str) -> None:
        if queue.shutting_down() or not self._is_leader():
            return  # leadership is ending: touch nothing
        metrics = self._metrics
        metrics.inflight.inc()
        started = time.perf_counter()
        try:
            result = self._reconcile(key)
        except Exception:
            log.exception("reconcile failed unexpectedly", extra={"key": key})
            result = ReconcileResult(error=True, retry=True)
        finally:
            metrics.inflight.dec()
        label = "error" if result.error else "requeue" if result.requeue_after is not None else "success"
        metrics.reconcile_total.labels(label).inc()
        metrics.reconcile_duration.labels(label).observe(time.perf_counter() - started)
        if result.retry:
            queue.add_rate_limited(key)
            return
        queue.forget(key)
        if result.requeue_after is not None:
            queue.add_after(key, result.requeue_after)
