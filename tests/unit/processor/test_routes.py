"""Routes belong to the engine (transformations.md §3.5): a router entry records the route it
chose on the message, the route table maps every route to its sink, and the engine writes each
message to its route's sink — or the main sink — without the choice ever becoming data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import pytest
from prometheus_client import CollectorRegistry

from dataflow_operator.pipeline.checkpoint import MemoryCheckpointStore
from dataflow_operator.pipeline.connector import WriteFailure
from dataflow_operator.pipeline.message import Message
from dataflow_operator.pipeline.metrics import ProcessorMetrics
from dataflow_operator.pipeline.progress import ProgressTracker
from dataflow_operator.processor.assembly import Factories, build_pipeline
from dataflow_operator.processor.engine import Services
from dataflow_operator.processor.routes import RouteChoice, RouteTable
from dataflow_operator.spec import validate_spec, with_defaults
from dataflow_operator.spec.routes import RouterSpec

from .fakes import FakeSink, sinks_with

NOT_JSON = "plain text, not json"
SINK = {"type": "kafka", "config": {"brokers": ["b:9092"], "topic": "errors"}}
ROUTES = [{"condition": "$.level == 'error'", "sink": SINK},
          {"condition": "$.level", "sink": SINK},
          {"condition": "metadata.topic == 'audit'", "sink": SINK}]


def choice(routes: list[dict[str, Any]], when: str | None = None) -> RouteChoice:
    return RouteChoice(RouterSpec.from_entry({"type": "router", "config": {"routes": routes}, "when": when}))


ROUTER_CASES: list[tuple[str, dict[str, Any], str | None]] = [
    ('{"level":"error"}', {}, "$.level == 'error'"),
    ('{"level":"info"}', {}, "$.level"),
    ('{"level":""}', {}, None),
    ("{}", {"topic": "audit"}, "metadata.topic == 'audit'"),
    (NOT_JSON, {}, None),
    (NOT_JSON, {"topic": "audit"}, "metadata.topic == 'audit'"),
    ('{"level":"error"}', {"topic": "audit"}, "$.level == 'error'"),
]


@pytest.mark.parametrize(("data", "metadata", "route"), ROUTER_CASES)
def test_the_first_matching_route_is_chosen(data: str, metadata: dict[str, Any], route: str | None) -> None:
    incoming = Message(data.encode(), dict(metadata))
    assert choice(ROUTES).transform(incoming) == [incoming]
    assert incoming.route == route
    assert incoming.data == data.encode() and incoming.metadata == metadata  # the choice is not data


def test_no_match_keeps_an_earlier_choice_and_later_steps_keep_it() -> None:
    incoming = Message(b'{"level":""}', route="earlier")
    [out] = choice(ROUTES).transform(incoming)
    assert out.route == "earlier"
    assert out.derive(b"{}").route == "earlier"  # a transformer's output keeps its input's route


def test_a_router_with_no_routes_passes_everything() -> None:
    incoming = Message(b"{}")
    assert choice([]).transform(incoming) == [incoming] and incoming.route is None


def test_when_skips_the_router() -> None:
    router = choice(ROUTES, when="$.routable")
    skipped, routed = Message(b'{"level":"error"}'), Message(b'{"level":"error","routable":true}')
    router.transform(skipped)
    router.transform(routed)
    assert (skipped.route, routed.route) == (None, "$.level == 'error'")


def test_the_table_holds_every_route_of_every_router_in_order_the_last_sink_winning() -> None:
    sink_a, sink_b, sink_c = ({"type": "kafka", "config": {"topic": name}} for name in "abc")
    routers = [RouterSpec.from_entry(entry) for entry in (
        {"type": "router", "config": {"routes": [{"condition": "$.x", "sink": sink_a},
                                                 {"condition": "$.y", "sink": sink_b}]}},
        {"type": "router", "config": {"routes": [{"condition": "$.z", "sink": sink_c},
                                                 {"condition": "$.x", "sink": sink_c}]}},
        {"type": "router", "config": None},
    )]
    table = RouteTable.of(routers)
    assert list(table.sinks) == ["$.x", "$.y", "$.z"]
    assert table.sinks == {"$.x": sink_c, "$.y": sink_b, "$.z": sink_c}
    assert RouteTable.of([]).sinks == {}


# -- the engine's routing -------------------------------------------------------------------------


class MemorySink(FakeSink):
    """Keeps what it is given, by the sink's ``config.name``."""

    type_name = "memory"
    written: ClassVar[dict[str, list[Message]]] = {}

    def write(self, batch: list[Message]) -> list[WriteFailure]:
        MemorySink.written.setdefault(str(self.config["name"]), []).extend(batch)
        return []


def memory(name: str) -> dict[str, Any]:
    return {"type": MemorySink.type_name, "config": {"name": name}}


def test_the_engine_writes_each_message_to_its_routes_sink(tmp_path: Path) -> None:
    lines = [{"id": 0, "level": "error"}, {"id": 1, "level": "info"}, {"id": 2, "level": "error", "cast": "x"},
             {"id": 3}, {"id": 4, "level": "audit"}]
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    spec: dict[str, Any] = {
        "source": {"type": "file", "config": {"path": str(tmp_path / "in.jsonl")}},
        "sink": {"type": "file", "config": {"path": str(tmp_path / "main.jsonl")}},
        "errors": {"type": "file", "config": {"path": str(tmp_path / "errors.jsonl")}},
        "transformations": [
            {"type": "router", "config": {"routes": [
                {"condition": "$.level == 'error'", "sink": {"type": "file", "config": {"path": "-"}}}]}},
            # after the router: its choice survives, and a failure here is labelled with its route
            {"type": "cast", "config": {"spec": {"cast": "int64"}}},
            {"type": "router", "config": {"routes": [
                {"condition": "$.level == 'audit'", "sink": {"type": "file", "config": {"path": "-"}}}]}},
            {"type": "select", "config": {"fields": ["id"]}},
        ],
    }
    assert validate_spec(spec) == []
    spec["transformations"][0]["config"]["routes"][0]["sink"] = memory("errors-route")
    spec["transformations"][2]["config"]["routes"][0]["sink"] = memory("audit-route")
    MemorySink.written = {}
    registry = CollectorRegistry()
    metrics = ProcessorMetrics("ns", "n", registry=registry)
    services = Services(namespace="ns", name="n", metrics=metrics, checkpoints=MemoryCheckpointStore(),
                        progress=ProgressTracker(0))
    result = build_pipeline(with_defaults(spec), services, Factories(sink=sinks_with(MemorySink))).run()
    assert result.failure is None
    assert {name: [json.loads(m.data)["id"] for m in messages] for name, messages in MemorySink.written.items()} \
        == {"errors-route": [0], "audit-route": [4]}
    assert [json.loads(line)["id"] for line in (tmp_path / "main.jsonl").read_text().splitlines()] == [1, 3]
    [record] = [json.loads(line) for line in (tmp_path / "errors.jsonl").read_text().splitlines()]
    assert record["original_message"]["id"] == 2
    assert "routed_condition" not in json.dumps(record) and "$.level" not in json.dumps(record["error"])
    written = registry.get_sample_value("dataflow_connector_messages_written_total", {
        "namespace": "ns", "name": "n", "connector_type": "file", "connector_name": "error_sink",
        "route": "$.level == 'error'"})
    assert written == 1  # the failure is counted under the route it had chosen
