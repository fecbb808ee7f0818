"""The file source splits any byte stream into the same lines whatever the read sizes, and a line
over maxLineBytes becomes one unreadable message holding its first KiB (connectors/file.py)."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dataflow_operator.connectors.file import EXCERPT_BYTES, FileSource
from dataflow_operator.connectors.file_settings import FileSourceConfig
from dataflow_operator.pipeline.checkpoint import MemoryCheckpointStore
from dataflow_operator.pipeline.message import Message
from tests.integration.connectors.harness import Harness, typed_config

LIMIT = 2000


def read(path: Path, *, block: int, limit: int = LIMIT) -> list[Message]:
    harness = Harness("file", "source", checkpoints=MemoryCheckpointStore())
    source = FileSource(typed_config(FileSourceConfig.parse, {"path": str(path), "maxLineBytes": limit}),
                        harness.context)
    source.read_block = block
    source.connect()
    try:
        return [message for chunk in source.read() for message in chunk]
    finally:
        source.close()


def expected(data: bytes, limit: int = LIMIT) -> list[tuple[int, bytes, bool]]:
    """(offset, data, unreadable) of every message: the lines split at once, in memory."""
    result, offset = [], 0
    for index, line in enumerate(parts := data.split(b"\n")):
        if index == len(parts) - 1 and not line:
            break
        text = line[:-1] if line.endswith(b"\r") else line
        if len(line) > limit:
            result.append((offset, line[:EXCERPT_BYTES].removesuffix(b"\r"), True))
        elif text.strip():
            result.append((offset, text, False))
        offset += len(line) + 1
    return result


LINES = st.lists(st.one_of(
    st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")),
    st.integers(LIMIT - 2, LIMIT + 2).map(lambda n: b"x" * n),
    st.integers(LIMIT + 3, 5 * LIMIT).map(lambda n: b"y" * n),
    st.sampled_from([b"", b"\r", b" ", b'{"a":1}\r']),
), max_size=12)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=LINES, trailing_newline=st.booleans(), block=st.sampled_from([1, 3, 64, 1999, 2001, 1 << 20]))
def test_lines_are_the_same_whatever_the_block_size(tmp_path: Path, lines: list[bytes], trailing_newline: bool,
                                                    block: int) -> None:
    data = b"\n".join(lines) + (b"\n" if trailing_newline and lines else b"")
    path = tmp_path / "in.jsonl"
    path.write_bytes(data)
    got = [(m.metadata["offset"], m.data, m.unreadable is not None) for m in read(path, block=block)]
    assert got == expected(data)


def test_an_overlong_line_says_how_long_it_is_and_where(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(b'{"a":1}\n' + b"z" * 5000 + b'\n{"b":2}\n')
    first, overlong, last = read(path, block=100)
    assert first.unreadable is None and last.unreadable is None and last.data == b'{"b":2}'
    assert overlong.data == b"z" * EXCERPT_BYTES
    assert overlong.unreadable == (f"line of 5000 bytes at offset 8 of {path} is longer than maxLineBytes "
                                   f"({LIMIT}); the record holds its first {EXCERPT_BYTES} bytes")
