"""The manifest loader: its limits hold at their boundaries, YAML's leniencies are refused with
a path and a line, and JSON specs are held to JSON's rules."""

from __future__ import annotations

import json
import zoneinfo
from collections.abc import Iterator
from pathlib import Path

import pytest

from dataflow_operator.pipeline.config_fields import SpecError
from dataflow_operator.processor.runtime import load_spec_file
from dataflow_operator.spec.manifest_loader import (
    MAX_ALIASES,
    MAX_EXPANDED_NODES,
    MAX_MANIFEST_BYTES,
    MAX_NESTING_DEPTH,
    ManifestError,
    decode_manifest,
    load_json_document,
    load_single_document,
    load_yaml_documents,
    read_manifest,
)
from dataflow_operator.spec.timezones import zone_problem


def load(text: str) -> list[object]:
    return [value for _index, value in load_yaml_documents(text)]


def failure(text: str) -> ManifestError:
    with pytest.raises(ManifestError) as caught:
        load(text)
    return caught.value


def nested(depth: int) -> str:
    """A document whose deepest node is ``depth`` levels down (the root mapping is level 1)."""
    return "a: " + "[" * (depth - 1) + "]" * (depth - 1) + "\n"


def test_nesting_up_to_the_limit_loads_and_one_more_level_does_not() -> None:
    assert load(nested(MAX_NESTING_DEPTH))
    error = failure(nested(MAX_NESTING_DEPTH + 1))
    assert "MAX_NESTING_DEPTH" in error.message and error.path.startswith("a[0]")


def test_alias_references_up_to_the_limit_load() -> None:
    within = "x: &x 1\nys: [" + ", ".join(["*x"] * MAX_ALIASES) + "]\n"
    assert load(within) == [{"x": 1, "ys": [1] * MAX_ALIASES}]
    error = failure("x: &x 1\nys: [" + ", ".join(["*x"] * (MAX_ALIASES + 1)) + "]\n")
    assert error.path == f"ys[{MAX_ALIASES}]" and "MAX_ALIASES" in error.message


def test_expansion_is_counted_through_nested_aliases() -> None:
    """Two aliases to a node of nearly MAX_EXPANDED_NODES / 2 nodes: the second is too many."""
    half = MAX_EXPANDED_NODES // 2 - 10
    text = "big: &big [" + ", ".join(["0"] * half) + "]\ncopies: [*big, *big]\n"
    error = failure(text)
    assert error.path == "copies[1]" and "MAX_EXPANDED_NODES" in error.message


def test_the_billion_laughs_stops_early() -> None:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)]
    assert "MAX_EXPANDED_NODES" in failure("\n".join(lines) + "\n").message


def test_an_alias_inside_its_own_anchor_is_refused() -> None:
    assert "contains it" in failure("a: &loop {b: *loop}\n").message


def test_duplicate_keys_name_the_path_and_both_lines() -> None:
    error = failure("spec:\n  sink:\n    path: a\n    other: 1\n    path: b\n")
    assert (error.path, error.line) == ("spec.sink.path", 5)
    assert "first at line 3" in error.message


def test_keys_are_compared_as_values() -> None:
    assert "duplicate key" in failure('a: {b: 1, "b": 2}\n').message


@pytest.mark.parametrize(("key", "path"), [("on", "a.on"), ("1", "a.1"), ("null", "a.null"), ("1.5", 'a["1.5"]')])
def test_keys_must_be_strings(key: str, path: str) -> None:
    error = failure(f"a:\n  {key}: x\n")
    assert (error.path, error.line) == (path, 2) and "must be a string" in error.message
    assert load(f"a:\n  '{key}': x\n") == [{"a": {key: "x"}}]


@pytest.mark.parametrize(("key", "path"), [(":kind", 'a[":kind"]'), ("b.c", 'a["b.c"]'), (" x", 'a[" x"]'),
                                           ('q"\u2028', 'a["q\\"\\u2028"]')])
def test_a_key_that_is_not_a_plain_name_is_quoted_in_paths(key: str, path: str) -> None:
    """Found by the validate fuzz: a key ``:kind`` printed bare made ``-#0: :kind: ...``, a line
    whose field path cannot be told from its message. Quoted, no key can forge one."""
    error = failure(f"a:\n  {json.dumps(key)}: !!binary AAAA\n")
    assert error.path == path

def test_merge_keys_override_without_being_duplicates() -> None:
    assert load("base: &b {x: 1, y: 2}\nd:\n  <<: *b\n  x: 3\n") == [{"base": {"x": 1, "y": 2}, "d": {"x": 3, "y": 2}}]


@pytest.mark.parametrize(("text", "says"), [
    ("a: !!int 1.5\n", "'1.5' is not a valid int"),
    ("a: !!float nope\n", "'nope' is not a valid float"),
    ("a: !!bool maybe\n", "'maybe' is not a valid bool"),
    ("a: !!null x\n", "'x' is not a valid null"),
    ("a: 0b_\n", "'0b_' is not a valid int"),
    ("a: !!float ._\n", "'._' is not a valid float"),
    ("a: -0x_\n", "'-0x_' is not a valid int"),
    ("a: !!binary aGk=\n", "could not determine a constructor"),
    ("a: !!set {x}\n", "could not determine a constructor"),
    ("a: !python/object:os.system x\n", "could not determine a constructor"),
])
def test_tags_must_fit_their_values(text: str, says: str) -> None:
    error = failure(text)
    assert (error.path, error.line, error.column) == ("a", 1, 4)
    assert says in error.message


