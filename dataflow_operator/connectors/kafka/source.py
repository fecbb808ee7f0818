"""Kafka source: a consumer group member whose offsets move only through acknowledgements.

Each message's ack advances its partition's contiguous run (:mod:`.offsets`); the
:class:`~.committer.OffsetCommitter` commits it. Rebalances commit what is acknowledged before the
partitions go, then forget them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, Consumer, KafkaError, KafkaException
from confluent_kafka import Message as KafkaMessage
from confluent_kafka import TopicPartition as KafkaTopicPartition

from ...observability.repeats import hold_back_repeats
from ...pipeline.connector import ConnectorContext, Source
from ...pipeline.errors import ClassifiedError
from ...pipeline.message import Message
from ..pem_files import PemFiles
from .committer import OffsetCommitter
from .config import consumer_properties, topic_of
from .connection import ConnectionMonitor, client_log
from .errors import KafkaClientError, error_type_of, from_exception
from .gate import ConsumerGate
from .offsets import OffsetLedger, PartitionLedger
from .settings import KafkaSourceConfig

if TYPE_CHECKING:
    # A private module of the client's type stubs, absent from older releases (2.3): typing only.
    from confluent_kafka._types import HeadersType

log = logging.getLogger(__name__)
hold_back_repeats(log)  # while the coordinator is away, every commit and consume fails alike

CONNECT_TIMEOUT = 15.0
# On revocation, how long to wait for in-flight messages to be acknowledged: at most LIMIT, and no
# longer than QUIET after the last acknowledgement. Well inside max.poll.interval.ms (5 minutes),
# which bounds how long a rebalance callback may take.
REVOKE_QUIET_SECONDS = 2.0
REVOKE_LIMIT_SECONDS = 15.0
CHUNK_SIZE = 500
# consume() waits up to this long for a full chunk. A commit waits for the running consume() to
# return (:mod:`.gate`), so this bounds commit latency; with ``ackGranularity: message`` every ack
# waits for its commit, hence the shorter wait there.
POLL_TIMEOUT = {"batch": 0.05, "message": 0.01}
PROGRESS_INTERVAL = 1.0


class KafkaSource(Source):
    type_name: ClassVar[str] = "kafka"

    def __init__(self, config: KafkaSourceConfig, context: ConnectorContext) -> None:
        super().__init__(context)
        self.config = config
        self.topic = topic_of(config)
        self._pem_files = PemFiles()
        self._ledger = OffsetLedger()
        self._gate = ConsumerGate()
        self._monitor = ConnectionMonitor(context.metrics, "read", f"kafka source {self.topic}")
        self._consumer: Consumer | None = None
        per_message = context.settings.ack_granularity == "message"
        self._poll_timeout = POLL_TIMEOUT["message" if per_message else "batch"]
        self._committer = OffsetCommitter(self._ledger, self._gate, synchronous=per_message,
                                          connected=lambda: self._monitor.connected,
                                          on_error=self._commit_failed, min_spacing=0.0 if per_message else 0.01)
        self._closed = False
        context.metrics.initialise_errors(("read", "commit"))

    def connect(self) -> None:
        properties = consumer_properties(self.config, self._pem_files)
        consumer = Consumer({**properties, "error_cb": self._monitor.on_error, "stats_cb": self._monitor.on_stats,
                             "on_commit": self._committer.on_commit, "logger": client_log})
        self._consumer = consumer
        try:
            metadata = consumer.list_topics(self.topic, timeout=CONNECT_TIMEOUT)
        except KafkaException as exc:
            consumer.poll(0)  # serve the error callbacks queued meanwhile: they hold the reason
            raise self._monitor.connect_failure(exc, str(properties["bootstrap.servers"])) from exc
        topic = metadata.topics.get(self.topic)
        if topic is not None and topic.error is not None:
            # Not fatal: the topic may be created after the pipeline starts; the group waits for it.
            log.warning("kafka topic %s is not available yet: %s", self.topic, topic.error.str())
        self._monitor.set_connected(True)
        self._committer.start(consumer)
        consumer.subscribe([self.topic], on_assign=self._on_assign, on_revoke=self._on_revoke,
                           on_lost=self._on_lost)
        log.info("kafka source subscribed to %s as group %s", self.topic, properties["group.id"])

    def read(self) -> Iterator[list[Message]]:
        consumer = self._require_consumer()
        stop = self.context.stop
        last_progress = 0.0
        while not stop.is_set():
            try:
                with self._gate.reader_turn():
                    records = consumer.consume(num_messages=CHUNK_SIZE, timeout=self._poll_timeout)
            except KafkaException as exc:
                consume_error = from_exception(exc, "kafka consume failed")
                if consume_error.kafka_error.fatal():
                    raise consume_error from exc
                self.context.metrics.error("read", consume_error.error_type)
                log.warning("kafka source %s: %s", self.topic, consume_error)
                stop.wait(self._poll_timeout)
                continue
            chunk = self._chunk(records)
            now = time.monotonic()
            # An idle topic yields nothing, yet the group session is alive: that is progress (spec §5).
            if now - last_progress >= PROGRESS_INTERVAL and self._ledger.owns_partitions() \
                    and self._monitor.connected:
                self.context.progress.bump()
                last_progress = now
            if self._monitor.fatal_error is not None:
                raise KafkaClientError(self._monitor.fatal_error, "kafka consumer failed")
            if chunk:
                yield chunk

    def flush_positions(self) -> None:
        if self._consumer is not None:
            self._committer.commit_now(synchronous=True)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._committer.close()
            if self._consumer is not None:
                # close() leaves the group; its revoke callback commits what is acknowledged by now.
                with self._gate.reader_turn():
                    self._consumer.close()
        finally:
            self._monitor.set_connected(False)
            self._pem_files.cleanup()

    # -- messages ------------------------------------------------------------------------------

    def _chunk(self, records: list[KafkaMessage]) -> list[Message]:
        """The messages of one ``consume()``, received together: they share its receipt times, and
        records of one producer batch share their (immutable) timestamp objects."""
        received = _Receipt(time.monotonic(), datetime.now(UTC), {})
        chunk: list[Message] = []
        for record in records:
            record_error = record.error()
            if record_error is not None:
                self._read_error(record_error)
                continue
            message = self._to_message(record, received)
            if message is not None:
                chunk.append(message)
        return chunk

    def _to_message(self, record: KafkaMessage, received: _Receipt) -> Message | None:
        topic, partition, offset = record.topic(), record.partition(), record.offset()
        if topic is None or partition is None or offset is None:
            return None  # only error events lack coordinates, and those were filtered out
        issued = self._ledger.issue(topic, partition, offset)
        if issued is None:
            # Read just before its partition was revoked: its new owner will read it again.
            return None
        ledger, ticket = issued
        metadata: dict[str, Any] = {"topic": topic, "partition": partition, "offset": offset,
                                    "key": _decode_key(record.key())}
        timestamp_type, timestamp_ms = record.timestamp()
        if timestamp_type != TIMESTAMP_NOT_AVAILABLE:
            moment = received.moments.get(timestamp_ms)
            if moment is None:
                moment = received.moments[timestamp_ms] = datetime.fromtimestamp(timestamp_ms / 1000, UTC)
            metadata["timestamp"] = moment
        headers = record.headers()
        if headers:
            metadata["headers"] = _decode_headers(headers)
        return Message(data=record.value() or b"", metadata=metadata, timestamp=received.wall,
                       ack=self._ack_callback(ledger, ticket), received_at=received.monotonic)

    def _ack_callback(self, ledger: PartitionLedger, ticket: int) -> Callable[[], None]:
        ack_ledger, committer = self._ledger, self._committer

        def ack() -> None:
            version = ack_ledger.ack(ledger, ticket)
            if version is not None:
                committer.acknowledged(version)

        return ack

    def _read_error(self, error: KafkaError) -> None:
        if error.code() == KafkaError._PARTITION_EOF:
            return
        self.context.metrics.error("read", error_type_of(error))
        log.warning("kafka source %s: %s (%s)", self.topic, error.str(), error.name())

    def _commit_failed(self, error: KafkaClientError) -> None:
        self.context.metrics.error("commit", error.error_type)
        log.warning("kafka source %s: %s", self.topic, error)

    # -- rebalance callbacks: inside consume() or close(), in the turn of the thread calling it ----

    def _on_assign(self, _consumer: Consumer, partitions: list[KafkaTopicPartition]) -> None:
        self._ledger.assign((tp.topic, tp.partition) for tp in partitions)
        log.info("kafka source %s assigned partitions %s", self.topic, _numbers(partitions))

    def _on_revoke(self, _consumer: Consumer, partitions: list[KafkaTopicPartition]) -> None:
        keys = [(tp.topic, tp.partition) for tp in partitions]
        # A planned rebalance (a rolling update, a member joining): what was read from these
        # partitions is still being written; give it a moment to be acknowledged and committed, or
        # the partitions' new owner reads it again (a duplicate, e.g. a second error record).
        if self._monitor.connected:
            self._ledger.wait_acknowledged(keys, quiet=REVOKE_QUIET_SECONDS, limit=REVOKE_LIMIT_SECONDS)
        commits = self._ledger.revoke(keys)
        # Synchronous: the commit must land before the partitions move. Skipped while the cluster
        # is unreachable (it would block ~45 s and fail): those messages are then read again.
        if commits and self._monitor.connected:
            self._committer.commit_in_turn(commits, synchronous=True)
        log.info("kafka source %s revoked partitions %s", self.topic, _numbers(partitions))

    def _on_lost(self, _consumer: Consumer, partitions: list[KafkaTopicPartition]) -> None:
        # Lost means already owned by someone else: committing now could move their offsets.
        self._ledger.revoke((tp.topic, tp.partition) for tp in partitions)
        log.warning("kafka source %s lost partitions %s", self.topic, _numbers(partitions))

    def _require_consumer(self) -> Consumer:
        if self._consumer is None:
            raise ClassifiedError("kafka source used before connect()", "unknown")
        return self._consumer


@dataclass(frozen=True, slots=True)
class _Receipt:
    monotonic: float
    wall: datetime
    moments: dict[int, datetime]  # record timestamps (ms) already turned into datetimes


def _decode_headers(headers: HeadersType) -> dict[str, str]:
    items = headers.items() if isinstance(headers, dict) else headers
    return {name: value.decode("utf-8", "replace") if isinstance(value, bytes) else (value or "")
            for name, value in items}


def _numbers(partitions: list[KafkaTopicPartition]) -> list[int]:
    return sorted(tp.partition for tp in partitions)


def _decode_key(key: bytes | None) -> str | bytes | None:
    """Text keys as ``str``; a key that is not UTF-8 stays ``bytes`` so a Kafka sink writes it back
    unchanged. ``None`` (no key) stays ``None`` — the reference's ``""`` would make a sink send every
    keyless record to one partition."""
    if key is None:
        return None
    try:
        return key.decode("utf-8")
    except UnicodeDecodeError:
        return key
