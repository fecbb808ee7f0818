"""Runs one pipeline test case: the DataFlow's real engine, with in-memory stand-ins for its source and
sinks (:mod:`.memory`), then compares what each sink received with what the case expects."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry

from ..pipeline.checkpoint import MemoryCheckpointStore
from ..pipeline.connector import ConnectorContext, Sink, Source
from ..pipeline.message import Message
from ..pipeline.metrics import ProcessorMetrics
from ..pipeline.progress import ProgressTracker
from ..processor.assembly import Factories, RunSettings, TransformerFactory, build_pipeline, registry_transformer
from ..processor.chain import Step
from ..processor.engine import Services
from ..spec.api import DataFlowSpec, SinkSpec, SourceSpec, TransformationSpec
from .cases import Case, ExpectedError, ExpectedMessage, Payload
from .memory import MemorySink, MemorySource

ERROR_SINK = "error sink"
MAIN_SINK = "sink"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one case produced: per destination (``sink``, ``route <label>``, ``error sink``) the lines
    it expected and the lines it got, each a readable one-line form of a message."""

    name: str
    expected: Mapping[str, list[str]]
    actual: Mapping[str, list[str]]
    problems: tuple[str, ...]       # failures that are not about a destination's content

    @property
    def passed(self) -> bool:
        return not self.problems and self.expected == self.actual


def run_case(case: Case, spec: DataFlowSpec, *, namespace: str, name: str, now: datetime | None) -> Outcome:
    if case.errors is not None and spec.errors is None:
        return Outcome(case.name, {}, {}, (f"{case.path}.output.errors: the DataFlow has no error sink "
                                            "(spec.errors) to receive these",))
    sinks: list[MemorySink] = []
    source_holder: list[MemorySource] = []

    def make_source(_component: SourceSpec, context: ConnectorContext) -> Source:
        source = MemorySource([(m.payload.encoded(), m.metadata) for m in case.inputs], now, context)
        source_holder.append(source)
        return source

    def make_sink(_component: SinkSpec, context: ConnectorContext) -> Sink:
        sink = MemorySink(context)
        sinks.append(sink)
        return sink

    # A registry of its own: every case counts from zero, and nothing is served.
    services = Services(namespace=namespace, name=name,
                        metrics=ProcessorMetrics(namespace, name, registry=CollectorRegistry()),
                        checkpoints=MemoryCheckpointStore(), progress=ProgressTracker(0), stop=threading.Event())
    factories = Factories(source=make_source, sink=make_sink, transformer=_transformer_factory(now))
    pipeline = build_pipeline(spec, services, factories, RunSettings(write_retry_delays=(), error_sink_retry_delays=()))
    result = pipeline.run()
    problems = []
    if result.failure is not None:
        problems.append(f"the pipeline failed: {result.failure}")
    (source,) = source_holder
    if result.failure is None and source.acknowledged != len(case.inputs):
        problems.append(f"{len(case.inputs) - source.acknowledged} of {len(case.inputs)} input messages "
                        "were never acknowledged")

    expected: dict[str, list[str]] = {MAIN_SINK: [_expected_line(m) for m in case.sink]}
    actual: dict[str, list[str]] = {MAIN_SINK: _actual_lines(_written(pipeline.main_route.sink), case.sink)}
    for label, route in pipeline.routes.items():
        wanted = case.routes.get(label, ())
        expected[f"route {label}"] = [_expected_line(m) for m in wanted]
        actual[f"route {label}"] = _actual_lines(_written(route.sink), wanted)
    problems.extend(f"{case.path}.output.routes.{label}: no route with this condition in the DataFlow; routes: "
                    f"{', '.join(pipeline.routes) or 'none'}" for label in case.routes if label not in pipeline.routes)
    if case.errors is not None and pipeline.error_sink is not None:
        expected[ERROR_SINK] = [_expected_error_line(e) for e in case.errors]
        actual[ERROR_SINK] = _actual_error_lines(_written(pipeline.error_sink.sink), case.errors)
    return Outcome(case.name, expected, actual, tuple(problems))


