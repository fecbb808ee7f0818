"""Wiring of the control plane: API clients, informers, work queue and workers, leader election,
the metrics aggregator, the HTTP servers, signals and an orderly shutdown.

Start-up: start every informer (each fills its own cache, so the order does not matter), wait until
every cache is synced (``/readyz`` turns ready), then campaign for the lease; the leader runs the
workers. Shutdown (SIGTERM/SIGINT): stop the workers, release the lease, stop the
informers and the servers, exit 0.
"""

from __future__ import annotations

import copy
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import FrameType

from kubernetes import client as k8s
from kubernetes import config as k8s_config
from prometheus_client import CollectorRegistry

from ..contract import HEALTH_PROBE_PORT, METRICS_PORT
from ..observability.http import HttpServer
from . import kube, resources
from .aggregator import PodTarget, ProcessorMetricsAggregator, select_targets
from .controller import Controller
from .events import EventRecorder
from .informer import INACTIVITY_TIMEOUT, Informer
from .kube import KubeClient
from .leader import LEASE_DURATION, LEASE_NAME, RENEW_DEADLINE, RETRY_PERIOD, LeaderElector
from .listwatch import ApiListWatch
from .metrics import OperatorMetrics
from .metrics_endpoint import operator_metrics_app
from .reconciler import Caches, Reconciler, secret_references
from .status_count_publisher import DEFAULT_INTERVAL, StatusCountPublisher
from .store import IndexFunc, Obj, object_key
from .webhook.wiring import Webhook, WebhookOptions

log = logging.getLogger(__name__)

REFRESH_INTERVAL = 1.0  # seconds between credential refreshes (see _ThrottledRefresh)
# The DataFlow cache's index: "namespace/name" of a Secret -> the DataFlows that reference it.
SECRET_INDEX = "secrets"


@dataclass(frozen=True, slots=True)
class OperatorOptions:
    """Everything ``dataflow-operator run`` configures; durations in seconds."""

    kubeconfig: str | None = None            # else in-cluster, else $KUBECONFIG / ~/.kube/config
    namespace: str | None = None             # None: all namespaces
    workers: int = 4
    leader_elect: bool = True
    leader_election_namespace: str | None = None  # else $OPERATOR_NAMESPACE
    leader_election_id: str = LEASE_NAME
    lease_duration: int = LEASE_DURATION
    renew_deadline: int = RENEW_DEADLINE
    retry_period: int = RETRY_PERIOD
    metrics_bind_address: str = f":{METRICS_PORT}"
    health_probe_bind_address: str = f":{HEALTH_PROBE_PORT}"
    resync_period: float = 600.0
    aggregation_timeout: float = 5.0
    status_counts_interval: float = DEFAULT_INTERVAL  # least seconds between count writes per DataFlow
    watch_inactivity_timeout: float = INACTIVITY_TIMEOUT
    allow_cross_namespace_secrets: bool = False
    identity: str | None = None              # leader election identity; default hostname_uuid
    webhook: WebhookOptions | None = None    # None: no admission webhook


def load_configuration(kubeconfig: str | None) -> k8s.Configuration:
    configuration = k8s.Configuration()
    if kubeconfig:
        k8s_config.load_kube_config(config_file=kubeconfig,  # type: ignore[no-untyped-call]
                                    client_configuration=configuration)
        return configuration
    try:
        k8s_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    except k8s_config.ConfigException:
        k8s_config.load_kube_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    return configuration


def api_client(configuration: k8s.Configuration, pool_size: int) -> k8s.ApiClient:
    """A client with its own connection pool. urllib3 keeps ``connection_pool_maxsize`` connections
    per host and opens (then discards) extra ones beyond it - a fresh TLS handshake per request - so
    each group of threads gets a pool at least as large as the group."""
    own = copy.deepcopy(configuration)
    own.connection_pool_maxsize = pool_size
    hook: Callable[[k8s.Configuration], None] | None = own.refresh_api_key_hook
    if hook is not None:
        own.refresh_api_key_hook = _ThrottledRefresh(hook, REFRESH_INTERVAL)  # type: ignore[assignment]
    return k8s.ApiClient(own)


