"""Which DataFlow updates are worth a reconcile: not the operator's own status writes."""

from __future__ import annotations

import copy
from typing import Any

from dataflow_operator.operator.manager import _status_only_change

BASE: dict[str, Any] = {
    "apiVersion": "dataflow.dataflow.io/v1", "kind": "DataFlow",
    "metadata": {"name": "a", "namespace": "n", "resourceVersion": "1", "generation": 1,
                 "annotations": {"x": "1"}, "managedFields": [{"manager": "kubectl"}]},
    "spec": {"source": {"type": "file"}},
    "status": {"phase": "Pending"},
}


def changed(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    obj = copy.deepcopy(BASE)
    target = obj
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    obj["metadata"]["resourceVersion"] = "2"
    return obj


def test_a_status_write_alone_is_not_a_change() -> None:
    assert _status_only_change(BASE, changed(("status", "phase"), "Running"))
    assert _status_only_change(BASE, changed(("metadata", "managedFields"), [{"manager": "dataflow-operator"}]))


def test_spec_annotations_labels_and_deletion_are_changes() -> None:
    assert not _status_only_change(BASE, changed(("spec", "source"), {"type": "kafka"}))
    assert not _status_only_change(BASE, changed(("metadata", "annotations"), {"x": "2"}))
    assert not _status_only_change(BASE, changed(("metadata", "labels"), {"team": "a"}))
    assert not _status_only_change(BASE, changed(("metadata", "deletionTimestamp"), "2026-11-25T00:00:00Z"))
