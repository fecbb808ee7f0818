"""Properties over generated payloads and conditions (hypothesis)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from dataflow_operator.connectors.file_settings import FileSinkConfig
from dataflow_operator.pipeline.message import Message
from dataflow_operator.processor.routes import RouteChoice
from dataflow_operator.spec.api import SinkSpec
from dataflow_operator.spec.routes import RouterSpec, RouteSpec
from dataflow_operator.transformers.casing import to_pascal, to_snake
from dataflow_operator.transformers.conditions import Condition, problems
from dataflow_operator.transformers.jsonvalues import decode, encode
from dataflow_operator.transformers.paths import Path

from .helpers import built, step

KEYS = st.text(alphabet="abcxyz_.Ab01 é$#\\", min_size=0, max_size=6)
SCALARS = (st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8))
JSON_VALUES = st.recursive(SCALARS, lambda children: st.lists(children, max_size=4)
                           | st.dictionaries(KEYS, children, max_size=4), max_leaves=20)
OBJECTS = st.dictionaries(KEYS, JSON_VALUES, max_size=6)
PAYLOADS = (JSON_VALUES.map(lambda value: json.dumps(value).encode())
            | st.binary(max_size=40) | st.text(max_size=40).map(str.encode))
METADATA = st.dictionaries(st.sampled_from(["topic", "key", "partition", "headers", "x"]),
                           st.none() | st.integers() | st.text(max_size=5) | st.binary(max_size=5),
                           max_size=4)
# Conditions built from the language's own tokens reach far more of the parser than random text.
CONDITION_TEXT = st.lists(st.sampled_from(
    [*"$.ab()!=&|'\" \\x05", "==", "!=", "&&", "||", "metadata.", "metadata.topic", "$.a", "'x'", " == 'x'"]),
    max_size=20).map("".join)
SIMPLE_FIELD = st.text(alphabet="abcxyz_0123456789", min_size=1, max_size=8)


def run(type_: str, config: dict[str, Any], data: bytes,
        metadata: dict[str, Any] | None = None) -> list[Message]:
    return built(type_, config).transform(Message(data, dict(metadata or {})))


@given(field=SIMPLE_FIELD, value=JSON_VALUES)
def test_hoist_then_extract_is_identity(field: str, value: Any) -> None:
    data = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
    hoisted = run("hoistField", {"field": field}, data)
    extracted = run("extractField", {"field": field}, hoisted[0].data)
    assert extracted[0].data == data


@given(doc=OBJECTS, fields=st.lists(KEYS, min_size=1, max_size=4))
def test_select_never_invents_keys(doc: dict[str, Any], fields: list[str]) -> None:
    fields = [field for field in fields if Path(field.strip()).segments]
    if not fields:
        return
    data = json.dumps(doc).encode()
    incoming = Message(data, {})
    out = built("select", {"fields": fields}).transform(incoming)
    assert len(out) == 1
    if out[0] is incoming:
        return  # nothing matched: the original comes back
    selected = json.loads(out[0].data)
    # Every output entry is some configured field's last key with that field's value in the input.
    for key, value in selected.items():
        assert any(Path(field).last == key and Path(field).get(doc) == value for field in fields)


@given(doc=OBJECTS, delimiter=st.sampled_from([".", "_", "::"]))
def test_struct_flatten_leaves_no_nested_objects(doc: dict[str, Any], delimiter: str) -> None:
    out = run("structFlatten", {"delimiter": delimiter}, json.dumps(doc).encode())
    flat = json.loads(out[0].data)
    assert all(not (isinstance(value, dict) and value) for value in flat.values())


@given(data=PAYLOADS, condition=CONDITION_TEXT, metadata=METADATA)
def test_filter_never_changes_a_message(data: bytes, condition: str, metadata: dict[str, Any]) -> None:
    incoming = Message(data, metadata)
    out = built("filter", {"condition": condition}).transform(incoming)
    assert out == [] or (len(out) == 1 and out[0] is incoming and out[0].data == data)


@given(data=PAYLOADS, conditions=st.lists(CONDITION_TEXT, max_size=4), metadata=METADATA)
def test_router_never_drops_or_changes_a_message(data: bytes, conditions: list[str], metadata: dict[str, Any]) -> None:
    # Any condition text, not only what validation accepts: the route choice must still pass messages on.
    sink = SinkSpec("file", FileSinkConfig("-"))
    router = RouteChoice(RouterSpec(tuple(RouteSpec(condition, sink) for condition in conditions)))
    incoming = Message(data, dict(metadata))
    out = router.transform(incoming)
    assert out == [incoming] and out[0] is incoming and incoming.data == data and incoming.metadata == metadata
    assert incoming.route is None or incoming.route in conditions


@settings(max_examples=300)
@given(text=st.text(max_size=60) | CONDITION_TEXT, data=PAYLOADS, metadata=METADATA)
def test_conditions_never_raise(text: str, data: bytes, metadata: dict[str, Any]) -> None:
    condition = Condition(text)
    assert condition.evaluate(decode(data), metadata) in (True, False)
    assert isinstance(problems(text), list)


def _shape(value: Any) -> Any:
    """The value with every object replaced by its sorted values' shapes (keys forgotten)."""
    if isinstance(value, dict):
        return sorted(json.dumps(_shape(item), sort_keys=True) for item in value.values())
    if isinstance(value, list):
        return [_shape(item) for item in value]
    return value


