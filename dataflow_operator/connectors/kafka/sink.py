"""Kafka sink: an idempotent producer (acks=all); a batch is durable when every delivery report is in.

``write`` produces the whole batch, then flushes, and maps each delivery report back to its message,
so exactly the messages the broker refused are reported as failures.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka import Message as KafkaMessage

from ...pipeline.connector import BatchLimits, ConnectorContext, Sink, WriteFailure
from ...pipeline.message import Message
from ..pem_files import PemFiles
from .config import producer_properties, topic_of
from .connection import ConnectionMonitor, client_log
from .errors import KafkaClientError, from_exception
from .settings import KafkaSinkConfig

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 15.0
BATCH_SIZE = 1000
_QUEUE_FULL_WAIT = 0.05
_Report = tuple[KafkaError | None, int, int]  # error, partition, offset
DeliveryCallback = Callable[[KafkaError | None, KafkaMessage], None]
_FLUSH_SLICE = 0.5


class KafkaSink(Sink):
    type_name: ClassVar[str] = "kafka"

    def __init__(self, config: KafkaSinkConfig, context: ConnectorContext) -> None:
        super().__init__(context)
        self.config = config
        self.topic = topic_of(config)
        self._pem_files = PemFiles()
        # Client-level trouble (a dropped broker connection) is counted apart from failed writes,
        # which the engine counts per message under operation="write".
        self._monitor = ConnectionMonitor(context.metrics, "connection", f"kafka sink {self.topic}")
        self._producer: Producer | None = None
        self._closed = False
        context.metrics.initialise_errors(("connection",))

    def connect(self) -> None:
        properties = producer_properties(self.config, self._pem_files)
        producer = Producer({**properties, "error_cb": self._monitor.on_error, "stats_cb": self._monitor.on_stats,
                             "logger": client_log})
        self._producer = producer
        try:
            producer.list_topics(self.topic, timeout=CONNECT_TIMEOUT)
        except KafkaException as exc:
            producer.poll(0)  # serve the error callbacks queued meanwhile: they hold the reason
            raise self._monitor.connect_failure(exc, str(properties["bootstrap.servers"])) from exc
        self._monitor.set_connected(True)

    def batch_limits(self) -> BatchLimits:
        # Produce is asynchronous: whatever is queued goes out together, without waiting to fill up.
        return BatchLimits(BATCH_SIZE, None)

    def write(self, batch: list[Message]) -> list[WriteFailure]:
        producer = self._producer
        if producer is None:
            raise KafkaClientError(KafkaError(KafkaError._STATE), "kafka sink used before connect()")
        if self._monitor.fatal_error is not None:
            raise KafkaClientError(self._monitor.fatal_error, "kafka producer failed")
        reports: list[_Report | None] = [None] * len(batch)
        failures: list[WriteFailure] = []
        produced: list[int] = []
        for index, message in enumerate(batch):
            refused = self._produce(producer, message, _report_into(reports, index))
            if refused is None:
                produced.append(index)
            else:
                failures.append(WriteFailure(message, refused))
        while producer.flush(_FLUSH_SLICE) > 0:
            # Every queued message gets its report within message.timeout.ms. Until then it may still
            # land, so reporting it as failed earlier could send a written message to the error sink.
            pass
        for index in produced:
            message, report = batch[index], reports[index]
            if report is None:  # flush() served every report; kept so a library bug cannot lose data
                failures.append(WriteFailure(message, KafkaClientError(
                    KafkaError(KafkaError._MSG_TIMED_OUT), "no delivery report")))
            elif report[0] is not None:
                failures.append(WriteFailure(message, KafkaClientError(report[0], "delivery failed")))
            else:
                message.metadata["partition"] = report[1]
                message.metadata["offset"] = report[2]
        if failures and len(failures) == len(batch):
            raise failures[0].error
        return failures

    def _produce(self, producer: Producer, message: Message, on_delivery: DeliveryCallback) -> KafkaClientError | None:
        key = _key_of(message.metadata.get("key"))
        headers = _headers_of(message.metadata.get("headers"))
        while True:
            try:
                producer.produce(self.topic, message.data, key, headers=headers, on_delivery=on_delivery)
                return None
            except BufferError:
                producer.poll(_QUEUE_FULL_WAIT)  # local queue full: serve reports to make room
            except KafkaException as exc:
                # Refused before sending (e.g. message larger than message.max.bytes).
                return from_exception(exc, "produce failed")

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            if self._producer is not None:
                remaining = self._producer.flush(10.0)
                if remaining:
                    log.warning("kafka sink %s closed with %d undelivered messages", self.topic, remaining)
        finally:
            self._monitor.set_connected(False)
            self._pem_files.cleanup()


def _report_into(reports: list[_Report | None], index: int) -> DeliveryCallback:
    def on_delivery(error: KafkaError | None, record: KafkaMessage) -> None:
        reports[index] = (error, _coordinate(record.partition()), _coordinate(record.offset()))

    return on_delivery


def _coordinate(value: int | None) -> int:
    return -1 if value is None else value


def _key_of(key: Any) -> bytes | str | None:
    """``metadata.key`` as the record key; ``""`` and ``None`` mean no key (the partitioner spreads
    keyless records), anything else that is not text or bytes is written as its string form."""
    if key is None or key in ("", b""):
        return None
    if isinstance(key, (str, bytes)):
        return key
    return str(key)


def _headers_of(headers: Any) -> list[tuple[str, str | bytes | None]] | None:
    if not isinstance(headers, Mapping) or not headers:
        return None
    result: list[tuple[str, str | bytes | None]] = []
    for name, value in headers.items():
        if isinstance(value, bytes):
            result.append((str(name), value))
        elif value is not None:
            result.append((str(name), str(value).encode("utf-8")))
    return result
