"""The delaying layer over a real base queue, on a fake clock: nothing sleeps."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dataflow_operator.operator.workqueue.delaying import MAX_WAIT, DelayingQueue
from dataflow_operator.operator.workqueue.queue import Queue
from tests.unit.operator.workqueue.fake_clock import FakeClock, queue_metrics


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def queue(clock: FakeClock) -> Iterator[DelayingQueue[str]]:
    metrics = queue_metrics(clock)
    delaying: DelayingQueue[str] = DelayingQueue(Queue(metrics), metrics, clock)
    yield delaying
    delaying.shutdown(0.0)


def test_add_after_delivers_once_the_delay_has_passed(queue: DelayingQueue[str], clock: FakeClock) -> None:
    queue.add_after("a", 5.0)
    clock.step(4.9)
    assert len(queue) == 0
    clock.step(0.1)
    assert len(queue) == 1
    assert queue.get() == "a"


def test_the_earliest_time_wins_and_items_come_in_readiness_order(queue: DelayingQueue[str],
                                                                   clock: FakeClock) -> None:
    queue.add_after("late", 4.0)
    queue.add_after("early", 1.0)
    queue.add_after("late", 50.0)  # later than the pending one: ignored
    queue.add_after("late", 2.0)   # earlier: wins
    clock.step(1.0)
    assert len(queue) == 1 and queue.get() == "early"
    clock.step(1.0)
    assert len(queue) == 1 and queue.get() == "late"
    clock.step(10.0)
    assert len(queue) == 0, "the superseded entry is not delivered a second time"


def test_a_long_delay_survives_the_periodic_wake_up(queue: DelayingQueue[str], clock: FakeClock) -> None:
    queue.add_after("a", 3 * MAX_WAIT)
    clock.step(MAX_WAIT)
    clock.step(MAX_WAIT)
    assert len(queue) == 0
    clock.step(MAX_WAIT)
    assert queue.get() == "a"


def test_add_after_with_no_delay_adds_at_once_and_dedups_with_add(queue: DelayingQueue[str]) -> None:
    queue.add("a")
    queue.add_after("a", 0)
    queue.add_after("b", -1.0)
    assert len(queue) == 2


def test_add_after_on_a_shut_down_queue_is_ignored(queue: DelayingQueue[str], clock: FakeClock) -> None:
    queue.add_after("a", 1.0)
    assert queue.shutdown(0.0) is True, "a waiting item is dropped, not drained"
    queue.add_after("b", 0)
    assert len(queue) == 0
    assert queue.get() is None
