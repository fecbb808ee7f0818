"""The base queue's invariants against a model, over generated sequences of adds, hand-outs, dones and
a final draining shutdown; then the same invariants under real threads.

- An item is never handed out while it is being processed.
- An item added while processing is queued again exactly once, on ``done``.
- The queue is FIFO over distinct items, and ``workqueue_depth`` counts the dirty items (client-go).
- Shutdown refuses adds and drains: every queued or re-queued item is handed out exactly once,
  then workers get ``None``.
"""

from __future__ import annotations

import random
import threading
import time

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from prometheus_client import CollectorRegistry

from dataflow_operator.operator.workqueue.metrics import WorkqueueMetrics
from dataflow_operator.operator.workqueue.queue import Queue
from tests.unit.operator.workqueue.fake_clock import FakeClock

ITEMS = st.sampled_from("abcde")


class QueueModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.registry = CollectorRegistry()
        self.queue: Queue[str] = Queue(WorkqueueMetrics(self.registry).for_queue("model", FakeClock()))
        self.queued: list[str] = []
        self.dirty: set[str] = set()
        self.processing: set[str] = set()
        self.shut = False

    @rule(item=ITEMS)
    def add(self, item: str) -> None:
        self.queue.add(item)
        if self.shut or item in self.dirty:
            return
        self.dirty.add(item)
        if item not in self.processing:
            self.queued.append(item)

    @precondition(lambda self: self.queued and not self.shut)
    @rule()
    def get(self) -> None:
        item = self.queue.get()
        assert item == self.queued.pop(0)
        assert item not in self.processing, f"{item} handed out while being processed"
        self.processing.add(item)
        self.dirty.discard(item)

    @precondition(lambda self: self.processing and not self.shut)
    @rule(data=st.data())
    def done(self, data: st.DataObject) -> None:
        item = data.draw(st.sampled_from(sorted(self.processing)))
        self.queue.done(item)
        self._done(item)

    def _done(self, item: str) -> None:
        self.processing.discard(item)
        if item in self.dirty:
            assert item not in self.queued
            self.queued.append(item)

    @precondition(lambda self: not self.shut)
    @rule()
    def shutdown_drains(self) -> None:
        drained: list[bool] = []
        shutter = threading.Thread(target=lambda: drained.append(self.queue.shutdown(None)))
        shutter.start()
        while not self.queue.shutting_down():
            time.sleep(0)  # yield to the shutter thread
        self.queue.add("refused")
        for item in sorted(self.processing):
            self.queue.done(item)
            self._done(item)
        handed: list[str] = []
        while (next_item := self.queue.get()) is not None:
            handed.append(next_item)
            self.queue.done(next_item)
        shutter.join(timeout=10)
        assert drained == [True]
        assert handed == self.queued, "the drain hands out exactly what was queued, once each, in order"
        assert self.queue.get() is None
        self.queued, self.dirty, self.shut = [], set(), True

    @invariant()
    def lengths_match(self) -> None:
        assert len(self.queue) == len(self.queued)
        depth = self.registry.get_sample_value("workqueue_depth", {"name": "model"})
        assert depth == len(self.dirty)


TestQueueModel = QueueModel.TestCase
TestQueueModel.settings = settings(max_examples=100, stateful_step_count=30, deadline=None)


def test_many_producers_and_workers_never_process_an_item_twice_at_once_and_lose_nothing() -> None:
    queue: Queue[str] = Queue(WorkqueueMetrics(CollectorRegistry()).for_queue("threads", FakeClock()))
    keys = [f"ns/df-{index}" for index in range(50)]
    sequence = iter(range(10 ** 9))
    last_add: dict[str, int] = {}
    last_start: dict[str, int] = {}
    in_progress: set[str] = set()
    state_lock = threading.Lock()
    violations: list[str] = []

    def producer(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(2000):
            key = rng.choice(keys)
            # Record the add before it happens: a worker may start on it immediately.
            with state_lock:
                last_add[key] = next(sequence)
            queue.add(key)

    def worker() -> None:
        while (key := queue.get()) is not None:
            with state_lock:
                if key in in_progress:
                    violations.append(key)
                in_progress.add(key)
                last_start[key] = next(sequence)
            time.sleep(0)  # yield, so another worker may run while this one holds the key
            with state_lock:
                in_progress.discard(key)
            queue.done(key)

    workers = [threading.Thread(target=worker) for _ in range(8)]
    producers = [threading.Thread(target=producer, args=(seed,)) for seed in range(8)]
    for thread in workers + producers:
        thread.start()
    for thread in producers:
        thread.join(timeout=60)
    assert queue.shutdown(30)
    for thread in workers:
        thread.join(timeout=10)
        assert not thread.is_alive()

    assert violations == [], f"keys processed by two workers at once: {violations[:5]}"
    for key, added in last_add.items():
        assert last_start.get(key, -1) > added, f"{key} was added after its last processing started"
