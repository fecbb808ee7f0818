"""Probe transitions on a live processor, and Sentry events through the real SDK and transport."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.processes import Processor, wait_for
from tests.sentry_ingest import sentry_ingest


def test_probes_follow_the_pipeline(tmp_path: Path) -> None:
    fifo = tmp_path / "in.fifo"
    os.mkfifo(fifo)
    spec = {"source": {"type": "file", "config": {"path": str(fifo)}},
            "sink": {"type": "file", "config": {"path": str(tmp_path / "out.jsonl"), "batchSize": 1}}}
    proc = Processor(tmp_path, spec, env={"PROCESSOR_PROGRESS_TIMEOUT_SECONDS": "1"}).start()
    try:
        # Opening a FIFO blocks until a writer appears: the source is not connected yet.
        wait_for(lambda: proc.get("/healthz").status_code == 200, message="/healthz")
        ready = proc.get("/readyz")
        assert ready.status_code == 503 and "not connected" in ready.text
        assert proc.get("/livez").status_code == 503

        with open(fifo, "w") as writer:
            wait_for(lambda: proc.get("/readyz").status_code == 200, message="ready once connected")
            assert proc.get("/livez").status_code == 200
            # (a Response is falsy when it is a 503, so the text is what is waited for)
            stale = wait_for(lambda: (r := proc.get("/livez")).status_code == 503 and r.text, timeout=10,
                             message="/livez stale after the progress timeout")
            assert "stale: no pipeline progress" in stale
            writer.write('{"n": 1}\n')
            writer.flush()
            wait_for(lambda: proc.get("/livez").status_code == 200, message="a sink commit is progress")
            assert (tmp_path / "out.jsonl").read_text() == '{"n": 1}\n'
        assert proc.wait() == 0, proc.logs()  # end of input: drained and exited cleanly
    finally:
        proc.kill()


def test_progress_timeout_zero_disables_the_staleness_check(tmp_path: Path) -> None:
    fifo = tmp_path / "in.fifo"
    os.mkfifo(fifo)
    spec = {"source": {"type": "file", "config": {"path": str(fifo)}},
            "sink": {"type": "file", "config": {"path": str(tmp_path / "out.jsonl")}}}
    proc = Processor(tmp_path, spec, env={"PROCESSOR_PROGRESS_TIMEOUT_SECONDS": "0"}).start()
    try:
        with open(fifo, "w"):
            wait_for(lambda: proc.get("/readyz").status_code == 200, message="ready")
            live = proc.get("/livez")
            assert live.status_code == 200 and "disabled" in live.text
    finally:
        proc.kill()


def test_an_unhandled_pipeline_failure_reaches_sentry(tmp_path: Path) -> None:
    (tmp_path / "in.jsonl").write_text('{"a": 1}\n')
    spec = {"source": {"type": "file", "config": {"path": str(tmp_path / "in.jsonl")}},
            "sink": {"type": "file", "config": {"path": "/dev/full"}}}
    with sentry_ingest() as ingest:
        env = {"SENTRY_DSN": ingest.dsn(), "SENTRY_ENVIRONMENT": "test-env", "SENTRY_RELEASE": "dataflow@test",
               "SENTRY_TRACES_SAMPLE_RATE": "0"}
        proc = Processor(tmp_path, spec, env=env).start()
        try:
            assert proc.wait() == 1, proc.logs()
            events = [event for event in ingest.events() if "exception" in event]
            assert events, f"no exception event among {len(ingest.envelopes)} envelopes"
            event = events[-1]
            assert event["environment"] == "test-env"
            assert event["release"] == "dataflow@test"
            assert event["tags"]["role"] == "processor"
            assert "No space left on device" in json.dumps(event["exception"])
        finally:
            proc.kill()
