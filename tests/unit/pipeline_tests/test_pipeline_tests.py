"""``dataflow-operator test``: the examples pass, a wrong expectation fails with a diff, and a broken
test file is reported with field paths, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dataflow_operator.cli import main

EXAMPLES = Path(__file__).parents[3] / "examples"
TEST_FILES = sorted((EXAMPLES / "tests").glob("*.yaml"))

FLOW = """
apiVersion: dataflow.dataflow.io/v1
kind: DataFlow
metadata: {name: shapes}
spec:
  source: {type: file, config: {path: in.jsonl}}
  transformations:
    - type: filter
      config: {condition: "$.keep == true"}
    - type: cast
      config: {spec: {n: int64}}
    - type: router
      config:
        routes:
          - condition: "$.n == 30"
            sink: {type: file, config: {path: big.jsonl}}
  sink: {type: file, config: {path: out.jsonl}}
  errors: {type: file, config: {path: errors.jsonl}}
"""


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["test", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def write(tmp_path: Path, tests: object, *, flow: str = FLOW) -> Path:
    (tmp_path / "flow.yaml").write_text(flow)
    path = tmp_path / "flow.test.yaml"
    path.write_text(yaml.safe_dump({"dataflow": "flow.yaml", "tests": tests}) if not isinstance(tests, str)
                    else tests)
    return path


def test_every_example_has_tests_and_they_pass() -> None:
    examples = {path.stem for path in EXAMPLES.glob("*.yaml")}
    assert {path.stem for path in TEST_FILES} == examples
    code, output = run(*map(str, TEST_FILES))
    assert code == 0, output
    assert " 0 failed" in output and "FAIL" not in output


def test_outputs_routes_and_error_records_are_compared(tmp_path: Path) -> None:
    path = write(tmp_path, [{
        "name": "everything where it belongs",
        "input": [{"json": {"keep": True, "n": "3"}}, {"json": {"keep": False, "n": "4"}},
                  {"json": {"keep": True, "n": "30"}}, {"text": '{"keep": true, "n": "x"}', "metadata": {"key": "k"}}],
        "output": {"sink": [{"json": {"keep": True, "n": 3}}],
                   "routes": {"$.n == 30": [{"json": {"n": 30, "keep": True}}]},
                   "errors": [{"stage": "transformer_1", "type": "invalid_data", "reason": "n",
                               "original": {"text": '{"keep": true, "n": "x"}'}}]}}])
    code, output = run(str(path))
    assert code == 0, output
    assert "PASS everything where it belongs" in output


def test_a_wrong_expectation_fails_with_a_diff(tmp_path: Path) -> None:
    path = write(tmp_path, [{
        "name": "wrong on purpose",
        "input": [{"json": {"keep": True, "n": "3"}}, {"text": "garbage", "metadata": {"key": "k1"}}],
        "output": {"sink": [{"json": {"keep": True, "n": 4}, "metadata": {"key": "k0"}}],
                   "errors": [{"reason": "no such reason"}]}}])
    code, output = run(str(path))
    assert code == 1
    assert "FAIL wrong on purpose" in output and "0 passed, 1 failed" in output
    assert '-{"keep": true, "n": 4}  metadata {"key": "k0"}' in output
    assert '+{"keep": true, "n": 3}  metadata {"key": "<missing>"}' in output
    assert '-reason contains "no such reason"' in output


def test_unexpected_messages_and_unknown_routes_fail(tmp_path: Path) -> None:
    path = write(tmp_path, [{
        "name": "sink expected empty",
        "input": [{"json": {"keep": True, "n": "1"}}],
        "output": {"routes": {"$.n == 99": []}}}])
    code, output = run(str(path))
    assert code == 1
    assert "sink: expected 0 message(s), got 1" in output
    assert "output.routes.$.n == 99: no route with this condition in the DataFlow; routes: $.n == 30" in output


def test_errors_expected_of_a_dataflow_without_an_error_sink(tmp_path: Path) -> None:
    flow = FLOW.replace("  errors: {type: file, config: {path: errors.jsonl}}\n", "")
    path = write(tmp_path, [{"name": "x", "input": [{"json": {}}], "output": {"errors": []}}], flow=flow)
    code, output = run(str(path))
    assert code == 1
    assert "tests[0].output.errors: the DataFlow has no error sink (spec.errors) to receive these" in output


@pytest.mark.parametrize(("content", "message"), [
    ("tests: []\n", "dataflow: required"),
    ("dataflow: flow.yaml\ntests: []\n", "tests: must hold at least one test"),
    ("dataflow: flow.yaml\ntests: {}\n", "tests: must be a list, got object"),
    ("dataflow: flow.yaml\nnow: yesterday\ntests: [{name: a, input: []}]\n", "now: must be an RFC3339 time"),
    ("dataflow: flow.yaml\ntests: [{name: a, input: [{json: 1, text: x}]}]\n",
     "tests[0].input[0]: needs exactly one of json (a JSON value) or text (exact text)"),
    ("dataflow: flow.yaml\ntests: [{name: a, input: [], outptu: {}}]\n",
     "tests[0].outptu: unknown field; expected name, input, output"),
    ("dataflow: flow.yaml\ntests: [{name: a, input: [], output: {sink: [{json: 1, metadata: 3}]}}]\n",
     "tests[0].output.sink[0].metadata: must be an object, got integer"),
    ("dataflow: flow.yaml\ndataflow: other.yaml\ntests: []\n", "duplicate key"),
    ("dataflow: missing.yaml\ntests: [{name: a, input: []}]\n", "missing.yaml"),
])
def test_a_broken_test_file_names_the_field(tmp_path: Path, content: str, message: str) -> None:
    code, output = run(str(write(tmp_path, content)))
    assert code == 1
    assert ": invalid" in output and message in output, output


def test_an_invalid_dataflow_is_reported_with_its_field_paths(tmp_path: Path) -> None:
    path = write(tmp_path, [{"name": "a", "input": []}], flow=FLOW.replace("type: cast", "type: kast"))
    code, output = run(str(path))
    assert code == 1
    assert "flow.yaml#spec.transformations[1].type: unsupported transformation type 'kast'" in output


_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                       lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
                           st.sampled_from(["name", "input", "output", "json", "text", "metadata", "sink",
                                            "routes", "errors", "reason", "stage", "original", "x"]),
                           inner, max_size=4), max_leaves=12)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tests=_values)
def test_any_test_file_is_run_or_refused_never_a_traceback(tmp_path: Path, tests: object) -> None:
    code, _ = run(str(write(tmp_path, tests if not isinstance(tests, str) else [tests])))
    assert code in (0, 1)
