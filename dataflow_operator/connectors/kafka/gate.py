"""Turns for the one consumer handle: the reader's ``consume()`` and the committer's ``commit()``.

confluent-kafka serialises calls on a consumer: a ``commit()`` from another thread waits until the
running ``consume()`` returns, and a reader that calls ``consume()`` back to back starves it for
ever (measured with confluent-kafka 2.16). So calls take turns here, and a waiting commit always goes
before the reader's next consume: a commit waits at most one consume timeout.

Rebalance callbacks run inside ``consume()``/``close()``, on the thread that holds the turn; they use
the consumer directly and must never ask for a turn.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class ConsumerGate:
    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._busy = False
        self._waiting_commits = 0

    @contextmanager
    def reader_turn(self) -> Iterator[None]:
        with self._condition:
            while self._busy or self._waiting_commits:
                self._condition.wait()
            self._busy = True
        try:
            yield
        finally:
            self._release()

    @contextmanager
    def commit_turn(self) -> Iterator[None]:
        with self._condition:
            self._waiting_commits += 1
            try:
                while self._busy:
                    self._condition.wait()
            finally:
                self._waiting_commits -= 1
            self._busy = True
        try:
            yield
        finally:
            self._release()

    def _release(self) -> None:
        with self._condition:
            self._busy = False
            self._condition.notify_all()
