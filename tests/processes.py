"""Running ``dataflow-operator`` as a real subprocess in tests, and polling it (no fixed sleeps)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import requests
from prometheus_client.parser import text_string_to_metric_families

T = TypeVar("T")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_for(condition: Callable[[], T], timeout: float = 30.0, interval: float = 0.05,
             message: str = "condition") -> T:
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = condition()
        except RuntimeError:
            raise
        except Exception as exc:
            last_error = exc
        else:
            if value:
                return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}" +
                         (f" (last error: {last_error})" if last_error else ""))


class Processor:
    """``dataflow-operator processor`` on a spec written to ``workdir``."""

    def __init__(self, workdir: Path, spec: dict[str, Any], *, name: str = "test-flow",
                 namespace: str = "test-ns", host: str = "127.0.0.1", env: dict[str, str] | None = None) -> None:
        self.workdir = workdir
        self.spec_path = workdir / f"{name}.json"
        self.spec_path.write_text(json.dumps(spec))
        self.host = host
        self.port = free_port(host)
        self.log_path = workdir / f"{name}.log"
        self.name = name
        self.namespace = namespace
        self.env = {**os.environ, **(env or {})}
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, preexec_fn: Callable[[], None] | None = None) -> Processor:
        """``preexec_fn`` runs in the forked child before exec (e.g. to set a resource limit): keep it to
        plain system calls, as other threads' locks are not safe to take there."""
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        self.process = subprocess.Popen(
            [sys.executable, "-m", "dataflow_operator", "processor", "--spec-path", str(self.spec_path),
             "--namespace", self.namespace, "--name", self.name,
             "--metrics-bind-address", f"{self.host}:{self.port}",
             "--checkpoint-dir", str(self.workdir / "checkpoints")],
            cwd=self.workdir, stdout=log, stderr=log, env=self.env, start_new_session=True,
            preexec_fn=preexec_fn)  # noqa: PLW1509 - see the docstring
        log.close()
        return self

    def wait_ready(self, timeout: float = 30.0) -> None:
        def ready() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.logs()}")
            return self.get("/readyz").status_code == 200

        try:
            wait_for(ready, timeout, message=f"{self.name} ready")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.logs()}") from None

    def get(self, path: str) -> requests.Response:
        return requests.get(self.url + path, timeout=5)

    def metrics(self) -> dict[str, Any]:
        return {family.name: family for family in text_string_to_metric_families(self.get("/metrics").text)}

    def signal(self, sig: int) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    def wait(self, timeout: float = 60.0) -> int:
        assert self.process is not None
        return self.process.wait(timeout)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def sample_value(families: dict[str, Any], family: str, sample: str | None = None, **labels: str) -> float:
    """Sum of the samples of ``family`` (optionally one sample name) whose labels include ``labels``."""
    total = 0.0
    for item in families[family].samples:
        if sample is not None and item.name != sample:
            continue
        if all(item.labels.get(k) == v for k, v in labels.items()):
            total += item.value
    return total
