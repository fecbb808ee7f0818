"""The file sink under disk faults: a failed write is the environment's, and leaves no torn line."""

from __future__ import annotations

import errno
import io
import logging
import os
from pathlib import Path
from typing import Any

import pytest

from dataflow_operator.connectors.file import FileSink
from dataflow_operator.pipeline.errors import EnvironmentalError, is_environmental, is_retryable
from dataflow_operator.pipeline.message import Message
from tests.integration.connectors.harness import Harness


def sink(path: str | Path) -> FileSink:
    connector = FileSink({"path": str(path)}, Harness("file", "sink").context)
    connector.connect()
    return connector


def batch(*ids: int) -> list[Message]:
    return [Message(b'{"id": %d}' % i) for i in ids]


def test_a_torn_last_line_is_moved_aside_at_connect(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "out.jsonl"
    path.write_bytes(b'{"id": 1}\n{"id": 2}\n{"id": 3, "na')
    caplog.set_level(logging.WARNING, "dataflow_operator.connectors.file")
    connector = sink(path)
    assert path.read_bytes() == b'{"id": 1}\n{"id": 2}\n'
    assert (tmp_path / "out.jsonl.torn").read_bytes() == b'{"id": 3, "na\n'
    (record,) = caplog.records
    assert record.bytes == len(b'{"id": 3, "na') and record.moved_to == str(path) + ".torn"  # type: ignore[attr-defined]
    connector.write(batch(3))
    connector.close()
    assert path.read_bytes() == b'{"id": 1}\n{"id": 2}\n{"id": 3}\n'


def test_a_file_without_any_newline_is_moved_aside_whole(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    fragment = b"x" * 200_000  # longer than one scan block
    path.write_bytes(fragment)
    (tmp_path / "out.jsonl.torn").write_bytes(b"earlier\n")
    sink(path).close()
    assert path.read_bytes() == b""
    assert (tmp_path / "out.jsonl.torn").read_bytes() == b"earlier\n" + fragment + b"\n"


def test_a_clean_file_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    path.write_bytes(b'{"id": 1}\n')
    sink(path).close()
    assert path.read_bytes() == b'{"id": 1}\n'
    assert not (tmp_path / "out.jsonl.torn").exists()


def test_a_full_device_is_an_environmental_failure_not_a_message_failure() -> None:
    connector = sink("/dev/full")
    with pytest.raises(EnvironmentalError) as caught:
        connector.write(batch(1, 2))
    connector.close()
    assert is_environmental(caught.value) and is_retryable(caught.value)
    assert "/dev/full" in str(caught.value) and "No space left on device" in str(caught.value)


def test_a_write_cut_short_is_cut_back_to_where_the_batch_began(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "out.jsonl"
    connector = sink(path)
    connector.write(batch(1))
    real_write = os.write
    calls: list[int] = []

    def half_then_full(fd: int, data: Any) -> int:
        calls.append(len(data))
        if len(calls) == 1:
            return real_write(fd, bytes(data[: len(data) // 2]))  # a short write, mid-line
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", half_then_full)
    with pytest.raises(EnvironmentalError):
        connector.write(batch(2, 3, 4))
    monkeypatch.undo()
    assert len(calls) == 2  # the short write was followed by another for the rest
    assert path.read_bytes() == b'{"id": 1}\n'
    connector.write(batch(2))
    connector.close()
    assert path.read_bytes() == b'{"id": 1}\n{"id": 2}\n'


def test_a_failed_cut_back_is_finished_before_the_next_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "out.jsonl"
    connector = sink(path)
    connector.write(batch(1))
    real_write, real_truncate = os.write, os.ftruncate

    def torn(fd: int, data: Any) -> int:
        real_write(fd, bytes(data[:3]))
        raise OSError(errno.EIO, "Input/output error")

    def failing_truncate(fd: int, size: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "write", torn)
    monkeypatch.setattr(os, "ftruncate", failing_truncate)
    with pytest.raises(EnvironmentalError):
        connector.write(batch(2))
    assert path.read_bytes() == b'{"id": 1}\n{"i'  # the cut failed too
    monkeypatch.setattr(os, "write", real_write)
    monkeypatch.setattr(os, "ftruncate", real_truncate)
    connector.write(batch(2))
    connector.close()
    assert path.read_bytes() == b'{"id": 1}\n{"id": 2}\n'


def test_stdout_is_written_and_its_failure_is_environmental(monkeypatch: pytest.MonkeyPatch) -> None:
    class Stdout:
        def __init__(self, buffer: io.BufferedIOBase) -> None:
            self.buffer = buffer

    class BrokenPipe(io.BytesIO):
        def write(self, data: Any) -> int:
            raise BrokenPipeError(errno.EPIPE, "Broken pipe")

    captured = io.BytesIO()
    monkeypatch.setattr("sys.stdout", Stdout(captured))
    connector = sink("-")
    connector.write(batch(1, 2))
    assert captured.getvalue() == b'{"id": 1}\n{"id": 2}\n'
    monkeypatch.setattr("sys.stdout", Stdout(BrokenPipe()))
    with pytest.raises(EnvironmentalError) as caught:
        connector.write(batch(3))
    assert is_environmental(caught.value)


def test_a_line_break_in_a_payload_fails_that_message_only(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    connector = sink(path)
    failures = connector.write([Message(b'{"id": 1}'), Message(b'{"id":\n2}'), Message(b'{"id": 3}')])
    connector.close()
    assert [f.message.data for f in failures] == [b'{"id":\n2}']
    assert path.read_bytes() == b'{"id": 1}\n{"id": 3}\n'
