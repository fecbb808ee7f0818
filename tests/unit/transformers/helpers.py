"""Shared helpers for the transformer tables: build a transformer, run it on one message and
compare the outcome with what a table row expects."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from dataflow_operator.pipeline.config_fields import FieldError
from dataflow_operator.pipeline.errors import InvalidDataError
from dataflow_operator.pipeline.message import Message
from dataflow_operator.pipeline.transformer import Transformer
from dataflow_operator.processor.chain import Step
from dataflow_operator.processor.routes import RouteChoice
from dataflow_operator.spec.routes import ROUTER_TYPE, RouterSpec
from dataflow_operator.spec.validation import load_spec
from dataflow_operator.transformers import registry

#: The row expects the very same message object back (passthrough).
PASS = "<passthrough>"
#: The row expects no message at all (a drop).
DROP: list[Any] = []

FIXED_TIME = datetime(2024, 1, 15, 10, 30, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Raises:
    """The row expects an InvalidDataError whose text contains ``text``."""

    text: str


def canonical(value: Any) -> str:
    """JSON text that tells 1 from 1.0 and True from 1 (plain == does not), key order ignored."""
    return json.dumps(value, sort_keys=True)


def step(type_: str, config: dict[str, Any] | None) -> Step:
    """A chain step of any entry type: a transformer, or a router's route choice."""
    if type_ == ROUTER_TYPE:
        return RouteChoice(router_of(config))
    return built(type_, config)


def router_of(config: dict[str, Any] | None, when: str | None = None) -> RouterSpec:
    """The router a spec with this one ``router`` entry is parsed into."""
    entry = {"type": ROUTER_TYPE, "config": config, **({"when": when} if when is not None else {})}
    file = {"type": "file", "config": {"path": "-"}}
    router = load_spec({"source": file, "sink": file, "transformations": [entry]}).transformations[0].router
    assert router is not None
    return router


def build(type_: str, config: dict[str, Any] | None, when: str | None = None) -> Transformer:
    errors: list[FieldError] = []
    typed = registry.parse(type_, config, "t", errors, when=when)
    assert errors == [], "the table's config must be valid"
    return registry.build(type_, typed, when=when)


def built(type_: str, config: dict[str, Any] | None, when: str | None = None) -> Transformer:
    """The transformer of a raw config whether or not validation accepts it: the reference's own
    tests build some that it refuses, and what the transformer makes of them is part of the table."""
    return registry.build(type_, registry.parse(type_, config, "t", [], when=when), when=when)


def message(data: str | bytes, metadata: dict[str, Any] | None = None) -> Message:
    raw = data.encode() if isinstance(data, str) else data
    return Message(raw, dict(metadata or {}), timestamp=FIXED_TIME)


def check(transformer: Transformer, data: str | bytes, expected: Any,
          metadata: dict[str, Any] | None = None) -> list[Message]:
    """Runs one row. ``expected``: PASS, DROP, Raises(...), or the list of output JSON values."""
    incoming = message(data, metadata)
    if isinstance(expected, Raises):
        with pytest.raises(InvalidDataError, match=expected.text):
            transformer.transform(incoming)
        return []
    outputs = transformer.transform(incoming)
    if expected == PASS:
        assert len(outputs) == 1 and outputs[0] is incoming
        return outputs
    assert [canonical(json.loads(output.data)) for output in outputs] == [canonical(v) for v in expected]
    for output in outputs:
        assert output.timestamp == incoming.timestamp
    return outputs
