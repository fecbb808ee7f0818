"""Workers: result accounting, retries with backoff, boundary requeues, leadership terms, the work-queue
metrics; and the manager's throttled credential refresh."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

from prometheus_client import CollectorRegistry

from dataflow_operator.operator.controller import Controller, ReconcileResult
from dataflow_operator.operator.manager import _ThrottledRefresh
from dataflow_operator.operator.metrics import OperatorMetrics
from tests.processes import wait_for


def sample(metrics: OperatorMetrics, metric: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(metric, labels)
    return 0.0 if value is None else value


class Script:
    """A reconcile function returning scripted results per key, counting calls."""

    def __init__(self, results: dict[str, list[ReconcileResult]]) -> None:
        self.results = results
        self.calls: Counter[str] = Counter()
        self.lock = threading.Lock()

    def __call__(self, key: str) -> ReconcileResult:
        with self.lock:
            self.calls[key] += 1
            queue = self.results.get(key) or [ReconcileResult()]
            result = queue.pop(0) if len(queue) > 1 else queue[0]
        if result is BOOM:
            raise RuntimeError("bug")
        return result


BOOM = ReconcileResult(error=True)


def test_start_enqueues_every_key_and_counts_results() -> None:
    metrics = OperatorMetrics(CollectorRegistry())
    script = Script({"ns/retry": [ReconcileResult(error=True, retry=True), ReconcileResult()],
                     "ns/later": [ReconcileResult(requeue_after=0.05), ReconcileResult()],
                     "ns/bug": [BOOM, ReconcileResult()]})
    controller = Controller(script, workers=2, metrics=metrics, keys=lambda: ["ns/ok", "ns/retry", "ns/later",
                                                                              "ns/bug"])
    controller.start()
    try:
        wait_for(lambda: script.calls == Counter({"ns/ok": 1, "ns/retry": 2, "ns/later": 2, "ns/bug": 2}),
                 timeout=10, message="every key reconciled, retries and requeues included")
        assert sample(metrics, "dataflow_controller_reconcile_total", result="error") == 2
        assert sample(metrics, "dataflow_controller_reconcile_total", result="requeue") == 1
        assert sample(metrics, "dataflow_controller_reconcile_total", result="success") == 4
        assert sample(metrics, "dataflow_controller_reconcile_duration_seconds_count", result="success") == 4
        assert sample(metrics, "dataflow_controller_reconcile_inflight") == 0
        # Four keys, then one retry (rate-limited), one boundary requeue and one retry after a bug.
        assert sample(metrics, "workqueue_adds_total", name="dataflows") == 7
        assert sample(metrics, "workqueue_retries_total", name="dataflows") == 3
        assert sample(metrics, "workqueue_work_duration_seconds_count", name="dataflows") == 7
    finally:
        controller.stop()


def test_enqueue_between_terms_is_a_no_op_and_stop_clears_phases() -> None:
    metrics = OperatorMetrics(CollectorRegistry())
    script = Script({})
    controller = Controller(script, workers=1, metrics=metrics, keys=lambda: [])
    controller.enqueue("ns/a")
    assert controller.depth() == 0 and not controller.running()
    controller.start()
    controller.enqueue("ns/a")
    wait_for(lambda: script.calls["ns/a"] == 1, timeout=5, message="reconciled")
    metrics.set_phase("ns", "a", "Running")
    controller.stop()
    assert metrics.phases() == {}
    assert metrics.registry.get_sample_value("dataflow_status", {"namespace": "ns", "name": "a",
                                                                 "phase": "Running"}) is None
    controller.enqueue("ns/a")
    assert script.calls["ns/a"] == 1


def test_a_worker_that_is_no_longer_leader_touches_nothing() -> None:
    metrics = OperatorMetrics(CollectorRegistry())
    script = Script({})
    leading = threading.Event()
    controller = Controller(script, workers=1, metrics=metrics, keys=lambda: ["ns/a"], is_leader=leading.is_set)
    controller.start()
    try:
        wait_for(lambda: controller.depth() == 0, timeout=5, message="key taken")
        assert script.calls["ns/a"] == 0
        leading.set()
        controller.enqueue("ns/a")
        wait_for(lambda: script.calls["ns/a"] == 1, timeout=5, message="reconciled as leader")
    finally:
        controller.stop()


def test_depth_gauge_follows_the_queue() -> None:
    metrics = OperatorMetrics(CollectorRegistry())
    release = threading.Event()

    def slow(key: str) -> ReconcileResult:
        release.wait(5)
        return ReconcileResult()

    controller = Controller(slow, workers=1, metrics=metrics, keys=lambda: ["ns/a", "ns/b", "ns/c"])
    controller.start()
    try:
        wait_for(lambda: sample(metrics, "dataflow_controller_workqueue_depth") == 2, timeout=5, message="depth")
        assert sample(metrics, "dataflow_controller_reconcile_inflight") == 1
    finally:
        release.set()
        controller.stop()


def test_dataflow_status_is_one_hot_and_removed() -> None:
    metrics = OperatorMetrics(CollectorRegistry())
    metrics.set_phase("ns", "a", "Pending")
    metrics.set_phase("ns", "a", "Error")
    values = {phase: sample(metrics, "dataflow_status", namespace="ns", name="a", phase=phase)
              for phase in ("Pending", "Running", "Error", "Stopped")}
    assert values == {"Pending": 0.0, "Running": 0.0, "Error": 1.0, "Stopped": 0.0}
    metrics.forget("ns", "a")
    assert metrics.registry.get_sample_value("dataflow_status", {"namespace": "ns", "name": "a",
                                                                 "phase": "Error"}) is None


def test_stop_waits_for_the_reconcile_in_flight_and_skips_what_is_queued() -> None:
    metrics = OperatorMetrics(CollectorRegistry())
    started, release = threading.Event(), threading.Event()
    calls: list[str] = []

    def slow(key: str) -> ReconcileResult:
        calls.append(key)
        started.set()
        release.wait(10)
        return ReconcileResult()

    controller = Controller(slow, workers=1, metrics=metrics, keys=lambda: ["ns/a", "ns/b"], drain_timeout=10)
    controller.start()
    assert started.wait(10)
    stopper = threading.Thread(target=controller.stop)
    stopper.start()
    wait_for(lambda: not controller.running(), timeout=10, message="stop begun")
    assert stopper.is_alive(), "stop waits for the reconcile in flight"
    release.set()
    stopper.join(timeout=10)
    assert not stopper.is_alive()
    assert calls == ["ns/a"], "a key still queued at stop is not reconciled"
    assert sample(metrics, "workqueue_depth", name="dataflows") == 0
    assert sample(metrics, "workqueue_unfinished_work_seconds", name="dataflows") == 0


class Configuration:
    refresh_api_key_hook: Any = None


def test_throttled_refresh_runs_at_most_once_per_interval_and_survives_reinstalling() -> None:
    calls: list[int] = []

    def loader_hook(configuration: Any) -> None:
        calls.append(1)
        configuration.refresh_api_key_hook = loader_hook  # what kubernetes' kubeconfig loader does

    configuration = Configuration()
    throttled = _ThrottledRefresh(loader_hook, interval=3600)
    configuration.refresh_api_key_hook = throttled
    for _ in range(100):
        configuration.refresh_api_key_hook(configuration)
    assert len(calls) == 1
    assert configuration.refresh_api_key_hook is throttled
    eager = _ThrottledRefresh(loader_hook, interval=0)
    configuration.refresh_api_key_hook = eager
    for _ in range(3):
        configuration.refresh_api_key_hook(configuration)
    assert len(calls) == 4
