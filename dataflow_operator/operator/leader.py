"""Leader election on the official client's ``kubernetes.leaderelection`` and its ``LeaseLock``.

The library's core - ``LeaderElection.try_acquire_or_renew`` with ``LeaseLock`` on a
``coordination.k8s.io/v1`` Lease - is used as it is. Wrapped where it falls short (client 37.0):

- ``LeaseLock`` builds its own ``CoordinationV1Api()`` on the *default* client configuration and
  calls it without a timeout: it gets the operator's client instead, through an adapter that adds a
  request timeout, so a hung renewal fails before the lease could expire under a leader that
  still believes it leads.
- ``try_acquire_or_renew`` only catches ``ApiException``; a refused connection (an API server
  restart) escapes and kills the election thread. Every attempt here is guarded.
- ``acquire`` and ``renew_loop`` sleep with ``time.sleep`` and loop forever: there is no way to stop
  a candidate, nor to step down. They are replaced by loops that wait on a stop Event.
- Nothing releases the lease on shutdown, so a successor would wait a whole lease duration: the
  holder identity is cleared on a clean stop, as client-go's ``ReleaseOnCancel`` does.
- ``Config`` calls ``sys.exit`` on bad timings, and a float lease duration breaks the record
  (``int("15.0")``): timings are validated here and passed as whole seconds.
- ``is_leader()`` is thread-safe and turns false as soon as renewals have failed for the renew
  deadline, for the workers and the metrics aggregator, even before the loop gives up.

After losing the lease the elector stops the work (``on_stopped_leading``) and becomes a candidate
again, rather than exiting: the informers' caches stay warm and no restart is needed.
"""

from __future__ import annotations

import logging
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from kubernetes import client as k8s
from kubernetes.leaderelection import electionconfig, leaderelection
from kubernetes.leaderelection.resourcelock.leaselock import LeaseLock

from .kube import KubeError, error_text

log = logging.getLogger(__name__)
# The library logs every attempt at INFO - a line every retry period on each follower. This module logs
# the transitions that matter; the library's own lines stay available at an explicitly chosen level.
_library_log = logging.getLogger("leaderelection")
if _library_log.level == logging.NOTSET:
    _library_log.setLevel(logging.WARNING)

LEASE_NAME = "dataflow-operator.dataflow.io"
LEASE_DURATION, RENEW_DEADLINE, RETRY_PERIOD = 15, 10, 2  # seconds, client-go's defaults


def default_identity() -> str:
    return f"{socket.gethostname()}_{uuid.uuid4()}"


class _TimeoutLeaseApi:
    """The three calls LeaseLock makes, with a request timeout."""

    def __init__(self, api_client: k8s.ApiClient, timeout: float) -> None:
        self._api = k8s.CoordinationV1Api(api_client)
        self._timeout = timeout

    def read_namespaced_lease(self, name: str, namespace: str) -> Any:
        return self._api.read_namespaced_lease(name, namespace, _request_timeout=self._timeout)

    def create_namespaced_lease(self, namespace: str, body: Any) -> Any:
        return self._api.create_namespaced_lease(namespace, body, _request_timeout=self._timeout)

    def replace_namespaced_lease(self, name: str, namespace: str, body: Any) -> Any:
        return self._api.replace_namespaced_lease(name=name, namespace=namespace, body=body,
                                                  _request_timeout=self._timeout)


class _Election(leaderelection.LeaderElection):
    """The library's election with stop-aware loops; ``try_acquire_or_renew`` is inherited."""

    def __init__(self, config: electionconfig.Config, stop: threading.Event,
                 on_renewed: Callable[[], None]) -> None:
        super().__init__(config)  # type: ignore[no-untyped-call]
        self._stop = stop
        self._on_renewed = on_renewed

    def attempt(self) -> bool:
        try:
            succeeded = bool(self.try_acquire_or_renew())  # type: ignore[no-untyped-call]
        except Exception as exc:
            log.warning("leader election attempt failed", extra={"error": str(exc)})
            return False
        if succeeded:
            self._on_renewed()
        return succeeded

    def acquire(self) -> bool:
        retry = self.election_config.retry_period
        while not self._stop.is_set():
            if self.attempt():
                return True
            self._stop.wait(retry * random.uniform(1.0, 1.2))  # client-go's jitter factor
        return False

    def renew_loop(self, leading_failed: threading.Event | None = None) -> None:
        config = self.election_config
        while not self._stop.is_set():
            deadline = time.monotonic() + config.renew_deadline
            while not self.attempt():
                if self._stop.is_set() or time.monotonic() + config.retry_period >= deadline:
                    return
                self._stop.wait(config.retry_period)
            self._stop.wait(config.retry_period)


