"""The Helm chart and the alert rules, proven with the real tools: helm, promtool and an API server.

- `helm lint` / `helm template` with the defaults and with every optional feature on; the chart's
  guards (values schema, aggregation deadline below the scrape timeout) refuse bad values.
- Every rendered object is accepted by a real kube-apiserver: server-side apply with `dryRun=All`
  and `fieldValidation=Strict`, so a misspelt or misplaced field is an error, not silently pruned.
  ServiceMonitor, PodMonitor and PrometheusRule are checked the same way against the real
  monitoring.coreos.com CRDs of the Prometheus Operator, fetched as a Go module through the module
  proxy (a hand-written "minimal" CRD would only check what its author already believed).
- The ClusterRole is enough for what the operator does, including creating the per-DataFlow Role
  (RBAC escalation prevention), and denies what it must not do; checked by impersonating the chart's
  ServiceAccount.
- `promtool check rules` and `promtool test rules` on the rule groups of alerts/prometheusrule.yaml
  (promtool reads plain rule files, so spec.groups is written to a temporary file), and every
  dashboard query goes through Prometheus' own parser.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import yaml
from kubernetes import client as k8s
from kubernetes.client.rest import ApiException
from kubernetes.dynamic import DynamicClient

from tests.deploy.monitoring_helpers import DASHBOARD_PATH, RULES_PATH, substitute_variables, write_rule_groups
from tests.peers import paths
from tests.peers.apiserver import KubeAPIServer
from tests.peers.fixtures import unavailable
from tests.peers.kube import create_namespace

REPO = paths.REPO_ROOT
CHART = REPO / "helm" / "dataflow-operator"
CRD_PATH = CHART / "files" / "crds" / "dataflow.dataflow.io_dataflows.yaml"
RULE_TESTS_DIR = REPO / "alerts" / "tests"
CONTRACT = json.loads((REPO / "tests" / "data" / "metrics-contract.json").read_text())

# The Prometheus Operator release whose CRDs the monitoring objects are validated against.
PROMETHEUS_OPERATOR_MODULE = "github.com/prometheus-operator/prometheus-operator"
PROMETHEUS_OPERATOR_VERSION = "v0.85.0"
MONITORING_CRDS = ("servicemonitors", "podmonitors", "prometheusrules")

ALL_FEATURES: dict[str, Any] = {
    "crds": {"install": True, "keep": True},
    "image": {"repository": "registry.example.org/dataflow-operator", "tag": "1.2.3"},
    "processorImage": "registry.example.org/dataflow-processor:1.2.3",
    "imagePullSecrets": [{"name": "registry"}],
    "serviceAccount": {"annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/dataflow"}},
    "podAnnotations": {"example.org/team": "data"},
    "logLevel": "debug",
    "processorLogLevel": "warn",
    "processorProgressTimeoutSeconds": 0,
    "leaderElection": {"enabled": False},
    "workers": 8,
    "aggregation": {"timeoutSeconds": 2.5},
    "sentry": {"enabled": True, "dsn": "https://key@o0.ingest.sentry.io/1", "environment": "staging",
               "tracesSampleRate": 0.25, "debug": True, "release": "1.2.3"},
    "service": {"type": "ClusterIP", "port": 8080},
    "serviceMonitor": {"enabled": True, "interval": "15s", "scrapeTimeout": "5s",
                       "additionalLabels": {"release": "prometheus"}, "honorLabels": True},
    "podMonitor": {"enabled": True},
    "monitoring": {"dashboard": {"enabled": True, "folder": "Data pipelines"},
                   "prometheusRule": {"enabled": True, "additionalLabels": {"release": "prometheus"}}},
    "nodeSelector": {"kubernetes.io/os": "linux"},
    "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "dataflow", "effect": "NoSchedule"}],
    "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]}]}]}}},
}
VALUE_SETS = {"defaults": {}, "all-features": ALL_FEATURES}

OPERATOR_METRICS = (
    "dataflow_status", "dataflow_controller_reconcile_total",
    "dataflow_controller_reconcile_duration_seconds",
    "dataflow_controller_reconcile_errors_total", "dataflow_controller_reconcile_inflight",
    "dataflow_controller_workqueue_depth", "dataflow_aggregator_scrape_duration_seconds",
    "dataflow_aggregator_pod_scrape_errors_total", "dataflow_aggregator_pods_scraped",
)


# ------------------------------------------------------------------------------------------------
# helm


def run(command: list[str | Path], *, cwd: Path | None = None,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(part) for part in command], capture_output=True, text=True, timeout=300,
                          cwd=cwd, env=env, check=False)


def values_file(tmp_path: Path, values: dict[str, Any]) -> Path:
    path = tmp_path / f"values-{uuid.uuid4().hex[:8]}.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


def helm_template(helm: Path, tmp_path: Path, values: dict[str, Any], *, release: str = "df",
                  namespace: str = "dataflow-system") -> list[dict[str, Any]]:
    result = run([helm, "template", release, CHART, "--namespace", namespace,
                  "--values", values_file(tmp_path, values)])
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def helm_template_fails(helm: Path, tmp_path: Path, values: dict[str, Any]) -> str:
    result = run([helm, "template", "df", CHART, "--values", values_file(tmp_path, values)])
    assert result.returncode != 0, f"helm template accepted {values}"
    return result.stderr


def by_kind(documents: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    kinds: dict[str, list[dict[str, Any]]] = {}
    for document in documents:
        kinds.setdefault(document["kind"], []).append(document)
    return kinds


def only(documents: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (document,) = by_kind(documents)[kind]
    return document


def container_env(deployment: dict[str, Any]) -> dict[str, Any]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return {item["name"]: item.get("value", item.get("valueFrom")) for item in container["env"]}


@pytest.mark.parametrize("value_set", list(VALUE_SETS))
def test_helm_lint(helm: Path, tmp_path: Path, value_set: str) -> None:
    result = run([helm, "lint", "--strict", CHART, "--values", values_file(tmp_path, VALUE_SETS[value_set])])
    assert result.returncode == 0, result.stdout + result.stderr


def test_default_render(helm: Path, tmp_path: Path) -> None:
    documents = helm_template(helm, tmp_path, {})
    assert sorted(by_kind(documents)) == ["ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition",
                                         "Deployment", "Role", "RoleBinding", "Service", "ServiceAccount"]
    deployment = only(documents, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == "dataflow-operator:0.1.0"
    assert container["args"] == ["run", "--metrics-bind-address=:9090", "--health-probe-bind-address=:9091",
                                 "--workers=4", "--leader-elect=true", "--aggregation-timeout=5"]
    assert container_env(deployment) == {
        "PROCESSOR_IMAGE": "dataflow-operator:0.1.0", "PROCESSOR_LOG_LEVEL": "info",
        "PROCESSOR_PROGRESS_TIMEOUT_SECONDS": "3600",
        "OPERATOR_NAMESPACE": {"fieldRef": {"fieldPath": "metadata.namespace"}}, "LOG_LEVEL": "info"}
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports == {"metrics": 9090, "health": 9091}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert pod["securityContext"]["runAsNonRoot"] is True
    service = only(documents, "Service")
    assert service["spec"]["ports"] == [{"name": "metrics", "port": 9090, "targetPort": "metrics",
                                         "protocol": "TCP"}]
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]

    crd = only(documents, "CustomResourceDefinition")
    (canonical,) = [d for d in yaml.safe_load_all(CRD_PATH.read_text()) if d]
    assert crd["spec"] == canonical["spec"] and crd["metadata"]["name"] == canonical["metadata"]["name"]
    assert crd["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}


def test_cluster_role_is_least_privilege(helm: Path, tmp_path: Path) -> None:
    documents = helm_template(helm, tmp_path, {})
    rules = only(documents, "ClusterRole")["rules"]
    granted = {(group, resource, verb) for rule in rules for group in rule["apiGroups"]
               for resource in rule["resources"] for verb in rule["verbs"]}
    assert not [g for g in granted if "*" in g], "no wildcards"
    owned = {"get", "list", "watch", "create", "update", "patch", "delete"}
    expected = {
        *{("dataflow.dataflow.io", "dataflows", v) for v in ("get", "list", "watch", "update", "patch")},
        *{("dataflow.dataflow.io", "dataflows/status", v) for v in ("get", "update", "patch")},
        *{("", "secrets", v) for v in ("get", "list", "watch", "create", "update", "delete")},
        *{("", "configmaps", v) for v in owned}, *{("", "serviceaccounts", v) for v in owned},
        *{("apps", "deployments", v) for v in owned},
        *{("rbac.authorization.k8s.io", r, v) for r in ("roles", "rolebindings") for v in owned},
        *{("", "pods", v) for v in ("get", "list", "watch")},
        *{(g, "events", v) for g in ("", "events.k8s.io") for v in ("create", "patch")},
    }
    assert granted == expected
    # Leases only in the release namespace.
    role = only(documents, "Role")
    assert role["metadata"]["namespace"] == "dataflow-system"
    assert {(r, v) for rule in role["rules"] for r in rule["resources"] for v in rule["verbs"]} == {
        ("leases", "create"), ("leases", "get"), ("leases", "update"), ("leases", "patch")}


def test_all_features_render(helm: Path, tmp_path: Path) -> None:
    documents = helm_template(helm, tmp_path, ALL_FEATURES)
    kinds = by_kind(documents)
    assert {"ServiceMonitor", "PodMonitor", "PrometheusRule", "ConfigMap"} <= set(kinds)
    deployment = only(documents, "Deployment")
    env = container_env(deployment)
    assert {key: env[key] for key in env if key.startswith("SENTRY_")} == {
        "SENTRY_DSN": "https://key@o0.ingest.sentry.io/1", "SENTRY_ENVIRONMENT": "staging",
        "SENTRY_TRACES_SAMPLE_RATE": "0.25", "SENTRY_DEBUG": "true", "SENTRY_RELEASE": "1.2.3"}
    assert env["PROCESSOR_IMAGE"] == "registry.example.org/dataflow-processor:1.2.3"
    assert env["PROCESSOR_PROGRESS_TIMEOUT_SECONDS"] == "0"
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert "--leader-elect=false" in container["args"] and "--aggregation-timeout=2.5" in container["args"]
    assert "--workers=8" in container["args"]

    dashboard = only(documents, "ConfigMap")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert dashboard["metadata"]["annotations"] == {"grafana_folder": "Data pipelines"}
    (text,) = dashboard["data"].values()
    assert json.loads(text) == json.loads(DASHBOARD_PATH.read_text())

    rule = only(documents, "PrometheusRule")
    assert rule["spec"] == yaml.safe_load(RULES_PATH.read_text())["spec"]
    assert rule["metadata"]["labels"]["release"] == "prometheus"

    monitor = only(documents, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    (endpoint,) = monitor["spec"]["endpoints"]
    assert (endpoint["port"], endpoint["interval"], endpoint["scrapeTimeout"], endpoint["honorLabels"]) == (
        "metrics", "15s", "5s", True)
    assert monitor["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    # With the PodMonitor on, processor series come from the pods; the ServiceMonitor must drop exactly
    # the re-emitted processor families and keep the operator's own.
    (relabel,) = endpoint["metricRelabelings"]
    assert relabel["action"] == "drop"
    processor_metrics = [m["name"] for m in CONTRACT["metrics"] if m["exported_by"] == "processor"]
    for name in processor_metrics:
        for series in (name, f"{name}_bucket", f"{name}_sum", f"{name}_count"):
            assert re.fullmatch(relabel["regex"], series), series
    for name in OPERATOR_METRICS:
        for series in (name, f"{name}_bucket", f"{name}_sum", f"{name}_count"):
            assert not re.fullmatch(relabel["regex"], series), series
    pod_monitor = only(documents, "PodMonitor")
    assert pod_monitor["spec"]["selector"] == {"matchLabels": {"app": "dataflow-processor"}}
    assert pod_monitor["spec"]["namespaceSelector"] == {"any": True}
    assert pod_monitor["spec"]["podMetricsEndpoints"][0]["port"] == "metrics"


@pytest.mark.parametrize(("values", "absent"), [
    ({"crds": {"install": False}}, "CustomResourceDefinition"),
    ({"rbac": {"create": False}}, "ClusterRole"),
    ({"serviceAccount": {"create": False, "name": "existing"}}, "ServiceAccount"),
    ({"metrics": {"enabled": False}}, "Service"),
])
def test_optional_objects_can_be_switched_off(helm: Path, tmp_path: Path, values: dict[str, Any],
                                              absent: str) -> None:
    documents = helm_template(helm, tmp_path, values)
    assert absent not in by_kind(documents)
    if "serviceAccount" in values:
        pod = only(documents, "Deployment")["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] == "existing"


def test_crd_keep_and_sentry_without_dsn(helm: Path, tmp_path: Path) -> None:
    documents = helm_template(helm, tmp_path, {"crds": {"keep": False}, "sentry": {"enabled": True}})
    assert "annotations" not in only(documents, "CustomResourceDefinition")["metadata"]
    # An empty DSN means Sentry off: no SENTRY_* variable at all (the processors inherit them).
    assert not [key for key in container_env(only(documents, "Deployment")) if key.startswith("SENTRY_")]


@pytest.mark.parametrize(("values", "message"), [
    ({"replicaCont": 2}, "replicaCont"),
    ({"serviceMonitor": {"enabeld": True}}, "enabeld"),
    ({"logLevel": "verbose"}, "logLevel"),
    ({"serviceMonitor": {"enabled": True}, "aggregation": {"timeoutSeconds": 10}},
     "must be below serviceMonitor.scrapeTimeout"),
    ({"serviceMonitor": {"enabled": True, "scrapeTimeout": "1500ms"}, "aggregation": {"timeoutSeconds": 2}},
     "must be below serviceMonitor.scrapeTimeout"),
    ({"serviceMonitor": {"enabled": True}, "metrics": {"enabled": False}}, "needs metrics.enabled"),
])
def test_bad_values_fail_at_render(helm: Path, tmp_path: Path, values: dict[str, Any], message: str) -> None:
    assert message in helm_template_fails(helm, tmp_path, values)


def test_aggregation_deadline_check_accepts_a_fitting_timeout(helm: Path, tmp_path: Path) -> None:
    documents = helm_template(helm, tmp_path, {"serviceMonitor": {"enabled": True, "scrapeTimeout": "1m"},
                                               "aggregation": {"timeoutSeconds": 30}})
    assert only(documents, "ServiceMonitor")["spec"]["endpoints"][0]["scrapeTimeout"] == "1m"


# ------------------------------------------------------------------------------------------------
# The API server


@pytest.fixture(scope="module")
def monitoring_crds(kube_apiserver: KubeAPIServer, tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Install the Prometheus Operator's own ServiceMonitor/PodMonitor/PrometheusRule CRDs."""
    go = paths.go_binary()
    if go is None:
        unavailable("no Go toolchain to fetch the Prometheus Operator CRDs through the module proxy")
    # Outside any module, so that no go.mod of the repository is consulted or changed.
    module = f"{PROMETHEUS_OPERATOR_MODULE}@{PROMETHEUS_OPERATOR_VERSION}"
    result = run([go, "mod", "download", "-json", module],
                 cwd=tmp_path_factory.mktemp("go-download"), env={**os.environ, "GOFLAGS": "-mod=mod"})
    if result.returncode != 0:
        unavailable(f"go mod download {module} failed: {result.stdout[-2000:]}{result.stderr[-2000:]}")
    crd_dir = Path(json.loads(result.stdout)["Dir"]) / "example" / "prometheus-operator-crd"
    names = []
    for plural in MONITORING_CRDS:
        names += kube_apiserver.install_crds(crd_dir / f"monitoring.coreos.com_{plural}.yaml")
    return names


