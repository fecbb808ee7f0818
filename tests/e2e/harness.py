"""What the operator end-to-end tests share: a real API server holds the DataFlows and the processor
Pods; the "pods" are real ``dataflow-operator processor`` processes on their own loopback addresses,
port 9090, as in a cluster; the operator runs as ``dataflow-operator run`` processes; a real
Prometheus scrapes the operator.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import requests
import yaml
from kubernetes import client as k8s
from prometheus_client.parser import text_string_to_metric_families

from dataflow_operator.operator import resources
from tests.peers.fixtures import PrometheusFactory, prometheus_servers
from tests.peers.kube import create_pod
from tests.peers.prometheus import PrometheusServer
from tests.processes import Processor, free_port, wait_for

REPO = Path(__file__).resolve().parents[2]
CRD = REPO / "helm" / "dataflow-operator" / "files" / "crds" / "dataflow.dataflow.io_dataflows.yaml"
GROUP, VERSION, PLURAL = "dataflow.dataflow.io", "v1", "dataflows"
PROCESSOR_PORT = 9090  # the contract's port, which the operator scrapes at each pod IP
AGGREGATION_TIMEOUT = "0.8"  # below the test Prometheus' scrape timeout (its 1 s interval)


class Operator:
    """``dataflow-operator run`` as its own process, one replica of the operator."""

    def __init__(self, workdir: Path, kubeconfig: Path, namespace: str, replica: str) -> None:
        self.metrics_url = f"http://127.0.0.1:{free_port()}/metrics"
        self.health_url = f"http://127.0.0.1:{free_port()}"
        self.log_path = workdir / f"operator-{replica}.log"
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "dataflow_operator", "run", "--kubeconfig", str(kubeconfig),
                 "--namespace", namespace, "--leader-elect", "true", "--leader-election-namespace", namespace,
                 "--metrics-bind-address", self.metrics_url.removeprefix("http://").removesuffix("/metrics"),
                 "--health-probe-bind-address", self.health_url.removeprefix("http://"),
                 "--aggregation-timeout", AGGREGATION_TIMEOUT, "--status-counts-interval", "1"],
                stdout=log, stderr=log, start_new_session=True,
                env={**os.environ, "PROCESSOR_IMAGE": "dataflow-operator:test"})

    @property
    def address(self) -> str:
        """host:port of /metrics, as a Prometheus scrape target."""
        return self.metrics_url.removeprefix("http://").removesuffix("/metrics")

    def wait_ready(self) -> None:
        def ready() -> bool:
            if self.process.poll() is not None:
                raise RuntimeError(f"operator exited with {self.process.returncode}:\n{self.logs()}")
            return requests.get(self.health_url + "/readyz", timeout=5).status_code == 200

        wait_for(ready, timeout=60, message="operator /readyz")

    def scrape(self, accept: str | None = None) -> str:
        headers = {"Accept": accept} if accept else {}
        response = requests.get(self.metrics_url, headers=headers, timeout=10)
        response.raise_for_status()
        return response.text

    def processor_pods(self) -> set[str]:
        """Pods whose series this replica's /metrics re-emits."""
        return {sample.labels["pod"] for family in text_string_to_metric_families(self.scrape())
                for sample in family.samples if "pod" in sample.labels}

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextmanager
def operator_replicas(workdir: Path, kubeconfig: Path, namespace: str, replicas: str) -> Iterator[list[Operator]]:
    """One operator process per letter of ``replicas``, each ready; all stopped on the way out."""
    started = [Operator(workdir, kubeconfig, namespace, replica) for replica in replicas]
    try:
        for replica in started:
            replica.wait_ready()
        yield started
    finally:
        for replica in started:
            replica.stop()


def create_dataflow(api_client: k8s.ApiClient, namespace: str, name: str, spec: dict[str, Any]) -> None:
    k8s.CustomObjectsApi(api_client).create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "DataFlow", "metadata": {"name": name}, "spec": spec})


def start_processor(workdir: Path, spec: dict[str, Any], *, dataflow: str, namespace: str, host: str) -> Processor:
    """A processor for ``dataflow`` listening where the operator scrapes a pod: ``host``:9090."""
    workdir.mkdir(parents=True, exist_ok=True)
    processor = Processor(workdir, spec, name=dataflow, namespace=namespace, host=host)
    processor.port = PROCESSOR_PORT
    return processor.start()


def register_pod(api_client: k8s.ApiClient, namespace: str, pod: str, dataflow: str, host: str) -> None:
    """The Pod object a kubelet would report for a Running, Ready processor of ``dataflow`` at ``host``."""
    create_pod(api_client, namespace, pod, resources.labels(dataflow), host)


# ------------------------------------------------------------------------------------------------
# Prometheus as the chart's ServiceMonitor configures it


class HonorLabelsPrometheus(PrometheusServer):
    """The peer's Prometheus with ``honor_labels: true`` on its scrape job, as the chart's ServiceMonitor
    sets (``serviceMonitor.honorLabels``): the operator re-emits series whose labels must win over
    the target's."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        config = yaml.safe_load(self.config_path.read_text())
        for job in config["scrape_configs"]:
            job["honor_labels"] = True
        self.config_path.write_text(yaml.safe_dump(config))


def honor_labels_prometheus(base_dirs: Callable[[], Path]) -> AbstractContextManager[PrometheusFactory]:
    """Like the ``prometheus`` fixture's factory (same arguments), but with honor_labels and usable from
    a module-scoped fixture; ``base_dirs`` hands out a fresh directory per server."""
    return prometheus_servers(base_dirs, HonorLabelsPrometheus)


def prometheus_config(server: PrometheusServer) -> dict[str, Any]:
    """The configuration the running server loaded (not the file: what it actually uses)."""
    response = requests.get(f"{server.url}/api/v1/status/config", timeout=10)
    response.raise_for_status()
    config: dict[str, Any] = yaml.safe_load(response.json()["data"]["yaml"])
    return config
