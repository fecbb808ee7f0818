"""Event aggregation: the same object, type, reason and message patch one Event's count."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from dataflow_operator.operator.events import MAX_MESSAGE, EventRecorder, event_key
from dataflow_operator.operator.object_ref import ObjectRef

DATAFLOW = ObjectRef.of({"apiVersion": "dataflow.dataflow.io/v1", "kind": "DataFlow",
                         "metadata": {"name": "orders", "namespace": "shop", "uid": "u-1"}})


class Sink:
    def __init__(self) -> None:
        self.events: dict[str, dict[str, Any]] = {}
        self.calls: list[str] = []
        self.fail = False

    def create_event(self, namespace: str, body: dict[str, Any]) -> None:
        self.calls.append("create")
        if self.fail:
            raise OSError("connection refused")
        self.events[body["metadata"]["name"]] = body

    def patch_event(self, namespace: str, name: str, body: dict[str, Any]) -> bool:
        self.calls.append("patch")
        if name not in self.events:
            return False
        self.events[name].update(body)
        return True


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


def test_event_key_identity() -> None:
    key = event_key(DATAFLOW, "Warning", "InvalidSpec", "bad")
    assert key == event_key(DATAFLOW, "Warning", "InvalidSpec", "bad")
    assert key != event_key(DATAFLOW, "Warning", "InvalidSpec", "worse")
    assert key != event_key(DATAFLOW, "Normal", "InvalidSpec", "bad")
    assert key != event_key(DATAFLOW, "Warning", "SecretResolutionFailed", "bad")
    other = replace(DATAFLOW, uid="u-2")
    assert key != event_key(other, "Warning", "InvalidSpec", "bad"), "a recreated DataFlow is another object"


def test_repeats_patch_count_and_last_timestamp() -> None:
    sink = Sink()
    recorder = EventRecorder(sink, instance="op-0", clock=Clock())
    for _ in range(3):
        recorder.warning(DATAFLOW, "InvalidSpec", "spec.sink: required")
    assert sink.calls == ["create", "patch", "patch"]
    [event] = sink.events.values()
    assert event["count"] == 3
    assert event["firstTimestamp"] == "2026-01-01T00:00:01Z"
    assert event["lastTimestamp"] == "2026-01-01T00:00:03Z"
    assert event["involvedObject"] == {"apiVersion": "dataflow.dataflow.io/v1", "kind": "DataFlow",
                                       "name": "orders", "namespace": "shop", "uid": "u-1"}
    assert (event["type"], event["reason"], event["reportingInstance"]) == ("Warning", "InvalidSpec", "op-0")
    assert event["metadata"]["name"].startswith("orders.")


def test_a_different_message_is_a_new_event() -> None:
    sink = Sink()
    recorder = EventRecorder(sink, clock=Clock())
    recorder.normal(DATAFLOW, "DeploymentUpdated", "Updated Deployment df-orders (.spec.replicas changed)")
    recorder.normal(DATAFLOW, "DeploymentUpdated", "Updated Deployment df-orders (.spec.template changed)")
    assert sink.calls == ["create", "create"]
    assert len(sink.events) == 2


def test_an_expired_event_is_created_again() -> None:
    sink = Sink()
    recorder = EventRecorder(sink, clock=Clock())
    recorder.warning(DATAFLOW, "InvalidSpec", "bad")
    sink.events.clear()  # the API server's event TTL
    recorder.warning(DATAFLOW, "InvalidSpec", "bad")
    assert sink.calls == ["create", "patch", "create"]
    assert [event["count"] for event in sink.events.values()] == [1]


def test_a_failing_sink_never_raises_and_is_retried_as_new() -> None:
    sink = Sink()
    sink.fail = True
    recorder = EventRecorder(sink, clock=Clock())
    recorder.warning(DATAFLOW, "InvalidSpec", "bad")
    sink.fail = False
    recorder.warning(DATAFLOW, "InvalidSpec", "bad")
    assert sink.calls == ["create", "create"]


def test_long_messages_are_truncated() -> None:
    sink = Sink()
    EventRecorder(sink, clock=Clock()).warning(DATAFLOW, "InvalidSpec", "x" * 5000)
    [event] = sink.events.values()
    assert len(event["message"]) == MAX_MESSAGE and event["message"].endswith("...")


def test_forget_drops_the_objects_entries() -> None:
    sink = Sink()
    recorder = EventRecorder(sink, clock=Clock())
    recorder.warning(DATAFLOW, "InvalidSpec", "bad")
    recorder.forget("shop", "orders")
    recorder.warning(DATAFLOW, "InvalidSpec", "bad")
    assert sink.calls == ["create", "create"]