@pytest.fixture(scope="module")
def dataflow_crd(kube_apiserver: KubeAPIServer) -> list[str]:
    return kube_apiserver.install_crds(CRD_PATH)


@pytest.fixture(scope="module")
def dynamic(kube_apiserver: KubeAPIServer, monitoring_crds: list[str],
            dataflow_crd: list[str]) -> Iterator[DynamicClient]:
    # Created after the CRDs so that discovery already knows their kinds.
    with kube_apiserver.api_client() as api_client:
        yield DynamicClient(api_client)


@pytest.fixture
def namespace(kube_apiserver: KubeAPIServer) -> Iterator[str]:
    name = f"chart-{uuid.uuid4().hex[:8]}"
    with kube_apiserver.api_client() as api_client:
        create_namespace(api_client, name)
        yield name
        k8s.CoreV1Api(api_client).delete_namespace(name)


def dry_run_apply(dynamic: DynamicClient, document: dict[str, Any], namespace: str | None = None) -> Any:
    """Server-side apply with dryRun=All and strict field validation: the API server validates and
    defaults the object exactly as for a real apply, rejects unknown fields, and stores nothing."""
    resource = dynamic.resources.get(api_version=document["apiVersion"], kind=document["kind"])
    return dynamic.server_side_apply(
        resource, body=document, namespace=namespace if resource.namespaced else None,
        field_manager="chart-test", force_conflicts=True, dry_run="All",
        query_params=[("fieldValidation", "Strict")])


