"""``dataflow-operator validate`` output and exit codes, and every shipped example being valid."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from dataflow_operator.cli import main

EXAMPLES = sorted((Path(__file__).parents[3] / "examples").glob("*.yaml"))

INVALID = """\
apiVersion: dataflow.dataflow.io/v1
kind: DataFlow
metadata: {name: first}
spec:
  source: {type: kafka, config: {brokers: [b:9092], topic: t}}
  sink: {type: file, config: {path: out.jsonl}}
---
apiVersion: dataflow.dataflow.io/v1
kind: DataFlow
metadata: {name: second}
spec:
  source: {type: kafka, config: {topic: t}}
  sink: {type: file, config: {path: out.jsonl}}
  transformations:
    - {type: flatten, config: {}}
"""


def test_valid_and_invalid_documents_are_reported_per_document(tmp_path: Path) -> None:
    path = tmp_path / "flows.yaml"
    path.write_text(INVALID)
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert f"{path}#1 (second): spec.source.config.brokers: required" in lines
    assert any(line.startswith(f"{path}#1 (second): spec.transformations[0].config.field") for line in lines)
    assert not any("#0" in line for line in lines)


def test_stdin_and_exit_zero() -> None:
    valid = INVALID.split("---", 1)[0]
    result = CliRunner().invoke(main, ["validate", "-"], input=valid)
    assert result.exit_code == 0, result.output
    assert "1 DataFlow document(s) valid" in result.output


def test_unreadable_and_non_yaml_inputs(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\n")
    result = CliRunner().invoke(main, ["validate", str(bad), str(tmp_path / "missing.yaml")])
    assert result.exit_code == 1
    assert "not valid YAML" in result.output and "cannot read" in result.output


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_every_example_is_valid(example: Path) -> None:
    result = CliRunner().invoke(main, ["validate", str(example)])
    assert result.exit_code == 0, result.output
