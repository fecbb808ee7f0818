"""Kafka → PostgreSQL: the processor vs a hand-written consume → COPY loop, side by side in one run.

    python bench/bench_kafka_postgresql.py [--messages 100000] [--rounds 3]

Both read the same pre-produced topic of ~350 B JSON orders (bench_kafka.py's) and write every order
as one row of a fresh table (``order_id`` primary key; nested objects as ``jsonb``):

* ``copy loop`` — a minimal hand-written loop: ``consume(1000)``, ``json.loads``, one ``COPY`` of the
  rows and a commit per chunk, then an asynchronous offset commit (at-least-once, as the processor);
* ``processor`` — the engine the CLI runs: Kafka source → PostgreSQL sink (``batchSize: 1000``,
  ``batchFlushIntervalSeconds: 1``), exact acknowledgements and offset commits, all metrics on.

The first round checks that both stored the same rows. Throughput is measured on the table while it
fills from 10 % to 90 %; rounds alternate the order, medians count; CPU per message is printed by
thread as in bench_kafka.py. The last line:
``kafka_postgresql pipeline_msgs_per_s=P copy_loop_msgs_per_s=C ratio=R``.
Needs the Kafka and PostgreSQL test peers (``python -m tests.peers provision``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from confluent_kafka import Consumer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests.peers helpers
sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_kafka's helpers

from bench_kafka import Measurement, alternate, breakdown, kafka_with_input, measure, run_pipeline

from dataflow_operator.pipeline.metrics import ProcessorMetrics
from tests.peers import provision
from tests.peers.postgres import PostgresServer

PARTITIONS = 3
COLUMNS = ("order_id", "customer", "items", "amount", "currency", "status", "created_at", "debug")
TABLE_DDL = ("CREATE TABLE {table} (order_id BIGINT PRIMARY KEY, customer JSONB, items JSONB, amount NUMERIC, "
             "currency TEXT, status TEXT, created_at TIMESTAMPTZ, debug JSONB)")

Runner = Callable[[str, str, str, str, threading.Event], None]


def copy_loop(bootstrap: str, source: str, dsn: str, table: str, stop: threading.Event) -> None:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"copy-{uuid.uuid4().hex}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([source])
    statement = f"COPY {table} ({', '.join(COLUMNS)}) FROM STDIN"
    try:
        with psycopg.connect(dsn) as conn:
            while not stop.is_set():
                records = [r for r in consumer.consume(1000, 0.1) if r.error() is None]
                if not records:
                    continue
                with conn.transaction(), conn.cursor() as cursor, cursor.copy(statement) as copy:
                    for record in records:
                        doc = json.loads(record.value() or b"null")
                        copy.write_row((doc["order_id"], json.dumps(doc["customer"]), json.dumps(doc["items"]),
                                        doc["amount"], doc["currency"], doc["status"], doc["created_at"],
                                        json.dumps(doc["debug"])))
                consumer.commit(asynchronous=True)
    finally:
        consumer.close()


def processor(bootstrap: str, source: str, dsn: str, table: str, stop: threading.Event) -> None:
    spec: dict[str, Any] = {
        "source": {"type": "kafka", "config": {"brokers": [bootstrap], "topic": source,
                                               "consumerGroup": f"pipe-{uuid.uuid4().hex}"}},
        "sink": {"type": "postgresql", "config": {"connectionString": dsn, "table": table, "batchSize": 1000,
                                                  "batchFlushIntervalSeconds": 1}},
        "channelBufferSize": 1000,
    }
    run_pipeline(spec, ProcessorMetrics("bench", "k2p"), stop)


def measure_table(dsn: str, bootstrap: str, source: str, expected: int, runner: Runner) -> tuple[Measurement, str]:
    table = f"orders_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(TABLE_DDL.format(table=table))
    with psycopg.connect(dsn, autocommit=True) as watcher:
        def stored() -> int:
            row = watcher.execute(f"SELECT count(*) FROM {table}").fetchone()
            return int(row[0]) if row else 0

        measurement = measure(lambda stop: runner(bootstrap, source, dsn, table, stop), expected, stored)
    return measurement, table


def same_rows(dsn: str, first: str, second: str) -> None:
    with psycopg.connect(dsn) as conn:
        query = "SELECT count(*) FROM (SELECT * FROM {a} EXCEPT ALL SELECT * FROM {b}) AS d"
        for a, b in ((first, second), (second, first)):
            row = conn.execute(query.format(a=a, b=b)).fetchone()
            if row is None or row[0] != 0:
                raise AssertionError(f"{row[0] if row else '?'} rows of {a} are not in {b}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    bindir = provision.postgres_bindir()
    if not provision.peer_ready("postgresql") or bindir is None:
        sys.exit("PostgreSQL test peer missing: run `python -m tests.peers provision`")
    runners: dict[str, Runner] = {"copy loop": copy_loop, "processor": processor}
    runs: dict[str, list[Measurement]] = {name: [] for name in runners}
    print(f"load before: {os.getloadavg()[0]:.2f}", flush=True)
    server = PostgresServer(bindir)
    server.start()
    try:
        dsn = server.new_database()
        with kafka_with_input(args.messages) as (broker, source):
            tables: dict[str, str] = {}
            for name in alternate(list(runners), args.rounds):
                measurement, tables[name] = measure_table(dsn, broker.bootstrap, source, args.messages, runners[name])
                runs[name].append(measurement)
                print(f"  {name:<10} {measurement.rate:>10,.0f} msg/s", flush=True)
                if len(runs[name]) == 1 and len(tables) == 2:
                    same_rows(dsn, tables["processor"], tables["copy loop"])
                    print("output check: the processor and the copy loop stored the same rows")
    finally:
        server.close()
    rate = {name: statistics.median(m.rate for m in values) for name, values in runs.items()}
    print(f"messages per run: {args.messages}, partitions: {PARTITIONS}, rounds: {args.rounds} (medians), "
          f"load after: {os.getloadavg()[0]:.2f}")
    breakdown("CPU per message over the measured window (median of rounds):", runs, {})
    print(f"kafka_postgresql pipeline_msgs_per_s={rate['processor']:.0f} copy_loop_msgs_per_s={rate['copy loop']:.0f} "
          f"ratio={rate['processor'] / rate['copy loop']:.2f}")


if __name__ == "__main__":
    main()
