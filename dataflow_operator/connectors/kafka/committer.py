"""Commits acknowledged offsets from a thread of its own.

Why not the reader thread: the reader spends backpressure suspended inside the engine's queue put, so
commits made there would stall exactly when the pipeline is slow, and with ``ackGranularity:
message`` (the ack waits for its commit) writer and reader would wait on each other for ever.

Calls into the consumer take turns (:class:`~.gate.ConsumerGate`), so a commit must never block for
long: a synchronous commit while the coordinator is unreachable blocks ~45 s (until librdkafka gives
up with ``_WAIT_COORD``), freezing the reader and the error/statistics callbacks it serves.

* ``batch`` granularity: asynchronous commits. One is sent as soon as an ack makes an offset
  committable (at least ``min_spacing`` apart); its result arrives through ``on_commit`` in the
  reader's ``consume()``, and a failure offers the offsets again. A crash re-reads little more than
  the batch being written — far less than the reference's 1 s auto-commit interval.
* ``message`` granularity: synchronous commits, made only while the cluster is reachable; the ack
  waits until a commit covering it is done (acks of concurrent writers share one commit). Acks made
  inside a :func:`~dataflow_operator.pipeline.checkpoint.deferred_saves` block (a writer
  acknowledging the batch it wrote) share one commit, made when the block ends; the block returns
  only once it is done, so nothing a writer acknowledged is uncommitted when it moves on.

Snapshot and commit happen in one turn, so a rebalance (inside ``consume()``, in the reader's turn)
never interleaves with a commit of the partitions it takes away.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from confluent_kafka import Consumer, KafkaError, KafkaException
from confluent_kafka import TopicPartition as KafkaTopicPartition

from ...pipeline.checkpoint import defer_to_block_end
from .errors import KafkaClientError, from_exception
from .gate import ConsumerGate
from .offsets import Commit, OffsetLedger

log = logging.getLogger(__name__)

ErrorCallback = Callable[[KafkaClientError], None]
_RETRY_DELAY = 1.0


class OffsetCommitter:
    def __init__(self, ledger: OffsetLedger, gate: ConsumerGate, *, synchronous: bool,
                 connected: Callable[[], bool], on_error: ErrorCallback, min_spacing: float) -> None:
        self._consumer: Consumer | None = None
        self._ledger = ledger
        self._gate = gate
        self._synchronous = synchronous
        self._connected = connected
        self._on_error = on_error
        self._min_spacing = min_spacing
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._done = threading.Condition()
        self._covered_version = 0
        self._thread: threading.Thread | None = None

    def start(self, consumer: Consumer) -> None:
        self._consumer = consumer
        self._thread = threading.Thread(target=self._run, name="kafka-offset-committer", daemon=True)
        self._thread.start()

    def acknowledged(self, version: int) -> None:
        """Called after an ack made ``version`` committable; in synchronous mode, returns only once a
        commit covering it was made (or attempted: a failed commit means a re-read, not a loss) —
        inside a deferred block, the block's end does."""
        if self._synchronous and defer_to_block_end(self):
            return
        self._wake_up()
        if self._synchronous:
            self._wait_covered(version)

    def flush_if_due(self) -> None:
        """The end of a block of acks: commit them together and wait for that commit."""
        version = self._ledger.version
        self._wake_up()
        self._wait_covered(version)

    def _wake_up(self) -> None:
        if not self._wake.is_set():  # set() takes a lock and notifies: skipped on the hot path
            self._wake.set()

    def _wait_covered(self, version: int) -> None:
        with self._done:
            while self._covered_version < version and not self._closing.is_set():
                self._done.wait(0.5)

    def commit_now(self, *, synchronous: bool | None = None) -> bool:
        """Commit everything acknowledged; False when it could not be (and will be retried)."""
        synchronous = self._synchronous if synchronous is None else synchronous
        committed = True
        with self._gate.commit_turn():
            commits, version = self._ledger.pending()
            if commits:
                committed = self._connected() and self.commit_in_turn(commits, synchronous=synchronous)
        if committed:
            with self._done:
                self._covered_version = max(self._covered_version, version)
                self._done.notify_all()
        return committed

    def commit_in_turn(self, commits: list[Commit], *, synchronous: bool) -> bool:
        """Only for a thread holding the consumer's turn (this committer, or a rebalance callback)."""
        assert self._consumer is not None
        offsets = [KafkaTopicPartition(c.topic, c.partition, c.offset) for c in commits]
        try:
            if not synchronous:
                self._consumer.commit(offsets=offsets, asynchronous=True)
                self._ledger.mark_committed(commits)  # sent; on_commit reports a failure
                return True
            results = self._consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            self._on_error(from_exception(exc, "offset commit failed"))
            return False
        failed = {(tp.topic, tp.partition): tp.error for tp in results or () if tp.error is not None}
        for error in failed.values():
            self._on_error(KafkaClientError(error, "offset commit failed"))
        self._ledger.mark_committed(c for c in commits if (c.topic, c.partition) not in failed)
        return not failed

    def on_commit(self, error: KafkaError | None, partitions: list[KafkaTopicPartition]) -> None:
        """The consumer's ``on_commit`` (asynchronous results), served inside ``consume()``."""
        if error is not None and error.code() != KafkaError._NO_OFFSET:
            failed = partitions
            self._on_error(KafkaClientError(error, "offset commit failed"))
        else:
            failed = []
            for tp in partitions:
                if tp.error is not None:
                    failed.append(tp)
                    self._on_error(KafkaClientError(tp.error, "offset commit failed"))
        if failed:
            self._ledger.commit_failed((tp.topic, tp.partition) for tp in failed)
            self._wake.set()

    def close(self) -> None:
        """Final synchronous commit, then stop the thread; acks still waiting are released."""
        try:
            if self._consumer is not None:
                self.commit_now(synchronous=True)
        finally:
            self._closing.set()
            self._wake.set()
            if self._thread is not None:
                self._thread.join()
            with self._done:
                self._done.notify_all()

    def _run(self) -> None:
        while not self._closing.is_set():
            self._wake.wait()
            if self._closing.is_set():
                return
            self._wake.clear()
            try:
                committed = self.commit_now()
            except Exception:  # the thread must survive anything a commit throws
                log.exception("offset commit loop failed")
                committed = False
            if not committed:
                self._closing.wait(_RETRY_DELAY)
                self._wake.set()
            elif self._min_spacing:
                self._closing.wait(self._min_spacing)
