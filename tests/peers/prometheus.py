"""A Prometheus server scraping given targets, queried through its HTTP API."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import requests
import yaml

from tests.peers.process import ManagedProcess, free_port, wait_until

START_DEADLINE_S = 60.0
STOP_TIMEOUT_S = 30.0


class QueryError(RuntimeError):
    """Prometheus rejected the query (e.g. a PromQL syntax error): retrying cannot help."""


class PrometheusServer:
    """`url`, `query(promql)`, `wait_for(promql, deadline_s)`, `stop()`."""

    def __init__(self, binary: Path, base_dir: Path, scrape_targets: Sequence[str],
                 scrape_interval: str = "1s", rule_files: Sequence[Path | str] = ()) -> None:
        base_dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config_path = base_dir / "prometheus.yml"
        config = {
            "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval,
                       # Must not exceed the interval; Prometheus rejects the config otherwise.
                       "scrape_timeout": scrape_interval},
            "rule_files": [str(Path(path).resolve()) for path in rule_files],
            "scrape_configs": [{"job_name": "test", "static_configs": [{"targets": list(scrape_targets)}]}],
        }
        self.config_path.write_text(yaml.safe_dump(config))
        self._process = ManagedProcess("prometheus", [
            binary, f"--config.file={self.config_path}", f"--storage.tsdb.path={base_dir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn",
        ], base_dir / "prometheus.log")

    def _ready(self) -> bool:
        return requests.get(f"{self.url}/-/ready", timeout=2).status_code == 200

    def start(self) -> None:
        self._process.start()
        wait_until(self._ready, deadline_s=START_DEADLINE_S, what="/-/ready is ok", process=self._process)

    def stop(self) -> None:
        self._process.stop(timeout_s=STOP_TIMEOUT_S)

    def query(self, promql: str) -> list[dict[str, Any]]:
        """Instant query; returns `data.result` (for a vector: dicts with `metric` and `value`)."""
        response = requests.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=10)
        body = response.json()
        if response.status_code != 200 or body.get("status") != "success":
            raise QueryError(f"query {promql!r} failed ({response.status_code}): {body.get('error', body)}")
        result = body["data"]["result"]
        return result if isinstance(result, list) else [{"value": result}]  # scalar/string results

    def wait_for(self, promql: str, deadline_s: float = 30.0) -> list[dict[str, Any]]:
        """Poll the query until it returns a non-empty result, and return that result. A query that
        Prometheus rejects fails at once instead of at the deadline."""
        return wait_until(lambda: self.query(promql) or None, deadline_s=deadline_s,
                          what=f"{promql!r} returns data", process=self._process,
                          retry_on=(requests.RequestException,))

    def tail(self) -> str:
        return self._process.tail()