class _ThrottledRefresh:
    """The kubeconfig loader's credential hook runs before *every* request and re-assigns the host,
    which re-reads the proxy settings from the whole environment: a fifth of the operator's CPU per
    request. Credentials expire in minutes, so checking once a second is as good. The loader's hook
    also re-installs itself each time it runs; this wrapper puts itself back in front."""

    def __init__(self, hook: Callable[[k8s.Configuration], None], interval: float) -> None:
        self._hook = hook
        self._interval = interval
        self._last = float("-inf")
        self._lock = threading.Lock()

    def __call__(self, configuration: k8s.Configuration) -> None:
        with self._lock:
            now = time.monotonic()
            if now - self._last < self._interval:
                return
            self._last = now
        self._hook(configuration)
        # The client declares the attribute as None; it holds a callable whenever set.
        installed: Callable[[k8s.Configuration], None] | None = configuration.refresh_api_key_hook
        if installed is not None and installed is not self:
            self._hook = installed
            configuration.refresh_api_key_hook = self  # type: ignore[assignment]


def referenced_secrets(dataflow: Obj) -> list[str]:
    return [f"{namespace}/{name}" for namespace, name in secret_references(dataflow)]


class Manager:
    def __init__(self, options: OperatorOptions, *, environ: Mapping[str, str] | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 configuration: k8s.Configuration | None = None) -> None:
        environ = os.environ if environ is None else environ
        self.options = options
        configuration = configuration or load_configuration(options.kubeconfig)
        self.registry = CollectorRegistry()
        self.metrics = OperatorMetrics(self.registry)
        self.kube = KubeClient(api_client(configuration, options.workers + 4))
        self._watch_client = api_client(configuration, 12)
        self.informers = self._informers(KubeClient(self._watch_client))
        caches = Caches(*(self.informers[name].store for name in (
            "dataflows", "deployments", "secrets", "configmaps", "serviceaccounts", "roles", "rolebindings")))
        self.reconciler = Reconciler(self.kube, caches, EventRecorder(self.kube, clock=clock), self.metrics,
                                     resources.ProcessorSettings.from_environ(environ), clock=clock,
                                     allow_cross_namespace_secrets=options.allow_cross_namespace_secrets)
        # A reconcile still running when the lease is lost must end before a successor can start.
        self.controller = Controller(self.reconciler, workers=options.workers, metrics=self.metrics,
                                     keys=self.informers["dataflows"].store.list_keys, is_leader=self.is_leader,
                                     drain_timeout=max(1.0, options.lease_duration - options.renew_deadline))
        self.elector: LeaderElector | None = None
        if options.leader_elect:
            namespace = options.leader_election_namespace or environ.get("OPERATOR_NAMESPACE", "").strip()
            if not namespace:
                raise ValueError("leader election needs --leader-election-namespace or OPERATOR_NAMESPACE")
            self.elector = LeaderElector(
                api_client(configuration, 2), namespace=namespace, name=options.leader_election_id,
                identity=options.identity, lease_duration=options.lease_duration,
                renew_deadline=options.renew_deadline, retry_period=options.retry_period,
                on_started_leading=self.controller.start, on_stopped_leading=self.controller.stop)
        self._wire_handlers()
        dataflow_store = self.informers["dataflows"].store
        self.status_counts = StatusCountPublisher(
            patch_status=self.kube.patch_dataflow_status, dataflow=lambda key: dataflow_store.get("/".join(key)),
            dataflow_keys=self._dataflow_keys, is_leader=self.is_leader, refresh=self._refresh_counts,
            interval=options.status_counts_interval)
        # Not in the registry: /metrics writes the processors' families itself (metrics_endpoint.py).
        self.aggregator = ProcessorMetricsAggregator(pods=self._scrape_targets, is_leader=self.is_leader,
                                                     timeout=options.aggregation_timeout,
                                                     on_scraped=self.status_counts.observe)
        self._servers: list[HttpServer] = []
        self._stopped = threading.Event()
        self._status_counts_thread = threading.Thread(target=self.status_counts.run, args=(self._stopped,),
                                                      name="status-counts", daemon=True)
        # The admission webhook serves on every replica, leader or not: the API server calls any of them.
        self.webhook = Webhook(options.webhook, KubeClient(api_client(configuration, 2)), environ) \
            if options.webhook is not None else None

    # ---------------------------------------------------------------------------------------------
    # informers and their handlers

    def _informers(self, watch_kube: KubeClient) -> dict[str, Informer]:
        options = self.options

        def informer(name: str, kind: kube.Kind | None, *, selector: str | None = None, resync: float = 0.0,
                     indexers: Mapping[str, IndexFunc] | None = None) -> Informer:
            function, args = watch_kube.list_function(kind, options.namespace)
            return Informer(name, ApiListWatch(function, args, label_selector=selector), resync_period=resync,
                            inactivity_timeout=options.watch_inactivity_timeout, indexers=indexers)

        owned = resources.SELECTOR
        return {
            "dataflows": informer("dataflows", None, resync=options.resync_period,
                                  indexers={SECRET_INDEX: referenced_secrets}),
            "deployments": informer("deployments", kube.DEPLOYMENT, selector=owned),
            "pods": informer("pods", kube.POD, selector=owned),
            # Any Secret may be referenced, including one no DataFlow references yet: all are cached.
            "secrets": informer("secrets", kube.SECRET),
            "configmaps": informer("configmaps", kube.CONFIG_MAP, selector=owned),
            "serviceaccounts": informer("serviceaccounts", kube.SERVICE_ACCOUNT, selector=owned),
            "roles": informer("roles", kube.ROLE, selector=owned),
            "rolebindings": informer("rolebindings", kube.ROLE_BINDING, selector=owned),
        }

    def _wire_handlers(self) -> None:
        enqueue = self.controller.enqueue

        def dataflow_changed(obj: Obj) -> None:
            enqueue(object_key(obj))

        def dataflow_updated(old: Obj, new: Obj) -> None:
            # The operator's own status writes come back as updates; reconciling them again would only
            # repeat the last outcome (and its log line). Resyncs pass the same object twice.
            if old is new or not _status_only_change(old, new):
                dataflow_changed(new)

        self.informers["dataflows"].add_handler(dataflow_changed, dataflow_updated, dataflow_changed)

        def owner_of(obj: Obj) -> None:
            owner = resources.controller_owner(obj)
            if owner is not None:
                enqueue(owner)

        for name in ("deployments", "serviceaccounts", "roles", "rolebindings"):
            self.informers[name].add_handler(owner_of, lambda _old, new: owner_of(new), owner_of)

        def config_map_updated(old: Obj, new: Obj) -> None:
            # The processor rewrites its checkpoint every few seconds; only changes to what the operator
            # sets (labels, owner) matter here.
            if _owned_metadata(old) != _owned_metadata(new):
                owner_of(new)

        self.informers["configmaps"].add_handler(owner_of, config_map_updated, owner_of)

        dataflows = self.informers["dataflows"].store

        def secret_event(secret: Obj) -> None:
            owner_of(secret)
            for key in dataflows.by_index(SECRET_INDEX, object_key(secret)):
                enqueue(key)

        self.informers["secrets"].add_handler(secret_event, lambda _old, new: secret_event(new), secret_event)

    def _refresh_counts(self) -> None:
        self.aggregator.refresh()

    def _dataflow_keys(self) -> set[tuple[str, str]]:
        return {(obj["metadata"]["namespace"], obj["metadata"]["name"])
                for obj in self.informers["dataflows"].store.objects()}

    def _scrape_targets(self) -> list[PodTarget]:
        return select_targets(self.informers["pods"].store.objects(), self._dataflow_keys())

    # ---------------------------------------------------------------------------------------------
    # leadership

    def is_leader(self) -> bool:
        return self.elector.is_leader() if self.elector is not None else self.controller.running()

    # ---------------------------------------------------------------------------------------------
    # probes

    def synced(self) -> tuple[bool, str]:
        pending = [name for name, informer in self.informers.items() if not informer.has_synced()]
        return (not pending, "ok" if not pending else "caches not synced: " + ", ".join(pending))

    def healthy(self) -> tuple[bool, str]:
        dead = [name for name, informer in self.informers.items()
                if informer.has_synced() and not informer.alive()]
        return (not dead, "ok" if not dead else "informer threads stopped: " + ", ".join(dead))

    # ---------------------------------------------------------------------------------------------
    # lifecycle

    def start(self, sync_timeout: float | None = None) -> bool:
        """Serve, fill the caches, then lead or campaign. False if the caches did not sync in time."""
        options = self.options
        # One at a time, so that stop() closes the first when the second cannot bind.
        self._servers.append(HttpServer(options.metrics_bind_address, probes={}, default_port=METRICS_PORT,
                                        metrics_app=operator_metrics_app(self.registry, self.aggregator)).start())
        self._servers.append(HttpServer(options.health_probe_bind_address, registry=None,
                                        default_port=HEALTH_PROBE_PORT,
                                        probes={"/healthz": self.healthy, "/readyz": self.synced}).start())
        if self.webhook is not None:
            self.webhook.start()
        for informer in self.informers.values():
            informer.start()
        for informer in self.informers.values():
            if not self._wait(informer.wait_for_sync, sync_timeout):
                return False
        log.info("caches synced", extra={"objects": {n: len(i.store) for n, i in self.informers.items()}})
        if self.elector is not None:
            self.elector.start()
        else:
            self.controller.start()
        self._status_counts_thread.start()
        return True

    def _wait(self, wait: Callable[[float | None], bool], timeout: float | None) -> bool:
        # Polled in short steps so that a stop request during start-up is honoured.
        waited = 0.0
        while not self._stopped.is_set():
            if wait(0.2):
                return True
            waited += 0.2
            if timeout is not None and waited >= timeout:
                return False
        return False

    @property
    def metrics_port(self) -> int:
        return self._servers[0].port

    @property
    def health_port(self) -> int:
        return self._servers[1].port

    def stop(self) -> None:
        """Workers first (they write), then the lease, the watches and the servers."""
        self._stopped.set()
        if self.elector is not None:
            self.elector.stop()  # stops the workers (on_stopped_leading) and releases the lease
        self.controller.stop()
        for informer in self.informers.values():
            informer.stop()
        if self._status_counts_thread.is_alive():
            self._status_counts_thread.join(timeout=5)
        self.aggregator.close()
        for server in self._servers:
            server.stop()
        if self.webhook is not None:
            self.webhook.stop()
        log.info("operator stopped")


