"""Checkpoint stores under faults: atomic replacement, a full disk is environmental, and an unreadable
entry names where it is and how to start over."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from kubernetes import client

from dataflow_operator.connectors.file import CHECKPOINT_KEY, FileSource
from dataflow_operator.pipeline import checkpoint
from dataflow_operator.pipeline.checkpoint import CorruptCheckpointError, FileCheckpointStore
from dataflow_operator.pipeline.errors import EnvironmentalError, is_environmental
from dataflow_operator.processor.configmap_checkpoint import ConfigMapCheckpointStore
from dataflow_operator.spec.model import RESET_CHECKPOINT_ANNOTATION
from tests.integration.connectors.harness import Harness, pipeline_settings


def test_a_save_is_written_synced_renamed_and_its_directory_synced(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    store = FileCheckpointStore(tmp_path / "cp.json")
    steps: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        steps.append("fsync directory" if Path(f"/proc/self/fd/{fd}").resolve() == tmp_path else "fsync file")
        real_fsync(fd)

    def replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        steps.append("rename")
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    store.save(CHECKPOINT_KEY, "7")
    assert steps == ["fsync file", "rename", "fsync directory"]
    assert FileCheckpointStore(tmp_path / "cp.json").load(CHECKPOINT_KEY) == "7"


def test_a_save_on_a_full_disk_is_environmental_and_keeps_the_old_checkpoint(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    store = FileCheckpointStore(tmp_path / "cp.json")
    store.save(CHECKPOINT_KEY, "7")

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(EnvironmentalError) as caught:
        store.save(CHECKPOINT_KEY, "8")
    monkeypatch.undo()
    assert is_environmental(caught.value)
    assert str(tmp_path / "cp.json") in str(caught.value) and "No space left" in str(caught.value)
    assert store.load(CHECKPOINT_KEY) == "7"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cp.json"]  # no temporary file left behind


def test_a_checkpoint_directory_that_cannot_exist_is_environmental(tmp_path: Path) -> None:
    (tmp_path / "not-a-dir").write_text("")
    store = FileCheckpointStore(tmp_path / "not-a-dir" / "cp.json")
    with pytest.raises(EnvironmentalError) as caught:
        store.save(CHECKPOINT_KEY, "1")
    assert is_environmental(caught.value)


def test_an_unreadable_checkpoint_file_is_environmental_not_corrupt(tmp_path: Path) -> None:
    (tmp_path / "cp.json").mkdir()  # a read fails with EISDIR: the machine's state, not a bad position
    with pytest.raises(EnvironmentalError):
        FileCheckpointStore(tmp_path / "cp.json").load(CHECKPOINT_KEY)


class _ConfigMaps:
    """The one call ConfigMapCheckpointStore.load makes, answered with fixed data."""

    def __init__(self, data: dict[str, str]) -> None:
        self.data = data

    def read_namespaced_config_map(self, name: str, namespace: str) -> client.V1ConfigMap:
        return client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name, namespace=namespace), data=self.data)


@pytest.mark.parametrize("value", ["", "{", '{"path": "/in.jsonl"}', "not a number"])
def test_an_unreadable_configmap_entry_names_the_configmap_key_and_the_annotation(tmp_path: Path,
                                                                                  value: str) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text('{"id": 1}\n')
    store = ConfigMapCheckpointStore(_ConfigMaps({CHECKPOINT_KEY: value}), "team-a", "orders")  # type: ignore[arg-type]
    source = FileSource({"path": str(path)}, Harness("file", "source", checkpoints=store).context)
    with pytest.raises(CorruptCheckpointError) as caught:
        source.connect()
    source.close()
    text = str(caught.value)
    assert "checkpoint ConfigMap team-a/df-orders-checkpoint (key 'file')" in text
    assert 'dataflow.dataflow.io/reset-checkpoint: "true"' in text and "checkpointReset: true" in text
    assert caught.value.error_type == "invalid_data" and not is_environmental(caught.value)


def test_reset_with_a_corrupt_file_store_starts_over(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text('{"id": 1}\n')
    (tmp_path / "cp.json").write_bytes(b"\x00\x00\x00")
    store = FileCheckpointStore(tmp_path / "cp.json")
    source = FileSource({"path": str(path)},
                        Harness("file", "source", checkpoints=store,
                                settings=pipeline_settings(checkpoint_reset=True)).context)
    source.connect()
    source.close()
    assert (tmp_path / "cp.json.corrupt").read_bytes() == b"\x00\x00\x00"
    assert store.load(CHECKPOINT_KEY) is None


def test_the_reset_request_text_matches_the_documented_annotation() -> None:
    assert f"`{RESET_CHECKPOINT_ANNOTATION}: \"true\"`" in checkpoint.RESET_REQUEST
