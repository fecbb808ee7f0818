"""The operator role's Sentry reporting, through the real SDK and transport to a local endpoint: an
operator failure arrives with the operator's tags, and none of its credentials."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import yaml

from tests.sentry_ingest import sentry_ingest

TOKEN = "operator-bearer-token-5f0c1e"  # a credential that must never reach Sentry


def kubeconfig(path: Path) -> Path:
    """A kubeconfig with a bearer token, for an API server nobody listens on (start-up fails first)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "test",
        "clusters": [{"name": "test", "cluster": {"server": f"https://127.0.0.1:{port}"}}],
        "users": [{"name": "test", "user": {"token": TOKEN}}],
        "contexts": [{"name": "test", "context": {"cluster": "test", "user": "test"}}],
    }))
    return path


def test_an_operator_failure_reaches_sentry_with_the_operators_tags(tmp_path: Path) -> None:
    with socket.socket() as taken, sentry_ingest() as ingest:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        env = {**os.environ, "SENTRY_DSN": ingest.dsn(), "SENTRY_ENVIRONMENT": "test-env",
               "SENTRY_RELEASE": "dataflow-operator@test", "SENTRY_TRACES_SAMPLE_RATE": "0"}
        # The metrics port is taken: the operator cannot start, says so and exits 1.
        result = subprocess.run(
            [sys.executable, "-m", "dataflow_operator", "run", "--kubeconfig", str(kubeconfig(tmp_path / "kubeconfig")),
             "--leader-elect", "false", "--metrics-bind-address", f"127.0.0.1:{busy}",
             "--health-probe-bind-address", "127.0.0.1:0"],
            env=env, capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 1, result.stderr
        assert "cannot start the operator" in result.stderr

        events = [event for event in ingest.events() if event.get("level") == "error"]
        assert events, f"no error event among {len(ingest.envelopes)} envelopes; stderr:\n{result.stderr}"
        event = events[-1]
        assert event["tags"]["role"] == "operator"
        assert event["environment"] == "test-env" and event["release"] == "dataflow-operator@test"
        assert event["logentry"]["message"] == "cannot start the operator"
        assert "Address already in use" in json.dumps(event)
        assert event["logger"] == "dataflow_operator.operator.manager"
        # Nothing the operator was configured with that is a credential travels with it.
        assert TOKEN.encode() not in ingest.raw()
        assert TOKEN not in result.stderr
