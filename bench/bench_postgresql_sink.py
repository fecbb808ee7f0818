"""PostgreSQL sink write paths vs ``executemany``, side by side in one run, on a private server.

    python bench/bench_postgresql_sink.py [--rows 100000] [--batch 1000] [--rounds 3]

Every path takes the same JSON messages in batches, parses them and inserts them in one transaction
per batch with ``ON CONFLICT DO NOTHING`` semantics:

* ``sink (COPY)``          — PostgreSQLSink as configured: each batch COPYed straight into the table (it
                              would fall back to the INSERT path below if a key were already there)
* ``sink, INSERT path``    — PostgreSQLSink with COPY turned off: one INSERT … SELECT FROM
                              jsonb_populate_recordset($1) … ON CONFLICT DO NOTHING per batch, the path a
                              replayed batch takes
* ``sink, stage path``     — the INSERT path for groups over SinkTuning.parameter_max_bytes: COPY of the payloads into
                              a temp stage, then INSERT … SELECT jsonb_populate_record(…) ON CONFLICT …
* ``executemany``          — the sink's decoder + cursor.executemany(INSERT … VALUES … ON CONFLICT DO
                              NOTHING), which psycopg 3 already pipelines (one round trip per batch)

All write into the same keyed table shape (primary key on ``id``).

Rounds alternate the order so machine noise hits every path alike; the best round of each counts.
Needs the PostgreSQL test peer (``python -m tests.peers provision``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests.peers helpers

from dataflow_operator.connectors.postgresql import PostgreSQLSink
from dataflow_operator.connectors.postgresql.payloads import decode_payload
from dataflow_operator.connectors.postgresql.tuning import SinkTuning
from dataflow_operator.pipeline.checkpoint import MemoryCheckpointStore
from dataflow_operator.pipeline.connector import ConnectorContext
from dataflow_operator.pipeline.message import Message
from dataflow_operator.pipeline.metrics import ProcessorMetrics
from dataflow_operator.pipeline.progress import ProgressTracker
from dataflow_operator.processor.assembly import settings_from_spec
from tests.peers import provision
from tests.peers.postgres import PostgresServer

BASELINE = "executemany"
COLUMNS = "id BIGINT, name TEXT, amount NUMERIC, doc JSONB, seen TIMESTAMPTZ"
INSERT = ("INSERT INTO {table} (id, name, amount, doc, seen) VALUES (%s, %s, %s, %s, %s) "
          "ON CONFLICT DO NOTHING")


def messages(count: int) -> list[Message]:
    return [Message(json.dumps({"id": i, "name": f"customer {i}", "amount": f"{i}.25", "doc": {"tier": i % 5},
                                "seen": "2024-05-01T10:00:00Z"}).encode()) for i in range(count)]


def batches(items: list[Message], size: int) -> list[list[Message]]:
    return [items[start:start + size] for start in range(0, len(items), size)]


def with_sink(dsn: str, table: str, *, copy_first: bool = True,
              stage: bool = False) -> Callable[[list[list[Message]]], None]:
    context = ConnectorContext("bench", "bench", "sink", ProcessorMetrics("bench", "bench").connector(
        "postgresql", "sink"), MemoryCheckpointStore(), ProgressTracker(0), settings_from_spec({}))

    tuning = SinkTuning(copy_first=copy_first, parameter_max_bytes=0 if stage else SinkTuning().parameter_max_bytes)

    def run(work: list[list[Message]]) -> None:
        sink = PostgreSQLSink({"connectionString": dsn, "table": table}, context, tuning)
        sink.connect()
        try:
            for batch in work:
                assert sink.write(batch) == []
        finally:
            sink.close()

    return run


def with_executemany(dsn: str, table: str) -> Callable[[list[list[Message]]], None]:
    statement = INSERT.format(table=table)

    def run(work: list[list[Message]]) -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            for batch in work:
                rows = []
                for message in batch:
                    row = decode_payload(message.data)  # the sink's own decoder: only the writing differs
                    rows.append((row["id"], row["name"], row["amount"], json.dumps(row["doc"]), row["seen"]))
                with conn.transaction(), conn.cursor() as cursor:
                    cursor.executemany(statement, rows)

    return run


def timed(dsn: str, table: str, run: Callable[[list[list[Message]]], None], work: list[list[Message]]) -> float:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {table}")
        conn.execute(f"CREATE TABLE {table} ({COLUMNS}, PRIMARY KEY (id))")
    started = time.perf_counter()
    run(work)
    elapsed = time.perf_counter() - started
    with psycopg.connect(dsn) as conn:
        stored = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    assert stored == (sum(len(b) for b in work),), stored
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    bindir = provision.postgres_bindir()
    if not provision.peer_ready("postgresql") or bindir is None:
        sys.exit("PostgreSQL test peer missing: run `python -m tests.peers provision`")
    work = batches(messages(args.rows), args.batch)
    server = PostgresServer(bindir)
    server.start()
    try:
        dsn = server.new_database()
        paths: dict[str, tuple[str, Callable[[list[list[Message]]], None]]] = {
            "sink (COPY)": ("bench_copy", with_sink(dsn, "bench_copy")),
            "sink, INSERT path": ("bench_insert", with_sink(dsn, "bench_insert", copy_first=False)),
            "sink, stage path": ("bench_stage", with_sink(dsn, "bench_stage", copy_first=False, stage=True)),
            BASELINE: ("bench_many", with_executemany(dsn, "bench_many")),
        }
        times: dict[str, list[float]] = {name: [] for name in paths}
        for round_ in range(args.rounds):
            for name in list(paths) if round_ % 2 == 0 else list(reversed(paths)):
                table, run = paths[name]
                times[name].append(timed(dsn, table, run, work))
    finally:
        server.close()
    rate = {name: args.rows / min(values) for name, values in times.items()}
    baseline = rate[BASELINE]
    print(f"rows per run: {args.rows}, batch: {args.batch}, rounds: {args.rounds} (best round counts)")
    for name, value in rate.items():
        print(f"{name:<26} {value:>10,.0f} rows/s   {value / baseline:5.2f}x executemany")


if __name__ == "__main__":
    main()