class LeaderElector:
    def __init__(self, api_client: k8s.ApiClient, *, namespace: str, on_started_leading: Callable[[], None],
                 on_stopped_leading: Callable[[], None], name: str = LEASE_NAME, identity: str | None = None,
                 lease_duration: int = LEASE_DURATION, renew_deadline: int = RENEW_DEADLINE,
                 retry_period: int = RETRY_PERIOD) -> None:
        if not (retry_period >= 1 and 1.2 * retry_period < renew_deadline < lease_duration):
            raise ValueError("leader election timings need 1 <= retry_period, "
                             "1.2 * retry_period < renew_deadline < lease_duration")
        self.namespace = namespace
        self.name = name
        self.identity = identity or default_identity()
        self.lease_duration, self.renew_deadline, self.retry_period = lease_duration, renew_deadline, retry_period
        self._on_started = on_started_leading
        self._on_stopped = on_stopped_leading
        # Each attempt must fail well within the slack between renew deadline and lease expiry.
        self._api = _TimeoutLeaseApi(api_client, max(1.0, (lease_duration - renew_deadline) / 2))
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._leading = False
        self._last_renewal = float("-inf")
        self._thread: threading.Thread | None = None

    def is_leader(self) -> bool:
        with self._lock:
            return self._leading and time.monotonic() - self._last_renewal < self.renew_deadline

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="leader-election", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop campaigning; when leading, stop the work and release the lease first."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _renewed(self) -> None:
        with self._lock:
            self._last_renewal = time.monotonic()

    def _election(self) -> _Election:
        # The library is untyped; the adapter duck-types the three CoordinationV1Api calls LeaseLock makes.
        lock = LeaseLock(self.name, self.namespace, self.identity)  # type: ignore[no-untyped-call]
        lock.api_instance = self._api  # type: ignore[assignment]
        config = electionconfig.Config(  # type: ignore[no-untyped-call]
            lock, self.lease_duration, self.renew_deadline, self.retry_period,
            onstarted_leading=lambda: None, onstopped_leading=lambda: None)
        return _Election(config, self._stop, self._renewed)

    def _run(self) -> None:
        while not self._stop.is_set():
            election = self._election()
            if not election.acquire():
                return
            log.info("became leader",
                     extra={"identity": self.identity, "lease": f"{self.namespace}/{self.name}"})
            with self._lock:
                self._leading = True
            try:
                self._on_started()
                election.renew_loop()
            except Exception:
                log.exception("starting the leader's work failed; stepping down")
                self._stop.wait(self.retry_period)
            finally:
                with self._lock:
                    self._leading = False
                self._on_stopped()
            if self._stop.is_set():
                self._release()
                return
            log.warning("lost the leader lease; work stopped, campaigning again",
                        extra={"identity": self.identity})

    def _release(self) -> None:
        """Clear the holder so that a successor takes over at its next retry, not after the lease."""
        try:
            lease = self._api.read_namespaced_lease(self.name, self.namespace)
            if lease.spec is None or lease.spec.holder_identity != self.identity:
                return
            now = datetime.now(UTC)
            lease.spec.holder_identity = None
            lease.spec.lease_duration_seconds = 1
            lease.spec.acquire_time = now
            lease.spec.renew_time = now
            self._api.replace_namespaced_lease(self.name, self.namespace, lease)
            log.info("released the leader lease", extra={"identity": self.identity})
        except KubeError as exc:
            log.warning("could not release the leader lease", extra={"error": error_text(exc)})
