"""The rate-limiting layer over the delaying layer, on a fake clock."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry

from dataflow_operator.operator.workqueue.metrics import WorkqueueMetrics
from dataflow_operator.operator.workqueue.rate_limiters import ItemExponentialFailureRateLimiter
from dataflow_operator.operator.workqueue.rate_limiting import RateLimitingQueue, new_rate_limiting_queue
from tests.unit.operator.workqueue.fake_clock import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def queue(clock: FakeClock) -> Iterator[RateLimitingQueue[str]]:
    limiter = ItemExponentialFailureRateLimiter[str](base_delay=1.0, max_delay=4.0)
    rate_limited = new_rate_limiting_queue("test", limiter, WorkqueueMetrics(CollectorRegistry()), clock)
    yield rate_limited
    rate_limited.shutdown(0.0)


def delivered_after(queue: RateLimitingQueue[str], clock: FakeClock, item: str, seconds: float) -> None:
    """``item`` is queued exactly ``seconds`` after now (in whole seconds), not a second earlier."""
    clock.step(seconds - 1)
    assert len(queue) == 0, f"{item} delivered before {seconds} s"
    clock.step(1)
    assert len(queue) == 1 and queue.get() == item
    queue.done(item)


def test_failures_back_off_exponentially_until_forgotten(queue: RateLimitingQueue[str], clock: FakeClock) -> None:
    queue.add_rate_limited("a")
    delivered_after(queue, clock, "a", 1)
    queue.add_rate_limited("a")
    delivered_after(queue, clock, "a", 2)
    queue.add_rate_limited("a")
    delivered_after(queue, clock, "a", 4)
    queue.add_rate_limited("a")
    delivered_after(queue, clock, "a", 4)  # capped
    queue.forget("a")
    queue.add_rate_limited("a")
    delivered_after(queue, clock, "a", 1)


def test_add_after_passes_to_the_delaying_layer(queue: RateLimitingQueue[str], clock: FakeClock) -> None:
    queue.add_after("b", 3.0)
    delivered_after(queue, clock, "b", 3)
    queue.add("c")
    assert queue.get() == "c"
