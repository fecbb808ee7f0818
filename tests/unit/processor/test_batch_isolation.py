"""One message cannot fail a batch whole, and an outage is never blamed on the messages."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dataflow_operator.pipeline.connector import WriteFailure
from dataflow_operator.pipeline.errors import EnvironmentalError, InvalidDataError, is_environmental
from dataflow_operator.pipeline.message import Message
from dataflow_operator.pipeline.metrics import ProcessorMetrics
from dataflow_operator.processor.batch_isolation import write_isolating
from dataflow_operator.processor.error_sink import ErrorSinkError, ErrorSinkWriter, Failure


class PoisonRaisingSink:
    """Like a driver that raises on one value it cannot encode: the whole call fails."""

    def __init__(self, poison: set[bytes]) -> None:
        self.poison = poison
        self.written: list[bytes] = []
        self.calls = 0

    def write(self, batch: list[Message]) -> list[WriteFailure]:
        self.calls += 1
        bad = [m.data for m in batch if m.data in self.poison]
        if bad:
            raise UnicodeEncodeError("utf-8", "\ud800", 0, 1, f"cannot encode {bad[0]!r}")
        self.written.extend(m.data for m in batch)
        return []


@given(size=st.integers(1, 64), poison=st.sets(st.integers(0, 63)))
def test_only_the_poison_messages_fail(size: int, poison: set[int]) -> None:
    batch = [Message(str(i).encode()) for i in range(size)]
    expected_bad = {str(i).encode() for i in poison if i < size}
    sink = PoisonRaisingSink(expected_bad)
    failures = write_isolating(sink.write, batch)
    assert {f.message.data for f in failures} == expected_bad
    assert set(sink.written) == {m.data for m in batch} - expected_bad
    assert not any(is_environmental(f.error) for f in failures)


def test_an_outage_fails_the_whole_batch_without_splitting_it() -> None:
    calls = []

    def down(batch: list[Message]) -> list[WriteFailure]:
        calls.append(len(batch))
        raise OSError(28, "No space left on device")

    failures = write_isolating(down, [Message(b"1"), Message(b"2"), Message(b"3")])
    assert calls == [3]
    assert len(failures) == 3 and all(is_environmental(f.error) for f in failures)


def test_an_outage_found_while_splitting_stops_the_split() -> None:
    calls = []

    def flaky(batch: list[Message]) -> list[WriteFailure]:
        calls.append(len(batch))
        if len(calls) == 1:
            raise ValueError("one bad value")
        raise EnvironmentalError("connection lost", "connection_error")

    failures = write_isolating(flaky, [Message(str(i).encode()) for i in range(4)])
    assert calls == [4, 2]  # the first half failed on the environment: the second half is not tried
    assert len(failures) == 4 and all(is_environmental(f.error) for f in failures)


class RecordingErrorSink:
    """An error sink that refuses, as data, every record that still carries its payload when ``limit`` is set."""

    type_name = "recording"

    def __init__(self, outages: int = 0, limit: int | None = None) -> None:
        self.outages = outages
        self.limit = limit
        self.records: list[bytes] = []

    def write(self, batch: list[Message]) -> list[WriteFailure]:
        if self.outages:
            self.outages -= 1
            raise EnvironmentalError("broker down", "connection_error")
        refused = [m for m in batch if self.limit is not None and len(m.data) > self.limit]
        self.records.extend(m.data for m in batch if m not in refused)
        return [WriteFailure(m, InvalidDataError("Broker: Message size too large")) for m in refused]


def error_writer(sink: RecordingErrorSink) -> ErrorSinkWriter:
    metrics = ProcessorMetrics("ns", "n", enabled=True)
    return ErrorSinkWriter(sink, sink_type="recording", ack_policy="afterWrite", original_sink="file",  # type: ignore[arg-type]
                           metrics=metrics, connector_metrics=metrics.connector("recording", "error_sink"),
                           retry_delays=(0.0, 0.0))


def failure(data: bytes, acks: list[bytes]) -> Failure:
    return Failure(Message(data, ack=lambda: acks.append(data)), InvalidDataError("bad"), "transformer_0", "default")


def test_a_record_refused_as_too_large_is_written_without_its_payload() -> None:
    acks: list[bytes] = []
    sink = RecordingErrorSink(limit=500)
    error_writer(sink).write([failure(b'"' + b"x" * 1000 + b'"', acks), failure(b'"small"', acks)])
    assert len(sink.records) == 2 and acks == [b'"' + b"x" * 1000 + b'"', b'"small"']
    assert any(b'"original_omitted":{"bytes":1002' in record for record in sink.records)
    assert any(b'"original_message":"small"' in record for record in sink.records)


def test_error_sink_outages_are_retried_then_stop_unacknowledged() -> None:
    acks: list[bytes] = []
    sink = RecordingErrorSink(outages=2)
    error_writer(sink).write([failure(b"1", acks)])
    assert acks == [b"1"] and len(sink.records) == 1
    sink = RecordingErrorSink(outages=3)
    with pytest.raises(ErrorSinkError, match="broker down"):
        error_writer(sink).write([failure(b"2", acks)])
    assert acks == [b"1"]

