"""Acceptance (issue 5): Kafka → PostgreSQL through the real processor CLI.

100 000 messages arrive; SIGKILLs at random points lose nothing and duplicate less than a batch per
kill (none with upsert); a broker outage is visible in /metrics and loses nothing.
``DATAFLOW_ACCEPTANCE_MESSAGES`` lowers the volume for quick local runs.
"""

from __future__ import annotations

import json
import os
import random
import re
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.processes import Processor, sample_value, wait_for

from .kafka_helpers import committed, produce_json

MESSAGES = int(os.environ.get("DATAFLOW_ACCEPTANCE_MESSAGES", "100000"))
PARTITIONS = 3
BATCH_SIZE = 1000
OUTAGE_SECONDS = 20.0

pytestmark = pytest.mark.slow


def spec(kafka: Any, topic: str, group: str, dsn: str, table: str, **sink: Any) -> dict[str, Any]:
    return {
        # A short session: a SIGKILLed member is noticed in seconds, not the default 45 s.
        "source": {"type": "kafka", "config": {"brokers": [kafka.bootstrap], "topic": topic, "consumerGroup": group,
                                               "sessionTimeoutSeconds": 6, "heartbeatIntervalSeconds": 1}},
        "sink": {"type": "postgresql", "config": {"connectionString": dsn, "table": table, "autoCreateTable": True,
                                                  "batchSize": BATCH_SIZE, "batchFlushIntervalSeconds": 1, **sink}},
        "channelBufferSize": 100,
    }


def count(db: psycopg.Connection[Any], table: str) -> tuple[int, int]:
    """(rows, distinct ids); (0, 0) before the sink created the table."""
    try:
        row = db.execute(f"SELECT count(*), count(DISTINCT id) FROM {table}").fetchone()
    except psycopg.errors.UndefinedTable:
        return 0, 0
    assert row is not None
    return int(row[0]), int(row[1])


def start(workdir: Path, flow: dict[str, Any], name: str) -> Processor:
    processor = Processor(workdir, flow, name=name).start()
    processor.wait_ready()
    return processor


def payloads() -> list[dict[str, Any]]:
    return [{"id": i, "name": f"name-{i}", "amount": i * 1.25, "tags": ["a", str(i % 7)]} for i in range(MESSAGES)]


@pytest.mark.parametrize("upsert", [False, True], ids=["insert", "upsert"])
def test_everything_arrives_across_three_sigkills(kafka: Any, dsn: str, db: psycopg.Connection[Any],
                                                  tmp_path: Path, upsert: bool) -> None:
    topic, group, table = kafka.new_topic(PARTITIONS), f"g-{uuid.uuid4().hex[:8]}", f"k2p_{uuid.uuid4().hex[:8]}"
    produce_json(kafka.bootstrap, topic, payloads())
    sink = {"upsertMode": True, "conflictKey": "id"} if upsert else {}
    flow = spec(kafka, topic, group, dsn, table, **sink)
    seed = random.randrange(2**32)
    kill_points = sorted(random.Random(seed).uniform(0.1, 0.9) * MESSAGES for _ in range(3))
    processor = start(tmp_path, flow, "k2p")
    try:
        for index, point in enumerate(kill_points):
            wait_for(lambda p=point: count(db, table)[1] >= p, 120,
                     message=f"{point:.0f} rows before kill {index + 1} (seed {seed})")
            processor.kill()
            processor = start(tmp_path, flow, "k2p")
        wait_for(lambda: count(db, table)[1] == MESSAGES, 300, message=f"all {MESSAGES} ids (seed {seed})")
        # Everything acknowledged is committed: nothing more will be written.
        wait_for(lambda: sum(committed(kafka.bootstrap, group, topic, PARTITIONS)) == MESSAGES, 60,
                 message="all offsets committed")
    finally:
        processor.kill()
    rows, distinct = count(db, table)
    assert distinct == MESSAGES
    if upsert:
        assert rows == MESSAGES
    else:
        print(f"duplicates after {len(kill_points)} kills: {rows - MESSAGES} (batch size {BATCH_SIZE})")
        assert rows - MESSAGES < len(kill_points) * BATCH_SIZE, f"duplicates: {rows - MESSAGES} (seed {seed})"
    amount = db.execute(f"SELECT amount::text, tags::text FROM {table} WHERE id = 3 LIMIT 1").fetchone()
    assert amount == ("3.75", '["a", "3"]')


def test_a_broker_outage_is_reported_and_loses_nothing(kafka: Any, dsn: str, db: psycopg.Connection[Any],
                                                       tmp_path: Path) -> None:
    topic, group, table = kafka.new_topic(PARTITIONS), f"g-{uuid.uuid4().hex[:8]}", f"out_{uuid.uuid4().hex[:8]}"
    produce_json(kafka.bootstrap, topic, payloads())
    processor = start(tmp_path, spec(kafka, topic, group, dsn, table), "outage")
    labels = {"connector_type": "kafka", "connector_name": "source"}

    def source_metric(family: str, **extra: str) -> float:
        return sample_value(processor.metrics(), family, **labels, **extra)

    try:
        wait_for(lambda: count(db, table)[1] >= MESSAGES // 10, 120, message="the first rows")
        assert source_metric("dataflow_connector_connection_status") == 1
        kafka.stop()
        stopped_at = time.monotonic()
        try:
            wait_for(lambda: source_metric("dataflow_connector_connection_status") == 0, 60,
                     message="connection_status 0 while the broker is down")
            wait_for(lambda: source_metric("dataflow_connector_errors", operation="read",
                                           error_type="connection_error") > 0, 30, message="read errors counted")
            time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - stopped_at)))  # the outage lasts 20 s
        finally:
            kafka.start()
        wait_for(lambda: source_metric("dataflow_connector_connection_status") == 1, 60,
                 message="connection_status back to 1")
        wait_for(lambda: count(db, table)[1] == MESSAGES, 300, message=f"all {MESSAGES} ids after the outage")
        assert processor.process is not None and processor.process.poll() is None  # rode it out, no restart
    finally:
        processor.kill()
    # librdkafka reports a down broker hundreds of times a minute; each line is shown once a minute.
    entries = [json.loads(line) for line in processor.logs().splitlines() if line.startswith("{")]
    kafka_lines = Counter(re.sub(r"\d+ms", "Nms", entry["msg"]) for entry in entries
                          if entry["logger"].startswith("dataflow_operator.connectors.kafka"))
    assert kafka_lines and max(kafka_lines.values()) <= 2, kafka_lines.most_common(3)


def test_per_message_acknowledgement_under_backpressure(kafka: Any, dsn: str, db: psycopg.Connection[Any],
                                                        tmp_path: Path) -> None:
    """Every ack waits for its synchronous commit while the queues are full: no deadlock, nothing lost,
    and the committed offsets cover everything."""
    count_ = 1500
    topic, group, table = kafka.new_topic(PARTITIONS), f"g-{uuid.uuid4().hex[:8]}", f"msg_{uuid.uuid4().hex[:8]}"
    produce_json(kafka.bootstrap, topic, payloads()[:count_])
    flow = {**spec(kafka, topic, group, dsn, table), "ackGranularity": "message", "channelBufferSize": 2}
    processor = start(tmp_path, flow, "per-message")
    try:
        wait_for(lambda: count(db, table)[1] == count_, 180, message=f"{count_} rows")
        wait_for(lambda: sum(committed(kafka.bootstrap, group, topic, PARTITIONS)) == count_, 30,
                 message="every offset committed")
    finally:
        processor.kill()
    assert count(db, table) == (count_, count_)
