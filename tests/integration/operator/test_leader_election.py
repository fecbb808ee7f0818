"""Two operator processes under the chart's RBAC: one leads; killing it hands over within the lease
duration + 5 s; no DataFlow is ever written by both; a clean stop releases the lease at once."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from kubernetes import client as k8s

from tests.integration.operator.conftest import (
    ENV,
    KAFKA_TO_POSTGRES,
    WRITE_VERBS,
    audit_entries,
    bind_chart_rbac,
    create_dataflow,
    create_secret,
    operator_command,
    patch_dataflow,
    spec_document,
    wait_phase,
)
from tests.processes import free_port, wait_for

LEASE = "dataflow-operator.dataflow.io"
LEASE_DURATION = 8


class OperatorProcess:
    def __init__(self, cluster: Any, log_dir: Path, *, user: str, identity: str, namespace: str,
                 lease_namespace: str) -> None:
        self.user, self.identity = user, identity
        self.health_port = free_port()
        options = {"kubeconfig": str(cluster.kubeconfig_for(user)), "namespace": namespace, "workers": 2,
                   "leader_election_namespace": lease_namespace, "identity": identity,
                   "lease_duration": LEASE_DURATION, "renew_deadline": 5, "retry_period": 1,
                   "metrics_bind_address": f"127.0.0.1:{free_port()}",
                   "health_probe_bind_address": f"127.0.0.1:{self.health_port}"}
        self.log = log_dir / f"{identity}.log"
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(operator_command(options), stdout=log, stderr=subprocess.STDOUT,
                                            env={**os.environ, **ENV})

    def ready(self) -> bool:
        assert self.process.poll() is None, f"{self.identity} exited:\n{self.log.read_text()[-3000:]}"
        try:
            return requests.get(f"http://127.0.0.1:{self.health_port}/readyz", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def stop(self, sig: int) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout=30)


Launch = Callable[..., OperatorProcess]


@pytest.fixture
def launch(cluster: Any, tmp_path: Path) -> Iterator[Launch]:
    started: list[OperatorProcess] = []

    def start(**options: str) -> OperatorProcess:
        operator = OperatorProcess(cluster, tmp_path, **options)
        started.append(operator)
        return operator

    yield start
    for operator in started:
        operator.stop(signal.SIGKILL)


def holder(api: k8s.ApiClient, lease_namespace: str) -> str | None:
    try:
        lease = k8s.CoordinationV1Api(api).read_namespaced_lease(LEASE, lease_namespace)
    except k8s.ApiException:
        return None
    return lease.spec.holder_identity  # type: ignore[no-any-return]


def writes_in(cluster: Any, namespace: str, user: str) -> list[datetime]:
    return [datetime.fromisoformat(entry["requestReceivedTimestamp"]) for entry in audit_entries(cluster)
            if entry["user"]["username"] == user and entry["verb"] in WRITE_VERBS
            and entry.get("objectRef", {}).get("namespace") == namespace]


def test_one_leader_handover_on_kill_and_release_on_stop(cluster: Any, admin: k8s.ApiClient, namespace: str,
                                                         helm: Path, launch: Launch) -> None:
    lease_namespace = f"dataflow-system-{uuid.uuid4().hex[:6]}"
    for user in ("operator", "operator-2"):
        bind_chart_rbac(admin, helm, user, lease_namespace)
    create_secret(admin, namespace, "pg", {"dsn": "postgresql://db/orders"})

    first = launch(user="operator", identity="operator-a", namespace=namespace, lease_namespace=lease_namespace)
    wait_for(first.ready, timeout=60, message="first operator ready")
    wait_for(lambda: holder(admin, lease_namespace) == "operator-a", timeout=30, message="first operator leads")
    second = launch(user="operator-2", identity="operator-b", namespace=namespace, lease_namespace=lease_namespace)
    wait_for(second.ready, timeout=60, message="second operator ready")

    names = [f"flow-{index}" for index in range(10)]
    for name in names:
        create_dataflow(admin, namespace, name, KAFKA_TO_POSTGRES)
    for name in names:
        wait_phase(admin, namespace, name, "Pending")
    assert holder(admin, lease_namespace) == "operator-a"
    assert writes_in(cluster, namespace, "operator-2") == [], "a follower must not write"

    first.stop(signal.SIGKILL)
    killed = time.monotonic()
    wait_for(lambda: holder(admin, lease_namespace) == "operator-b", timeout=LEASE_DURATION + 5,
             interval=0.1, message="second operator takes over")
    handover = time.monotonic() - killed
    assert handover <= LEASE_DURATION + 5

    patch_dataflow(admin, namespace, names[0], {"spec": {"source": {"config": {"topic": "after-handover"}}}})
    create_dataflow(admin, namespace, "late", KAFKA_TO_POSTGRES)
    wait_phase(admin, namespace, "late", "Pending")
    wait_for(lambda: spec_document(admin, namespace, names[0])["source"]["config"]["topic"] == "after-handover",
             message="the new leader reconciles")
    first_writes = writes_in(cluster, namespace, "operator")
    second_writes = writes_in(cluster, namespace, "operator-2")
    assert first_writes and second_writes
    assert max(first_writes) < min(second_writes), "both operators wrote in the same period"

    # A clean stop releases the lease instead of letting it run out.
    assert second.stop(signal.SIGTERM) == 0
    assert holder(admin, lease_namespace) is None, second.log.read_text()[-2000:]
