"""The pipeline test file: input messages and what each sink, route and the error sink must receive.

::

    dataflow: local-pipeline.yaml          # the DataFlow under test, relative to this file
    now: "2026-01-15T08:00:00Z"            # optional: the wall clock timestamp/insertField see
    tests:
      - name: a test order is dropped
        input:
          - json: {"id": 1, "status": "test"}
          - text: "not JSON"               # raw bytes, for what a JSON value cannot say
            metadata: {key: "7"}
        output:
          sink:                            # the main sink, in order; a sink not listed gets nothing
            - json: {"id": 2}
              metadata: {key: "7"}         # optional: these entries must be in the message's metadata
          routes:
            "$.qty == 3": [{json: {"id": 3}}]   # by the route's condition, as written in the router
          errors:                          # the error sink's records, in order
            - reason: "cannot cast"        # a part of the record's error message
              stage: transformation        # optional: stage, type, original
              original: {text: "not JSON"}

Loaded with the manifest loader (bounded, duplicate keys refused); every mistake is reported with
its field path, like ``validate``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ..pipeline.config_fields import FieldError, Fields, SpecError, type_name
from ..pipeline.jsontext import STRICT_ENCODER
from ..pipeline.timetext import parse_rfc3339
from ..spec.manifest_loader import ManifestError, load_single_document, read_manifest


@dataclass(frozen=True, slots=True)
class Payload:
    """A message body: a JSON value (compared as JSON: key order and spacing do not matter) or exact
    text (compared byte for byte)."""

    json: Any = None
    text: str | None = None

    @property
    def is_json(self) -> bool:
        return self.text is None

    def encoded(self) -> bytes:
        return (STRICT_ENCODER.encode(self.json) if self.text is None else self.text).encode("utf-8")


@dataclass(frozen=True, slots=True)
class InputMessage:
    payload: Payload
    metadata: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ExpectedMessage:
    payload: Payload
    metadata: Mapping[str, Any] | None  # entries that must be present; None: not checked


@dataclass(frozen=True, slots=True)
class ExpectedError:
    reason: str | None          # a substring of the record's error message
    stage: str | None
    type: str | None
    original: Payload | None


@dataclass(frozen=True, slots=True)
class Case:
    name: str
    path: str                   # the field path of this case in its file, for messages
    inputs: tuple[InputMessage, ...]
    sink: tuple[ExpectedMessage, ...]
    routes: Mapping[str, tuple[ExpectedMessage, ...]]
    errors: tuple[ExpectedError, ...] | None  # None: the DataFlow has no error sink to check


@dataclass(frozen=True, slots=True)
class TestFile:
    path: Path
    dataflow: Path
    now: datetime | None
    cases: tuple[Case, ...]


def load_test_file(path: Path) -> TestFile:
    """The test file at ``path``; :class:`SpecError` lists every problem with its field path."""
    try:
        document = load_single_document(read_manifest(str(path)))
    except ManifestError as exc:
        raise SpecError([FieldError(exc.path, exc.detail)]) from None
    except OSError as exc:
        raise SpecError([FieldError("", f"cannot read it: {exc.strerror}")]) from None
    errors: list[FieldError] = []
    root = Fields(document, "", errors)
    dataflow = root.string("dataflow", required=True)
    now_text = root.string("now")
    now = None
    if now_text is not None:
        try:
            now = parse_rfc3339(now_text)
        except ValueError:
            root.error("now", "must be an RFC3339 time such as 2026-01-15T08:00:00Z")
    unknown = set(root.config) - {"dataflow", "now", "tests"}
    for key in sorted(unknown):
        root.error(key, "unknown field; expected dataflow, now, tests")
    cases = _cases(root.config.get("tests"), "tests", errors)
    if errors:
        raise SpecError([FieldError(error.path.lstrip("."), error.message) for error in errors])
    assert dataflow is not None
    return TestFile(path, (path.parent / dataflow), now, tuple(cases))


def _list(value: Any, path: str, errors: list[FieldError], *, required: bool = False) -> Sequence[Any]:
    if value is None:
        if required:
            errors.append(FieldError(path, "required"))
        return ()
    if not isinstance(value, list):
        errors.append(FieldError(path, f"must be a list, got {type_name(value)}"))
        return ()
    return value


def _cases(value: Any, path: str, errors: list[FieldError]) -> list[Case]:
    entries = _list(value, path, errors, required=True)
    if not entries and not errors:
        errors.append(FieldError(path, "must hold at least one test"))
    cases = []
    for index, entry in enumerate(entries):
        at = f"{path}[{index}]"
        fields = Fields(entry, at, errors)
        _only(fields, ("name", "input", "output"))
        name = fields.string("name", required=True) or at
        inputs = tuple(InputMessage(_payload(item, f"{at}.input[{i}]", errors, ("metadata",)),
                                    _metadata(item, f"{at}.input[{i}]", errors) or {})
                       for i, item in enumerate(_list(fields.config.get("input"), f"{at}.input", errors,
                                                      required=True)))
        output = Fields(fields.config.get("output"), f"{at}.output", errors)
        _only(output, ("sink", "routes", "errors"))
        routes = Fields(output.config.get("routes"), output.at("routes"), errors)
        cases.append(Case(
            name=name, path=at, inputs=inputs,
            sink=_expected_messages(output.config.get("sink"), output.at("sink"), errors),
            routes={str(label): _expected_messages(items, routes.at(str(label)), errors)
                    for label, items in routes.config.items()},
            errors=(None if output.config.get("errors") is None
                    else _expected_errors(output.config.get("errors"), output.at("errors"), errors))))
    return cases


def _only(fields: Fields, allowed: tuple[str, ...]) -> None:
    for key in sorted(set(fields.config) - set(allowed)):
        fields.error(str(key), f"unknown field; expected {', '.join(allowed)}")


def _payload(value: Any, path: str, errors: list[FieldError], extra: tuple[str, ...]) -> Payload:
    fields = Fields(value, path, errors)
    _only(fields, ("json", "text", *extra))
    has_json, has_text = "json" in fields.config, "text" in fields.config
    if has_json == has_text:
        errors.append(FieldError(path, "needs exactly one of json (a JSON value) or text (exact text)"))
        return Payload(text="")
    if has_text:
        return Payload(text=fields.string("text", default=""))
    return Payload(json=fields.config["json"])


def _metadata(value: Any, path: str, errors: list[FieldError]) -> Mapping[str, Any] | None:
    if not isinstance(value, Mapping) or value.get("metadata") is None:
        return None
    metadata = value["metadata"]
    if not isinstance(metadata, Mapping):
        errors.append(FieldError(f"{path}.metadata", f"must be an object, got {type_name(metadata)}"))
        return None
    return dict(metadata)


def _expected_messages(value: Any, path: str, errors: list[FieldError]) -> tuple[ExpectedMessage, ...]:
    return tuple(ExpectedMessage(_payload(item, f"{path}[{i}]", errors, ("metadata",)),
                                 _metadata(item, f"{path}[{i}]", errors))
                 for i, item in enumerate(_list(value, path, errors)))


def _expected_errors(value: Any, path: str, errors: list[FieldError]) -> tuple[ExpectedError, ...]:
    expected = []
    for index, item in enumerate(_list(value, path, errors)):
        at = f"{path}[{index}]"
        fields = Fields(item, at, errors)
        _only(fields, ("reason", "stage", "type", "original"))
        original = fields.config.get("original")
        expected.append(ExpectedError(
            reason=fields.string("reason"), stage=fields.string("stage"), type=fields.string("type"),
            original=None if original is None else _payload(original, f"{at}.original", errors, ())))
    return tuple(expected)