@given(doc=JSON_VALUES)
def test_key_case_changes_keys_only(doc: Any) -> None:
    data = json.dumps(doc).encode()
    for type_, convert in (("snakeCase", to_snake), ("camelCase", to_pascal)):
        out = json.loads(run(type_, {"deep": True}, data)[0].data)

        def collides(value: Any, convert: Any = convert) -> bool:
            if isinstance(value, dict):
                return len({convert(key) for key in value}) < len(value) or any(map(collides, value.values()))
            return isinstance(value, list) and any(map(collides, value))

        if not collides(doc):
            assert _shape(out) == _shape(doc)


@given(doc=OBJECTS, field=KEYS)
def test_flatten_emits_at_least_one_message(doc: dict[str, Any], field: str) -> None:
    if not field.strip() or not field.replace("$", "").strip("."):
        return
    assert len(run("flatten", {"field": field}, json.dumps(doc).encode())) >= 1


@given(doc=OBJECTS, items=st.lists(JSON_VALUES | OBJECTS, max_size=4))
def test_flatten_output_bytes_equal_encoding_the_merged_object(doc: dict[str, Any], items: list[Any]) -> None:
    doc = {key: value for key, value in doc.items() if key != "items"}
    data = json.dumps({**doc, "items": items}).encode()
    out = run("flatten", {"field": "items"}, data)
    expected = [{**doc, **item} if isinstance(item, dict) else {**doc, "items": item}
                for item in items] or [doc]
    assert [message.data for message in out] == [encode(value) for value in expected]


# Every step that may pass a decoded object on to the next one, each followed by a reader (a
# condition) and a writer, so that an object left behind by one step is taken by the next.
CACHING_CHAIN = [
    ("filter", {"condition": "$.a != 'drop'"}),
    ("timestamp", {"fieldName": "ts", "format": "2006"}),
    ("mask", {"fields": ["a", "b.c"]}),
    ("router", {"routes": [{"condition": "$.b", "sink": {"type": "file", "config": {"path": "-"}}}]}),
    ("flatten", {"field": "b"}),
    ("cast", {"spec": {"x": "string", "b.c": "string"}}),
    ("remove", {"fields": ["x.y", "ab"]}),
    ("snakeCase", {"deep": True}),
    ("timezone", {"timezone": "UTC", "fields": ["ts"]}),
    ("camelCase", {}),
    ("mask", {"fields": ["b"], "keepLength": True}),
]
CHAIN_PAYLOADS = st.dictionaries(st.sampled_from(["a", "b", "x", "ab", "Ab", "a_b", "ts"]), JSON_VALUES,
                                 max_size=6).map(lambda value: json.dumps(value).encode())


def _chain(data: bytes, *, hand_over: bool) -> list[bytes | str]:
    messages = [Message(data, {})]
    results: list[bytes | str] = []
    for type_, config in CACHING_CHAIN:
        chain_step = step(type_, config)
        out: list[Message] = []
        for current in messages:
            if not hand_over:
                current.doc = None
            try:
                out.extend(chain_step.transform(current))
            except Exception as exc:  # a transform error: the same one either way
                results.append(f"{type_}: {exc}")
        messages = out
    for current in messages:
        # Whatever a step left on a message must be exactly its bytes, decoded.
        assert current.doc is None or current.doc == decode(current.data)
    return results + [current.data for current in messages]


@settings(max_examples=300, deadline=None)
@given(CHAIN_PAYLOADS)
def test_handing_decoded_payloads_between_steps_changes_no_output(data: bytes) -> None:
    assert _chain(data, hand_over=True) == _chain(data, hand_over=False)


def test_a_handed_over_payload_is_taken_once() -> None:
    message = Message(b'{"a":"secret","b":1}', {})
    [masked] = built("mask", {"fields": ["a"]}).transform(message)
    assert masked.doc == {"a": "***", "b": 1}
    [stamped] = built("timestamp", {"fieldName": "t", "format": "2006"}).transform(masked)
    assert masked.doc is None and stamped.doc is not None and stamped.doc["a"] == "***"
