"""Kafka → filter → timestamp → remove → Kafka: the processor vs the same work written by hand.

    python bench/bench_kafka.py [--messages 200000] [--rounds 3] [--ack-messages 20000] [--only NAME]

Both read the same pre-produced input topic of ~350 B JSON orders (a new consumer group each run) and
write to a fresh output topic:

* ``json loop`` — a minimal hand-written confluent-kafka loop doing the same work: ``consume(500)``,
  ``json.loads``, drop ``status == "test"``, set ``processed_at`` (RFC3339), delete ``debug``,
  ``json.dumps``, ``produce`` (idempotent producer, ``linger.ms=5`` as the sink), auto commit;
* ``processor`` — the engine the CLI runs: Kafka source → filter, timestamp, remove → Kafka sink, with
  exact acknowledgements and offset commits, all metrics on, ``channelBufferSize: 1000``.

The first round checks that both wrote the same bytes for every key (``processed_at`` is a clock
reading, so its value is masked; its form is checked). Throughput is measured on the output topic
while it fills from 10 % to 90 %, so start-up (group join, imports) counts for neither. Rounds
alternate the order; medians count. The CPU of every thread each run started is read from
``/proc`` over the same window and printed per stage, in µs per message (librdkafka's own threads
are grouped), plus the processor's time inside each transformer from its own metrics.

A second section runs the processor with ``ackGranularity: message`` and ``batch`` side by side on a
smaller topic (``--ack-messages``). The last line is always the main comparison:
``kafka pipeline_msgs_per_s=P json_loop_msgs_per_s=J ratio=R``.
Needs the Kafka test peer (``python -m tests.peers provision``); starts its own broker.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
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
TICKS = os.sysconf("SC_CLK_TCK")
TIMESTAMP_FIELD = "processed_at"
_MASKED_TIMESTAMP = re.compile(rb'"processed_at":"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:Z|[+-]\d\d:\d\d))"')

Runner = Callable[[str, str, str, threading.Event], None]


# -- the work --------------------------------------------------------------------------------------

def order(i: int) -> dict[str, Any]:
    """An order of ~350 B as JSON; one in ten is a test order the filter drops."""
    return {
        "order_id": i,
        "customer": {"id": f"c-{i % 9973:05d}", "email": f"user{i}@example.com", "tier": "gold" if i % 7 else "new"},
        "items": [{"sku": f"SKU-{i % 500:05d}", "qty": 1 + i % 3, "price": 19.99},
                  {"sku": f"SKU-{(i * 7) % 500:05d}", "qty": 2, "price": 5.5}],
        "amount": round(19.99 * (1 + i % 3) + 11.0, 2),
        "currency": "EUR",
        "status": "test" if i % 10 == 0 else "paid",
        "created_at": "2024-05-01T10:00:00Z",
        "debug": {"trace_id": f"{i * 2654435761 % 2**64:016x}", "host": f"node-{i % 13}", "attempt": 1},
    }


def kept(count: int) -> int:
    return sum(1 for i in range(count) if i % 10 != 0)


def produce_input(bootstrap: str, topic: str, count: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20})
    for i in range(count):
        while True:
            try:
                producer.produce(topic, json.dumps(order(i)).encode(), key=str(i).encode())
                break
            except BufferError:
                producer.poll(0.1)
    assert producer.flush(120) == 0


def pipeline_spec(bootstrap: str, source: str, target: str, ack_granularity: str = "batch") -> dict[str, Any]:
    return {
        "source": {"type": "kafka", "config": {"brokers": [bootstrap], "topic": source,
                                               "consumerGroup": f"pipe-{uuid.uuid4().hex}"}},
        "transformations": [
            {"type": "filter", "config": {"condition": "$.status != 'test'"}},
            {"type": "timestamp", "config": {"fieldName": TIMESTAMP_FIELD}},
            {"type": "remove", "config": {"fields": ["debug"]}},
        ],
        "sink": {"type": "kafka", "config": {"brokers": [bootstrap], "topic": target}},
        "channelBufferSize": 1000,
        "ackGranularity": ack_granularity,
    }


def rfc3339_now() -> str:
    """What the timestamp transformation writes by default: local time, RFC3339, ``Z`` for UTC."""
    text = datetime.now().astimezone().isoformat(timespec="seconds")
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def json_loop(bootstrap: str, source: str, target: str, stop: threading.Event) -> None:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"loop-{uuid.uuid4().hex}",
                         "auto.offset.reset": "earliest"})
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "enable.idempotence": True})
    consumer.subscribe([source])
    try:
        while not stop.is_set():
            for record in consumer.consume(500, 0.1):
                if record.error() is not None:
                    continue
                doc = json.loads(record.value() or b"null")
                if doc["status"] == "test":
                    continue
                doc[TIMESTAMP_FIELD] = rfc3339_now()
                doc.pop("debug", None)
                value = json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()
                while True:
                    try:
                        producer.produce(target, value, record.key())
                        break
                    except BufferError:
                        producer.poll(0.05)
            producer.poll(0)
        producer.flush(30)
    finally:
        consumer.close()


def run_pipeline(spec: dict[str, Any], metrics: ProcessorMetrics, stop: threading.Event) -> None:
    """The engine the CLI runs, on ``spec``, until ``stop`` is set (then it drains)."""
    pipeline = build_pipeline(load_spec(spec), Services(
        namespace="bench", name="bench", metrics=metrics, checkpoints=MemoryCheckpointStore(),
        progress=ProgressTracker(0)))

    def stop_when_told() -> None:
        stop.wait()
        pipeline.stop()

    threading.Thread(target=stop_when_told, daemon=True).start()
    result = pipeline.run()
    assert result.failure is None, result.failure


@contextmanager
def kafka_with_input(messages: int) -> Iterator[tuple[KafkaBroker, str]]:
    """A private broker and a topic of ``messages`` orders on it."""
    java = paths.java_binary()
    if not provision.peer_ready("kafka") or java is None:
        sys.exit("Kafka test peer missing: run `python -m tests.peers provision` (needs Java 17)")
    with tempfile.TemporaryDirectory() as tmp:
        broker = KafkaBroker(java, paths.kafka_libs_dir(), Path(tmp))
        broker.start()
        try:
            source = broker.new_topic(PARTITIONS)
            produce_input(broker.bootstrap, source, messages)
            yield broker, source
        finally:
            broker.close()


@dataclass
class ProcessorRun:
    """The processor as a runner; keeps the metrics of its last run for the breakdown."""

    ack_granularity: str = "batch"
    metrics: ProcessorMetrics | None = None

    def __call__(self, bootstrap: str, source: str, target: str, stop: threading.Event) -> None:
        self.metrics = ProcessorMetrics("bench", "kafka")
        run_pipeline(pipeline_spec(bootstrap, source, target, self.ack_granularity), self.metrics, stop)

    def transformer_seconds(self) -> dict[str, float]:
        """Mean seconds per call inside each transformer (its own duration histogram), by step."""
        assert self.metrics is not None
        totals: dict[str, dict[str, float]] = {}
        for family in self.metrics.collect():
            if family.name != "dataflow_transformer_duration_seconds":
                continue
            for sample in family.samples:
                labels = sample.labels
                step = f"transformer_{labels['transformer_index']} ({labels['transformer_type']})"
                totals.setdefault(step, {})[sample.name.rsplit("_", 1)[-1]] = sample.value
        return {step: values["sum"] / values["count"] for step, values in totals.items() if values.get("count")}


# -- measuring -------------------------------------------------------------------------------------

def thread_names() -> dict[int, str]:
    return {thread.native_id: thread.name for thread in threading.enumerate() if thread.native_id is not None}


def thread_cpu() -> dict[int, tuple[str, float]]:
    """CPU seconds (user + system) of every thread of this process, with a name for each."""
    names = thread_names()
    result: dict[int, tuple[str, float]] = {}
    for task in Path("/proc/self/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:  # ended meanwhile
            continue
        comm_end = stat.rindex(")")
        comm = stat[stat.index("(") + 1:comm_end]
        fields = stat[comm_end + 2:].split()
        cpu = (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime
        tid = int(task.name)
        name = names.get(tid, comm)
        result[tid] = ("librdkafka threads" if name.startswith("rdk:") else name, cpu)
    return result


@dataclass
class Measurement:
    rate: float
    messages: int
    cpu_by_stage: dict[str, float] = field(default_factory=dict)  # CPU seconds over the window

    def us_per_message(self) -> dict[str, float]:
        return {stage: 1e6 * seconds / self.messages for stage, seconds in self.cpu_by_stage.items()}


def output_size(consumer: Consumer, topic: str) -> int:
    total = 0
    for partition in range(PARTITIONS):
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
        total += high - low
    return total


def measure(run: Callable[[threading.Event], None], expected: int, progress: Callable[[], int]) -> Measurement:
    """Runs ``run(stop)`` until ``progress()`` reaches ``expected``; rate and CPU are taken between the
    10 % and 90 % marks. Threads that exist already (the bench's own) are not counted."""
    before = set(thread_cpu())
    stop, done = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def guarded() -> None:
        try:
            run(stop)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=guarded, name="runner", daemon=True)
    thread.start()
    marks: dict[float, tuple[float, dict[int, tuple[str, float]]]] = {}
    deadline = time.monotonic() + FILL_TIMEOUT
    try:
        while len(marks) < 2:
            if time.monotonic() > deadline or done.is_set():
                raise RuntimeError(f"the output did not fill up ({progress()}/{expected})")
            size = progress()
            for fraction in (0.1, 0.9):
                if fraction not in marks and size >= fraction * expected:
                    marks[fraction] = (time.monotonic(), thread_cpu())
            time.sleep(0.02)
        while progress() < expected:  # complete, so the outputs can be compared
            if time.monotonic() > deadline or done.is_set():
                raise RuntimeError(f"the output stopped short of {expected}")
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(120)
        if errors:
            raise errors[0]
    (start, cpu_start), (end, cpu_end) = marks[0.1], marks[0.9]
    by_stage: dict[str, float] = {}
    for tid, (name, cpu) in cpu_end.items():
        if tid not in before:
            by_stage[name] = by_stage.get(name, 0.0) + cpu - cpu_start.get(tid, (name, 0.0))[1]
    window = 0.8 * expected
    return Measurement(window / (end - start), round(window), by_stage)


