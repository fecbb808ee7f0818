"""What the journey test does as a user would: helm, kubectl-like reads of the cluster, a Kafka producer
and a PostgreSQL client on the peers the pods use. Everything waits by polling a condition."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import psycopg
from confluent_kafka import Consumer, Producer
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from tests.deploy.monitoring_helpers import load_dashboard, query_panels, substitute_variables
from tests.peers.process import wait_until
from tests.peers.prometheus import PrometheusServer

T = TypeVar("T")

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "dataflow-operator"
RELEASE = "dataflow-operator"
OPERATOR_NAMESPACE = "dataflow-system"
GROUP, VERSION, PLURAL = "dataflow.dataflow.io", "v1", "dataflows"
LEASE = "dataflow-operator.dataflow.io"
# Pods start in seconds here, but the first image unpack and a 2-core machine shared with a JVM are slow.
POD_DEADLINE_S = 180.0
DATA_DEADLINE_S = 120.0


def wait_for(check: Callable[[], T | None], what: str, deadline_s: float = POD_DEADLINE_S) -> T:
    """Poll until `check` returns something truthy; a 404 (not created yet) counts as "not yet"."""
    def guarded() -> T | None:
        try:
            return check()
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
    return wait_until(guarded, deadline_s=deadline_s, what=what, retry_on=())


@dataclass(frozen=True)
class Helm:
    binary: Path
    kubeconfig: Path

    def __call__(self, *args: str) -> str:
        result = subprocess.run([str(self.binary), f"--kubeconfig={self.kubeconfig}", *args],
                                capture_output=True, text=True, check=False, timeout=300)
        if result.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} exited with {result.returncode}:\n{result.stderr}")
        return result.stdout


def pod_ready(pod: k8s.V1Pod) -> bool:
    conditions = (pod.status.conditions if pod.status else None) or []
    return pod.metadata.deletion_timestamp is None and any(
        c.type == "Ready" and c.status == "True" for c in conditions)


def ready_pods(core: k8s.CoreV1Api, namespace: str, selector: str) -> list[k8s.V1Pod]:
    return [pod for pod in core.list_namespaced_pod(namespace, label_selector=selector).items if pod_ready(pod)]


def lease_holder(coordination: k8s.CoordinationV1Api) -> str | None:
    lease = coordination.read_namespaced_lease(LEASE, OPERATOR_NAMESPACE)
    return lease.spec.holder_identity if lease.spec else None


def pod_log(log_dir: Path, namespace: str, pod: str) -> str:
    """The kubelet's log files of a pod (every container, every restart): the API server here has no
    client certificate for the kubelet, so `kubectl logs` cannot be used."""
    texts = [path.read_text(errors="replace") for path in sorted(log_dir.glob(f"{namespace}_{pod}_*/*/*.log"))]
    return "\n".join(texts) or "(no log)"


def produce(bootstrap: str, topic: str, payloads: Sequence[bytes]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for payload in payloads:
        producer.produce(topic, payload)
    remaining = producer.flush(30)
    assert remaining == 0, f"{remaining} messages not delivered to {topic}"


def consume_all(bootstrap: str, topic: str, expected: int, deadline_s: float = DATA_DEADLINE_S) -> list[bytes]:
    """The messages of `topic`, read from the start until `expected` are there or the deadline passes,
    then polled once more, so that a message too many is seen too. The caller asserts on the count."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"journey-reader-{uuid.uuid4().hex}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    seen: list[bytes] = []
    deadline = time.monotonic() + deadline_s
    try:
        while len(seen) < expected and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                seen.append(message.value() or b"")
        while (message := consumer.poll(2.0)) is not None:
            if message.error() is None:
                seen.append(message.value() or b"")
    finally:
        consumer.close()
    return seen


def rows(dsn: str, query: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return list(conn.execute(query).fetchall())


def dataflow_manifest(name: str, namespace: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "DataFlow",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def as_json(value: object) -> bytes:
    return json.dumps(value).encode()


def dashboard_queries(namespace: str, rate_window: str) -> dict[str, str]:
    """Every panel target as Grafana sends it with `namespace` selected and every DataFlow ("All")."""
    variables = {"namespace": namespace, "dataflow": ".*", "interval": rate_window}
    return {f"{panel['title']} [{target['refId']}]": substitute_variables(target["expr"], variables)
            for panel in query_panels(load_dashboard()) for target in panel["targets"]}


def empty_queries(server: PrometheusServer, queries: dict[str, str], deadline_s: float = DATA_DEADLINE_S) -> list[str]:
    """The keys of the queries still without a result when the deadline passes (polled in one loop)."""
    pending = dict(queries)
    deadline = time.monotonic() + deadline_s
    while pending and time.monotonic() < deadline:
        pending = {key: query for key, query in pending.items() if not server.query(query)}
        if pending:
            time.sleep(1)
    return list(pending)
