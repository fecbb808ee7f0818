"""Valid fields that have no effect: warnings from the spec package, printed by ``validate``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from dataflow_operator.cli import main
from dataflow_operator.spec import validate_spec
from dataflow_operator.spec.warnings import spec_warnings

KAFKA = {"type": "kafka", "config": {"brokers": ["k:9092"], "topic": "t"}}
FILE = {"type": "file", "config": {"path": "/data/in.jsonl"}}
SINK = {"type": "file", "config": {"path": "/data/out.jsonl"}}


@pytest.mark.parametrize(("spec", "paths"), [
    ({"source": KAFKA, "sink": SINK, "checkpointReset": True, "checkpointSaveInterval": "5s"},
     ["spec.checkpointSaveInterval", "spec.checkpointReset"]),
    ({"source": {"type": "kafka", "kafka": KAFKA["config"]}, "sink": SINK, "checkpointPersistence": False},
     ["spec.checkpointPersistence"]),
    ({"source": FILE, "sink": SINK, "checkpointPersistence": False, "checkpointSyncOnAck": True},
     ["spec.checkpointSyncOnAck"]),
    ({"source": FILE, "sink": SINK, "processorImage": "r.example:5000/df@sha256:" + "a" * 64,
      "processorVersion": "2.0"}, ["spec.processorImage"]),
    # Nothing is ignored here.
    ({"source": FILE, "sink": SINK, "checkpointPersistence": True, "checkpointSaveInterval": "5s"}, []),
    ({"source": FILE, "sink": SINK, "processorImage": "r.example:5000/df", "processorVersion": "2.0"}, []),
    ({"source": KAFKA, "sink": SINK, "replicas": 3}, []),
])
def test_warnings_name_the_ignored_field(spec: dict[str, Any], paths: list[str]) -> None:
    assert validate_spec(spec) == []
    assert sorted(warning.path for warning in spec_warnings(spec)) == sorted(paths)


def test_validate_prints_warnings_and_still_passes(tmp_path: Path) -> None:
    path = tmp_path / "df.yaml"
    path.write_text("apiVersion: dataflow.dataflow.io/v1\nkind: DataFlow\nmetadata: {name: a}\nspec:\n"
                    "  source: {type: kafka, config: {brokers: [k:9092], topic: t}}\n"
                    "  sink: {type: file, config: {path: out.jsonl}}\n  checkpointReset: true\n")
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith(f"{path}#0 (a): spec.checkpointReset: warning: ignored: a kafka source")
    assert lines[1] == "1 DataFlow document(s) valid"


def _with(*transformations: dict[str, Any]) -> dict[str, Any]:
    return {"source": FILE, "sink": SINK, "transformations": list(transformations)}


@pytest.mark.parametrize(("spec", "paths"), [
    (_with({"type": "filter", "config": {"condition": "$.n > 10"}}), ["spec.transformations[0].config.condition"]),
    (_with({"type": "filter", "filter": {"condition": "$.n ==5"}}), ["spec.transformations[0].config.condition"]),
    (_with({"type": "mask", "when": "$.a <= 1 && $.b == 'x'", "config": {"fields": ["x"]}}),
     ["spec.transformations[0].when"]),
    (_with({"type": "router", "config": {"routes": [
        {"condition": "$.kind == 'a'", "sink": SINK}, {"condition": "$.n >= 3", "sink": SINK}]}}),
     ["spec.transformations[0].config.routes[1].condition"]),
    # Operators inside quotes are text, and the real comparisons are fine.
    (_with({"type": "filter", "config": {"condition": "$.op == '>' || metadata.k != \"<=\""}}), []),
    (_with({"type": "filter", "config": {"condition": "$.a=='x' && !$.b"}}), []),
])
def test_comparisons_the_condition_language_lacks_are_warned(spec: dict[str, Any], paths: list[str]) -> None:
    assert validate_spec(spec) == []
    warnings = spec_warnings(spec)
    assert [warning.path for warning in warnings] == paths
    assert all("not a comparison of the condition language" in warning.message for warning in warnings)
