"""The operator against a real kube-apiserver: CRD from the chart, a namespace per test, the operator
run in-process (or as processes, see ``operator_process``) with identities bound to the chart's RBAC."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from dataflow_operator.operator.manager import Manager, OperatorOptions, load_configuration
from tests.peers.kube import create_namespace
from tests.processes import wait_for

REPO = Path(__file__).resolve().parents[3]
CHART = REPO / "helm" / "dataflow-operator"
CRD = CHART / "files" / "crds" / "dataflow.dataflow.io_dataflows.yaml"
GROUP, VERSION, PLURAL = "dataflow.dataflow.io", "v1", "dataflows"
PROCESSOR_IMAGE = "registry.example/dataflow-operator:1.2.3"
ENV = {"PROCESSOR_IMAGE": PROCESSOR_IMAGE, "PROCESSOR_LOG_LEVEL": "debug",
       "PROCESSOR_PROGRESS_TIMEOUT_SECONDS": "1800", "SENTRY_DSN": "https://key@sentry.example/1",
       "SENTRY_ENVIRONMENT": "test", "OPERATOR_NAMESPACE": "dataflow-system", "UNRELATED": "x"}

KAFKA_TO_POSTGRES: dict[str, Any] = {
    "source": {"type": "kafka", "config": {"brokers": ["kafka:9092"], "topic": "orders", "consumerGroup": "g"}},
    "sink": {"type": "postgresql", "config": {"connectionStringSecretRef": {"name": "pg", "key": "dsn"},
                                              "table": "orders"}},
}


@pytest.fixture(scope="session")
def cluster(kube_apiserver: Any) -> Any:
    kube_apiserver.install_crds(CRD)
    return kube_apiserver


@pytest.fixture(scope="session")
def admin(cluster: Any) -> Iterator[k8s.ApiClient]:
    with cluster.api_client() as api_client:
        yield api_client


@pytest.fixture
def namespace(admin: k8s.ApiClient) -> str:
    name = f"op-{uuid.uuid4().hex[:8]}"
    create_namespace(admin, name)
    return name


class ShiftedClock:
    """Real time moved by ``offset``: a reconcile requeued for a boundary wakes when the shifted time
    reaches it, so windows are exercised without waiting hours (or sleeping at all)."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def set(self, instant: datetime) -> None:
        self.offset = instant - datetime.now(UTC)


@dataclass
class Operators:
    cluster: Any
    started: list[Manager] = field(default_factory=list)

    def start(self, namespace: str | None, *, kubeconfig: Path | None = None, clock: Callable[[], datetime] | None = None,
              environ: dict[str, str] | None = None, **options: Any) -> Manager:
        defaults: dict[str, Any] = {"namespace": namespace, "workers": 2, "leader_elect": False,
                                    "metrics_bind_address": "127.0.0.1:0", "health_probe_bind_address": "127.0.0.1:0"}
        opts = OperatorOptions(kubeconfig=str(kubeconfig or self.cluster.admin_kubeconfig), **{**defaults, **options})
        kwargs: dict[str, Any] = {"environ": ENV if environ is None else environ}
        if clock is not None:
            kwargs["clock"] = clock
        manager = Manager(opts, **kwargs)
        self.started.append(manager)
        assert manager.start(sync_timeout=30), "operator caches did not sync"
        return manager

    def stop_all(self) -> None:
        while self.started:
            self.started.pop().stop()


@pytest.fixture
def operators(cluster: Any) -> Iterator[Operators]:
    running = Operators(cluster)
    try:
        yield running
    finally:
        running.stop_all()


# --------------------------------------------------------------------------------------------------
# objects


def dataflow_body(name: str, spec: dict[str, Any], annotations: dict[str, str] | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if annotations:
        metadata["annotations"] = annotations
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "DataFlow", "metadata": metadata, "spec": spec}


def create_dataflow(api: k8s.ApiClient, namespace: str, name: str, spec: dict[str, Any],
                    annotations: dict[str, str] | None = None) -> dict[str, Any]:
    result: dict[str, Any] = k8s.CustomObjectsApi(api).create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, dataflow_body(name, spec, annotations))
    return result


def get_dataflow(api: k8s.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    result: dict[str, Any] = k8s.CustomObjectsApi(api).get_namespaced_custom_object(GROUP, VERSION, namespace,
                                                                                     PLURAL, name)
    return result


def patch_dataflow(api: k8s.ApiClient, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = k8s.CustomObjectsApi(api).patch_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, name, patch, _content_type="application/merge-patch+json")
    return result


def delete_dataflow(api: k8s.ApiClient, namespace: str, name: str) -> None:
    k8s.CustomObjectsApi(api).delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)


def create_secret(api: k8s.ApiClient, namespace: str, name: str, data: dict[str, str]) -> None:
    k8s.CoreV1Api(api).create_namespaced_secret(namespace, {"metadata": {"name": name}, "stringData": data})


