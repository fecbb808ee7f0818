"""Kafka → Kafka through the processor (three transformations) vs a raw confluent-kafka loop.

    python bench/bench_kafka.py [--messages 200000] [--rounds 2]

Both read the same pre-produced input topic (a new consumer group each run) and write to a fresh
output topic:

* ``raw loop``  — ``consume(500)`` → ``produce`` each record → ``poll(0)``; no transformation, auto commit;
* ``processor`` — the engine the CLI runs: Kafka source → timestamp, mask, remove → Kafka sink, with
  exact acknowledgements and offset commits, all metrics on, ``channelBufferSize: 1000``.

Throughput is measured on the output topic while it fills from 10 % to 90 %, so start-up (JVM-free,
but group join and imports) counts for neither. Rounds alternate the order; the best round counts.
Needs the Kafka test peer (``python -m tests.peers provision``); starts its own broker.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests.peers helpers

from dataflow_operator.pipeline.checkpoint import MemoryCheckpointStore
from dataflow_operator.pipeline.metrics import ProcessorMetrics
from dataflow_operator.pipeline.progress import ProgressTracker
from dataflow_operator.processor.assembly import build_pipeline
from dataflow_operator.processor.engine import Services
from dataflow_operator.spec.validation import load_spec
from tests.peers import paths, provision
from tests.peers.kafka import KafkaBroker

PARTITIONS = 3
FILL_TIMEOUT = 600.0


def produce_input(bootstrap: str, topic: str, count: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20})
    for i in range(count):
        record = {"id": i, "email": f"user{i}@example.com", "debug": {"trace": i}, "amount": i * 1.5,
                  "status": "paid"}
        while True:
            try:
                producer.produce(topic, json.dumps(record).encode(), key=str(i).encode())
                break
            except BufferError:
                producer.poll(0.1)
    assert producer.flush(120) == 0


def output_size(consumer: Consumer, topic: str) -> int:
    total = 0
    for partition in range(PARTITIONS):
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
        total += high - low
    return total


def steady_rate(bootstrap: str, topic: str, count: int, done: threading.Event) -> float:
    """Messages per second on ``topic`` between 10 % and 90 % of ``count``."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"watch-{uuid.uuid4().hex}"})
    marks: dict[float, float] = {}
    deadline = time.monotonic() + FILL_TIMEOUT
    try:
        while len(marks) < 2:
            if time.monotonic() > deadline or done.is_set():
                raise RuntimeError(f"{topic} did not fill up ({output_size(consumer, topic)}/{count})")
            try:
                size = output_size(consumer, topic)
            except KafkaException:  # metadata of a new topic still settling: ask again
                continue
            now = time.monotonic()
            for fraction in (0.1, 0.9):
                if fraction not in marks and size >= fraction * count:
                    marks[fraction] = now
            time.sleep(0.02)
    finally:
        consumer.close()
    return 0.8 * count / (marks[0.9] - marks[0.1])


def raw_loop(bootstrap: str, source: str, target: str, stop: threading.Event) -> None:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"raw-{uuid.uuid4().hex}",
                         "auto.offset.reset": "earliest"})
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "enable.idempotence": True})
    consumer.subscribe([source])
    try:
        while not stop.is_set():
            for record in consumer.consume(500, 0.1):
                if record.error() is None:
                    while True:
                        try:
                            producer.produce(target, record.value(), record.key())
                            break
                        except BufferError:
                            producer.poll(0.05)
            producer.poll(0)
        producer.flush(30)
    finally:
        consumer.close()


def processor(bootstrap: str, source: str, target: str, stop: threading.Event) -> None:
    spec: dict[str, Any] = {
        "source": {"type": "kafka", "config": {"brokers": [bootstrap], "topic": source,
                                               "consumerGroup": f"pipe-{uuid.uuid4().hex}"}},
        "transformations": [
            {"type": "timestamp", "config": {"fieldName": "processed_at"}},
            {"type": "mask", "config": {"fields": ["email"]}},
            {"type": "remove", "config": {"fields": ["debug"]}},
        ],
        "sink": {"type": "kafka", "config": {"brokers": [bootstrap], "topic": target}},
        "channelBufferSize": 1000,
    }
    pipeline = build_pipeline(load_spec(spec), Services(
        namespace="bench", name="kafka", metrics=ProcessorMetrics("bench", "kafka"),
        checkpoints=MemoryCheckpointStore(), progress=ProgressTracker(0)))
    threading.Thread(target=lambda: (stop.wait(), pipeline.stop()), daemon=True).start()
    result = pipeline.run()
    assert result.failure is None, result.failure


def measure(broker: KafkaBroker, source: str, count: int,
            runner: Callable[[str, str, str, threading.Event], None]) -> float:
    target = broker.new_topic(PARTITIONS)
    stop, done = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            runner(broker.bootstrap, source, target, stop)
        except BaseException as exc:  # reported by the caller
            errors.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        return steady_rate(broker.bootstrap, target, count, done)
    finally:
        stop.set()
        thread.join(120)
        if errors:
            raise errors[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    java = paths.java_binary()
    if not provision.peer_ready("kafka") or java is None:
        sys.exit("Kafka test peer missing: run `python -m tests.peers provision` (needs Java 17)")
    with tempfile.TemporaryDirectory() as tmp:
        broker = KafkaBroker(java, paths.kafka_libs_dir(), Path(tmp))
        broker.start()
        try:
            source = broker.new_topic(PARTITIONS)
            produce_input(broker.bootstrap, source, args.messages)
            runners = {"raw loop": raw_loop, "processor": processor}
            rates: dict[str, list[float]] = {name: [] for name in runners}
            for round_ in range(args.rounds):
                for name in list(runners) if round_ % 2 == 0 else list(reversed(runners)):
                    rates[name].append(measure(broker, source, args.messages, runners[name]))
        finally:
            broker.close()
    best = {name: max(values) for name, values in rates.items()}
    print(f"messages per run: {args.messages}, partitions: {PARTITIONS}, rounds: {args.rounds} (best round counts)")
    for name, rate in best.items():
        print(f"{name:<10} {rate:>10,.0f} msg/s")
    print(f"processor / raw loop: {best['processor'] / best['raw loop']:.0%} (target >= 40%)")


if __name__ == "__main__":
    main()
