"""The processor as a real subprocess on a file pipeline: metric contract, values, signals, restarts."""

from __future__ import annotations

import json
import math
import signal
from pathlib import Path
from typing import Any

import pytest

from tests.processes import Processor, sample_value, wait_for

CONTRACT = json.loads((Path(__file__).parents[1] / "data" / "metrics-contract.json").read_text())
ROUTE = "$.qty == 3"


def orders(count: int, poison_every: int = 7, test_every: int = 10) -> list[dict[str, Any]]:
    rows = []
    for i in range(1, count + 1):
        rows.append({
            "id": i,
            "status": "test" if i % test_every == 0 else "paid",
            "total": "n/a" if i % poison_every == 0 else f"{i}.5",
            "items": [{"sku": f"s{i}-{j}", "qty": 1 + (i + j) % 3} for j in range(1 + i % 3)],
        })
    return rows


def pipeline_spec(workdir: Path, *, follow: bool, **extra: Any) -> dict[str, Any]:
    return {
        "source": {"type": "file", "config": {"path": str(workdir / "in.jsonl"), "follow": follow,
                                              "pollIntervalSeconds": 0.05}},
        "transformations": [
            {"type": "filter", "config": {"condition": "$.status != 'test'"}},
            {"type": "cast", "config": {"spec": {"total": "float64"}}},
            {"type": "flatten", "config": {"field": "items"}},
            {"type": "timestamp", "config": {"fieldName": "processed_at"}},
            {"type": "router", "config": {"routes": [
                {"condition": ROUTE, "sink": {"type": "file", "config": {"path": str(workdir / "bulk.jsonl")}}}]}},
        ],
        "sink": {"type": "file", "config": {"path": str(workdir / "out.jsonl"), "batchSize": 50,
                                            "batchFlushIntervalSeconds": 0.05}},
        "errors": {"type": "file", "config": {"path": str(workdir / "errors.jsonl")}},
        **extra,
    }


