"""Acknowledgement countdowns and contiguous positions: the at-least-once core."""

from __future__ import annotations

import random
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dataflow_operator.pipeline.message import AckCountdown, Message
from dataflow_operator.pipeline.positions import ContiguousTracker


def test_parent_fires_only_after_every_child() -> None:
    fired: list[int] = []
    countdown = AckCountdown(lambda: fired.append(1), 3)
    countdown.done()
    countdown.done()
    assert fired == []
    countdown.done()
    assert fired == [1]


def test_zero_children_fires_at_once() -> None:
    fired: list[int] = []
    AckCountdown(lambda: fired.append(1), 0)
    assert fired == [1]


def test_too_many_acks_is_an_error() -> None:
    countdown = AckCountdown(lambda: None, 1)
    countdown.done()
    with pytest.raises(RuntimeError):
        countdown.done()


def test_concurrent_children_fire_the_parent_exactly_once() -> None:
    fired: list[int] = []
    countdown = AckCountdown(lambda: fired.append(1), 400)
    threads = [threading.Thread(target=lambda: [countdown.done() for _ in range(100)]) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert fired == [1]


def test_message_acknowledge_is_idempotent() -> None:
    fired: list[int] = []
    message = Message(b"{}", ack=lambda: fired.append(1))
    message.acknowledge()
    message.acknowledge()
    assert fired == [1]


def test_derived_messages_copy_metadata_and_keep_the_ack() -> None:
    parent = Message(b"{}", {"k": "v"}, ack=lambda: None)
    child = parent.derive(b"[]")
    child.metadata["k"] = "changed"
    assert parent.metadata == {"k": "v"}
    assert child.ack is parent.ack and child.timestamp == parent.timestamp


def test_position_advances_only_over_contiguous_acks() -> None:
    tracker: ContiguousTracker[int] = ContiguousTracker()
    tickets = [tracker.issue(offset) for offset in (10, 20, 30, 40)]
    assert tracker.ack(tickets[1]) is None
    assert tracker.ack(tickets[2]) is None
    assert tracker.ack(tickets[0]) == 30
    assert tracker.ack(tickets[3]) == 40
    assert tracker.pending() == 0


@given(st.permutations(list(range(30))))
def test_committed_position_never_passes_an_unacknowledged_one(order: list[int]) -> None:
    tracker: ContiguousTracker[int] = ContiguousTracker()
    tickets = [tracker.issue(i) for i in range(30)]
    acked: set[int] = set()
    committed = -1
    for index in order:
        acked.add(index)
        advanced = tracker.ack(tickets[index])
        if advanced is not None:
            committed = advanced
        assert all(i in acked for i in range(committed + 1))
    assert committed == 29


def test_acks_from_many_threads_end_at_the_last_position() -> None:
    tracker: ContiguousTracker[int] = ContiguousTracker()
    tickets = [tracker.issue(i) for i in range(2000)]
    random.Random(3).shuffle(tickets)
    results: list[int] = []
    lock = threading.Lock()

    def ack(part: list[int]) -> None:
        for ticket in part:
            advanced = tracker.ack(ticket)
            if advanced is not None:
                with lock:
                    results.append(advanced)

    threads = [threading.Thread(target=ack, args=(tickets[i::4],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert max(results) == 1999
