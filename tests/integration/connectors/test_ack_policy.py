"""``errors.ackPolicy`` at the message level, through the real processor: a Kafka source, a
PostgreSQL sink and a Kafka error topic, with one message failing a transformation and one failing
the sink's write (a CHECK constraint).

connectors.md §2.8 and docs/delivery.md: ``afterWrite`` (default) acknowledges a failed message once
its error record is written, so the group's offset moves past it; ``never`` and
``afterMainSinkSuccess`` (the same on the error path) leave the position at the first failed
message, so a restart reads it — and everything after it — again, and the error sink gets it again.
"""

from __future__ import annotations

import json
import signal
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.processes import Processor, wait_for

from .kafka_helpers import committed, consume_all, produce_json, topic_size

MESSAGES = 10
CAST_FAILS = 4    # "amount": "abc" — the cast transformation fails (stage transformer_0)
WRITE_FAILS = 7   # "amount": -1 — the table's CHECK refuses it (stage sink_write)


def payloads() -> list[dict[str, Any]]:
    amounts: dict[int, Any] = {CAST_FAILS: "abc", WRITE_FAILS: "-1"}
    return [{"id": i, "amount": amounts.get(i, str(i * 10))} for i in range(MESSAGES)]


@dataclass(frozen=True)
class Scenario:
    kafka: Any
    db: psycopg.Connection[Any]
    dsn: str
    workdir: Path
    topic: str
    error_topic: str
    group: str = field(default_factory=lambda: f"g-{uuid.uuid4().hex[:8]}")
    table: str = field(default_factory=lambda: f"acks_{uuid.uuid4().hex[:8]}")

    def spec(self, ack_policy: str | None) -> dict[str, Any]:
        errors: dict[str, Any] = {"type": "kafka",
                                  "config": {"brokers": [self.kafka.bootstrap], "topic": self.error_topic}}
        if ack_policy is not None:
            errors["ackPolicy"] = ack_policy
        return {
            "source": {"type": "kafka", "config": {"brokers": [self.kafka.bootstrap], "topic": self.topic,
                                                   "consumerGroup": self.group}},
            "transformations": [{"type": "cast", "config": {"spec": {"amount": "float64"}}}],
            "sink": {"type": "postgresql", "config": {"connectionString": self.dsn, "table": self.table,
                                                      "batchSize": 1, "batchFlushIntervalSeconds": 1}},
            "errors": errors,
        }

    def rows(self) -> list[int]:
        return sorted(int(row[0]) for row in self.db.execute(f"SELECT id FROM {self.table}").fetchall())

    def error_records(self) -> list[tuple[int, str]]:
        """(original id, stage) of every record in the error topic."""
        bootstrap = self.kafka.bootstrap
        found = []
        for record in consume_all(bootstrap, self.error_topic, topic_size(bootstrap, self.error_topic)):
            body = json.loads(record.value())
            found.append((int(body["original_message"]["id"]), str(body["error"]["stage"])))
        return sorted(found)

    def committed(self) -> int:
        (offset,) = committed(self.kafka.bootstrap, self.group, self.topic, 1)
        return offset

    def run(self, spec: dict[str, Any], *, rows: int, error_records: int) -> None:
        """Run the processor until it wrote ``rows`` rows and the error topic holds ``error_records``,
        then stop it gracefully (SIGTERM: positions committed)."""
        processor = Processor(self.workdir, spec, name="acks").start()
        try:
            processor.wait_ready()
            wait_for(lambda: len(self.rows()) >= rows
                     and topic_size(self.kafka.bootstrap, self.error_topic) >= error_records, 60,
                     message=f"{rows} rows and {error_records} error records")
            processor.signal(signal.SIGTERM)
            assert processor.wait(60) == 0, processor.logs()
        finally:
            processor.kill()


@pytest.mark.parametrize("ack_policy", [None, "afterWrite", "never", "afterMainSinkSuccess"])
def test_ack_policy_decides_whether_a_failed_message_is_read_again(
        kafka: Any, dsn: str, db: psycopg.Connection[Any], tmp_path: Path, ack_policy: str | None) -> None:
    case = Scenario(kafka, db, dsn, tmp_path, topic=kafka.new_topic(), error_topic=kafka.new_topic())
    db.execute(f"CREATE TABLE {case.table} (id bigint, amount double precision CHECK (amount >= 0))")
    produce_json(kafka.bootstrap, case.topic, payloads())
    spec = case.spec(ack_policy)
    delivered = [i for i in range(MESSAGES) if i not in (CAST_FAILS, WRITE_FAILS)]
    failed = [(CAST_FAILS, "transformer_0"), (WRITE_FAILS, "sink_write")]

    case.run(spec, rows=len(delivered), error_records=len(failed))
    assert case.rows() == delivered
    assert case.error_records() == failed  # exactly the failed messages, with their stage

    acknowledges = ack_policy in (None, "afterWrite")
    # The group's position: past everything, or stopped at the first failed message (the contiguous
    # run of acknowledged offsets ends there; later successes cannot move it).
    assert case.committed() == (MESSAGES if acknowledges else CAST_FAILS)

    # A restart, with one more message so that it is seen to consume: with afterWrite it reads only
    # that one, so no row and no error record appears twice. Otherwise it reads from the first failed
    # message on: both failures reach the error sink again, the successes after it are written again
    # (at-least-once), those before it are not.
    produce_json(kafka.bootstrap, case.topic, [{"id": MESSAGES, "amount": "1"}])
    again = [MESSAGES] if acknowledges else [i for i in delivered if i > CAST_FAILS] + [MESSAGES]
    case.run(spec, rows=len(delivered) + len(again), error_records=len(failed) * (1 if acknowledges else 2))
    assert case.rows() == sorted(delivered + again)
    assert case.error_records() == sorted(failed * (1 if acknowledges else 2))
    assert case.committed() == (MESSAGES + 1 if acknowledges else CAST_FAILS)
