"""``dataflow-operator processor`` whose sink cannot be reached, with a hostile password: it exits 1
with a readable error, and nothing it prints (stdout and stderr, every line) holds a piece of the
password. The peers are closed loopback ports, so no real PostgreSQL or Kafka is needed and no
name is looked up (PGHOSTADDR pins libpq to 127.0.0.1 whatever host a malformed string yields)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.processes import Processor, free_port
from tests.unit.observability.leaks import json_log_text, leaked

PG_PASSWORD = "p@ss?w#rd%20x y"
PG_CONNECTION_STRINGS = {
    "uri, as typed": "postgresql://app:{password}@127.0.0.1:{port}/db",
    "uri, percent-encoded": "postgresql://app:{encoded}@127.0.0.1:{port}/db",
    "key=value, unquoted": "host=127.0.0.1 port={port} user=app password={password} dbname=db",
    "key=value, quoted": "host=127.0.0.1 port={port} user=app password='{password}' dbname=db",
}
KAFKA_PASSWORD = "k@fka?s#cret%41 pw"


def _spec(workdir: Path, sink: dict[str, Any]) -> dict[str, Any]:
    (workdir / "in.jsonl").write_text(json.dumps({"id": 1}) + "\n")
    return {"source": {"type": "file", "config": {"path": str(workdir / "in.jsonl")}}, "sink": sink}


def _run_until_exit(workdir: Path, sink: dict[str, Any]) -> tuple[int, str]:
    processor = Processor(workdir, _spec(workdir, sink), env={"PGHOSTADDR": "127.0.0.1", "LOG_LEVEL": "debug"})
    try:
        code = processor.start().wait(120)
    finally:
        processor.kill()
    return code, processor.logs()


@pytest.mark.parametrize("shape", PG_CONNECTION_STRINGS)
def test_postgresql_sink_with_a_hostile_password(tmp_path: Path, shape: str) -> None:
    dsn = PG_CONNECTION_STRINGS[shape].format(password=PG_PASSWORD, encoded=quote(PG_PASSWORD, safe=""),
                                              port=free_port())
    code, logs = _run_until_exit(tmp_path, {"type": "postgresql", "config": {"connectionString": dsn,
                                                                            "table": "orders"}})
    assert code == 1, logs
    assert "PostgreSQL" in logs or "connectionString" in logs, logs  # says what failed
    assert leaked(json_log_text(logs), PG_PASSWORD, control="[REDACTED]") == [], logs


def test_kafka_sink_with_a_hostile_sasl_password(tmp_path: Path) -> None:
    sink = {"type": "kafka", "config": {"brokers": [f"127.0.0.1:{free_port()}"], "topic": "orders",
                                        "securityProtocol": "SASL_PLAINTEXT",
                                        "sasl": {"mechanism": "plain", "username": "app", "password": KAFKA_PASSWORD}}}
    code, logs = _run_until_exit(tmp_path, sink)
    assert code == 1, logs
    assert "Kafka" in logs or "kafka" in logs, logs
    # Time stamps are left out: with enough log lines, one holds four digits of any password.
    assert leaked(json_log_text(logs), KAFKA_PASSWORD, control="[REDACTED]") == [], logs