def _written(sink: Sink) -> list[Message]:
    assert isinstance(sink, MemorySink)
    return sink.written


def _transformer_factory(now: datetime | None) -> TransformerFactory:
    """The registry's transformers; with ``now`` set, those that read the wall clock read ``now``, in
    the zone it is written in (the per-instance ``clock`` seam of timestamp and insertField)."""
    def build(entry: TransformationSpec) -> Step:
        transformer = registry_transformer(entry)
        if now is not None:
            for part in (transformer, getattr(transformer, "inner", None)):
                if part is not None and hasattr(part, "clock"):
                    part.clock = lambda: now
        return transformer
    return build


# -- one-line forms: equal lines mean the message matches ------------------------------------------

def _payload_line(payload: Payload) -> str:
    if payload.is_json:
        return json.dumps(payload.json, sort_keys=True, ensure_ascii=False)
    return f"text {json.dumps(payload.text, ensure_ascii=False)}"


def _data_line(data: bytes, like: Payload | None) -> str:
    """The message's body in the form of what it is compared with: as JSON when a JSON value is
    expected (or nothing is, and it parses), else as text."""
    text = data.decode("utf-8", errors="backslashreplace")
    if like is None or like.is_json:
        try:
            return json.dumps(json.loads(text), sort_keys=True, ensure_ascii=False)
        except ValueError:
            pass
    return f"text {json.dumps(text, ensure_ascii=False)}"


def _expected_line(expected: ExpectedMessage) -> str:
    line = _payload_line(expected.payload)
    if expected.metadata is not None:
        line += f"  metadata {json.dumps(expected.metadata, sort_keys=True, default=str)}"
    return line


def _actual_lines(written: list[Message], expected: tuple[ExpectedMessage, ...]) -> list[str]:
    lines = []
    for index, message in enumerate(written):
        like = expected[index] if index < len(expected) else None
        line = _data_line(message.data, like.payload if like else None)
        if like is not None and like.metadata is not None:
            # Only the entries the case names are compared; show those (or their absence).
            shown = {key: message.metadata.get(key, "<missing>") for key in like.metadata}
            line += f"  metadata {json.dumps(shown, sort_keys=True, default=str)}"
        lines.append(line)
    return lines


def _error_line(stage: str | None, type_: str | None, reason: str | None, original: str | None) -> str:
    """An error record's one-line form, of the parts a case names (None: not named, not shown)."""
    parts = [f"stage={stage}" if stage is not None else None,
             f"type={type_}" if type_ is not None else None,
             f"reason contains {json.dumps(reason, ensure_ascii=False)}" if reason is not None else None,
             f"original {original}" if original is not None else None]
    return "; ".join(part for part in parts if part is not None) or "any error record"


def _expected_error_line(expected: ExpectedError) -> str:
    original = _payload_line(expected.original) if expected.original is not None else None
    return _error_line(expected.stage, expected.type, expected.reason, original)


def _actual_error_lines(written: list[Message], expected: tuple[ExpectedError, ...]) -> list[str]:
    lines = []
    for index, record in enumerate(written):
        body = json.loads(record.data)
        error = body["error"]
        if index >= len(expected):  # an unexpected record: everything about it
            lines.append(_error_line(error["stage"], error["type"], error["message"], _original_line(body, None)))
            continue
        like = expected[index]
        # A reason is shown as expected when it matches, else as the whole message, so the diff says why.
        reason = like.reason if like.reason is None or like.reason in error["message"] else error["message"]
        lines.append(_error_line(
            error["stage"] if like.stage is not None else None, error["type"] if like.type is not None else None,
            reason, _original_line(body, like.original) if like.original is not None else None))
    return lines


def _original_line(record: Mapping[str, Any], like: Payload | None) -> str:
    if "original_message" in record:
        return _data_line(json.dumps(record["original_message"]).encode(), like)
    if "original_data" in record:
        return _data_line(str(record["original_data"]).encode(), like)
    return "<the original is not in the record: too large or not UTF-8>"