@pytest.mark.parametrize("value_set", list(VALUE_SETS))
def test_rendered_manifests_pass_server_side_dry_run(helm: Path, tmp_path: Path, dynamic: DynamicClient,
                                                     namespace: str, value_set: str) -> None:
    documents = helm_template(helm, tmp_path, VALUE_SETS[value_set], namespace=namespace)
    failures = []
    for document in documents:
        try:
            dry_run_apply(dynamic, document, namespace)
        except ApiException as exc:
            failures.append(f"{document['kind']}/{document['metadata']['name']}: {exc.status} {exc.body}")
    assert not failures, "\n".join(failures)


def test_dry_run_rejects_a_misspelt_field(helm: Path, tmp_path: Path, dynamic: DynamicClient,
                                          namespace: str) -> None:
    # The check above is only worth something if a wrong field fails it.
    documents = helm_template(helm, tmp_path, ALL_FEATURES, namespace=namespace)
    monitor = only(documents, "ServiceMonitor")
    monitor["spec"]["endpoints"][0]["honourLabels"] = True
    with pytest.raises(ApiException) as raised:
        dry_run_apply(dynamic, monitor, namespace)
    assert "honourLabels" in str(raised.value.body)


def dry_run_create(dynamic: DynamicClient, document: dict[str, Any], namespace: str) -> Any:
    """A dry-run create with strict field validation. Used for DataFlows rather than an apply: the
    API server reports an apply's schema errors as 500s, a create's as 400/422 with the field path."""
    resource = dynamic.resources.get(api_version=document["apiVersion"], kind=document["kind"])
    return dynamic.create(resource, body=document, namespace=namespace, dry_run="All",
                          query_params=[("fieldValidation", "Strict")])


