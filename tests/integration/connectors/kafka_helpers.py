"""Small confluent-kafka helpers for the Kafka connector tests (producing input, reading results)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka import Message as KafkaMessage


def produce(bootstrap: str, topic: str, records: Sequence[dict[str, Any]]) -> None:
    """Each record: ``value`` plus optional ``key``, ``headers``, ``partition``."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for record in records:
        extra = {"partition": record["partition"]} if "partition" in record else {}
        producer.produce(topic, record["value"], key=record.get("key"), headers=record.get("headers"), **extra)
    assert producer.flush(30) == 0


def committed(bootstrap: str, group: str, topic: str, partitions: int) -> list[int]:
    """The group's committed offsets (-1001 where none)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        found = consumer.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=15)
        return [tp.offset for tp in sorted(found, key=lambda tp: tp.partition)]
    finally:
        consumer.close()


def consume_all(bootstrap: str, topic: str, count: int, timeout: float = 30.0) -> list[KafkaMessage]:
    """``count`` records from the start of ``topic`` (a throw-away group)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"reader-{uuid.uuid4().hex}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    records: list[KafkaMessage] = []
    deadline = time.monotonic() + timeout
    try:
        while len(records) < count and time.monotonic() < deadline:
            for record in consumer.consume(500, 0.5):
                assert record.error() is None, record.error()
                records.append(record)
    finally:
        consumer.close()
    return records


def topic_size(bootstrap: str, topic: str) -> int:
    """Records in ``topic`` (high minus low watermark over its partitions)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"sizer-{uuid.uuid4().hex}"})
    try:
        metadata = consumer.list_topics(topic, timeout=15).topics[topic]
        total = 0
        for partition in metadata.partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=15)
            total += high - low
        return total
    finally:
        consumer.close()


def produce_json(bootstrap: str, topic: str, payloads: Sequence[Any]) -> None:
    """Many JSON records quickly (keys are the payloads' ``id`` when present)."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20})
    for index, payload in enumerate(payloads):
        key = str(payload["id"]).encode() if isinstance(payload, dict) and "id" in payload else None
        while True:
            try:
                producer.produce(topic, json.dumps(payload).encode(), key=key)
                break
            except BufferError:
                producer.poll(0.1)
        if index % 10_000 == 0:
            producer.poll(0)
    assert producer.flush(60) == 0
