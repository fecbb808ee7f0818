"""How the engine treats write failures: data errors go to the error sink, an unavailable sink
stops the pipeline unacknowledged (its messages say nothing wrong and must not be diverted)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import pytest

from dataflow_operator.pipeline.checkpoint import FileCheckpointStore
from dataflow_operator.pipeline.connector import BatchLimits, WriteFailure
from dataflow_operator.pipeline.errors import InvalidDataError
from dataflow_operator.pipeline.message import Message
from dataflow_operator.pipeline.metrics import ProcessorMetrics
from dataflow_operator.pipeline.progress import ProgressTracker
from dataflow_operator.processor.assembly import Factories, RunSettings, build_pipeline
from dataflow_operator.processor.engine import Pipeline, Services
from dataflow_operator.spec import with_defaults

from .fakes import FakeSink, sinks_with


class ScriptedSink(FakeSink):
    """Fails messages whose payload has ``"bad": true`` as invalid data; raises ``outage`` for
    every write when it is set."""

    type_name = "scripted"
    outage: ClassVar[BaseException | None] = None
    writes: ClassVar[int] = 0
    limits = BatchLimits(10, None)

    def write(self, batch: list[Message]) -> list[WriteFailure]:
        ScriptedSink.writes += 1
        if ScriptedSink.outage is not None:
            raise ScriptedSink.outage
        return [WriteFailure(m, InvalidDataError("bad row")) for m in batch if json.loads(m.data).get("bad")]


#: Retries as in production, without the waits between them.
NO_WAITS = RunSettings(write_retry_delays=(0.0, 0.0), error_sink_retry_delays=(0.0, 0.0))


@pytest.fixture
def pipeline(tmp_path: Path) -> Any:
    ScriptedSink.outage, ScriptedSink.writes = None, 0
    (tmp_path / "in.jsonl").write_text("".join(json.dumps({"id": i, "bad": i == 2}) + "\n" for i in range(5)))
    store = FileCheckpointStore(tmp_path / "cp.json")

    def make() -> Pipeline:
        spec = with_defaults({
            "source": {"type": "file", "config": {"path": str(tmp_path / "in.jsonl")}},
            "sink": {"type": "scripted", "config": {}},
            "errors": {"type": "file", "config": {"path": str(tmp_path / "errors.jsonl")}},
            "checkpointSaveInterval": "1us",
        })
        services = Services(namespace="ns", name="n", metrics=ProcessorMetrics("ns", "n"), checkpoints=store,
                            progress=ProgressTracker(0))
        return build_pipeline(spec, services, Factories(sink=sinks_with(ScriptedSink)), NO_WAITS)

    make.store = store  # type: ignore[attr-defined]
    make.errors = tmp_path / "errors.jsonl"  # type: ignore[attr-defined]
    return make


def test_a_data_error_goes_to_the_error_sink_and_the_rest_is_acknowledged(pipeline: Any) -> None:
    result = pipeline().run()
    assert result.failure is None
    records = [json.loads(line) for line in pipeline.errors.read_text().splitlines()]
    assert [r["original_message"]["id"] for r in records] == [2]
    assert records[0]["error"]["type"] == "invalid_data"
    assert pipeline.store.load("file") is not None  # the position moved to the end


@pytest.mark.parametrize("outage", [ConnectionRefusedError("connection refused"), TimeoutError("timed out")])
def test_an_unavailable_sink_stops_the_pipeline_and_diverts_nothing(pipeline: Any, outage: BaseException) -> None:
    ScriptedSink.outage = outage
    result = pipeline().run()
    assert result.exit_code == 1
    assert "is unavailable" in str(result.failure)
    assert ScriptedSink.writes == 3  # retried twice before giving up
    assert not pipeline.errors.exists() or pipeline.errors.read_text() == ""
    assert pipeline.store.load("file") is None  # nothing acknowledged: the restart reads it all