def sample_dataflows() -> list[Any]:
    samples = []
    for path in sorted((REPO / "examples").rglob("*.y*ml")):
        for document in yaml.safe_load_all(path.read_text()):
            if isinstance(document, dict) and document.get("kind") == "DataFlow":
                name = f"{path.relative_to(REPO)}:{document['metadata']['name']}"
                samples.append(pytest.param(document, id=name))
    return samples


@pytest.mark.parametrize("sample", sample_dataflows())
def test_examples_are_accepted_by_the_crd(dynamic: DynamicClient, namespace: str,
                                          sample: dict[str, Any]) -> None:
    sample = {**sample, "metadata": {**sample["metadata"], "namespace": namespace}}
    dry_run_create(dynamic, sample, namespace)


def dataflow(spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "dataflow.dataflow.io/v1", "kind": "DataFlow",
            "metadata": {"name": f"df-{uuid.uuid4().hex[:6]}"}, "spec": spec}


KAFKA = {"type": "kafka", "config": {"brokers": ["kafka:9092"], "topic": "orders"}}
POSTGRES = {"type": "postgresql", "config": {"connectionString": "postgres://db/app", "table": "orders"}}


@pytest.mark.parametrize("spec", [
    # Both encodings of a connector and of a transformation, and every typed spec field.
    {"source": {"type": "kafka", "kafka": {"brokers": ["kafka:9092"], "topic": "orders"}},
     "sink": {"type": "postgresql", "postgresql": {"connectionString": "postgres://db/app", "table": "t"}},
     "transformations": [{"type": "timestamp", "timestamp": {"fieldName": "at"}},
                         {"type": "filter", "config": {"condition": "$.ok"}, "when": "$.kind == 'a'"},
                         {"type": "camelCase"}],
     "errors": {"type": "file", "config": {"path": "/tmp/errors.jsonl"}, "ackPolicy": "never"},
     "replicas": 3, "channelBufferSize": 500, "checkpointPersistence": False, "checkpointSyncOnAck": True,
     "checkpointSaveInterval": "10s", "checkpointReset": True, "ackGranularity": "message",
     "strictIdempotency": True, "processorImage": "img", "processorVersion": "1.0",
     "resources": {"requests": {"cpu": "200m", "memory": "256Mi"}, "limits": {"cpu": 1, "memory": "1Gi"}},
     "nodeSelector": {"pool": "data"}, "tolerations": [{"key": "k", "operator": "Exists"}],
     "affinity": {"podAntiAffinity": {}}, "imagePullSecrets": [{"name": "registry"}],
     "maintenance": {"startTime": "2025-01-01T02:00:00Z", "duration": "2h", "repeat": "weekly",
                     "timezone": "Europe/Berlin", "description": "vacuum", "suspended": False}},
    {"source": POSTGRES, "sink": KAFKA, "replicas": 1, "maintenance": {"repeat": ""}},
])
def test_crd_accepts_valid_dataflows(dynamic: DynamicClient, namespace: str, spec: dict[str, Any]) -> None:
    dry_run_create(dynamic, dataflow(spec), namespace)


