"""The operator's own metrics, in the operator's registry (never the process-global one).

``dataflow_status`` is one-hot over the four phases (DESIGN.md decision 1): each DataFlow has a
series per phase, 1 for the current one; all four disappear when the DataFlow does.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from .status import PHASES
from .workqueue.metrics import WorkqueueMetrics

RESULTS = ("success", "error", "requeue")
STAGES = ("validate", "secrets", "resources", "deployment", "status")
# controller-runtime's reconcile-time buckets, so dashboards written for Go operators read the same.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7,
                    0.8, 0.9, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 6.0, 7.0, 8.0, 9.0,
                    10.0, 15.0, 20.0, 25.0, 30.0, 40.0, 50.0, 60.0)


class OperatorMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.status = Gauge("dataflow_status", "DataFlow phase, one-hot: 1 for the current phase, 0 for the others",
                            ["namespace", "name", "phase"], registry=registry)
        self.reconcile_total = Counter("dataflow_controller_reconcile_total", "Reconciles by result",
                                       ["result"], registry=registry)
        self.reconcile_duration = Histogram("dataflow_controller_reconcile_duration_seconds",
                                            "Time to reconcile one DataFlow", ["result"],
                                            buckets=DURATION_BUCKETS, registry=registry)
        self.reconcile_errors = Counter("dataflow_controller_reconcile_errors_total",
                                        "Reconcile failures by the stage that failed", ["stage"],
                                        registry=registry)
        self.inflight = Gauge("dataflow_controller_reconcile_inflight", "Reconciles running now",
                              registry=registry)
        self.workqueue_depth = Gauge("dataflow_controller_workqueue_depth",
                                     "DataFlow keys waiting in the work queue", registry=registry)
        self.workqueue = WorkqueueMetrics(registry)
        # Every label value exists from the start, so rate() and alerts see a 0 before the first event.
        for result in RESULTS:
            self.reconcile_total.labels(result)
            self.reconcile_duration.labels(result)
        for stage in STAGES:
            self.reconcile_errors.labels(stage)
        self._phases: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()

    def watch_depth(self, depth: Callable[[], int]) -> None:
        self.workqueue_depth.set_function(lambda: float(depth()))

    def set_phase(self, namespace: str, name: str, phase: str) -> None:
        with self._lock:
            if self._phases.get((namespace, name)) == phase:
                return
            self._phases[(namespace, name)] = phase
            for candidate in PHASES:
                self.status.labels(namespace, name, candidate).set(1.0 if candidate == phase else 0.0)

    def forget(self, namespace: str, name: str) -> None:
        """The DataFlow is gone: its series vanish."""
        with self._lock:
            if self._phases.pop((namespace, name), None) is None:
                return
            for candidate in PHASES:
                self.status.remove(namespace, name, candidate)

    def forget_all(self) -> None:
        """Leadership ended: only the leader reports DataFlow phases."""
        with self._lock:
            self._phases.clear()
            self.status.clear()

    def phases(self) -> dict[tuple[str, str], str]:
        with self._lock:
            return dict(self._phases)