def test_timestamps_stay_strings_as_in_kubernetes() -> None:
    assert load("startTime: 2026-01-31T02:00:00Z\n") == [{"startTime": "2026-01-31T02:00:00Z"}]


def test_a_failure_in_a_later_document_names_that_document() -> None:
    documents = load_yaml_documents("a: 1\n---\nb: 2\n---\nc: !!int x\n")
    assert next(documents) == (0, {"a": 1})
    assert next(documents) == (1, {"b": 2})
    with pytest.raises(ManifestError) as caught:
        next(documents)
    assert (caught.value.document, caught.value.path, caught.value.line) == (2, "c", 5)


def test_non_utf8_names_the_byte_offset_and_its_document() -> None:
    with pytest.raises(ManifestError) as caught:
        decode_manifest(b"a: 1\n---\nb: 2\n---\nc: \xff\n")
    error = caught.value
    assert (error.document, error.line, error.column) == (2, 5, 4)
    assert "byte 0xff at offset 21" in error.message


def test_a_byte_order_mark_is_dropped() -> None:
    assert decode_manifest(b"\xef\xbb\xbfa: 1\n") == "a: 1\n"


def test_reading_stops_one_byte_past_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_bytes(b"#" * (MAX_MANIFEST_BYTES + 1))
    with pytest.raises(ManifestError, match="MAX_MANIFEST_BYTES"):
        read_manifest(str(path))
    path.write_bytes(b"#" * MAX_MANIFEST_BYTES)
    assert len(read_manifest(str(path))) == MAX_MANIFEST_BYTES


@pytest.mark.parametrize(("text", "path", "says"), [
    ('{"spec": {"source": {"type": "file", "type": "kafka"}}}', "spec.source", "duplicate key 'type'"),
    ('{"spec": {"sink": {"config": {"batchFlushIntervalSeconds": NaN}}}}',
     "spec.sink.config.batchFlushIntervalSeconds", "NaN is not a JSON number"),
    ('{"a": [-Infinity]}', "a[0]", "-Infinity is not a JSON number"),
    ('{"n": ' + "9" * 5000 + "}", "n", "integer of 5000 digits"),
    ('{"a": ' + "[" * MAX_NESTING_DEPTH + "]" * MAX_NESTING_DEPTH + "}", "a" + "[0]" * (MAX_NESTING_DEPTH - 1),
     "MAX_NESTING_DEPTH"),
    ("[" * 100_000 + "]" * 100_000, "<document>", "MAX_NESTING_DEPTH"),
])
def test_json_is_held_to_json(text: str, path: str, says: str) -> None:
    with pytest.raises(ManifestError) as caught:
        load_json_document(text)
    assert caught.value.path == path and says in caught.value.message


def test_json_keeps_its_numbers() -> None:
    """1e-05 is a number in JSON (and a string in YAML 1.1): a JSON spec is never read as YAML."""
    assert load_single_document(json.dumps({"a": 1e-05, "b": [1, "x", None, True]}).encode()) == \
        {"a": 1e-05, "b": [1, "x", None, True]}


def test_a_spec_file_holds_one_document() -> None:
    with pytest.raises(ManifestError, match="expected one document, found 2"):
        load_single_document(b"source: {}\n---\nsink: {}\n")
    assert load_single_document(b"---\nsource: {type: file}\n---\n") == {"source": {"type": "file"}}


@pytest.mark.parametrize(("content", "path"), [
    (b'{"source": {"type": "file", "config": {"path": "a", "path": "b"}}, "sink": {}}', "source.config"),
    (b'{"source": {"type": "file", "config": {"pollIntervalSeconds": NaN}}, "sink": {}}',
     "source.config.pollIntervalSeconds"),
    (b"source: {type: file}\nsink: {type: file}\nsink: {type: kafka}\n", "sink"),
    (b"source: {type: \xc3}\n", "<document>"),
])
def test_the_processor_refuses_what_validate_refuses(tmp_path: Path, content: bytes, path: str) -> None:
    spec_file = tmp_path / "spec.json"
    spec_file.write_bytes(content)
    with pytest.raises(SpecError) as caught:
        load_spec_file(str(spec_file))
    assert [error.path for error in caught.value.errors] == [path]


def test_the_processor_checks_manifest_metadata(tmp_path: Path) -> None:
    spec_file = tmp_path / "flow.yaml"
    spec_file.write_text("apiVersion: dataflow.dataflow.io/v1\nkind: DataFlow\nmetadata: {name: Not_DNS}\n"
                         "spec: {source: {type: file, config: {path: a}}, sink: {type: file, config: {path: b}}}\n")
    with pytest.raises(SpecError) as caught:
        load_spec_file(str(spec_file))
    assert [error.path for error in caught.value.errors] == ["metadata.name"]


@pytest.fixture
def zone_path_with_a_directory(tmp_path: Path) -> Iterator[None]:
    """A time zone search path where "America" is a directory, whatever the machine has."""
    (tmp_path / "America").mkdir()
    zoneinfo.reset_tzpath(to=[str(tmp_path)])
    try:
        yield
    finally:
        zoneinfo.reset_tzpath()


@pytest.mark.usefixtures("zone_path_with_a_directory")
@pytest.mark.parametrize("name", ["America", "x" * 300, "Europe/\0Moscow", "../../etc/passwd", "/etc/localtime",
                                  "Europe/./Moscow", ""])
def test_zone_names_the_file_system_refuses_are_answers(name: str) -> None:
    assert zone_problem(name) is not None
