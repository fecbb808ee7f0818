"""The hostile corpus through a file → cast → file pipeline (the real processor CLI): every message
in exactly one of the main file or the error file, the process alive to the end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from dataflow_operator.pipeline.jsontext import is_clean_json
from tests.hostile.accounting import assert_exact_placement, original_of
from tests.hostile.corpus import for_line_source
from tests.processes import Processor, free_port

CORPUS = for_line_source()
# Good neighbours around every poison message: none of them may be lost with it.
INPUT = b"".join(entry.payload + b"\n" for entry in CORPUS)


def hostile_flow(workdir: Path, source: str, **sink: Any) -> dict[str, Any]:
    return {
        "source": {"type": "file", "config": {"path": source}},
        "transformations": [{"type": "cast", "config": {"spec": {"amount": "float64"}}}],
        "sink": {"type": "file", "config": {"path": str(workdir / "out.jsonl"), **sink}},
        "errors": {"type": "file", "config": {"path": str(workdir / "errors.jsonl")}},
    }


def records(path: Path) -> list[bytes]:
    lines = path.read_bytes().split(b"\n")
    assert lines.pop() == b"", f"{path.name} must end with a line break"
    return lines


def test_every_hostile_message_lands_exactly_once(tmp_path: Path) -> None:
    (tmp_path / "in.jsonl").write_bytes(INPUT)
    processor = Processor(tmp_path, hostile_flow(tmp_path, str(tmp_path / "in.jsonl"), batchSize=4),
                          name="hostile").start()
    assert processor.wait(120) == 0, processor.logs()
    assert "Traceback" not in processor.logs()
    assert_exact_placement(CORPUS, "file", records(tmp_path / "out.jsonl"), records(tmp_path / "errors.jsonl"))


def test_from_stdin_no_good_neighbour_is_lost(tmp_path: Path) -> None:
    spec_path = tmp_path / "stdin.json"
    spec_path.write_text(json.dumps(hostile_flow(tmp_path, "-")))
    done = subprocess.run(
        [sys.executable, "-m", "dataflow_operator", "processor", "--spec-path", str(spec_path),
         "--metrics-bind-address", f"127.0.0.1:{free_port()}", "--checkpoint-dir", str(tmp_path / "cp")],
        input=INPUT, capture_output=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    assert b"Traceback" not in done.stderr
    assert_exact_placement(CORPUS, "file", records(tmp_path / "out.jsonl"), records(tmp_path / "errors.jsonl"))


def test_error_records_replay_into_the_original_payloads(tmp_path: Path) -> None:
    """The replay recipe of docs/delivery.md: a DataFlow whose source is the error sink unwraps the
    JSON originals; what was never JSON stays behind for a person."""
    (tmp_path / "in.jsonl").write_bytes(INPUT)
    assert Processor(tmp_path, hostile_flow(tmp_path, str(tmp_path / "in.jsonl")), name="first").start().wait(120) == 0
    replay = {
        "source": {"type": "file", "config": {"path": str(tmp_path / "errors.jsonl")}},
        "transformations": [{"type": "filter", "config": {"condition": "$.original_message"}},
                            {"type": "extractField", "config": {"field": "original_message"}}],
        "sink": {"type": "file", "config": {"path": str(tmp_path / "replayed.jsonl")}},
    }
    assert Processor(tmp_path, replay, name="replay").start().wait(120) == 0
    replayed = [json.loads(line) for line in records(tmp_path / "replayed.jsonl")]
    failed = [entry for entry in CORPUS if entry.placement("file") == "error"]
    clean = [json.loads(entry.payload) for entry in failed if is_clean_json(entry.payload)]
    assert clean and replayed == clean


def test_an_overlong_line_costs_only_itself_and_bounded_memory(tmp_path: Path) -> None:
    """A 64 MiB line over maxLineBytes goes to the error sink as its first KiB; its neighbours go on."""
    big = b'{"blob":"' + b"a" * (64 << 20) + b'"}'
    (tmp_path / "in.jsonl").write_bytes(b'{"id":1}\n' + big + b'\n{"id":2}\n' + big[:4096])
    flow = hostile_flow(tmp_path, str(tmp_path / "in.jsonl"))
    flow["source"]["config"]["maxLineBytes"] = 2048
    processor = Processor(tmp_path, flow, name="overlong").start()
    assert processor.wait(120) == 0, processor.logs()
    assert [json.loads(line) for line in records(tmp_path / "out.jsonl")] == [{"id": 1}, {"id": 2}]
    errors = [json.loads(line) for line in records(tmp_path / "errors.jsonl")]
    assert [(e["error"]["stage"], e["error"]["type"]) for e in errors] == [("source", "invalid_data")] * 2
    assert errors[0]["error"]["message"] == (
        f"line of {len(big)} bytes at offset 9 of {tmp_path / 'in.jsonl'} is longer than maxLineBytes "
        f"(2048); the record holds its first 1024 bytes")
    assert "line of 4096 bytes at offset" in errors[1]["error"]["message"]
    assert [original_of(line) for line in records(tmp_path / "errors.jsonl")] == [("bytes", big[:1024])] * 2
