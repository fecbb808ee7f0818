"""The work queue: dedup, processing set, rate limiters, delaying layer, shutdown, and concurrency."""

from __future__ import annotations

import random
import threading
import time

import pytest

from dataflow_operator.operator.workqueue import (
    BucketRateLimiter,
    DelayingQueue,
    ItemExponentialFailureRateLimiter,
    MaxOfRateLimiter,
    Queue,
    RateLimitingQueue,
    default_controller_rate_limiter,
)
from tests.processes import wait_for


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --------------------------------------------------------------------------------------------------
# Queue


def test_queue_is_fifo_and_deduplicates() -> None:
    queue: Queue[str] = Queue()
    for key in ("a", "b", "a", "c", "b"):
        queue.add(key)
    assert len(queue) == 3
    assert [queue.get(), queue.get(), queue.get()] == ["a", "b", "c"]
    assert len(queue) == 0


def test_add_while_processing_is_requeued_once_on_done() -> None:
    queue: Queue[str] = Queue()
    queue.add("a")
    assert queue.get() == "a"
    queue.add("a")
    queue.add("a")
    assert len(queue) == 0, "an item being processed must not be handed to another worker"
    queue.done("a")
    assert len(queue) == 1
    assert queue.get() == "a"
    queue.done("a")
    assert len(queue) == 0


def test_done_without_new_add_does_not_requeue() -> None:
    queue: Queue[str] = Queue()
    queue.add("a")
    assert queue.get() == "a"
    queue.done("a")
    assert len(queue) == 0
    assert queue.processing() == 0


def test_shutdown_returns_none_promptly_even_with_items_queued() -> None:
    queue: Queue[str] = Queue()
    queue.add("a")
    queue.add("b")
    queue.shutdown()
    assert queue.get() is None
    queue.add("c")
    assert len(queue) == 2, "adds after shutdown are refused"


def test_shutdown_wakes_blocked_getters() -> None:
    queue: Queue[str] = Queue()
    results: list[str | None] = []
    workers = [threading.Thread(target=lambda: results.append(queue.get())) for _ in range(4)]
    for worker in workers:
        worker.start()
    queue.shutdown()
    for worker in workers:
        worker.join(timeout=5)
        assert not worker.is_alive()
    assert results == [None] * 4


def test_shutdown_with_drain_hands_out_queued_and_requeued_items() -> None:
    queue: Queue[str] = Queue()
    for key in ("a", "b"):
        queue.add(key)
    assert queue.get() == "a"
    queue.add("a")  # dirty while processing: must still be processed during the drain
    processed: list[str] = []

    def worker() -> None:
        while (item := queue.get()) is not None:
            processed.append(item)
            queue.done(item)

    thread = threading.Thread(target=worker)
    thread.start()
    drained: list[bool] = []
    drainer = threading.Thread(target=lambda: drained.append(queue.shutdown_with_drain(timeout=10)))
    drainer.start()
    queue.done("a")
    drainer.join(timeout=10)
    thread.join(timeout=10)
    assert drained == [True]
    assert sorted(processed) == ["a", "b"]


def test_shutdown_with_drain_times_out_on_a_stuck_item() -> None:
    queue: Queue[str] = Queue()
    queue.add("a")
    assert queue.get() == "a"
    started = time.monotonic()
    assert queue.shutdown_with_drain(timeout=0.2) is False
    assert time.monotonic() - started < 5


# --------------------------------------------------------------------------------------------------
# Rate limiters


def test_item_exponential_backoff_doubles_from_5ms_to_1000s_per_item() -> None:
    limiter = ItemExponentialFailureRateLimiter[str]()
    delays = [limiter.when("a") for _ in range(20)]
    assert delays[:4] == [0.005, 0.01, 0.02, 0.04]
    assert delays[17] == pytest.approx(0.005 * 2 ** 17)
    assert delays[18] == 1000.0, "capped at 1000 s"
    assert limiter.when("b") == 0.005, "backoff is per item"
    assert limiter.num_requeues("a") == 20
    limiter.forget("a")
    assert limiter.num_requeues("a") == 0
    assert limiter.when("a") == 0.005


def test_item_exponential_backoff_does_not_overflow() -> None:
    limiter = ItemExponentialFailureRateLimiter[str]()
    for _ in range(2000):
        delay = limiter.when("a")
    assert delay == 1000.0


def test_bucket_allows_burst_then_paces_at_qps() -> None:
    clock = FakeClock()
    bucket = BucketRateLimiter[str](qps=10, burst=100, clock=clock)
    assert [bucket.when("x") for _ in range(100)] == [0.0] * 100
    assert bucket.when("x") == pytest.approx(0.1)
    assert bucket.when("y") == pytest.approx(0.2), "tokens are borrowed from the future, shared by all items"
    clock.now += 0.3
    assert bucket.when("z") == pytest.approx(0.0, abs=1e-9)
    clock.now += 100
    assert [bucket.when("x") for _ in range(100)] == [0.0] * 100, "refills to at most burst"
    assert bucket.when("x") > 0


def test_max_of_takes_the_longest_delay_and_forgets_everywhere() -> None:
    clock = FakeClock()
    per_item = ItemExponentialFailureRateLimiter[str](base_delay=1.0, max_delay=100.0)
    bucket = BucketRateLimiter[str](qps=1, burst=1, clock=clock)
    limiter = MaxOfRateLimiter[str](per_item, bucket)
    assert limiter.when("a") == 1.0  # per item 1 s, bucket 0
    assert limiter.when("a") == 2.0  # per item 2 s, bucket 1 s
    assert limiter.num_requeues("a") == 2
    limiter.forget("a")
    assert limiter.num_requeues("a") == 0