@pytest.mark.parametrize(("spec", "message"), [
    ({"source": {**KAFKA, "type": "mysql"}, "sink": POSTGRES}, "spec.source.type"),
    ({"source": KAFKA}, "spec.sink"),
    ({"source": KAFKA, "sink": POSTGRES, "transformations": [{"type": "uppercase"}]},
     "spec.transformations[0].type"),
    ({"source": KAFKA, "sink": POSTGRES, "errors": {**KAFKA, "ackPolicy": "always"}},
     "spec.errors.ackPolicy"),
    ({"source": KAFKA, "sink": POSTGRES, "replicas": 0}, "spec.replicas"),
    ({"source": KAFKA, "sink": POSTGRES, "channelBufferSize": 0}, "spec.channelBufferSize"),
    ({"source": KAFKA, "sink": POSTGRES, "ackGranularity": "row"}, "spec.ackGranularity"),
    ({"source": KAFKA, "sink": POSTGRES, "maintenance": {"repeat": "hourly"}}, "spec.maintenance.repeat"),
    ({"source": KAFKA, "sink": POSTGRES, "replica": 2}, "replica"),
    # Only a Kafka source may run several processors: the others share one checkpoint.
    ({"source": POSTGRES, "sink": KAFKA, "replicas": 2}, "replicas greater than 1 is allowed only"),
])
def test_crd_rejects_invalid_dataflows(dynamic: DynamicClient, namespace: str, spec: dict[str, Any],
                                       message: str) -> None:
    with pytest.raises(ApiException) as raised:
        dry_run_create(dynamic, dataflow(spec), namespace)
    assert raised.value.status in {400, 422}
    assert message in str(raised.value.body)


