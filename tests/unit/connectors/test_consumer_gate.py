"""ConsumerGate: a waiting commit goes before the reader's next turn."""

from __future__ import annotations

import threading

from dataflow_operator.connectors.kafka.gate import ConsumerGate
from tests.processes import wait_for


def test_a_waiting_commit_goes_before_the_next_read() -> None:
    gate = ConsumerGate()
    order: list[str] = []
    reading = threading.Event()
    release_reader = threading.Event()

    def reader() -> None:
        with gate.reader_turn():
            reading.set()
            release_reader.wait(10)
            order.append("read 1")
        with gate.reader_turn():  # asked for right away, yet the commit waiting goes first
            order.append("read 2")

    def committer() -> None:
        with gate.commit_turn():
            order.append("commit")

    reader_thread = threading.Thread(target=reader)
    reader_thread.start()
    assert reading.wait(10)
    commit_thread = threading.Thread(target=committer)
    commit_thread.start()
    wait_for(lambda: gate._waiting_commits == 1, 10, message="the commit waiting")
    release_reader.set()
    for thread in (reader_thread, commit_thread):
        thread.join(10)
    assert order == ["read 1", "commit", "read 2"]