def measure_topic(broker: KafkaBroker, source: str, expected: int, runner: Runner) -> tuple[Measurement, str]:
    """``runner`` from ``source`` into a fresh topic, measured on that topic; and the topic."""
    target = broker.new_topic(PARTITIONS)
    watcher = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": f"watch-{uuid.uuid4().hex}"})

    def written() -> int:
        try:
            return output_size(watcher, target)
        except KafkaException:  # metadata of a new topic still settling: ask again
            return 0

    try:
        return measure(lambda stop: runner(broker.bootstrap, source, target, stop), expected, written), target
    finally:
        watcher.close()


def read_topic(bootstrap: str, topic: str, expected: int) -> dict[bytes, bytes]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"check-{uuid.uuid4().hex}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    values: dict[bytes, bytes] = {}
    deadline = time.monotonic() + 120
    try:
        while len(values) < expected and time.monotonic() < deadline:
            for record in consumer.consume(1000, 0.5):
                if record.error() is None:
                    values[record.key() or b""] = record.value() or b""
    finally:
        consumer.close()
    return values


def same_output(bootstrap: str, first: str, second: str, expected: int) -> None:
    """Both topics hold the same bytes per key, the clock reading apart (its form is checked)."""
    a, b = read_topic(bootstrap, first, expected), read_topic(bootstrap, second, expected)
    if len(a) != expected or len(b) != expected:
        raise AssertionError(f"expected {expected} distinct keys, found {len(a)} and {len(b)}")

    def masked(value: bytes) -> bytes:
        result, replaced = _MASKED_TIMESTAMP.subn(b'"processed_at":"T"', value)
        if replaced != 1:
            raise AssertionError(f"no RFC3339 processed_at in {value[:120]!r}")
        return result

    differing = [key for key, value in a.items() if masked(value) != masked(b.get(key, b""))]
    if differing:
        key = differing[0]
        raise AssertionError(f"{len(differing)} outputs differ, e.g. key {key!r}:\n{a[key]!r}\n{b.get(key)!r}")


