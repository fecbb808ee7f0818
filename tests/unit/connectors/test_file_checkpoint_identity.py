"""A file source's checkpoint is applied only to the file it is a position in (DESIGN decision 9)."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dataflow_operator.connectors.file import CHECKPOINT_KEY, FileSource
from dataflow_operator.connectors.file_position import FINGERPRINT_BYTES, FileIdentity, FilePosition, parse_position
from dataflow_operator.pipeline.checkpoint import CheckpointStore, CorruptCheckpointError, FileCheckpointStore
from tests.integration.connectors.harness import Harness, pipeline_settings

LOGGER = "dataflow_operator.connectors.file"


def lines(*ids: int) -> str:
    return "".join(json.dumps({"id": i, "pad": "x" * 40}) + "\n" for i in ids)


def read_all(path: Path, store: CheckpointStore, *, reset: bool = False) -> list[int]:
    """One run of the source over ``path`` to its end, every message acknowledged, positions saved."""
    harness = Harness("file", "source", checkpoints=store, settings=pipeline_settings(checkpoint_reset=reset))
    source = FileSource({"path": str(path)}, harness.context)
    source.connect()
    try:
        ids = []
        for chunk in source.read():
            for message in chunk:
                ids.append(json.loads(message.data)["id"])
                message.acknowledge()
        source.flush_positions()
        return ids
    finally:
        source.close()


@pytest.fixture
def store(tmp_path: Path) -> FileCheckpointStore:
    return FileCheckpointStore(tmp_path / "checkpoints" / "ns.flow.json")


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING]


def test_an_appended_file_resumes_after_the_last_acknowledged_line(tmp_path: Path, store: FileCheckpointStore) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text(lines(*range(5)))
    assert read_all(path, store) == list(range(5))
    with path.open("a") as handle:
        handle.write(lines(5, 6))
    assert read_all(path, store) == [5, 6]
    saved = parse_position(store.load(CHECKPOINT_KEY) or "")
    assert saved.identity is not None and saved.identity.path == str(path)
    assert saved.offset == path.stat().st_size


def test_a_new_path_in_the_spec_is_read_from_its_start(tmp_path: Path, store: FileCheckpointStore,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    old, new = tmp_path / "old.jsonl", tmp_path / "new.jsonl"
    old.write_text(lines(*range(5)))
    new.write_text(lines(*range(100, 110)))  # longer: the old offset would land inside it
    read_all(old, store)
    caplog.set_level(logging.INFO, LOGGER)
    assert read_all(new, store) == list(range(100, 110))
    (warning,) = warnings_of(caplog)
    assert str(old) in warning and str(new) in warning and "another path" in warning


def test_a_different_file_at_the_same_path_is_read_from_its_start(tmp_path: Path, store: FileCheckpointStore,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text(lines(*range(5)))
    read_all(path, store)
    replacement = tmp_path / "replacement.jsonl"
    replacement.write_text(lines(*range(200, 220)))
    os.replace(replacement, path)
    caplog.set_level(logging.INFO, LOGGER)
    assert read_all(path, store) == list(range(200, 220))
    (warning,) = warnings_of(caplog)
    assert "other content" in warning


def test_a_file_rewritten_in_place_is_read_from_its_start(tmp_path: Path, store: FileCheckpointStore) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text(lines(*range(5)))
    read_all(path, store)
    inode = path.stat().st_ino
    with path.open("r+") as handle:  # same inode, other content, longer than the old offset
        handle.truncate(0)
        handle.write(lines(*range(300, 320)))
    assert path.stat().st_ino == inode
    assert read_all(path, store) == list(range(300, 320))


def test_a_copied_rotation_resumes(tmp_path: Path, store: FileCheckpointStore) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text(lines(*range(200)))  # more than a whole fingerprint
    read_all(path, store)
    copy = tmp_path / "copy.jsonl"
    shutil.copyfile(path, copy)
    with copy.open("a") as handle:
        handle.write(lines(200, 201))
    os.replace(copy, path)  # same path, new inode, same first bytes
    assert read_all(path, store) == [200, 201]


def test_a_file_that_started_small_is_told_apart_once_it_grew(tmp_path: Path, store: FileCheckpointStore) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text(lines(0))
    harness = Harness("file", "source", checkpoints=store)
    source = FileSource({"path": str(path)}, harness.context)
    source.connect()
    with path.open("a") as handle:  # grows after connect, before the first read
        handle.write(lines(*range(1, 100)))
    for chunk in source.read():
        for message in chunk:
            message.acknowledge()
    source.flush_positions()
    source.close()
    saved = parse_position(store.load(CHECKPOINT_KEY) or "").identity
    assert saved is not None and saved.fingerprint_length == FINGERPRINT_BYTES


def test_a_shorter_file_is_read_from_its_start(tmp_path: Path, store: FileCheckpointStore) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text(lines(*range(5)))
    read_all(path, store)
    path.write_text(lines(0, 1))
    assert read_all(path, store) == [0, 1]


@pytest.mark.parametrize(("legacy", "expected"), [
    ("boundary", [3, 4]),       # applied: at a line start within the file
    ("beyond", list(range(5))),  # longer than the file: not applied
    ("mid-line", list(range(5))),  # not at a line start: never resumed mid-line
])
def test_a_legacy_offset_is_applied_only_where_it_can_be(tmp_path: Path, store: FileCheckpointStore,
                                                          caplog: pytest.LogCaptureFixture, legacy: str,
                                                          expected: list[int]) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text(lines(*range(5)))
    boundary = len(lines(0, 1, 2))
    offset = {"boundary": boundary, "beyond": path.stat().st_size + 1, "mid-line": boundary + 3}[legacy]
    store.save(CHECKPOINT_KEY, str(offset))
    caplog.set_level(logging.INFO, LOGGER)
    assert read_all(path, store) == expected
    if legacy == "boundary":
        assert any("legacy checkpoint" in r.getMessage() for r in caplog.records if r.levelno == logging.INFO)
    else:
        assert warnings_of(caplog)


def test_reset_reads_from_the_start_and_sets_a_corrupt_file_aside(tmp_path: Path, store: FileCheckpointStore) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text(lines(*range(3)))
    store.path.parent.mkdir(parents=True)
    store.path.write_text('{"file": ')
    assert read_all(path, store, reset=True) == [0, 1, 2]
    assert store.path.with_name(store.path.name + ".corrupt").read_text() == '{"file": '
    assert read_all(path, store) == []


@pytest.mark.parametrize(("content", "problem"), [
    ("", "is empty"),
    ('{"file": "{\\"path\\": \\"/x\\", \\"off', "is not JSON"),
    ("[1, 2]", "holds a JSON list"),
    ('{"file": "{\\"path\\": 7}"}', "does not hold a file position"),
    ('{"file": "-5"}', "does not hold a file position"),
])
def test_an_unreadable_checkpoint_names_the_file_and_how_to_reset(tmp_path: Path, store: FileCheckpointStore,
                                                                  content: str, problem: str) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text(lines(0))
    store.path.parent.mkdir(parents=True)
    store.path.write_text(content)
    with pytest.raises(CorruptCheckpointError) as caught:
        read_all(path, store)
    text = str(caught.value)
    assert str(store.path) in text and problem in text
    assert "checkpointReset: true" in text and "dataflow.dataflow.io/reset-checkpoint" in text


def test_a_position_round_trips_through_its_checkpoint_text(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text(lines(0, 1))
    with path.open("rb") as handle:
        identity = FileIdentity.of(str(path), handle.fileno())
    assert parse_position(identity.checkpoint(17)) == FilePosition(identity, 17)
    assert parse_position("17") == FilePosition(None, 17)


@given(st.text())
def test_any_text_is_a_position_or_a_value_error(text: str) -> None:
    try:
        position = parse_position(text)
    except ValueError:
        return
    assert position.offset >= 0


def _near_valid(identity: FileIdentity) -> st.SearchStrategy[str]:
    """Checkpoint texts that look like this source's: its identity or not, any offset, fields wrong."""
    offsets = st.integers(-3, 2 * FINGERPRINT_BYTES)
    real = st.builds(identity.checkpoint, offsets)
    other = st.fixed_dictionaries({
        "path": st.sampled_from([identity.path, "/elsewhere.jsonl", ""]),
        "device": st.sampled_from([identity.device, 0, -1]),
        "inode": st.sampled_from([identity.inode, identity.inode + 1, True]),
        "fingerprint": st.sampled_from([identity.fingerprint, "0" * 64, "xyz"]),
        "fingerprintLength": st.integers(-1, FINGERPRINT_BYTES + 1),
        "offset": offsets,
    }).map(json.dumps)
    return st.one_of(real, other, offsets.map(str), st.text(max_size=50))


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_stored_value_gives_a_line_start_or_the_clear_error(tmp_path: Path, data: st.DataObject) -> None:
    path = tmp_path / "in.jsonl"
    if not path.exists():
        path.write_text(lines(*range(120)))
    content = path.read_bytes()
    with path.open("rb") as handle:
        identity = FileIdentity.of(str(path), handle.fileno())
    value = data.draw(_near_valid(identity))
    harness = Harness("file", "source")
    harness.checkpoints.save(CHECKPOINT_KEY, value)
    source = FileSource({"path": str(path)}, harness.context)
    try:
        source.connect()
    except CorruptCheckpointError as exc:
        assert "in-memory checkpoint 'file'" in str(exc)
        return
    finally:
        source.close()
    offset = source._offset
    assert offset == 0 or (offset <= len(content) and content[offset - 1:offset] == b"\n")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.one_of(st.binary(), st.text().map(str.encode),
                     st.recursive(st.none() | st.booleans() | st.integers() | st.text(),
                                  lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner)).map(
                         lambda value: json.dumps(value).encode()),
                     st.integers(1, 5000).map(lambda depth: b"[" * depth)))
def test_any_bytes_in_a_checkpoint_file_load_or_give_the_clear_error(tmp_path: Path, raw: bytes) -> None:
    path = tmp_path / "cp.json"
    path.write_bytes(raw)
    try:
        value = FileCheckpointStore(path).load(CHECKPOINT_KEY)
    except CorruptCheckpointError as exc:
        assert str(path) in str(exc) and "checkpointReset" in str(exc)
    else:
        assert value is None or isinstance(value, str)
