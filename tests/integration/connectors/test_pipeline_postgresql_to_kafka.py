"""Acceptance (issue 5): PostgreSQL → Kafka through the real processor CLI, with checkpoints.

A graceful stop saves the position; a restart reads only what is new or was updated; checkpointReset
reads everything again.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.processes import Processor, sample_value, wait_for

from .kafka_helpers import consume_all, topic_size

ROWS = 2000
NEW_ROWS = 300
UPDATED_ROWS = 50

pytestmark = pytest.mark.slow


@pytest.fixture
def db(postgres: Any) -> Iterator[tuple[str, psycopg.Connection[Any]]]:
    dsn = str(postgres.new_database())
    with psycopg.connect(dsn, autocommit=True) as conn:
        yield dsn, conn


def insert(conn: psycopg.Connection[Any], table: str, first: int, count: int) -> None:
    conn.execute(f"INSERT INTO {table} (id, name, price) SELECT i, 'item ' || i, i * 0.01 "
                 f"FROM generate_series(%s::int, %s::int) AS i", [first, first + count - 1])


def run_until(workdir: Path, flow: dict[str, Any], bootstrap: str, topic: str, expected: int) -> float:
    """Run the processor until the topic holds ``expected`` records, stop it gracefully (SIGTERM)
    and return how many rows that run read, from its last /metrics."""
    processor = Processor(workdir, flow, name="p2k").start()
    try:
        processor.wait_ready()
        wait_for(lambda: topic_size(bootstrap, topic) >= expected, 120, message=f"{expected} records in {topic}")
        last_metrics = processor.get("/metrics").text
        processor.signal(15)
        assert processor.wait(60) == 0
    finally:
        processor.kill()
    families = {f.name: f for f in text_string_to_metric_families(last_metrics)}
    return sample_value(families, "dataflow_connector_messages_read", connector_name="source")


def test_checkpoints_resume_reread_updates_and_reset(kafka: Any, db: tuple[str, psycopg.Connection[Any]],
                                                     tmp_path: Path) -> None:
    dsn, conn = db
    table, topic = f"items_{uuid.uuid4().hex[:8]}", kafka.new_topic(partitions=2)
    conn.execute(f"CREATE TABLE {table} (id BIGINT PRIMARY KEY, name TEXT, price NUMERIC(12, 2), "
                 f"created_at TIMESTAMPTZ NOT NULL DEFAULT now(), updated_at TIMESTAMPTZ NOT NULL DEFAULT now())")
    insert(conn, table, 1, ROWS)
    flow: dict[str, Any] = {
        "source": {"type": "postgresql", "config": {"connectionString": dsn, "table": table, "pollInterval": 1,
                                                    "readBatchSize": 500}},
        "sink": {"type": "kafka", "config": {"brokers": [kafka.bootstrap], "topic": topic}},
        "checkpointPersistence": True,
        "checkpointSaveInterval": "1s",
    }
    assert run_until(tmp_path, flow, kafka.bootstrap, topic, ROWS) == ROWS

    insert(conn, table, ROWS + 1, NEW_ROWS)
    conn.execute(f"UPDATE {table} SET name = 'changed', updated_at = clock_timestamp() WHERE id <= %s",
                 [UPDATED_ROWS])
    second = ROWS + NEW_ROWS + UPDATED_ROWS
    assert run_until(tmp_path, flow, kafka.bootstrap, topic, second) == NEW_ROWS + UPDATED_ROWS

    records = consume_all(kafka.bootstrap, topic, second)
    assert len(records) == second == topic_size(kafka.bootstrap, topic)
    changed = [json.loads(r.value() or b"{}") for r in records if b'"changed"' in (r.value() or b"")]
    assert sorted(row["id"] for row in changed) == list(range(1, UPDATED_ROWS + 1))
    by_id = {json.loads(r.value() or b"{}")["id"]: r.value() or b"" for r in records}
    assert b'"price":0.50' in by_id[50] and b'"price":1.00' in by_id[100]  # NUMERIC(12,2), digit for digit

    flow["checkpointReset"] = True
    everything = ROWS + NEW_ROWS
    assert run_until(tmp_path, flow, kafka.bootstrap, topic, second + everything) == everything
