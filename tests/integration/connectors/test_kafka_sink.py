"""KafkaSink against a real broker: keys, headers, produced coordinates, per-message refusals."""

from __future__ import annotations

from typing import Any

import pytest

from dataflow_operator.connectors.kafka.sink import KafkaSink
from dataflow_operator.pipeline.errors import ClassifiedError
from dataflow_operator.pipeline.message import Message

from .harness import Harness
from .kafka_helpers import consume_all


def make_sink(kafka: Any, topic: str) -> KafkaSink:
    sink = KafkaSink({"brokers": [kafka.bootstrap], "topic": topic}, Harness("kafka", "sink").context)
    sink.connect()
    return sink


def test_writes_values_keys_and_headers_and_reports_coordinates(kafka: Any) -> None:
    topic = kafka.new_topic(partitions=3)
    sink = make_sink(kafka, topic)
    batch = [
        Message(b'{"n": 0}', {"key": "user-1", "headers": {"trace": "abc"}}),
        Message(b'{"n": 1}', {"key": b"\xff\x00"}),
        Message(b"not json at all", {"key": ""}),
        Message(b'{"n": 3}', {"key": None}),
        Message(b'{"n": 4}', {"key": 42}),
    ]
    try:
        assert sink.write(batch) == []
    finally:
        sink.close()
    records = {(r.partition(), r.offset()): r for r in consume_all(kafka.bootstrap, topic, 5)}
    assert len(records) == 5
    for message in batch:
        record = records[(message.metadata["partition"], message.metadata["offset"])]
        assert record.value() == message.data
    by_value = {r.value(): r for r in records.values()}
    assert by_value[b'{"n": 0}'].key() == b"user-1"
    assert by_value[b'{"n": 0}'].headers() == [("trace", b"abc")]
    assert by_value[b'{"n": 1}'].key() == b"\xff\x00"
    assert by_value[b"not json at all"].key() is None  # "" means no key, not an empty key
    assert by_value[b'{"n": 3}'].key() is None
    assert by_value[b'{"n": 4}'].key() == b"42"


def test_a_refused_message_fails_alone(kafka: Any) -> None:
    topic = kafka.new_topic()
    sink = make_sink(kafka, topic)
    too_large = Message(b"x" * 2_000_000)  # above the producer's message.max.bytes (1 MB)
    batch = [Message(b'{"n": 0}'), too_large, Message(b'{"n": 2}')]
    try:
        failures = sink.write(batch)
    finally:
        sink.close()
    assert [f.message for f in failures] == [too_large]
    assert isinstance(failures[0].error, ClassifiedError) and failures[0].error.error_type == "invalid_data"
    assert sorted(r.value() for r in consume_all(kafka.bootstrap, topic, 2)) == [b'{"n": 0}', b'{"n": 2}']


def test_a_batch_that_fails_entirely_raises(kafka: Any) -> None:
    sink = make_sink(kafka, kafka.new_topic())
    try:
        with pytest.raises(ClassifiedError) as raised:
            sink.write([Message(b"x" * 2_000_000), Message(b"y" * 2_000_000)])
    finally:
        sink.close()
    assert raised.value.error_type == "invalid_data"
