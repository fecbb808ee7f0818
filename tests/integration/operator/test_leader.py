"""The LeaderElector wrapper on a real Lease: one leader, release on stop (a successor takes over well
before the lease would expire), and an election thread that survives an API server restart."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client as k8s

from dataflow_operator.operator.leader import LEASE_NAME, LeaderElector
from tests.peers.kube import create_namespace
from tests.processes import wait_for

LEASE_DURATION, RENEW_DEADLINE, RETRY_PERIOD = 8, 5, 1


class Candidate:
    def __init__(self, api: k8s.ApiClient, namespace: str, identity: str) -> None:
        self.started = 0
        self.stopped = 0
        self.lock = threading.Lock()
        self.elector = LeaderElector(api, namespace=namespace, identity=identity, on_started_leading=self._start,
                                     on_stopped_leading=self._stop, lease_duration=LEASE_DURATION,
                                     renew_deadline=RENEW_DEADLINE, retry_period=RETRY_PERIOD)

    def _start(self) -> None:
        with self.lock:
            self.started += 1

    def _stop(self) -> None:
        with self.lock:
            self.stopped += 1


@pytest.fixture
def candidates(cluster: Any) -> Iterator[tuple[str, list[Candidate]]]:
    namespace = f"lease-{uuid.uuid4().hex[:6]}"
    with cluster.api_client() as admin:
        create_namespace(admin, namespace)
    clients = [cluster.api_client() for _ in range(2)]
    try:
        yield namespace, [Candidate(client, namespace, f"candidate-{index}") for index, client in enumerate(clients)]
    finally:
        for client in clients:
            client.close()


def holder(api: k8s.ApiClient, namespace: str) -> str | None:
    return k8s.CoordinationV1Api(api).read_namespaced_lease(LEASE_NAME, namespace).spec.holder_identity  # type: ignore[no-any-return]


def test_one_leader_and_release_on_stop(admin: k8s.ApiClient, candidates: tuple[str, list[Candidate]]) -> None:
    namespace, (first, second) = candidates
    first.elector.start()
    wait_for(first.elector.is_leader, timeout=10, message="first leads")
    second.elector.start()
    try:
        time.sleep(RETRY_PERIOD * 3)  # several of the follower's attempts: it must stay a follower
        assert not second.elector.is_leader() and second.started == 0
        assert holder(admin, namespace) == "candidate-0"

        stopped_at = time.monotonic()
        first.elector.stop()
        assert first.stopped == 1 and not first.elector.is_leader()
        wait_for(second.elector.is_leader, timeout=LEASE_DURATION, interval=0.05, message="second takes over")
        assert time.monotonic() - stopped_at < LEASE_DURATION - 2, "released: no wait for the lease to expire"
        assert holder(admin, namespace) == "candidate-1"
    finally:
        first.elector.stop()
        second.elector.stop()
    assert holder(admin, namespace) is None


def test_election_survives_an_api_server_restart(cluster: Any, admin: k8s.ApiClient,
                                                 candidates: tuple[str, list[Candidate]]) -> None:
    namespace, (candidate, _) = candidates
    candidate.elector.start()
    try:
        wait_for(candidate.elector.is_leader, timeout=10, message="leads")
        cluster.restart()  # renewals fail with refused connections, which the library lets escape
        wait_for(lambda: candidate.elector.is_leader() and holder(admin, namespace) == "candidate-0", timeout=60,
                 message="leading again after the restart")
        thread = candidate.elector._thread
        assert thread is not None and thread.is_alive()
        assert candidate.started == candidate.stopped + 1
    finally:
        candidate.elector.stop()