def test_printer_columns_and_short_name(dynamic: DynamicClient, namespace: str) -> None:
    resource = dynamic.resources.get(api_version="dataflow.dataflow.io/v1", kind="DataFlow")
    assert resource.short_names == ["df"]
    assert resource.namespaced
    # What `kubectl get df` prints: the server's Table rendering of the list.
    table = dynamic.request("get", resource.path(namespace=namespace),
                            header_params={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"})
    columns = [column["name"] for column in table.to_dict()["columnDefinitions"]]
    assert columns == ["Name", "Phase", "Processed", "Errors", "Age"]


# ------------------------------------------------------------------------------------------------
# RBAC, by impersonating the chart's ServiceAccount


@pytest.fixture
def operator_identity(helm: Path, tmp_path: Path, kube_apiserver: KubeAPIServer, dataflow_crd: list[str],
                      namespace: str) -> Iterator[tuple[k8s.ApiClient, str]]:
    """The chart's RBAC objects created for real (unique names), and an API client impersonating the
    ServiceAccount they are bound to."""
    release = f"rbac-{uuid.uuid4().hex[:6]}"
    documents = helm_template(helm, tmp_path, {}, release=release, namespace=namespace)
    rbac_kinds = ("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")
    created = [d for d in documents if d["kind"] in rbac_kinds]
    with kube_apiserver.api_client() as admin:
        dynamic = DynamicClient(admin)
        for document in created:
            resource = dynamic.resources.get(api_version=document["apiVersion"], kind=document["kind"])
            dynamic.create(resource, body=document, namespace=namespace if resource.namespaced else None)
        account = only(documents, "ServiceAccount")["metadata"]["name"]
        try:
            with kube_apiserver.api_client() as impersonated:
                impersonated.set_default_header("Impersonate-User",
                                                f"system:serviceaccount:{namespace}:{account}")
                yield impersonated, namespace
        finally:
            for document in reversed(created):
                resource = dynamic.resources.get(api_version=document["apiVersion"], kind=document["kind"])
                if not resource.namespaced:  # namespaced ones go with the namespace
                    dynamic.delete(resource, name=document["metadata"]["name"])


class Access(NamedTuple):
    verb: str
    resource: str
    namespace: str
    group: str = ""
    name: str = ""


def allowed(api_client: k8s.ApiClient, access: Access) -> bool:
    review = k8s.V1SelfSubjectAccessReview(spec=k8s.V1SelfSubjectAccessReviewSpec(
        resource_attributes=k8s.V1ResourceAttributes(
            verb=access.verb, group=access.group, resource=access.resource,
            namespace=access.namespace or None, name=access.name or None)))
    result = k8s.AuthorizationV1Api(api_client).create_self_subject_access_review(review)
    return bool(result.status.allowed)


def test_operator_can_do_its_work_and_no_more(operator_identity: tuple[k8s.ApiClient, str]) -> None:
    api_client, namespace = operator_identity
    elsewhere = "default"
    can = [
        Access("watch", "dataflows", elsewhere, "dataflow.dataflow.io"),
        Access("patch", "dataflows/status", elsewhere, "dataflow.dataflow.io"),
        Access("get", "secrets", elsewhere), Access("create", "secrets", elsewhere),
        Access("update", "configmaps", elsewhere), Access("create", "deployments", elsewhere, "apps"),
        Access("delete", "serviceaccounts", elsewhere), Access("list", "pods", elsewhere),
        Access("create", "events", elsewhere), Access("patch", "events", elsewhere, "events.k8s.io"),
        Access("create", "leases", namespace, "coordination.k8s.io"),
        Access("update", "leases", namespace, "coordination.k8s.io", "dataflow-operator.dataflow.io"),
    ]
    cannot = [
        Access("delete", "dataflows", elsewhere, "dataflow.dataflow.io"),
        Access("patch", "secrets", elsewhere), Access("delete", "pods", elsewhere),
        Access("create", "pods/exec", elsewhere), Access("list", "nodes", ""),
        Access("create", "clusterroles", "", "rbac.authorization.k8s.io"),
        Access("escalate", "roles", elsewhere, "rbac.authorization.k8s.io"),
        Access("create", "leases", elsewhere, "coordination.k8s.io"),
        Access("update", "leases", namespace, "coordination.k8s.io", "another-lease"),
    ]
    wrong = [("should be allowed", access) for access in can if not allowed(api_client, access)]
    wrong += [("should be denied", access) for access in cannot if allowed(api_client, access)]
    assert not wrong


def test_operator_can_create_the_per_dataflow_processor_rbac(
        operator_identity: tuple[k8s.ApiClient, str]) -> None:
    # RBAC escalation prevention: the operator may create a Role, and bind it, only if it holds every
    # permission the Role grants. This is the Role/RoleBinding of operator.md for DataFlow "orders".
    api_client, namespace = operator_identity
    rbac = k8s.RbacAuthorizationV1Api(api_client)
    rbac.create_namespaced_role(namespace, {
        "metadata": {"name": "df-orders-processor"},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["df-orders-checkpoint"],
                   "verbs": ["get", "update", "patch"]}]})
    rbac.create_namespaced_role_binding(namespace, {
        "metadata": {"name": "df-orders-processor"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "df-orders-processor"},
        "subjects": [{"kind": "ServiceAccount", "name": "df-orders-processor", "namespace": namespace}]})
    # ...and a Role with a permission the operator lacks is refused.
    with pytest.raises(ApiException) as raised:
        rbac.create_namespaced_role(namespace, {
            "metadata": {"name": "df-orders-too-much"},
            "rules": [{"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create"]}]})
    assert raised.value.status == 403