def _owned_metadata(obj: Obj) -> tuple[object, object]:
    metadata = obj.get("metadata") or {}
    return metadata.get("labels"), metadata.get("ownerReferences")


_VOLATILE_METADATA = ("resourceVersion", "managedFields")


def _status_only_change(old: Obj, new: Obj) -> bool:
    """Nothing but ``status`` (and the bookkeeping every write bumps) differs."""
    def rest(obj: Obj) -> tuple[object, object]:
        metadata = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in _VOLATILE_METADATA}
        return metadata, {k: v for k, v in obj.items() if k not in ("metadata", "status")}

    return rest(old) == rest(new)


def run_operator(options: OperatorOptions) -> int:
    """Run until SIGTERM or SIGINT; 0 after a clean shutdown, 1 when start-up failed."""
    stop = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        log.info("stopping", extra={"signal": signal.Signals(signum).name})
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, request_stop)
    try:
        manager = Manager(options)
    except (ValueError, k8s_config.ConfigException) as exc:
        log.error("cannot start the operator", extra={"error": str(exc)})
        return 1
    try:
        manager.start()
    except OSError as exc:  # e.g. a bind address in use
        log.error("cannot start the operator", extra={"error": str(exc)})
        manager.stop()
        return 1
    try:
        stop.wait()
    finally:
        manager.stop()
    return 0