def alternate(names: list[str], rounds: int) -> Iterator[str]:
    for round_ in range(rounds):
        yield from names if round_ % 2 == 0 else reversed(names)


def breakdown(title: str, runs: dict[str, list[Measurement]], extra: dict[str, dict[str, float]]) -> None:
    """Median µs of CPU per message, by thread (stage), for each runner."""
    print(title)
    for name, measurements in runs.items():
        stages: dict[str, list[float]] = {}
        for measurement in measurements:
            for stage, value in measurement.us_per_message().items():
                stages.setdefault(stage, []).append(value)
        medians = {stage: statistics.median(values) for stage, values in stages.items()}
        total = sum(medians.values())
        parts = ", ".join(f"{stage} {value:.1f}" for stage, value in
                          sorted(medians.items(), key=lambda item: -item[1]) if value >= 0.05)
        print(f"  {name:<22} {total:6.1f} µs CPU/msg: {parts}")
        for stage, value in extra.get(name, {}).items():
            print(f"  {'':<22}   in {stage}: {value:.1f} µs per call (wall)")


# -- main ------------------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--ack-messages", type=int, default=20_000,
                        help="input size of the ackGranularity message-vs-batch section (0 skips it)")
    parser.add_argument("--only", choices=("processor", "json loop"),
                        help="run one side alone (profiling); prints no comparison")
    args = parser.parse_args()
    processor = ProcessorRun()
    runners: dict[str, Runner] = {"json loop": json_loop, "processor": processor}
    if args.only:
        runners = {args.only: runners[args.only]}
    expected = kept(args.messages)
    runs: dict[str, list[Measurement]] = {name: [] for name in runners}
    inside: dict[str, list[float]] = {}
    ack_runs: dict[str, list[Measurement]] = {}
    print(f"load before: {os.getloadavg()[0]:.2f}", flush=True)
    with kafka_with_input(args.messages) as (broker, source):
        targets: dict[str, str] = {}
        for name in alternate(list(runners), args.rounds):
            measurement, targets[name] = measure_topic(broker, source, expected, runners[name])
            runs[name].append(measurement)
            if len(runs[name]) == 1 and len(runners) == 2 and len(targets) == 2:
                same_output(broker.bootstrap, targets["processor"], targets["json loop"], expected)
                print("output check: the processor and the json loop wrote the same bytes for every key")
            print(f"  {name:<10} {measurement.rate:>10,.0f} msg/s", flush=True)
            if name == "processor":
                for stage, seconds in processor.transformer_seconds().items():
                    inside.setdefault(stage, []).append(1e6 * seconds)
        if args.ack_messages and not args.only:
            ack_source = broker.new_topic(PARTITIONS)
            produce_input(broker.bootstrap, ack_source, args.ack_messages)
            ack_runners = {f"ack {granularity}": ProcessorRun(granularity) for granularity in ("message", "batch")}
            ack_runs = {name: [] for name in ack_runners}
            for name in alternate(list(ack_runners), 2):
                ack_runs[name].append(measure_topic(broker, ack_source, kept(args.ack_messages),
                                                    ack_runners[name])[0])
                print(f"  {name:<10} {ack_runs[name][-1].rate:>10,.0f} msg/s", flush=True)
    rate = {name: statistics.median(m.rate for m in values) for name, values in runs.items()}
    print(f"messages per run: {args.messages} ({expected} kept), partitions: {PARTITIONS}, rounds: {args.rounds} "
          f"(medians), load after: {os.getloadavg()[0]:.2f}")
    for name, value in rate.items():
        print(f"{name:<10} {value:>10,.0f} msg/s")
    extra = {"processor": {stage: statistics.median(values) for stage, values in inside.items()}}
    breakdown("CPU per message over the measured window (median of rounds):", runs, extra)
    if ack_runs:
        ack_rate = {name: statistics.median(m.rate for m in values) for name, values in ack_runs.items()}
        print(f"ackGranularity ({args.ack_messages} messages): message {ack_rate['ack message']:,.0f} msg/s, "
              f"batch {ack_rate['ack batch']:,.0f} msg/s, message/batch "
              f"{ack_rate['ack message'] / ack_rate['ack batch']:.2f}")
    if len(rate) == 2:
        print(f"kafka pipeline_msgs_per_s={rate['processor']:.0f} json_loop_msgs_per_s={rate['json loop']:.0f} "
              f"ratio={rate['processor'] / rate['json loop']:.2f}")


if __name__ == "__main__":
    main()
