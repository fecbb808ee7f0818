"""Acceptance (issue 5): a router to a Kafka topic and a PostgreSQL table, with poison messages.

Exactly the poison messages reach the error sink (constraint violations found inside COPY batches,
payloads that are not JSON); every other message lands in its destination; /metrics agrees.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.processes import Processor, sample_value, wait_for

from .kafka_helpers import committed, consume_all, produce, topic_size

MESSAGES = 3000
PARTITIONS = 2

pytestmark = pytest.mark.slow


def message(i: int) -> bytes:
    if i % 500 == 250:
        return b"not json: " + str(i).encode()
    if i % 3 == 0:
        return json.dumps({"kind": "event", "id": i}).encode()
    return json.dumps({"kind": "order", "id": i, "qty": -1 if i % 97 == 1 else i}).encode()


def test_router_with_poison_messages(kafka: Any, postgres: Any, tmp_path: Path) -> None:
    dsn = str(postgres.new_database())
    source, events, errors = (kafka.new_topic(PARTITIONS) for _ in range(3))
    table, group = f"orders_{uuid.uuid4().hex[:8]}", f"g-{uuid.uuid4().hex[:8]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {table} (id BIGINT PRIMARY KEY, kind TEXT, qty INT CHECK (qty >= 0))")
    payloads = [message(i) for i in range(MESSAGES)]
    produce(kafka.bootstrap, source, [{"value": p} for p in payloads])
    not_json = [p for p in payloads if not p.startswith(b"{")]
    routed = [p for p in payloads if b'"event"' in p]
    violating = [p for p in payloads if b'"qty": -1' in p]
    orders = [p for p in payloads if b'"order"' in p]
    condition = "$.kind == 'event'"
    flow = {
        "source": {"type": "kafka", "config": {"brokers": [kafka.bootstrap], "topic": source, "consumerGroup": group}},
        "transformations": [{"type": "router", "config": {"routes": [
            {"condition": condition, "sink": {"type": "kafka", "config": {"brokers": [kafka.bootstrap],
                                                                          "topic": events}}}]}}],
        "sink": {"type": "postgresql", "config": {"connectionString": dsn, "table": table, "batchSize": 200,
                                                  "batchFlushIntervalSeconds": 1}},
        "errors": {"type": "kafka", "config": {"brokers": [kafka.bootstrap], "topic": errors}},
    }
    processor = Processor(tmp_path, flow, name="router").start()
    try:
        processor.wait_ready()
        wait_for(lambda: sum(committed(kafka.bootstrap, group, source, PARTITIONS)) == MESSAGES, 120,
                 message="every message acknowledged")
        families = processor.metrics()
    finally:
        processor.kill()

    assert topic_size(kafka.bootstrap, events) == len(routed)
    with psycopg.connect(dsn) as conn:
        stored = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    assert stored == (len(orders) - len(violating),)
    failed = consume_all(kafka.bootstrap, errors, len(violating) + len(not_json))
    assert len(failed) == len(violating) + len(not_json) == topic_size(kafka.bootstrap, errors)
    records = [json.loads(r.value() or b"{}") for r in failed]
    originals = sorted(json.dumps(r["original_message"]).encode() if "original_message" in r
                       else r["original_data"].encode() for r in records)
    assert originals == sorted(violating + not_json)
    assert all("23514" in r["error"]["message"] for r in records if "original_message" in r)

    def metric(family: str, **labels: str) -> float:
        return sample_value(families, family, **labels)

    written = "dataflow_connector_messages_written"
    assert metric(written, connector_name="route_0") == len(routed)
    assert metric(written, connector_name="sink") == len(orders) - len(violating)
    assert metric(written, connector_name="error_sink") == len(violating) + len(not_json)
    sink_errors = {"connector_name": "sink", "operation": "write"}
    assert metric("dataflow_connector_errors", **sink_errors, error_type="constraint_violation") == len(violating)
    assert metric("dataflow_connector_errors", **sink_errors, error_type="invalid_data") == len(not_json)
    assert metric("dataflow_connector_messages_read", connector_name="source") == MESSAGES
