"""The base layer: dedup, the processing set, and the bounded draining shutdown."""

from __future__ import annotations

import threading

from dataflow_operator.operator.workqueue.queue import Queue
from tests.processes import wait_for
from tests.unit.operator.workqueue.fake_clock import FakeClock, queue_metrics


def new_queue() -> Queue[str]:
    return Queue(queue_metrics(FakeClock()))


def test_queue_is_fifo_and_deduplicates() -> None:
    queue = new_queue()
    for key in ("a", "b", "a", "c", "b"):
        queue.add(key)
    assert len(queue) == 3
    assert [queue.get(), queue.get(), queue.get()] == ["a", "b", "c"]
    assert len(queue) == 0


def test_add_while_processing_is_requeued_once_on_done() -> None:
    queue = new_queue()
    queue.add("a")
    assert queue.get() == "a"
    queue.add("a")
    queue.add("a")
    assert len(queue) == 0, "an item being processed must not be handed to another worker"
    queue.done("a")
    assert len(queue) == 1
    assert queue.get() == "a"
    queue.done("a")
    assert len(queue) == 0, "done without a new add does not queue again"
    assert queue.shutdown(0.0) is True, "nothing queued or in flight: drained at once"


def test_shutdown_refuses_adds_and_hands_out_what_is_queued() -> None:
    queue = new_queue()
    queue.add("a")
    queue.add("b")
    handed: list[str | None] = []

    def worker() -> None:
        while (item := queue.get()) is not None:
            handed.append(item)
            queue.done(item)
        handed.append(None)

    thread = threading.Thread(target=worker)
    assert queue.shutdown(0.0) is False, "two items still queued"
    queue.add("c")
    thread.start()
    thread.join(timeout=10)
    assert handed == [None], "after the drain timeout, workers get None at once"
    assert queue.shutting_down()


def test_shutdown_wakes_blocked_getters() -> None:
    queue = new_queue()
    results: list[str | None] = []
    workers = [threading.Thread(target=lambda: results.append(queue.get())) for _ in range(4)]
    for worker in workers:
        worker.start()
    assert queue.shutdown(None) is True
    for worker in workers:
        worker.join(timeout=10)
        assert not worker.is_alive()
    assert results == [None] * 4


def test_shutdown_drains_queued_and_requeued_items() -> None:
    queue = new_queue()
    for key in ("a", "b"):
        queue.add(key)
    assert queue.get() == "a"
    queue.add("a")  # dirty while processing: must still be processed during the drain
    drained: list[bool] = []
    drainer = threading.Thread(target=lambda: drained.append(queue.shutdown(None)))
    drainer.start()
    wait_for(queue.shutting_down, timeout=10, message="shutdown begun")
    processed: list[str] = []
    queue.done("a")
    while (item := queue.get()) is not None:
        processed.append(item)
        queue.done(item)
    drainer.join(timeout=10)
    assert drained == [True]
    assert sorted(processed) == ["a", "b"]


def test_shutdown_gives_up_on_a_stuck_item_after_its_timeout() -> None:
    queue = new_queue()
    queue.add("a")
    assert queue.get() == "a"
    assert queue.shutdown(0.0) is False
    assert queue.get() is None
