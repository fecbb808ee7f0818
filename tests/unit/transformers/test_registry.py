"""Config validation with field paths (transformations.md §1.1), ``when`` (§6) and route sinks."""

from __future__ import annotations

from typing import Any

import pytest

from dataflow_operator.pipeline.config_fields import FieldError
from dataflow_operator.spec.routes import entry_rules
from dataflow_operator.transformers import registry
from dataflow_operator.transformers.registry import ConditionalTransformer

from .helpers import PASS, build, built, check, message

P = "spec.transformations[2]"
C = f"{P}.config"

ALL_TYPES = ["camelCase", "cast", "debeziumUnwrap", "extractField", "filter", "flatten", "headersToPayload",
             "hoistField", "insertField", "mask", "remove", "replaceField", "router", "select", "snakeCase",
             "structFlatten", "timestamp", "timezone"]


def test_all_eighteen_types_are_accepted_and_all_but_router_are_transformers() -> None:
    assert sorted(entry_rules()) == sorted(ALL_TYPES)
    assert registry.allowed_types() == sorted(set(ALL_TYPES) - {"router"})


def errors(type_: str, config: Any, when: str | None = None) -> list[tuple[str, str]]:
    return [(error.path, error.message)
            for error in registry.validate(type_, config, P, when=when, rules=entry_rules())]


INVALID: list[tuple[str, Any, str, str]] = [
    ("headerFrom", {}, f"{P}.type", "unsupported transformation type 'headerFrom'"),
    ("Filter", {"condition": "$.a"}, f"{P}.type", "unsupported transformation type"),
    ("filter", None, f"{P}.config", "filter transformation configuration is required"),
    ("mask", None, f"{P}.config", "mask transformation configuration is required"),
    ("filter", [1], f"{P}.config", "must be an object"),
    ("filter", {}, f"{C}.condition", "required"),
    ("filter", {"condition": "  "}, f"{C}.condition", "must not be empty"),
    ("filter", {"condition": 5}, f"{C}.condition", "must be a string"),
    ("filter", {"condition": "($.a"}, f"{C}.condition", "unbalanced parentheses"),
    ("filter", {"condition": "$.a", "typo": 1}, f"{C}.typo", "unknown field"),
    ("flatten", {}, f"{C}.field", "required"),
    ("flatten", {"field": "$."}, f"{C}.field", "must name a field"),
    ("timestamp", {"fieldName": 1}, f"{C}.fieldName", "must be a string"),
    ("mask", {"fields": []}, f"{C}.fields", "must contain at least one entry"),
    ("mask", {"fields": ["a", ""]}, f"{C}.fields[1]", "must be a non-empty string"),
    ("mask", {"fields": ["a"], "keepLength": "yes"}, f"{C}.keepLength", "must be a boolean"),
    ("select", {"fields": "a"}, f"{C}.fields", "must be a list of strings"),
    ("remove", {}, f"{C}.fields", "required"),
    ("remove", {"fields": ["$"]}, f"{C}.fields[0]", "must name a field"),
    ("router", {}, f"{C}.routes", "required"),
    ("router", {"routes": {}}, f"{C}.routes", "must be a list"),
    ("router", {"routes": [{"sink": {}}]}, f"{C}.routes[0].condition", "required"),
    ("router", {"routes": [{"condition": "$.a", "sink": {}}, {"condition": "", "sink": {}}]},
     f"{C}.routes[1].condition", "must not be empty"),
    ("router", {"routes": [{"condition": "$.a", "name": "x"}]}, f"{C}.routes[0].name", "unknown field"),
    ("router", {"routes": ["x"]}, f"{C}.routes[0]", "must be an object"),
    ("snakeCase", {"deep": 1}, f"{C}.deep", "must be a boolean"),
    ("debeziumUnwrap", {"snapshotOperation": "delete"}, f"{C}.snapshotOperation", "Unsupported value"),
    ("debeziumUnwrap", {"addSourceFields": "table"}, f"{C}.addSourceFields", "must be a list"),
    ("replaceField", {}, C, "at least one of renames, include, or exclude is required"),
    ("replaceField", {"renames": []}, C, "at least one of renames, include, or exclude is required"),
    ("replaceField", {"include": ["a"], "exclude": ["b"]}, f"{C}.exclude", "mutually exclusive"),
    ("replaceField", {"renames": ["a"]}, f"{C}.renames[0]", "oldPath:newPath"),
    ("replaceField", {"renames": ["a: "]}, f"{C}.renames[0]", "oldPath:newPath"),
    ("headersToPayload", {}, f"{C}.mappings", "required"),
    ("headersToPayload", {"mappings": []}, f"{C}.mappings", "at least one"),
    ("headersToPayload", {"mappings": ["X-Id"]}, f"{C}.mappings[0]", "headerName:fieldPath"),
    ("structFlatten", {"delimiter": ""}, f"{C}.delimiter", "delimiter must be a non-empty string"),
    ("extractField", {"field": "$"}, f"{C}.field", "must name a field"),
    ("extractField", {}, f"{C}.field", "required"),
    ("hoistField", {"field": "a.b"}, f"{C}.field", "simple top-level key without dots"),
    ("hoistField", {"field": ""}, f"{C}.field", "must not be empty"),
    ("cast", {}, f"{C}.spec", "spec is required"),
    ("cast", {"spec": {}}, f"{C}.spec", "spec is required"),
    ("cast", {"spec": {"a": "decimal"}}, f"{C}.spec.a", "Unsupported value"),
    ("cast", {"spec": {"$": "string"}}, f"{C}.spec.$", "non-empty JSONPaths"),
    ("timezone", {"fields": ["a"]}, f"{C}.timezone", "required"),
    ("timezone", {"timezone": "Mars/Base", "fields": ["a"]}, f"{C}.timezone", "invalid timezone"),
    ("timezone", {"timezone": "+3:00", "fields": ["a"]}, f"{C}.timezone", "invalid timezone"),
    ("timezone", {"timezone": "+24:00", "fields": ["a"]}, f"{C}.timezone", "invalid timezone"),
    ("timezone", {"timezone": "+05:60", "fields": ["a"]}, f"{C}.timezone", "invalid timezone"),
    ("timezone", {"timezone": "UTC", "sourceTimezone": "Nowhere", "fields": ["a"]},
     f"{C}.sourceTimezone", "invalid timezone"),
    ("timezone", {"timezone": "UTC"}, f"{C}.fields", "required"),
    ("timezone", {"timezone": "UTC", "fields": ["a"], "format": "Unix"}, f"{C}.format", "must be one of"),
    ("insertField", {}, f"{C}.fields", "required"),
    ("insertField", {"fields": {}}, f"{C}.fields", "at least one"),
    ("insertField", {"fields": {"a": 1}}, f"{C}.fields.a", "must be a string"),
    ("insertField", {"fields": {"a": "json:{x"}}, f"{C}.fields.a", "invalid json value"),
    ("insertField", {"fields": {"$": "x"}}, f"{C}.fields.$", "must name a field"),
]


