"""client-go's work-queue metrics (``k8s.io/component-base/metrics/prometheus/workqueue``): the same
seven families, names, help texts, label and buckets, in the operator's registry.

The semantics follow client-go's ``defaultQueueMetrics``: an add that makes an item dirty counts in
``adds_total`` and ``depth`` and starts its queue-duration clock (an item already waiting keeps its
first add time); handing it to a worker ends that clock and starts its work clock; ``done`` observes
the work duration. ``retries_total`` counts every ``add_after`` (the delaying layer's retry hook).
client-go refreshes ``unfinished_work_seconds`` and ``longest_running_processor_seconds`` every
500 ms; here they are computed from the processing start times at each scrape, which is the same
quantity without the lag.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from .clock import Clock

# ExponentialBuckets(10e-9, 10, 10): 10 ns to 10 s.
DURATION_BUCKETS = (1e-08, 1e-07, 1e-06, 1e-05, 1e-04, 1e-03, 1e-02, 1e-01, 1.0, 10.0)


class WorkqueueMetrics:
    """The seven families; :meth:`for_queue` gives one queue's handle."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.depth = Gauge("workqueue_depth", "Current depth of workqueue", ["name"], registry=registry)
        self.adds = Counter("workqueue_adds_total", "Total number of adds handled by workqueue", ["name"],
                            registry=registry)
        self.latency = Histogram("workqueue_queue_duration_seconds",
                                 "How long in seconds an item stays in workqueue before being requested.",
                                 ["name"], buckets=DURATION_BUCKETS, registry=registry)
        self.work_duration = Histogram("workqueue_work_duration_seconds",
                                       "How long in seconds processing an item from workqueue takes.",
                                       ["name"], buckets=DURATION_BUCKETS, registry=registry)
        self.unfinished = Gauge("workqueue_unfinished_work_seconds",
                                "How many seconds of work has done that is in progress and hasn't been observed "
                                "by work_duration. Large values indicate stuck threads. One can deduce the number "
                                "of stuck threads by observing the rate at which this increases.",
                                ["name"], registry=registry)
        self.longest = Gauge("workqueue_longest_running_processor_seconds",
                             "How many seconds has the longest running processor for workqueue been running.",
                             ["name"], registry=registry)
        self.retries = Counter("workqueue_retries_total", "Total number of retries handled by workqueue",
                               ["name"], registry=registry)

    def for_queue(self, name: str, clock: Clock) -> QueueMetrics:
        """A fresh handle for queue ``name``; the gauges follow the newest handle of that name, so a
        queue made for a new leadership term replaces the last term's."""
        return QueueMetrics(self, name, clock)


class QueueMetrics:
    """One queue's metrics; the queue calls :meth:`add`, :meth:`get` and :meth:`done` under its own lock,
    the delaying layer :meth:`retry`."""

    def __init__(self, families: WorkqueueMetrics, name: str, clock: Clock) -> None:
        self._clock = clock
        self._adds = families.adds.labels(name)
        self._latency = families.latency.labels(name)
        self._work_duration = families.work_duration.labels(name)
        self._retries = families.retries.labels(name)
        self._depth = 0
        self._add_times: dict[Hashable, float] = {}
        self._processing_since: dict[Hashable, float] = {}
        self._lock = threading.Lock()
        families.depth.labels(name).set_function(self._current_depth)
        families.unfinished.labels(name).set_function(self._unfinished_work)
        families.longest.labels(name).set_function(self._longest_running)

    def add(self, item: Hashable) -> None:
        self._adds.inc()
        with self._lock:
            self._depth += 1
            self._add_times.setdefault(item, self._clock.now())

    def get(self, item: Hashable) -> None:
        with self._lock:
            now = self._clock.now()
            self._depth -= 1
            self._processing_since[item] = now
            added = self._add_times.pop(item, None)
        if added is not None:
            self._latency.observe(now - added)

    def done(self, item: Hashable) -> None:
        with self._lock:
            started = self._processing_since.pop(item, None)
        if started is not None:
            self._work_duration.observe(self._clock.now() - started)

    def retry(self) -> None:
        self._retries.inc()

    def _current_depth(self) -> float:
        with self._lock:
            return float(self._depth)

    def _ages(self) -> list[float]:
        with self._lock:
            now = self._clock.now()
            return [now - started for started in self._processing_since.values()]

    def _unfinished_work(self) -> float:
        return sum(self._ages())

    def _longest_running(self) -> float:
        return max(self._ages(), default=0.0)
