"""Queues, probes, checkpoints, error records, error classification, durations, metrics."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from dataflow_operator.pipeline.checkpoint import (
    Checkpointer,
    CorruptCheckpointError,
    FileCheckpointStore,
    MemoryCheckpointStore,
    deferred_saves,
)
from dataflow_operator.pipeline.errors import (
    ERROR_TYPES,
    ClassifiedError,
    EnvironmentalError,
    InvalidDataError,
    classify,
    is_environmental,
)
from dataflow_operator.pipeline.message import Message
from dataflow_operator.pipeline.metrics import ProcessorMetrics, exponential_buckets
from dataflow_operator.pipeline.progress import ProgressTracker
from dataflow_operator.processor.queues import ChunkQueue
from dataflow_operator.spec.durations import parse_duration

CONTRACT = json.loads((Path(__file__).parents[2] / "data" / "metrics-contract.json").read_text())


def _queue(capacity: int) -> tuple[ChunkQueue, ProcessorMetrics]:
    metrics = ProcessorMetrics("ns", "n")
    return ChunkQueue(capacity, metrics.queue_size("routing"), metrics.queue_wait("routing")), metrics


def test_queue_splits_chunks_and_counts_messages() -> None:
    queue, metrics = _queue(10)
    queue.put([Message(b"%d" % i) for i in range(6)])
    assert len(queue) == 6 and metrics.queue_size("routing").value == 6
    first = queue.get(4, timeout=0)
    assert first is not None and [m.data for m in first] == [b"0", b"1", b"2", b"3"]
    rest = queue.get(10, timeout=0)
    assert rest is not None and len(rest) == 2
    assert queue.get(10, timeout=0) == []
    queue.close()
    assert queue.get(10, timeout=0) is None
    assert metrics.queue_wait("routing").snapshot()[0][-1] == 0  # observed in buckets, not +Inf only


def test_queue_blocks_when_full_until_a_get() -> None:
    queue, _ = _queue(3)
    queue.put([Message(b"a"), Message(b"b"), Message(b"c")])
    done = threading.Event()

    def producer() -> None:
        queue.put([Message(b"d")])
        done.set()

    threading.Thread(target=producer, daemon=True).start()
    assert not done.wait(0.2)
    queue.get(1, timeout=0)
    assert done.wait(2)


def test_an_oversized_chunk_enters_an_empty_queue() -> None:
    queue, _ = _queue(2)
    queue.put([Message(b"x")] * 5)
    assert len(queue) == 5


def test_probes_move_with_readiness_and_progress() -> None:
    now = [100.0]
    tracker = ProgressTracker(timeout_seconds=60, clock=lambda: now[0], timeout_setting="TIMEOUT_VARIABLE")
    assert tracker.readiness()[0] is False
    assert tracker.liveness() == (False, "not ready: source not connected yet")
    tracker.mark_ready()
    assert tracker.liveness()[0] is True
    now[0] += 61
    alive, reason = tracker.liveness()
    assert not alive and reason == "stale: no pipeline progress for 61s (TIMEOUT_VARIABLE=60)"
    tracker.bump()
    assert tracker.liveness()[0] is True
    tracker.mark_not_ready("sink failed")
    assert tracker.readiness() == (False, "sink failed")
    disabled = ProgressTracker(0, clock=lambda: now[0])
    disabled.mark_ready()
    now[0] += 10**6
    assert disabled.liveness()[0] is True


def test_file_checkpoint_store_round_trips_atomically(tmp_path: Path) -> None:
    store = FileCheckpointStore(tmp_path / "deep" / "cp.json")
    assert store.load("file") is None
    store.save("file", "42")
    store.save("postgresql", '{"a": 1}')
    assert FileCheckpointStore(tmp_path / "deep" / "cp.json").load("file") == "42"
    store.delete("file")
    assert store.load("file") is None and store.load("postgresql") == '{"a": 1}'
    assert not list((tmp_path / "deep").glob("*.tmp"))


def test_a_corrupt_checkpoint_file_is_an_error_not_a_silent_restart(tmp_path: Path) -> None:
    path = tmp_path / "cp.json"
    path.write_text("{not json")
    with pytest.raises(CorruptCheckpointError, match="is not JSON"):
        FileCheckpointStore(path).load("file")


class _CountingStore(MemoryCheckpointStore):
    def __init__(self) -> None:
        super().__init__()
        self.saves: list[str] = []

    def save(self, key: str, value: str) -> None:
        self.saves.append(value)
        super().save(key, value)


def test_checkpointer_debounces_and_flushes() -> None:
    store = _CountingStore()
    checkpointer = Checkpointer(store, "k", save_interval=3600)
    checkpointer.update("1")
    checkpointer.update("2")
    assert store.saves == []
    checkpointer.flush()
    assert store.saves == ["2"]
    checkpointer.flush()
    assert store.saves == ["2"]


def test_sync_on_ack_saves_once_per_acknowledged_batch() -> None:
    store = _CountingStore()
    checkpointer = Checkpointer(store, "k", save_interval=0, sync_on_ack=True)
    with deferred_saves():
        for value in ("1", "2", "3"):
            checkpointer.update(value)
        assert store.saves == []
    assert store.saves == ["3"]


@pytest.mark.parametrize(("exc", "expected"), [
    (TimeoutError(), "timeout"),
    (ConnectionRefusedError(), "connection_error"),
    (json.JSONDecodeError("x", "", 0), "invalid_data"),
    (ClassifiedError("dup", "constraint_violation"), "constraint_violation"),
    (RuntimeError("Local: Timed out"), "timeout"),
    (RuntimeError("SASL authentication failed"), "auth_error"),
    (RuntimeError("connection refused by peer"), "connection_error"),
    (RuntimeError("something else"), "unknown"),
    (OSError(28, "No space left on device"), "transient"),
    (OSError(5, "Input/output error"), "transient"),
    (RecursionError("maximum recursion depth exceeded"), "invalid_data"),
])
def test_errors_classify_into_the_closed_set(exc: BaseException, expected: str) -> None:
    assert classify(exc) == expected
    assert classify(exc) in ERROR_TYPES
    assert set(ERROR_TYPES) == set(CONTRACT["error_type_values"])


@pytest.mark.parametrize(("exc", "environmental"), [
    (OSError(28, "No space left on device"), True),
    (OSError(30, "Read-only file system"), True),
    (PermissionError(13, "Permission denied"), True),
    (TimeoutError(), True),
    (ClassifiedError("gone", "connection_error"), True),
    (EnvironmentalError("table disappeared", "unknown"), True),
    (InvalidDataError("not JSON"), False),
    (ClassifiedError("dup", "constraint_violation"), False),
    (UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"), False),
    (ValueError("bad total"), False),
    (RuntimeError("something else"), False),
])
def test_environmental_failures_are_told_from_bad_data(exc: BaseException, environmental: bool) -> None:
    assert is_environmental(exc) is environmental


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("2h30m", 9000), ("1.5h", 5400), ("300ms", 0.3),
                                               ("1us", 1e-6), ("0", 0), ("-5m", -300)])
def test_go_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "5", "1d", "h", "1h 30m", "abc"])
def test_bad_durations_are_rejected(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


def test_metric_buckets_and_labels_come_from_the_contract() -> None:
    registry = CollectorRegistry(auto_describe=False)
    metrics = ProcessorMetrics("ns", "n", registry=registry)
    for family in CONTRACT["metrics"]:
        if family["exported_by"] != "processor":
            continue
        extra = [label for label in family["labels"] if label not in ("namespace", "name")]
        metrics.families[family["name"]].labels(*("x" for _ in extra))
    parsed = {f.name: f for f in text_string_to_metric_families(generate_latest(registry).decode())}
    for family in (f for f in CONTRACT["metrics"] if f["exported_by"] == "processor"):
        name = family["name"].removesuffix("_total") if family["type"] == "counter" else family["name"]
        assert parsed[name].type == family["type"]
        if family["type"] == "histogram":
            spec = CONTRACT["buckets"][family["buckets"]]
            # one child per family was created above, so every bucket sample belongs to it
            bounds = [float(s.labels["le"]) for s in parsed[name].samples if s.name.endswith("_bucket")]
            assert bounds[:-1] == pytest.approx(exponential_buckets(spec["start"], spec["factor"], spec["count"]))


def test_disabled_metrics_record_nothing() -> None:
    registry = CollectorRegistry(auto_describe=False)
    metrics = ProcessorMetrics("ns", "n", enabled=False, registry=registry)
    metrics.stage_duration("read").observe(1.0)
    metrics.connector("file", "source").read.inc()
    assert "dataflow_task_stage_duration_seconds_bucket" not in generate_latest(registry).decode()