@pytest.mark.parametrize(("type_", "config", "path", "text"), INVALID)
def test_invalid_config_is_reported_at_its_path(type_: str, config: Any, path: str, text: str) -> None:
    found = errors(type_, config)
    assert any(found_path == path and text in message for found_path, message in found), found


VALID: list[tuple[str, Any]] = [
    ("timestamp", None), ("snakeCase", None), ("camelCase", None), ("debeziumUnwrap", None),
    ("structFlatten", None), ("timestamp", {"fieldName": "$.at", "format": "Unix"}), ("timestamp", {"fieldName": ""}),
    ("debeziumUnwrap", {"snapshotOperation": ""}), ("debeziumUnwrap", {"snapshotOperation": "update"}),
    ("router", {"routes": []}),
    ("router", {"routes": [{"condition": "$.a == 'x'", "sink": {"type": "kafka"}}]}),
    ("replaceField", {"renames": ["a:b"], "include": ["a"]}),
    ("timezone", {"timezone": "-05:30", "sourceTimezone": "Asia/Tokyo", "fields": ["a"],
                  "format": "UnixMilli"}),
    ("cast", {"spec": {"a": "string", "b": "int64", "c": "float64", "d": "bool", "e": "null"}}),
    ("insertField", {"fields": {"a": "json:[1]", "b": "${now}"}}),
    ("hoistField", {"field": "row"}), ("structFlatten", {"delimiter": "_"}),
]


@pytest.mark.parametrize(("type_", "config"), VALID)
def test_valid_config(type_: str, config: Any) -> None:
    assert errors(type_, config) == []


def test_replace_field_needs_an_option_even_when_the_spec_has_other_problems() -> None:
    # parse appends to the spec's one list of errors: only this config's own problems may hide this one.
    found = [FieldError("spec.source.config.topic", "required")]
    registry.parse("replaceField", {}, P, found, when="($.a")
    assert [(error.path, error.message) for error in found[1:]] == [
        (f"{P}.when", "invalid condition '($.a': unbalanced parentheses"),
        (C, "at least one of renames, include, or exclude is required")]
    found = []
    registry.parse("replaceField", {"include": "a"}, P, found)
    assert [error.path for error in found] == [f"{C}.include"]


def test_when_is_validated() -> None:
    assert errors("snakeCase", {}, when="($.a") == [
        (f"{P}.when", "invalid condition '($.a': unbalanced parentheses")]
    assert errors("snakeCase", {}, when="") == []
    assert errors("snakeCase", {}, when="$.a == 'x'") == []


def test_when_skips_the_step_without_dropping_the_message() -> None:
    transformer = build("remove", {"fields": ["pw"]}, when="$.kind == 'user'")
    assert isinstance(transformer, ConditionalTransformer) and transformer.type_name == "remove"
    check(transformer, '{"kind":"user","pw":"s"}', [{"kind": "user"}])
    check(transformer, '{"kind":"bot","pw":"s"}', PASS)
    check(transformer, "not json", PASS)


def test_when_on_a_filter_only_filters_matching_messages() -> None:
    transformer = build("filter", {"condition": "$.ok"}, when="metadata.topic == 'strict'")
    check(transformer, '{"ok":false}', [], {"topic": "strict"})
    check(transformer, '{"ok":false}', PASS, {"topic": "lenient"})


def test_blank_when_always_applies() -> None:
    assert not isinstance(built("snakeCase", {}, when="  "), ConditionalTransformer)


def test_missing_config_builds_with_defaults() -> None:
    out = built("structFlatten", None).transform(message('{"a":{"b":1}}'))
    assert out[0].data == b'{"a.b":1}'
