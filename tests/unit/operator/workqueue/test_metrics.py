"""client-go's seven work-queue families, read back from the exposition after a scripted sequence on
a fake clock: names, types, the ``name`` label, the buckets, and what each value means."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from dataflow_operator.operator.workqueue.metrics import WorkqueueMetrics
from dataflow_operator.operator.workqueue.rate_limiters import ItemExponentialFailureRateLimiter
from dataflow_operator.operator.workqueue.rate_limiting import RateLimitingQueue, new_rate_limiting_queue
from tests.unit.operator.workqueue.fake_clock import FakeClock

# k8s.io/component-base/metrics/prometheus/workqueue: ExponentialBuckets(10e-9, 10, 10).
CLIENT_GO_BUCKETS = ["1e-08", "1e-07", "1e-06", "1e-05", "0.0001", "0.001", "0.01", "0.1", "1.0", "10.0",
                     "+Inf"]
FAMILIES = {
    "workqueue_depth": "gauge",
    "workqueue_adds": "counter",
    "workqueue_queue_duration_seconds": "histogram",
    "workqueue_work_duration_seconds": "histogram",
    "workqueue_retries": "counter",
    "workqueue_unfinished_work_seconds": "gauge",
    "workqueue_longest_running_processor_seconds": "gauge",
}


class Exposition:
    def __init__(self, registry: CollectorRegistry) -> None:
        text = generate_latest(registry).decode()
        self.types: dict[str, str] = {}
        self.samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        for family in text_string_to_metric_families(text):
            self.types[family.name] = family.type
            for sample in family.samples:
                self.samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value

    def value(self, name: str, **labels: str) -> float:
        return self.samples[(name, tuple(sorted({"name": "dataflows", **labels}.items())))]

    def buckets(self, family: str) -> list[str]:
        return [dict(labels)["le"] for name, labels in self.samples if name == f"{family}_bucket"]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def queue(clock: FakeClock, registry: CollectorRegistry) -> Iterator[RateLimitingQueue[str]]:
    limiter = ItemExponentialFailureRateLimiter[str](base_delay=1.0, max_delay=60.0)
    rate_limited = new_rate_limiting_queue("dataflows", limiter, WorkqueueMetrics(registry), clock)
    yield rate_limited
    rate_limited.shutdown(0.0)


def test_all_seven_families_after_a_scripted_sequence(queue: RateLimitingQueue[str], clock: FakeClock,
                                                      registry: CollectorRegistry) -> None:
    queue.add("a")
    queue.add("b")
    queue.add("a")              # already queued: not an add
    clock.advance(0.002)
    assert queue.get() == "a"   # waited 2 ms
    queue.add("a")              # dirty again while processing: an add, and depth counts it
    clock.advance(3.0)
    assert queue.get() == "b"   # waited 3.002 s
    clock.advance(0.5)

    during = Exposition(registry)
    assert during.value("workqueue_depth") == 1, "a, re-added while processing"
    assert during.value("workqueue_unfinished_work_seconds") == pytest.approx(3.5 + 0.5)
    assert during.value("workqueue_longest_running_processor_seconds") == pytest.approx(3.5)

    queue.done("a")             # worked 3.5 s; queued again at once
    queue.done("b")             # worked 0.5 s
    assert queue.get() == "a"   # waited 3.5 s since its add during processing
    queue.done("a")             # worked 0 s
    queue.add_rate_limited("a")  # a retry, due in 1 s
    queue.add_after("c", 0)     # a retry with no delay: added at once
    clock.step(1.0)
    assert len(queue) == 2

    after = Exposition(registry)
    assert {family: after.types[family] for family in FAMILIES} == FAMILIES
    assert after.value("workqueue_depth") == 2
    assert after.value("workqueue_adds_total") == 5
    assert after.value("workqueue_retries_total") == 2
    assert after.value("workqueue_unfinished_work_seconds") == 0
    assert after.value("workqueue_longest_running_processor_seconds") == 0
    assert after.value("workqueue_queue_duration_seconds_count") == 3
    assert after.value("workqueue_queue_duration_seconds_sum") == pytest.approx(0.002 + 3.002 + 3.5)
    assert after.value("workqueue_queue_duration_seconds_bucket", le="0.01") == 1
    assert after.value("workqueue_queue_duration_seconds_bucket", le="10.0") == 3
    assert after.value("workqueue_work_duration_seconds_count") == 3
    assert after.value("workqueue_work_duration_seconds_sum") == pytest.approx(3.5 + 0.5 + 0.0)
    assert after.value("workqueue_work_duration_seconds_bucket", le="1e-08") == 1
    assert after.value("workqueue_work_duration_seconds_bucket", le="1.0") == 2
    for family in ("workqueue_queue_duration_seconds", "workqueue_work_duration_seconds"):
        assert after.buckets(family) == CLIENT_GO_BUCKETS


def test_a_new_queue_of_the_same_name_takes_over_the_gauges(clock: FakeClock, registry: CollectorRegistry) -> None:
    families = WorkqueueMetrics(registry)
    first = families.for_queue("dataflows", clock)
    first.add("a")
    first.add("b")
    first.get("a")
    second = families.for_queue("dataflows", clock)  # the next leadership term's queue
    second.add("c")
    exposition = Exposition(registry)
    assert exposition.value("workqueue_depth") == 1
    assert exposition.value("workqueue_unfinished_work_seconds") == 0
    assert exposition.value("workqueue_adds_total") == 3, "counters keep counting across queues"
