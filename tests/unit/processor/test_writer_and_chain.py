"""The writer's retries and the chain's per-message failures, driven directly: retry delays are
passed in, so a retried write costs no real wait."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from dataflow_operator.pipeline.connector import WriteFailure
from dataflow_operator.pipeline.errors import InvalidDataError
from dataflow_operator.pipeline.message import Message
from dataflow_operator.pipeline.metrics import ProcessorMetrics
from dataflow_operator.pipeline.progress import ProgressTracker
from dataflow_operator.processor.chain import TransformChain
from dataflow_operator.processor.error_sink import ErrorSinkWriter
from dataflow_operator.processor.queues import ChunkQueue
from dataflow_operator.processor.writer import SinkWriter, WriteStoppedError

from .fakes import FakeSink
from .test_batch_isolation import RecordingErrorSink, error_writer


class FlakySink(FakeSink):
    """Raises ``errors`` one call at a time, then writes; refuses payloads starting with ``bad``."""

    type_name = "flaky"

    def __init__(self, errors: list[BaseException]) -> None:
        self.errors = errors
        self.calls = 0
        self.written: list[bytes] = []

    def write(self, batch: list[Message]) -> list[WriteFailure]:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        self.written.extend(m.data for m in batch if not m.data.startswith(b"bad"))
        return [WriteFailure(m, InvalidDataError("refused")) for m in batch if m.data.startswith(b"bad")]


def run_writer(sink: FlakySink, messages: list[Message], retry_delays: tuple[float, ...],
               error_sink: ErrorSinkWriter | None = None) -> list[BaseException]:
    """Write ``messages`` through one writer thread until its queue is drained; what it failed with."""
    metrics = ProcessorMetrics("ns", "n")
    queue = ChunkQueue(100, metrics.queue_size("output"), metrics.queue_wait("output"))
    queue.put(messages)
    queue.close()
    failed: list[BaseException] = []
    writer = SinkWriter(route="default", sink=sink, sink_type=sink.type_name, queue=queue, metrics=metrics,
                        connector_metrics=metrics.connector(sink.type_name, "sink"), error_sink=error_sink,
                        progress=ProgressTracker(0), abort=threading.Event(), fail=failed.append,
                        retry_delays=retry_delays)
    writer.start()
    writer.join(timeout=10)
    assert not writer.is_alive()
    return failed


def acked(count: int) -> tuple[list[Message], list[int]]:
    acks: list[int] = []
    return [Message(b"m%d" % i, ack=lambda i=i: acks.append(i)) for i in range(count)], acks  # type: ignore[misc]


def test_a_timeout_is_retried_once_per_delay_and_then_the_write_succeeds() -> None:
    sink = FlakySink([TimeoutError("timed out"), TimeoutError("timed out")])
    messages, acks = acked(3)
    assert run_writer(sink, messages, retry_delays=(0.0, 0.0)) == []
    assert sink.calls == 3 and sink.written == [b"m0", b"m1", b"m2"]
    assert acks == [0, 1, 2]  # each acknowledged once, after the write that succeeded


@pytest.mark.parametrize("delays", [(), (0.0,), (0.0, 0.0, 0.0)])
def test_an_outage_outlasting_every_retry_stops_the_pipeline_unacknowledged(delays: tuple[float, ...]) -> None:
    sink = FlakySink([ConnectionRefusedError("refused")] * 10)
    messages, acks = acked(2)
    [failure] = run_writer(sink, messages, retry_delays=delays)
    assert isinstance(failure, WriteStoppedError) and "is unavailable" in str(failure)
    assert f"after {len(delays) + 1} attempts" in str(failure)
    assert sink.calls == len(delays) + 1 and acks == []


def test_a_data_error_is_not_retried_and_goes_to_the_error_sink() -> None:
    sink = FlakySink([])
    records = RecordingErrorSink()
    messages, acks = acked(2)
    bad = Message(b"bad one", ack=lambda: acks.append(99))
    assert run_writer(sink, [messages[0], bad, messages[1]], retry_delays=(5.0, 5.0),
                      error_sink=error_writer(records)) == []
    assert sink.calls == 1 and sink.written == [b"m0", b"m1"]
    assert len(records.records) == 1 and sorted(acks) == [0, 1, 99]


def test_without_an_error_sink_a_data_error_stops_the_pipeline() -> None:
    messages, acks = acked(1)
    [failure] = run_writer(FlakySink([]), [*messages, Message(b"bad")], retry_delays=(5.0,))
    assert isinstance(failure, WriteStoppedError) and "failed to write 1 message" in str(failure)
    assert acks == [0]  # what was written is acknowledged; the refused message is not


# -- the chain ------------------------------------------------------------------------------------


class Step:
    """Doubles a message, or raises on payloads starting with ``boom``."""

    def transform(self, message: Message) -> list[Message]:
        if message.data.startswith(b"boom"):
            raise InvalidDataError("boom")
        return [message.derive(message.data + b"a"), message.derive(message.data + b"b")]


class Tagger:
    def __init__(self, config: Mapping[str, Any]) -> None:
        self.suffix = str(config["suffix"]).encode()

    def transform(self, message: Message) -> list[Message]:
        if message.data.endswith(b"ab"):
            raise InvalidDataError("no ab")
        return [message.derive(message.data + self.suffix)]


def test_the_chain_keeps_order_and_a_failure_skips_only_its_message() -> None:
    registry = CollectorRegistry()
    metrics = ProcessorMetrics("ns", "n", registry=registry)

    def counter(family: str, type_name: str, index: int) -> float | None:
        return registry.get_sample_value(family, {"namespace": "ns", "name": "n", "transformer_type": type_name,
                                                  "transformer_index": str(index)})

    chain = TransformChain([("double", Step()), ("tag", Tagger({"suffix": "!"}))], metrics)
    outputs, failures = chain.run(Message(b"x"))
    assert [m.data for m in outputs] == [b"xa!", b"xb!"]
    assert failures == []
    outputs, failures = chain.run(Message(b"boom"))
    assert outputs == [] and [(f.stage, f.transformer_type, f.message.data) for f in failures] == \
        [("transformer_0", "double", b"boom")]
    chain.flush_metrics()
    assert counter("dataflow_transformer_messages_in_total", "double", 0) == 2
    assert counter("dataflow_transformer_messages_out_total", "double", 0) == 2
    assert counter("dataflow_transformer_messages_in_total", "tag", 1) == 2
    assert counter("dataflow_transformer_executions_total", "tag", 1) == 2


def test_a_failure_in_a_later_step_reports_the_message_as_it_entered_that_step() -> None:
    chain = TransformChain([("double", Step()), ("tag", Tagger({"suffix": "!"}))], ProcessorMetrics("ns", "n"))
    source = Message(b"xa")  # doubled into xaa and xab; xab fails in the second step
    outputs, failures = chain.run(source)
    assert [m.data for m in outputs] == [b"xaa!"]
    assert [(f.stage, f.message.data) for f in failures] == [("transformer_1", b"xab")]