def test_default_controller_rate_limiter_matches_client_go() -> None:
    clock = FakeClock()
    limiter = default_controller_rate_limiter(clock)
    assert limiter.when("a") == 0.005
    assert limiter.when("a") == 0.01
    # 98 more tokens of the burst are left; then the overall 10 qps dominates a fresh key's 5 ms.
    for index in range(98):
        limiter.when(f"k{index}")
    assert limiter.when("fresh") == pytest.approx(0.1)


# --------------------------------------------------------------------------------------------------
# Delaying layer


def test_add_after_delivers_after_the_delay() -> None:
    queue: DelayingQueue[str] = DelayingQueue()
    try:
        started = time.monotonic()
        queue.add_after("a", 0.2)
        assert len(queue) == 0
        assert "a" in queue.waiting()
        assert queue.get() == "a"
        assert time.monotonic() - started >= 0.2
    finally:
        queue.shutdown()


def test_add_after_keeps_the_earliest_time_and_orders_by_readiness() -> None:
    queue: DelayingQueue[str] = DelayingQueue()
    try:
        queue.add_after("late", 0.4)
        queue.add_after("early", 0.1)
        queue.add_after("late", 5.0)  # later than the pending one: ignored
        queue.add_after("late", 0.2)  # earlier: wins
        assert queue.waiting()["late"] < queue.waiting()["early"] + 0.2
        assert queue.get() == "early"
        assert queue.get() == "late"
        assert queue.waiting() == {}
    finally:
        queue.shutdown()


def test_add_after_with_zero_delay_adds_at_once_and_dedups_with_add() -> None:
    queue: DelayingQueue[str] = DelayingQueue()
    try:
        queue.add("a")
        queue.add_after("a", 0)
        assert len(queue) == 1
    finally:
        queue.shutdown()


def test_add_after_on_a_shut_down_queue_is_ignored() -> None:
    queue: DelayingQueue[str] = DelayingQueue()
    queue.shutdown()
    queue.add_after("a", 0.01)
    assert queue.waiting() == {}
    assert queue.get() is None


def test_rate_limiting_queue_backs_off_and_forgets() -> None:
    queue: RateLimitingQueue[str] = RateLimitingQueue(ItemExponentialFailureRateLimiter[str](0.05, 1.0))
    try:
        queue.add_rate_limited("a")
        assert queue.num_requeues("a") == 1
        assert queue.get() == "a"
        queue.done("a")
        started = time.monotonic()
        queue.add_rate_limited("a")  # 100 ms now
        assert queue.get() == "a"
        assert time.monotonic() - started >= 0.1
        queue.forget("a")
        assert queue.num_requeues("a") == 0
    finally:
        queue.shutdown()


# --------------------------------------------------------------------------------------------------
# Concurrency


def test_many_producers_and_workers_never_process_a_key_twice_at_once_and_lose_nothing() -> None:
    # Short backoffs keep the run quick; the limiter's arithmetic is tested above.
    queue: RateLimitingQueue[str] = RateLimitingQueue(ItemExponentialFailureRateLimiter[str](0.001, 0.01))
    keys = [f"ns/df-{index}" for index in range(50)]
    sequence = iter(range(10 ** 9))
    sequence_lock = threading.Lock()
    last_add: dict[str, int] = {}
    last_start: dict[str, int] = {}
    in_progress: set[str] = set()
    state_lock = threading.Lock()
    violations: list[str] = []

    def tick() -> int:
        with sequence_lock:
            return next(sequence)

    def producer(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(2000):
            key = rng.choice(keys)
            # Record the add before it happens: a worker may start on it immediately.
            with state_lock:
                last_add[key] = tick()
            if rng.random() < 0.1:
                queue.add_after(key, rng.random() * 0.01)
            else:
                queue.add(key)

    def worker() -> None:
        rng = random.Random()
        while (key := queue.get()) is not None:
            with state_lock:
                if key in in_progress:
                    violations.append(key)
                in_progress.add(key)
                last_start[key] = tick()
            if rng.random() < 0.3:
                time.sleep(0.0005)
            with state_lock:
                in_progress.discard(key)
            if rng.random() < 0.05:
                queue.add_rate_limited(key)
            else:
                queue.forget(key)
            queue.done(key)

    workers = [threading.Thread(target=worker) for _ in range(8)]
    producers = [threading.Thread(target=producer, args=(seed,)) for seed in range(8)]
    for thread in workers + producers:
        thread.start()
    for thread in producers:
        thread.join(timeout=60)
    # Let delayed and rate-limited re-adds land, then drain everything that is left.
    wait_for(lambda: not queue.waiting() and len(queue) == 0 and queue.processing() == 0, timeout=30,
             message="queue idle")
    assert queue.shutdown_with_drain(timeout=30)
    for thread in workers:
        thread.join(timeout=10)
        assert not thread.is_alive()

    assert violations == [], f"keys processed by two workers at once: {violations[:5]}"
    for key, added in last_add.items():
        assert last_start.get(key, -1) > added, f"{key} was added after its last processing started"
