"""The hostile corpus through a file → cast → file pipeline (the real processor CLI): every message
in exactly one of the main file or the error file, the process alive to the end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from dataflow_operator.processor.error_record import is_clean_json
from tests.hostile.accounting import assert_exact_placement
from tests.hostile.corpus import for_line_source
from tests.processes import Processor, free_port


def test_every_hostile_message_lands_exactly_once(tmp_path: Path) -> None:
    corpus = for_line_source()
    source = tmp_path / "in.jsonl"
    # Good neighbours around every poison message: none of them may be lost with it.
    source.write_bytes(b"".join(entry.payload + b"\n" for entry in corpus))
    spec = {
        "source": {"type": "file", "config": {"path": str(source)}},
        "transformations": [{"type": "cast", "config": {"spec": {"amount": "float64"}}}],
        "sink": {"type": "file", "config": {"path": str(tmp_path / "out.jsonl"), "batchSize": 4}},
        "errors": {"type": "file", "config": {"path": str(tmp_path / "errors.jsonl")}},
    }
    processor = Processor(tmp_path, spec, name="hostile").start()
    assert processor.wait(120) == 0, processor.logs()
    assert "Traceback" not in processor.logs()
    main = (tmp_path / "out.jsonl").read_bytes().split(b"\n")
    errors = (tmp_path / "errors.jsonl").read_bytes().split(b"\n")
    assert main.pop() == b"" and errors.pop() == b"", "every record ends with a line break"
    assert_exact_placement(corpus, "file", main, errors)


def test_from_stdin_no_good_neighbour_is_lost(tmp_path: Path) -> None:
    corpus = for_line_source()
    spec = {
        "source": {"type": "file", "config": {"path": "-"}},
        "transformations": [{"type": "cast", "config": {"spec": {"amount": "float64"}}}],
        "sink": {"type": "file", "config": {"path": str(tmp_path / "out.jsonl")}},
        "errors": {"type": "file", "config": {"path": str(tmp_path / "errors.jsonl")}},
    }
    spec_path = tmp_path / "stdin.json"
    spec_path.write_text(json.dumps(spec))
    done = subprocess.run(
        [sys.executable, "-m", "dataflow_operator", "processor", "--spec-path", str(spec_path),
         "--metrics-bind-address", f"127.0.0.1:{free_port()}", "--checkpoint-dir", str(tmp_path / "cp")],
        input=b"".join(entry.payload + b"\n" for entry in corpus), capture_output=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    assert b"Traceback" not in done.stderr
    main = (tmp_path / "out.jsonl").read_bytes().split(b"\n")[:-1]
    errors = (tmp_path / "errors.jsonl").read_bytes().split(b"\n")[:-1]
    assert_exact_placement(corpus, "file", main, errors)


def test_error_records_replay_into_the_original_payloads(tmp_path: Path) -> None:
    """The replay recipe of docs/delivery.md: a DataFlow whose source is the error sink unwraps the
    JSON originals; what was never JSON stays behind for a person."""
    corpus = for_line_source()
    source = tmp_path / "in.jsonl"
    source.write_bytes(b"".join(entry.payload + b"\n" for entry in corpus))
    first = {
        "source": {"type": "file", "config": {"path": str(source)}},
        "transformations": [{"type": "cast", "config": {"spec": {"amount": "float64"}}}],
        "sink": {"type": "file", "config": {"path": str(tmp_path / "out.jsonl")}},
        "errors": {"type": "file", "config": {"path": str(tmp_path / "errors.jsonl")}},
    }
    assert Processor(tmp_path, first, name="first").start().wait(120) == 0
    replay = {
        "source": {"type": "file", "config": {"path": str(tmp_path / "errors.jsonl")}},
        "transformations": [{"type": "filter", "config": {"condition": "$.original_message"}},
                            {"type": "extractField", "config": {"field": "original_message"}}],
        "sink": {"type": "file", "config": {"path": str(tmp_path / "replayed.jsonl")}},
    }
    assert Processor(tmp_path, replay, name="replay").start().wait(120) == 0
    replayed = [json.loads(line) for line in (tmp_path / "replayed.jsonl").read_bytes().splitlines()]
    failed = [entry for entry in corpus if entry.placement("file") == "error"]
    clean = [json.loads(entry.payload) for entry in failed if is_clean_json(entry.payload)]
    assert clean and replayed == clean
