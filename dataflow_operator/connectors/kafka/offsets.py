"""Which offsets may be committed: per owned partition, the end of the contiguously acknowledged run.

Every message read is issued a ticket in its partition's :class:`ContiguousTracker`; an ack moves the
partition's committable offset (last contiguous offset + 1, Kafka's "next to read"). A partition
that is revoked gets a new :class:`PartitionLedger` if it comes back, so acks of messages read under
the old assignment land in a dead ledger and can never commit into a partition owned by someone else.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ...pipeline.positions import ContiguousTracker

TopicPartition = tuple[str, int]


class PartitionLedger:
    __slots__ = ("active", "committable", "committed", "key", "tracker")
    # committable: last contiguously acknowledged offset + 1; committed: last offset committed or sent

    def __init__(self, key: TopicPartition) -> None:
        self.key = key
        self.tracker: ContiguousTracker[int] = ContiguousTracker()
        self.committable: int | None = None
        self.committed: int | None = None
        self.active = True


@dataclass(frozen=True, slots=True)
class Commit:
    ledger: PartitionLedger
    offset: int  # the next offset to read, as Kafka stores it

    @property
    def topic(self) -> str:
        return self.ledger.key[0]

    @property
    def partition(self) -> int:
        return self.ledger.key[1]


class OffsetLedger:
    """Thread-safe: issued by the reader, acknowledged by writer threads, drained by the committer."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._partitions: dict[TopicPartition, PartitionLedger] = {}
        self._version = 0  # bumped on every ack that makes something newly committable

    @property
    def version(self) -> int:
        return self._version

    def assign(self, partitions: Iterable[TopicPartition]) -> None:
        with self._lock:
            for key in partitions:
                current = self._partitions.get(key)
                if current is None or not current.active:
                    self._partitions[key] = PartitionLedger(key)

    def wait_acknowledged(self, partitions: Iterable[TopicPartition], *, quiet: float, limit: float,
                          clock: Callable[[], float] = time.monotonic,
                          sleep: Callable[[float], None] = time.sleep) -> bool:
        """Wait until every message read from ``partitions`` is acknowledged; give up when no
        acknowledgement came for ``quiet`` seconds (a message held by a failing sink, or one that
        ``ackPolicy: never`` keeps) or after ``limit`` seconds. True when nothing is left."""
        with self._lock:
            ledgers = [self._partitions[key] for key in partitions if key in self._partitions]
        started = last_change = clock()
        left = sum(ledger.tracker.pending() for ledger in ledgers)
        while left:
            now = clock()
            if now - last_change >= quiet or now - started >= limit:
                return False
            sleep(0.01)
            still = sum(ledger.tracker.pending() for ledger in ledgers)
            if still != left:
                left, last_change = still, clock()
        return True

    def revoke(self, partitions: Iterable[TopicPartition]) -> list[Commit]:
        """Stop tracking ``partitions``; returns what was acknowledged and not yet committed."""
        with self._lock:
            commits = []
            for key in partitions:
                ledger = self._partitions.pop(key, None)
                if ledger is None:
                    continue
                ledger.active = False
                if ledger.committable is not None and ledger.committable != ledger.committed:
                    commits.append(Commit(ledger, ledger.committable))
            return commits

    def owns_partitions(self) -> bool:
        return bool(self._partitions)

    def issue(self, topic: str, partition: int, offset: int) -> tuple[PartitionLedger, int] | None:
        """A ticket for a message just read; ``None`` when its partition is not (or no longer) ours."""
        ledger = self._partitions.get((topic, partition))
        if ledger is None:
            return None
        return ledger, ledger.tracker.issue(offset)

    def ack(self, ledger: PartitionLedger, ticket: int) -> int | None:
        """Acknowledge one message; the ledger version to wait for when an offset became committable."""
        offset = ledger.tracker.ack(ticket)
        if offset is None:
            return None
        with self._lock:
            if not ledger.active:
                return None
            ledger.committable = offset + 1
            self._version += 1
            return self._version

    def pending(self) -> tuple[list[Commit], int]:
        """What to commit now, and the version it covers."""
        with self._lock:
            commits = [Commit(ledger, ledger.committable) for ledger in self._partitions.values()
                       if ledger.committable is not None and ledger.committable != ledger.committed]
            return commits, self._version

    def mark_committed(self, commits: Iterable[Commit]) -> None:
        """``commits`` were committed, or sent asynchronously (then :meth:`commit_failed` undoes it)."""
        with self._lock:
            for commit in commits:
                ledger = commit.ledger
                if ledger.committed is None or commit.offset > ledger.committed:
                    ledger.committed = commit.offset

    def commit_failed(self, partitions: Iterable[TopicPartition]) -> None:
        """An asynchronous commit of ``partitions`` failed: offer their offsets again."""
        with self._lock:
            for key in partitions:
                ledger = self._partitions.get(key)
                if ledger is not None:
                    ledger.committed = None