def write_lines(path: Path, rows: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


def read_lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def expected_counts(rows: list[dict[str, Any]]) -> dict[str, int]:
    kept = [r for r in rows if r["status"] != "test"]
    good = [r for r in kept if r["total"] != "n/a"]
    items = [item for r in good for item in r["items"]]
    return {"lines": len(rows), "kept": len(kept), "poisoned": len(kept) - len(good), "good": len(good),
            "items": len(items), "bulk": sum(1 for i in items if i["qty"] == 3)}


@pytest.fixture
def processor_factory(tmp_path: Path):
    started: list[Processor] = []

    def make(spec: dict[str, Any], **kwargs: Any) -> Processor:
        proc = Processor(tmp_path, spec, **kwargs)
        started.append(proc)
        return proc

    yield make
    for proc in started:
        proc.kill()


def _family_name(contract_name: str, kind: str) -> str:
    # prometheus_client's parser names a counter family without its _total suffix.
    return contract_name.removesuffix("_total") if kind == "counter" else contract_name


def test_metric_contract_and_values_agree_with_what_flowed(tmp_path: Path, processor_factory: Any) -> None:
    rows = orders(120)
    write_lines(tmp_path / "in.jsonl", rows)
    expected = expected_counts(rows)
    proc = processor_factory(pipeline_spec(tmp_path, follow=True)).start()
    proc.wait_ready()
    wait_for(lambda: len(read_lines(tmp_path / "out.jsonl")) + len(read_lines(tmp_path / "bulk.jsonl"))
             == expected["items"] and len(read_lines(tmp_path / "errors.jsonl")) == expected["poisoned"],
             message="all output written")
    families = proc.metrics()

    for metric in (m for m in CONTRACT["metrics"] if m["exported_by"] == "processor"):
        family = families.get(_family_name(metric["name"], metric["type"]))
        assert family is not None, f"{metric['name']} is not exported"
        assert family.type == metric["type"], metric["name"]
        assert family.samples, f"{metric['name']} has no series"
        for sample in family.samples:
            labels = set(sample.labels) - {"le"}
            assert labels == set(metric["labels"]), (metric["name"], sample.labels)
            assert sample.labels["namespace"] == "test-ns" and sample.labels["name"] == "test-flow"
        if metric["type"] == "histogram":
            spec = CONTRACT["buckets"][metric["buckets"]]
            wanted = [spec["start"] * spec["factor"] ** i for i in range(spec["count"])]
            first = {tuple(sorted((k, v) for k, v in s.labels.items() if k != "le"))
                     for s in family.samples}.pop()
            bounds = [float(s.labels["le"]) for s in family.samples
                      if s.name.endswith("_bucket") and
                      tuple(sorted((k, v) for k, v in s.labels.items() if k != "le")) == first]
            assert bounds[-1] == math.inf
            assert len(bounds) - 1 == len(wanted)
            assert all(math.isclose(a, b, rel_tol=1e-9) for a, b in zip(bounds[:-1], wanted, strict=True))
    for metric in families.values():
        for sample in metric.samples:
            assert not sample.name.endswith("_created"), sample.name
            if "error_type" in sample.labels:
                assert sample.labels["error_type"] in CONTRACT["error_type_values"]

    value = lambda fam, **labels: sample_value(families, fam, **labels)  # noqa: E731
    assert value("dataflow_messages_received", source_type="file") == expected["lines"]
    assert value("dataflow_connector_messages_read", connector_name="source") == expected["lines"]
    main_lines = len(read_lines(tmp_path / "out.jsonl"))
    bulk_lines = len(read_lines(tmp_path / "bulk.jsonl"))
    assert bulk_lines == expected["bulk"]
    assert value("dataflow_messages_sent", route="default", sink_type="file") == main_lines
    assert value("dataflow_messages_sent", route=ROUTE) == bulk_lines
    assert value("dataflow_connector_messages_written", connector_name="sink") == main_lines
    assert value("dataflow_connector_messages_written", connector_name="route_0", route=ROUTE) == bulk_lines
    assert value("dataflow_connector_messages_written", connector_name="error_sink") == expected["poisoned"]
    flow = [("0", expected["lines"], expected["kept"]), ("1", expected["kept"], expected["good"]),
            ("2", expected["good"], expected["items"]), ("3", expected["items"], expected["items"]),
            ("4", expected["items"], expected["items"])]
    for index, into, out in flow:
        assert value("dataflow_transformer_messages_in", transformer_index=index) == into, index
        assert value("dataflow_transformer_messages_out", transformer_index=index) == out, index
    assert value("dataflow_transformer_errors", transformer_index="1", error_type="invalid_data") \
        == expected["poisoned"]
    assert value("dataflow_task_stage_errors", stage="transformer_1") == expected["poisoned"]
    assert value("dataflow_task_end_to_end_latency_seconds", sample="dataflow_task_end_to_end_latency_seconds_count") \
        == main_lines + bulk_lines
    assert value("dataflow_processing_duration_seconds", sample="dataflow_processing_duration_seconds_count") \
        == expected["lines"]
    assert value("dataflow_task_active_messages") == 0
    assert value("dataflow_connector_connection_status", connector_name="source") == 1

    errors = read_lines(tmp_path / "errors.jsonl")
    assert sorted(e["original_message"]["id"] for e in errors) == sorted(
        r["id"] for r in rows if r["status"] != "test" and r["total"] == "n/a")
    assert {e["error"]["original_sink"] for e in errors} == {"file"}
    assert all(e["error"]["stage"] == "transformer_1" and e["error"]["message"] for e in errors)

    proc.signal(signal.SIGTERM)
    assert proc.wait() == 0, proc.logs()


def test_sigterm_drains_and_a_restart_resumes_without_rereading(tmp_path: Path, processor_factory: Any) -> None:
    rows = orders(300, poison_every=10**9)
    write_lines(tmp_path / "in.jsonl", rows)
    spec = pipeline_spec(tmp_path, follow=True)
    proc = processor_factory(spec).start()
    proc.wait_ready()
    expected = expected_counts(rows)
    written = lambda: len(read_lines(tmp_path / "out.jsonl")) + len(read_lines(tmp_path / "bulk.jsonl"))  # noqa: E731
    wait_for(lambda: written() == expected["items"], message="first run written")
    proc.signal(signal.SIGTERM)
    assert proc.wait() == 0, proc.logs()

    more = orders(360, poison_every=10**9)[300:]
    with open(tmp_path / "in.jsonl", "a") as handle:
        handle.writelines(json.dumps(row) + "\n" for row in more)
    again = processor_factory(spec).start()
    again.wait_ready()
    total = expected_counts(rows + more)["items"]
    wait_for(lambda: written() == total, message="second run written")
    ids = [item["sku"] for item in read_lines(tmp_path / "out.jsonl") + read_lines(tmp_path / "bulk.jsonl")]
    assert len(ids) == len(set(ids)) == total  # resumed exactly after the first run's last line
    again.signal(signal.SIGINT)
    assert again.wait() == 0


def test_sink_failure_without_error_sink_exits_1_and_restart_rereads(tmp_path: Path,
                                                                     processor_factory: Any) -> None:
    rows = orders(50, poison_every=10**9)
    write_lines(tmp_path / "in.jsonl", rows)
    spec = pipeline_spec(tmp_path, follow=False)
    del spec["errors"]
    broken = json.loads(json.dumps(spec))
    broken["sink"]["config"]["path"] = "/dev/full"  # every write fails with ENOSPC
    proc = processor_factory(broken, name="broken").start()
    assert proc.wait() == 1, proc.logs()
    assert "is unavailable" in proc.logs() and "No space left on device" in proc.logs()

    fixed = processor_factory(spec, name="broken").start()  # same name: same checkpoint file
    assert fixed.wait() == 0, fixed.logs()
    expected = expected_counts(rows)
    main = read_lines(tmp_path / "out.jsonl")
    assert len(main) == expected["items"] - expected["bulk"]  # the failed run wrote nothing here
    # The healthy route did write during the failed run, but no parent was acknowledged (a sibling
    # failed), so the restart wrote those children again: duplicates, never losses.
    bulk = [row["sku"] for row in read_lines(tmp_path / "bulk.jsonl")]
    assert set(bulk) == {i["sku"] for r in rows if r["status"] != "test" for i in r["items"] if i["qty"] == 3}
    assert len(bulk) >= expected["bulk"]


def test_sigkill_mid_run_loses_nothing_and_duplicates_at_most_one_batch(tmp_path: Path,
                                                                         processor_factory: Any) -> None:
    count = 60000
    write_lines(tmp_path / "in.jsonl", [{"id": i, "status": "paid", "total": "1", "items": []}
                                        for i in range(count)])
    spec = {
        "source": {"type": "file", "config": {"path": str(tmp_path / "in.jsonl")}},
        "sink": {"type": "file", "config": {"path": str(tmp_path / "out.jsonl"), "batchSize": 100,
                                            "batchFlushIntervalSeconds": 0.01}},
        "checkpointSyncOnAck": True,
        "checkpointSaveInterval": "1us",  # below one batch: every written batch is saved
        "channelBufferSize": 100,
    }
    proc = processor_factory(spec, name="killed").start()
    wait_for(lambda: len(read_lines(tmp_path / "out.jsonl")) > count // 4, message="progress before the kill")
    proc.kill()
    before = len(read_lines(tmp_path / "out.jsonl"))
    assert before < count, "the run finished before it could be killed; make the input larger"
    again = processor_factory(spec, name="killed").start()
    assert again.wait(120) == 0, again.logs()
    ids = [row["id"] for row in read_lines(tmp_path / "out.jsonl")]
    assert set(ids) == set(range(count))
    assert len(ids) - count <= 100, f"{len(ids) - count} duplicates"


def test_reset_token_rereads_once(tmp_path: Path, processor_factory: Any) -> None:
    write_lines(tmp_path / "in.jsonl", [{"id": i} for i in range(5)])
    spec = {"source": {"type": "file", "config": {"path": str(tmp_path / "in.jsonl")}},
            "sink": {"type": "file", "config": {"path": str(tmp_path / "out.jsonl"), "batchSize": 1}}}
    count = lambda: len(read_lines(tmp_path / "out.jsonl"))  # noqa: E731
    assert processor_factory(spec, name="reset").start().wait() == 0
    assert count() == 5
    token = {"DATAFLOW_CHECKPOINT_RESET_TOKEN": "12345"}
    assert processor_factory(spec, name="reset", env=token).start().wait() == 0
    assert count() == 10  # the reset re-read everything
    assert processor_factory(spec, name="reset", env=token).start().wait() == 0
    assert count() == 10  # the same token again (a pod restart): nothing re-read
    assert processor_factory(spec, name="reset").start().wait() == 0
    assert count() == 10