# ------------------------------------------------------------------------------------------------
# promtool


def test_promtool_check_rules(promtool: Path, tmp_path: Path) -> None:
    rules = write_rule_groups(yaml.safe_load(RULES_PATH.read_text()), tmp_path)
    result = run([promtool, "check", "rules", rules])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 10 rules found" in result.stdout


def test_promtool_check_rules_rendered_by_the_chart(promtool: Path, helm: Path, tmp_path: Path) -> None:
    # The chart re-serialises the rules (fromYaml | toYaml); what it renders must still parse the same.
    rule = only(helm_template(helm, tmp_path, ALL_FEATURES), "PrometheusRule")
    result = run([promtool, "check", "rules", write_rule_groups(rule, tmp_path)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests(promtool: Path, tmp_path: Path) -> None:
    write_rule_groups(yaml.safe_load(RULES_PATH.read_text()), tmp_path)
    test_files = sorted(RULE_TESTS_DIR.glob("*.yaml"))
    assert test_files
    for test_file in test_files:
        shutil.copy(test_file, tmp_path / test_file.name)
    result = run([promtool, "test", "rules", *(test_file.name for test_file in test_files)], cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(test_files), result.stdout


DASHBOARD_VARIABLES = {"namespace": ".*", "dataflow": ".*", "interval": "5m"}


def test_every_dashboard_query_parses(promtool: Path, tmp_path: Path) -> None:
    # Prometheus' own parser, through promtool: each query becomes a recording rule, with the
    # dashboard variables substituted as Grafana would for "All".
    dashboard = json.loads(DASHBOARD_PATH.read_text())
    rules = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = substitute_variables(target["expr"], DASHBOARD_VARIABLES)
            rules.append({"record": f"dashboard:panel_{panel['id']}:{target['refId']}", "expr": expr})
    path = tmp_path / "dashboard-queries.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, width=1000))
    result = run([promtool, "check", "rules", path])
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout
