"""A DataFlow's objects, status, events and dataflow_status against a real API server."""

from __future__ import annotations

import json
from typing import Any

import requests
from kubernetes import client as k8s
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.operator.conftest import (
    KAFKA_TO_POSTGRES,
    PROCESSOR_IMAGE,
    Operators,
    create_dataflow,
    create_secret,
    delete_dataflow,
    deployment,
    events_for,
    get_dataflow,
    patch_dataflow,
    raw,
    set_deployment_ready,
    spec_document,
    wait_phase,
    wait_status,
)
from tests.processes import wait_for

LABELS = {"app": "dataflow-processor", "dataflow.dataflow.io/name": "orders",
          "app.kubernetes.io/instance": "orders", "app.kubernetes.io/managed-by": "dataflow-operator"}


def owner_of(dataflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"apiVersion": "dataflow.dataflow.io/v1", "kind": "DataFlow", "name": dataflow["metadata"]["name"],
             "uid": dataflow["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}]


def spec_hash(api: k8s.ApiClient, namespace: str, name: str) -> str:
    live = deployment(api, namespace, name)
    assert live is not None
    return str(live["spec"]["template"]["metadata"]["annotations"]["dataflow.dataflow.io/spec-hash"])


def test_creating_a_dataflow_produces_every_object_as_specified(admin: k8s.ApiClient, namespace: str,
                                                               operators: Operators) -> None:
    create_secret(admin, namespace, "pg", {"dsn": "postgresql://app:s3cret@db/orders"})
    operators.start(namespace)
    dataflow = create_dataflow(admin, namespace, "orders", KAFKA_TO_POSTGRES)
    wait_for(lambda: deployment(admin, namespace, "orders"), message="Deployment df-orders")
    owners = owner_of(dataflow)

    # --- Secret df-orders-spec: the normalised spec, SecretRef resolved
    secret = raw(admin, f"/api/v1/namespaces/{namespace}/secrets/df-orders-spec")
    assert secret is not None
    assert secret["type"] == "Opaque"
    assert secret["metadata"]["labels"] == LABELS
    assert secret["metadata"]["ownerReferences"] == owners
    assert set(secret["data"]) == {"spec.json"}
    document = spec_document(admin, namespace, "orders")
    assert document["sink"]["config"] == {"connectionString": "postgresql://app:s3cret@db/orders", "table": "orders"}
    assert document["source"] == KAFKA_TO_POSTGRES["source"]
    assert "checkpointReset" not in document
    assert raw(admin, f"/api/v1/namespaces/{namespace}/configmaps/df-orders-spec") is None, \
        "the resolved spec must never be in a ConfigMap"

    # --- checkpoint ConfigMap and RBAC
    config_map = raw(admin, f"/api/v1/namespaces/{namespace}/configmaps/df-orders-checkpoint")
    assert config_map is not None
    assert config_map["metadata"]["labels"] == LABELS and config_map["metadata"]["ownerReferences"] == owners
    for path in (f"/api/v1/namespaces/{namespace}/serviceaccounts/df-orders-processor",
                 f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/roles/df-orders-processor",
                 f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/rolebindings/df-orders-processor"):
        obj = raw(admin, path)
        assert obj is not None, path
        assert obj["metadata"]["labels"] == LABELS and obj["metadata"]["ownerReferences"] == owners, path
    role = raw(admin, f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/roles/df-orders-processor")
    assert role is not None
    assert role["rules"] == [{"apiGroups": [""], "resources": ["configmaps"],
                              "resourceNames": ["df-orders-checkpoint"], "verbs": ["get", "update", "patch"]}]
    binding = raw(admin, f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/rolebindings/df-orders-processor")
    assert binding is not None
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                  "name": "df-orders-processor"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "df-orders-processor", "namespace": namespace}]

    # --- Deployment
    live = deployment(admin, namespace, "orders")
    assert live is not None
    assert live["metadata"]["labels"] == LABELS and live["metadata"]["ownerReferences"] == owners
    spec = live["spec"]
    assert spec["replicas"] == 1
    assert spec["selector"] == {"matchLabels": {"app": "dataflow-processor", "dataflow.dataflow.io/name": "orders"}}
    template = spec["template"]
    assert template["metadata"]["labels"] == LABELS
    assert len(template["metadata"]["annotations"]["dataflow.dataflow.io/spec-hash"]) == 64
    pod = template["spec"]
    assert pod["terminationGracePeriodSeconds"] == 600
    assert pod["serviceAccountName"] == "df-orders-processor"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["volumes"][0] == {"name": "spec", "secret": {"secretName": "df-orders-spec", "defaultMode": 420}}
    [container] = pod["containers"]
    assert container["name"] == "processor"
    assert container["image"] == PROCESSOR_IMAGE
    assert container["command"] == ["dataflow-operator", "processor", "--spec-path=/etc/dataflow/spec.json",
                                    f"--namespace={namespace}", "--name=orders"]
    assert {"name": "spec", "mountPath": "/etc/dataflow", "readOnly": True} in container["volumeMounts"]
    assert container["ports"] == [{"name": "metrics", "containerPort": 9090, "protocol": "TCP"}]
    assert container["startupProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert container["env"] == [
        {"name": "LOG_LEVEL", "value": "debug"}, {"name": "PROCESSOR_PROGRESS_TIMEOUT_SECONDS", "value": "1800"},
        {"name": "SENTRY_DSN", "value": "https://key@sentry.example/1"}, {"name": "SENTRY_ENVIRONMENT", "value": "test"}]
    assert container["resources"] == {"requests": {"cpu": "100m", "memory": "128Mi"},
                                      "limits": {"cpu": "500m", "memory": "512Mi"}}
    assert container["lifecycle"] == {"preStop": {"exec": {"command": ["sleep", "5"]}}}
    assert container["securityContext"] == {"runAsNonRoot": True, "readOnlyRootFilesystem": True,
                                            "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}

    # --- status and events
    status = wait_phase(admin, namespace, "orders", "Pending")["status"]
    assert status["message"] == "Processor pod is starting"
    assert status["observedGeneration"] == dataflow["metadata"]["generation"]
    assert {c["type"]: c["status"] for c in status["conditions"]} == {"Ready": "False", "Degraded": "False"}
    reasons = {event.reason for event in events_for(admin, namespace, "orders")}
    assert {"SecretCreated", "DeploymentCreated"} <= reasons


def test_deployment_status_moves_pending_to_running_and_back(admin: k8s.ApiClient, namespace: str,
                                                            operators: Operators) -> None:
    create_secret(admin, namespace, "pg", {"dsn": "postgresql://db/orders"})
    operator = operators.start(namespace)
    create_dataflow(admin, namespace, "orders", KAFKA_TO_POSTGRES)
    wait_phase(admin, namespace, "orders", "Pending")
    set_deployment_ready(admin, namespace, "orders", 1)
    status = wait_phase(admin, namespace, "orders", "Running")["status"]
    assert status["message"] == "Processor pod is running"
    assert {c["type"]: c["status"] for c in status["conditions"]} == {"Ready": "True", "Degraded": "False"}
    assert operator.metrics.phases()[(namespace, "orders")] == "Running"
    set_deployment_ready(admin, namespace, "orders", 0)
    wait_phase(admin, namespace, "orders", "Pending")


def test_spec_and_referenced_secret_changes_roll_the_deployment(admin: k8s.ApiClient, namespace: str,
                                                               operators: Operators) -> None:
    create_secret(admin, namespace, "pg", {"dsn": "postgresql://db/one"})
    operators.start(namespace)
    create_dataflow(admin, namespace, "orders", KAFKA_TO_POSTGRES)
    first = wait_for(lambda: deployment(admin, namespace, "orders"), message="Deployment") and \
        spec_hash(admin, namespace, "orders")

    patch_dataflow(admin, namespace, "orders", {"spec": {"source": {"config": {"topic": "orders-v2"}}}})
    second = wait_for(lambda: (h := spec_hash(admin, namespace, "orders")) != first and h, message="hash change")
    assert spec_document(admin, namespace, "orders")["source"]["config"]["topic"] == "orders-v2"

    k8s.CoreV1Api(admin).patch_namespaced_secret("pg", namespace, {"stringData": {"dsn": "postgresql://db/two"}})
    wait_for(lambda: spec_hash(admin, namespace, "orders") not in (first, second), message="hash change on Secret")
    assert spec_document(admin, namespace, "orders")["sink"]["config"]["connectionString"] == "postgresql://db/two"
    reasons = {event.reason for event in events_for(admin, namespace, "orders")}
    assert {"SecretUpdated", "DeploymentUpdated"} <= reasons


def test_invalid_spec_is_an_error_with_the_field_path_and_touches_nothing(admin: k8s.ApiClient, namespace: str,
                                                                         operators: Operators) -> None:
    operator = operators.start(namespace)
    spec = {"source": {"type": "kafka", "config": {"brokers": ["kafka:9092"]}},  # no topic
            "sink": {"type": "file", "config": {"path": "/tmp/out"}}}
    create_dataflow(admin, namespace, "broken", spec)
    status = wait_phase(admin, namespace, "broken", "Error")["status"]
    assert "spec.source.config.topic" in status["message"]
    assert {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}["Degraded"] == ("True", "InvalidSpec")
    # The event is written after the status: wait for it rather than read once.
    wait_for(lambda: any(e.type == "Warning" and e.reason == "InvalidSpec" and "spec.source.config.topic" in e.message
                         for e in events_for(admin, namespace, "broken")), message="the InvalidSpec event")
    assert deployment(admin, namespace, "broken") is None
    assert raw(admin, f"/api/v1/namespaces/{namespace}/secrets/df-broken-spec") is None
    assert operator.metrics.phases()[(namespace, "broken")] == "Error"
    # Fixing the spec converges.
    patch_dataflow(admin, namespace, "broken", {"spec": {"source": {"config": {"topic": "t"}}}})
    wait_phase(admin, namespace, "broken", "Pending")


def test_missing_secret_or_key_is_reported_without_the_value_and_converges(admin: k8s.ApiClient, namespace: str,
                                                                          operators: Operators) -> None:
    operators.start(namespace)
    create_dataflow(admin, namespace, "orders", KAFKA_TO_POSTGRES)
    status = wait_phase(admin, namespace, "orders", "Error")["status"]
    assert f"Secret {namespace}/pg not found" in status["message"]
    create_secret(admin, namespace, "pg", {"other": "hunter2-value"})
    status = wait_status(admin, namespace, "orders", lambda s: "has no key 'dsn'" in s.get("message", ""),
                         message="missing key")["status"]
    assert "hunter2" not in json.dumps(status)
    # The event is written after the status: wait for it rather than read once.
    events = wait_for(lambda: (found := events_for(admin, namespace, "orders")) and any(
        e.reason == "SecretResolutionFailed" and "pg" in e.message and "dsn" in e.message for e in found) and found,
        message="the SecretResolutionFailed event naming pg and dsn")
    assert all("hunter2" not in (e.message or "") for e in events)
    k8s.CoreV1Api(admin).patch_namespaced_secret("pg", namespace, {"stringData": {"dsn": "postgresql://db/x"}})
    wait_phase(admin, namespace, "orders", "Pending")


def test_deployment_deleted_by_hand_is_recreated(admin: k8s.ApiClient, namespace: str, operators: Operators) -> None:
    create_secret(admin, namespace, "pg", {"dsn": "postgresql://db/orders"})
    operators.start(namespace)
    create_dataflow(admin, namespace, "orders", KAFKA_TO_POSTGRES)
    first = wait_for(lambda: deployment(admin, namespace, "orders"), message="Deployment")
    k8s.AppsV1Api(admin).delete_namespaced_deployment("df-orders", namespace)
    wait_for(lambda: (d := deployment(admin, namespace, "orders")) and d["metadata"]["uid"] != first["metadata"]["uid"],
             message="a new Deployment")


def test_conflicting_manual_edit_is_reverted(admin: k8s.ApiClient, namespace: str, operators: Operators) -> None:
    create_secret(admin, namespace, "pg", {"dsn": "postgresql://db/orders"})
    operators.start(namespace)
    create_dataflow(admin, namespace, "orders", KAFKA_TO_POSTGRES)
    wait_for(lambda: deployment(admin, namespace, "orders"), message="Deployment")
    k8s.AppsV1Api(admin).patch_namespaced_deployment("df-orders", namespace, {"spec": {"replicas": 5}})
    wait_for(lambda: deployment(admin, namespace, "orders")["spec"]["replicas"] == 1,  # type: ignore[index]
             message="replicas back to 1")


def test_deleting_a_dataflow_removes_its_dataflow_status_series(admin: k8s.ApiClient, namespace: str,
                                                               operators: Operators) -> None:
    create_secret(admin, namespace, "pg", {"dsn": "postgresql://db/orders"})
    operator = operators.start(namespace)
    create_dataflow(admin, namespace, "orders", KAFKA_TO_POSTGRES)
    wait_phase(admin, namespace, "orders", "Pending")

    def series() -> dict[str, float]:
        return {sample.labels["phase"]: sample.value
                for metric in operator.registry.collect() if metric.name == "dataflow_status"
                for sample in metric.samples if sample.labels["name"] == "orders"}

    assert series() == {"Pending": 1.0, "Running": 0.0, "Error": 0.0, "Stopped": 0.0}
    delete_dataflow(admin, namespace, "orders")
    wait_for(lambda: series() == {}, message="dataflow_status series removed")
    assert (namespace, "orders") not in operator.metrics.phases()


def test_checkpoint_reset_is_one_shot(admin: k8s.ApiClient, namespace: str, operators: Operators) -> None:
    create_secret(admin, namespace, "pg", {"dsn": "postgresql://db/orders"})
    operators.start(namespace)
    create_dataflow(admin, namespace, "orders", KAFKA_TO_POSTGRES)
    wait_for(lambda: deployment(admin, namespace, "orders"), message="Deployment")
    first_hash = spec_hash(admin, namespace, "orders")
    patch_dataflow(admin, namespace, "orders", {"spec": {"checkpointReset": True}})

    def token() -> str | None:
        live = deployment(admin, namespace, "orders")
        assert live is not None
        env = live["spec"]["template"]["spec"]["containers"][0]["env"]
        return next((v["value"] for v in env if v["name"] == "DATAFLOW_CHECKPOINT_RESET_TOKEN"), None)

    reset = wait_for(token, message="reset token in the pod template")
    wait_for(lambda: "checkpointReset" not in get_dataflow(admin, namespace, "orders")["spec"],
             message="checkpointReset cleared")
    # The cleared flag neither rolls the pods again nor changes the spec hash.
    wait_phase(admin, namespace, "orders", "Pending")
    assert token() == reset
    assert spec_hash(admin, namespace, "orders") == first_hash


def test_metrics_and_probe_endpoints(admin: k8s.ApiClient, namespace: str, operators: Operators) -> None:
    create_secret(admin, namespace, "pg", {"dsn": "postgresql://db/orders"})
    operator = operators.start(namespace)
    create_dataflow(admin, namespace, "orders", KAFKA_TO_POSTGRES)
    wait_phase(admin, namespace, "orders", "Pending")
    assert requests.get(f"http://127.0.0.1:{operator.health_port}/healthz", timeout=5).status_code == 200
    assert requests.get(f"http://127.0.0.1:{operator.health_port}/readyz", timeout=5).status_code == 200
    response = requests.get(f"http://127.0.0.1:{operator.metrics_port}/metrics", timeout=10)
    assert response.status_code == 200
    families = {family.name: family for family in text_string_to_metric_families(response.text)}
    for name in ("dataflow_status", "dataflow_controller_reconcile", "dataflow_controller_reconcile_duration_seconds",
                 "dataflow_controller_reconcile_errors", "dataflow_controller_reconcile_inflight",
                 "dataflow_controller_workqueue_depth", "dataflow_aggregator_scrape_duration_seconds",
                 "workqueue_depth", "workqueue_adds", "workqueue_queue_duration_seconds",
                 "workqueue_work_duration_seconds", "workqueue_retries", "workqueue_unfinished_work_seconds",
                 "workqueue_longest_running_processor_seconds"):
        assert name in families, f"{name} missing from /metrics"
    adds = {sample.labels["name"]: sample.value for sample in families["workqueue_adds"].samples
            if sample.name == "workqueue_adds_total"}
    assert adds["dataflows"] >= 1, "the DataFlow key went through the work queue"
    status = {sample.labels["phase"]: sample.value for sample in families["dataflow_status"].samples
              if sample.labels["namespace"] == namespace}
    assert status == {"Pending": 1.0, "Running": 0.0, "Error": 0.0, "Stopped": 0.0}
    results = {sample.labels["result"] for sample in families["dataflow_controller_reconcile"].samples}
    assert results == {"success", "error", "requeue"}
    stages = {sample.labels["stage"] for sample in families["dataflow_controller_reconcile_errors"].samples}
    assert stages == {"validate", "secrets", "resources", "deployment", "status"}
    openmetrics = requests.get(f"http://127.0.0.1:{operator.metrics_port}/metrics", timeout=10,
                               headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert openmetrics.headers["Content-Type"].startswith("application/openmetrics-text")