def raw(api: k8s.ApiClient, path: str) -> dict[str, Any] | None:
    """GET an API path as JSON (None on 404): objects compared field by field in wire form."""
    method, url, headers, _body, _post = api.param_serialize("GET", path, header_params={"Accept": "application/json"},
                                                            auth_settings=["BearerToken"])
    response = api.call_api(method, url, header_params=headers, _request_timeout=10)
    response.read()
    if response.status == 404:
        return None
    assert response.status == 200, response.data
    result: dict[str, Any] = json.loads(response.data)
    return result


def spec_document(api: k8s.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    """The ``spec.json`` the operator stored for a DataFlow, decoded."""
    secret = raw(api, f"/api/v1/namespaces/{namespace}/secrets/df-{name}-spec")
    assert secret is not None
    decoded: dict[str, Any] = json.loads(base64.b64decode(secret["data"]["spec.json"]))
    return decoded


def deployment(api: k8s.ApiClient, namespace: str, name: str) -> dict[str, Any] | None:
    return raw(api, f"/apis/apps/v1/namespaces/{namespace}/deployments/df-{name}")


def wait_status(api: k8s.ApiClient, namespace: str, name: str, predicate: Callable[[dict[str, Any]], bool], *,
                timeout: float = 30, message: str = "status") -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        obj = get_dataflow(api, namespace, name)
        return obj if predicate(obj.get("status") or {}) else None

    return wait_for(check, timeout=timeout, message=f"{namespace}/{name} {message}")


def wait_phase(api: k8s.ApiClient, namespace: str, name: str, phase: str, timeout: float = 30) -> dict[str, Any]:
    return wait_status(api, namespace, name, lambda status: status.get("phase") == phase, timeout=timeout,
                       message=f"phase {phase}")


def set_deployment_ready(api: k8s.ApiClient, namespace: str, name: str, ready: int) -> None:
    """What the deployment controller would report (there is none in the test cluster)."""
    body = {"status": {"replicas": ready, "readyReplicas": ready, "availableReplicas": ready,
                       "updatedReplicas": ready, "observedGeneration": 1}}
    k8s.AppsV1Api(api).patch_namespaced_deployment_status(f"df-{name}", namespace, body,
                                                          _content_type="application/merge-patch+json")


def events_for(api: k8s.ApiClient, namespace: str, name: str) -> list[Any]:
    events = k8s.CoreV1Api(api).list_namespaced_event(
        namespace, field_selector=f"involvedObject.kind=DataFlow,involvedObject.name={name}")
    return list(events.items)


# --------------------------------------------------------------------------------------------------
# RBAC from the chart


def chart_rbac(helm: Path, release_namespace: str) -> list[dict[str, Any]]:
    """The chart's RBAC documents, rendered by helm exactly as an install would."""
    output = subprocess.run([str(helm), "template", "dataflow-operator", str(CHART), "--namespace", release_namespace,
                             "--show-only", "templates/rbac.yaml"], check=True, capture_output=True, text=True).stdout
    return [document for document in yaml.safe_load_all(output) if document]


def bind_chart_rbac(api: k8s.ApiClient, helm: Path, user: str, lease_namespace: str) -> None:
    """Grant ``user`` exactly the chart's ClusterRole, and its leader-election Role in ``lease_namespace``."""
    create_namespace(api, lease_namespace)
    rbac = k8s.RbacAuthorizationV1Api(api)
    subjects = [{"kind": "User", "name": user, "apiGroup": "rbac.authorization.k8s.io"}]
    for document in chart_rbac(helm, lease_namespace):
        if document["kind"] == "ClusterRole":
            name = f"dataflow-operator-test-{user}"
            document["metadata"]["name"] = name
            _upsert(rbac.create_cluster_role, rbac.replace_cluster_role, document)
            _upsert(rbac.create_cluster_role_binding, rbac.replace_cluster_role_binding, {
                "metadata": {"name": name}, "subjects": subjects,
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name}})
        elif document["kind"] == "Role":
            name = document["metadata"]["name"]
            _upsert(lambda body: rbac.create_namespaced_role(lease_namespace, body),
                    lambda key, body: rbac.replace_namespaced_role(key, lease_namespace, body), document)
            _upsert(lambda body: rbac.create_namespaced_role_binding(lease_namespace, body),
                    lambda key, body: rbac.replace_namespaced_role_binding(key, lease_namespace, body), {
                        "metadata": {"name": f"{name}-{user}"}, "subjects": subjects,
                        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name}})


def _upsert(create: Callable[[dict[str, Any]], Any], replace: Callable[[str, dict[str, Any]], Any],
            body: dict[str, Any]) -> None:
    try:
        create(body)
    except ApiException as exc:
        if exc.status != 409:
            raise
        replace(body["metadata"]["name"], body)


def audit_entries(cluster: Any) -> list[dict[str, Any]]:
    entries = []
    with open(cluster.audit_log, encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                entries.append(json.loads(line))
    return entries


WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})


# --------------------------------------------------------------------------------------------------
# the operator as a process


def operator_command(options: dict[str, Any]) -> list[str]:
    """``run_operator`` in a child process with these OperatorOptions (as JSON)."""
    return [sys.executable, "-m", "tests.integration.operator.run_operator", json.dumps(options)]


def load_client(kubeconfig: Path) -> k8s.ApiClient:
    return k8s.ApiClient(load_configuration(str(kubeconfig)))
