"""The hostile corpus through Kafka → cast → Kafka and Kafka → cast → PostgreSQL, with a Kafka error
sink, run by the real processor CLI against the real peers: every message in exactly one of the
main sink or the error sink, nothing lost, the process alive until it is told to stop."""

from __future__ import annotations

import signal
import uuid
from typing import Any

import psycopg
from confluent_kafka import Producer

from tests.hostile.accounting import assert_exact_placement
from tests.hostile.corpus import CORPUS, OVERSIZED
from tests.processes import Processor, wait_for

from .kafka_helpers import consume_all, topic_size

#: The input topic takes the oversized message; the sink and error topics keep the broker's default.
BIG_TOPIC = {"max.message.bytes": str(4 * OVERSIZED)}
#: Keys and headers as hostile as the payloads: not UTF-8, a CESU-8 surrogate, NUL bytes.
KEYS = (b"\xff\xfe", b"\xed\xa0\x80", b"plain-key", None)
HEADERS = [("binary", b"\x00\xff\xfe"), ("cesu8", b"\xed\xa0\x80"), ("empty", b"")]


def produce_corpus(bootstrap: str, topic: str) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "message.max.bytes": 4 * OVERSIZED})
    for index, entry in enumerate(CORPUS):
        producer.produce(topic, entry.payload, key=KEYS[index % len(KEYS)], headers=HEADERS)
    assert producer.flush(30) == 0


def run_until_placed(processor: Processor, count: Any) -> None:
    processor.start().wait_ready()
    try:
        wait_for(count, 90, message="every message in the main or the error sink")
        processor.signal(signal.SIGTERM)
        assert processor.wait(60) == 0, processor.logs()
    finally:
        processor.kill()
    assert "Traceback" not in processor.logs()


def expected(sink: str, placement: str) -> int:
    return sum(1 for entry in CORPUS if entry.placement(sink) == placement)


def kafka_spec(kafka: Any, source: str, errors: str, sink: dict[str, Any]) -> dict[str, Any]:
    return {
        "source": {"type": "kafka", "config": {"brokers": [kafka.bootstrap], "topic": source,
                                               "consumerGroup": f"g-{uuid.uuid4().hex[:8]}"}},
        "transformations": [{"type": "cast", "config": {"spec": {"amount": "float64"}}}],
        "sink": sink,
        "errors": {"type": "kafka", "config": {"brokers": [kafka.bootstrap], "topic": errors}},
    }


def test_kafka_to_kafka(kafka: Any, tmp_path: Any) -> None:
    source, out, errors = kafka.new_topic(config=BIG_TOPIC), kafka.new_topic(), kafka.new_topic()
    produce_corpus(kafka.bootstrap, source)
    spec = kafka_spec(kafka, source, errors, {"type": "kafka", "config": {"brokers": [kafka.bootstrap], "topic": out}})
    main_count, error_count = expected("kafka", "main"), expected("kafka", "error")
    run_until_placed(Processor(tmp_path, spec, name="hostile-kafka"),
                     lambda: topic_size(kafka.bootstrap, out) + topic_size(kafka.bootstrap, errors)
                     >= main_count + error_count)
    main = [record.value() or b"" for record in consume_all(kafka.bootstrap, out, main_count)]
    records = [record.value() for record in consume_all(kafka.bootstrap, errors, error_count)]
    assert len(main) == main_count and len(records) == error_count
    assert_exact_placement(CORPUS, "kafka", main, records)


def test_kafka_to_postgresql(kafka: Any, dsn: str, db: psycopg.Connection[Any], tmp_path: Any) -> None:
    table = f"hostile_{uuid.uuid4().hex[:8]}"
    db.execute(f"CREATE TABLE {table} (k text PRIMARY KEY, amount double precision, name text, note text, s text, "
               "v jsonb, n bigint, big double precision)")
    source, errors = kafka.new_topic(config=BIG_TOPIC), kafka.new_topic()
    produce_corpus(kafka.bootstrap, source)
    spec = kafka_spec(kafka, source, errors, {"type": "postgresql", "config": {
        "connectionString": dsn, "table": table, "batchSize": 8, "batchFlushIntervalSeconds": 1}})
    main_count, error_count = expected("postgresql", "main"), expected("postgresql", "error")

    def rows() -> list[bytes]:
        return [str(row[0]).encode() for row in db.execute(f"SELECT k FROM {table}").fetchall()]

    run_until_placed(Processor(tmp_path, spec, name="hostile-postgresql"),
                     lambda: len(rows()) + topic_size(kafka.bootstrap, errors) >= main_count + error_count)
    records = [record.value() for record in consume_all(kafka.bootstrap, errors, error_count)]
    assert len(records) == error_count
    assert_exact_placement(CORPUS, "postgresql", rows(), records)
