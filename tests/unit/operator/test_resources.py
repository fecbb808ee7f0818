"""The desired objects per DataFlow, field by field (operator.md "What exists per DataFlow")."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from dataflow_operator.operator import resources
from dataflow_operator.operator.object_ref import ObjectRef
from dataflow_operator.operator.resources import ProcessorSettings
from dataflow_operator.spec.api import DataFlowSpec
from dataflow_operator.spec.validation import load_spec

DATAFLOW: dict[str, Any] = {
    "apiVersion": "dataflow.dataflow.io/v1", "kind": "DataFlow",
    "metadata": {"name": "orders", "namespace": "shop", "uid": "1234-abcd", "generation": 3, "resourceVersion": "77"},
    "spec": {"source": {"type": "kafka", "config": {"brokers": ["k:9092"], "topic": "t"}},
             "sink": {"type": "file", "config": {"path": "/out"}}},
}
DATAFLOW_REF = ObjectRef.of(DATAFLOW)
LABELS = {"app": "dataflow-processor", "dataflow.dataflow.io/name": "orders",
          "app.kubernetes.io/instance": "orders", "app.kubernetes.io/managed-by": "dataflow-operator"}
OWNER = [{"apiVersion": "dataflow.dataflow.io/v1", "kind": "DataFlow", "name": "orders", "uid": "1234-abcd",
          "controller": True, "blockOwnerDeletion": True}]
SETTINGS = ProcessorSettings(image="reg/df:1.0", log_level="warn", progress_timeout_seconds="60",
                             sentry_env=(("SENTRY_DSN", "https://k@s/1"), ("SENTRY_RELEASE", "r1")))


def typed(**fields: Any) -> DataFlowSpec:
    """The test DataFlow's spec with ``fields``, parsed."""
    return load_spec({**DATAFLOW["spec"], **fields})


def build(spec: dict[str, Any] | None = None, **overrides: Any) -> dict[str, Any]:
    arguments: dict[str, Any] = {"document_hash": "h" * 64, "settings": SETTINGS, "replicas": 1, **overrides}
    return resources.deployment(DATAFLOW_REF, load_spec(spec if spec is not None else DATAFLOW["spec"]), **arguments)


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    [only] = deployment["spec"]["template"]["spec"]["containers"]
    return dict(only)


def test_settings_from_environment() -> None:
    settings = ProcessorSettings.from_environ({
        "PROCESSOR_IMAGE": " reg/df:2 ", "PROCESSOR_LOG_LEVEL": "debug", "PROCESSOR_PROGRESS_TIMEOUT_SECONDS": "0",
        "SENTRY_RELEASE": "r", "SENTRY_DSN": "d", "SENTRY_NEW_OPTION": "x", "OTHER": "y"})
    assert settings == ProcessorSettings("reg/df:2", "debug", "0",
                                         (("SENTRY_DSN", "d"), ("SENTRY_NEW_OPTION", "x"), ("SENTRY_RELEASE", "r")))
    assert ProcessorSettings.from_environ({}) == ProcessorSettings("", "info", "3600", ())


def test_names() -> None:
    assert resources.Names.of("orders") == resources.Names("df-orders-spec", "df-orders-checkpoint",
                                                           "df-orders-processor", "df-orders")


def test_spec_secret_holds_canonical_json_and_hash_follows_content() -> None:
    document = resources.spec_json({"b": 1, "a": {"y": "ü", "x": [1, 2]}})
    assert document == '{"a":{"x":[1,2],"y":"ü"},"b":1}'.encode()
    secret = resources.spec_secret(DATAFLOW_REF, document)
    assert secret == {
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "df-orders-spec", "namespace": "shop", "labels": LABELS, "ownerReferences": OWNER},
        "type": "Opaque", "data": {"spec.json": base64.b64encode(document).decode()},
    }
    assert json.loads(base64.b64decode(secret["data"]["spec.json"])) == {"a": {"x": [1, 2], "y": "ü"}, "b": 1}
    assert resources.spec_hash(document) == resources.spec_hash(resources.spec_json({"a": {"x": [1, 2], "y": "ü"},
                                                                                      "b": 1}))
    assert resources.spec_hash(document) != resources.spec_hash(resources.spec_json({"b": 2}))


def test_checkpoint_configmap_has_no_data() -> None:
    assert resources.checkpoint_configmap(DATAFLOW_REF) == {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "df-orders-checkpoint", "namespace": "shop", "labels": LABELS, "ownerReferences": OWNER}}


def test_rbac_grants_only_the_checkpoint_configmap() -> None:
    metadata = {"name": "df-orders-processor", "namespace": "shop", "labels": LABELS, "ownerReferences": OWNER}
    assert resources.service_account(DATAFLOW_REF) == {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": metadata}
    assert resources.role(DATAFLOW_REF) == {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": metadata,
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["df-orders-checkpoint"],
                   "verbs": ["get", "update", "patch"]}]}
    assert resources.role_binding(DATAFLOW_REF) == {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": metadata,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "df-orders-processor"},
        "subjects": [{"kind": "ServiceAccount", "name": "df-orders-processor", "namespace": "shop"}]}


def test_deployment_metadata_selector_and_template() -> None:
    deployment = build()
    assert deployment["apiVersion"] == "apps/v1" and deployment["kind"] == "Deployment"
    assert deployment["metadata"] == {"name": "df-orders", "namespace": "shop", "labels": LABELS,
                                      "ownerReferences": OWNER}
    spec = deployment["spec"]
    assert spec["replicas"] == 1
    assert spec["selector"] == {"matchLabels": {"app": "dataflow-processor", "dataflow.dataflow.io/name": "orders"}}
    assert spec["template"]["metadata"] == {"labels": LABELS,
                                            "annotations": {"dataflow.dataflow.io/spec-hash": "h" * 64}}


def test_deployment_pod_spec() -> None:
    pod = build()["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] == 600
    assert pod["serviceAccountName"] == "df-orders-processor"
    assert "automountServiceAccountToken" not in pod
    assert pod["securityContext"] == {"runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001,
                                      "fsGroup": 10001, "seccompProfile": {"type": "RuntimeDefault"}}
    assert pod["volumes"] == [{"name": "spec", "secret": {"secretName": "df-orders-spec"}},
                              {"name": "tmp", "emptyDir": {}}]
    assert pod["nodeSelector"] == {} and pod["affinity"] == {}
    assert pod["tolerations"] == [] and pod["imagePullSecrets"] == []


def test_deployment_container() -> None:
    processor = container(build())
    assert processor["name"] == "processor"
    assert processor["image"] == "reg/df:1.0"
    assert processor["command"] == ["dataflow-operator", "processor", "--spec-path=/etc/dataflow/spec.json",
                                    "--namespace=shop", "--name=orders"]
    assert processor["env"] == [{"name": "LOG_LEVEL", "value": "warn"},
                                {"name": "PROCESSOR_PROGRESS_TIMEOUT_SECONDS", "value": "60"},
                                {"name": "SENTRY_DSN", "value": "https://k@s/1"},
                                {"name": "SENTRY_RELEASE", "value": "r1"}]
    assert processor["ports"] == [{"name": "metrics", "containerPort": 9090, "protocol": "TCP"}]
    assert processor["startupProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert processor["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "metrics"}
    assert processor["resources"] == {"requests": {"cpu": "100m", "memory": "128Mi"},
                                      "limits": {"cpu": "500m", "memory": "512Mi"}}
    assert processor["lifecycle"] == {"preStop": {"exec": {"command": ["sleep", "5"]}}}
    assert processor["securityContext"] == {"runAsNonRoot": True, "readOnlyRootFilesystem": True,
                                            "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    assert processor["volumeMounts"] == [{"name": "spec", "mountPath": "/etc/dataflow", "readOnly": True},
                                         {"name": "tmp", "mountPath": "/tmp"}]


def test_deployment_takes_pod_fields_from_the_spec() -> None:
    spec = {**DATAFLOW["spec"], "replicas": 3,
            "resources": {"requests": {"cpu": "1", "memory": "1Gi"}},
            "nodeSelector": {"disk": "ssd"},
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": []}}},
            "tolerations": [{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}],
            "imagePullSecrets": [{"name": "regcred"}]}
    deployment = build(spec, replicas=resources.desired_replicas(load_spec(spec), paused=False))
    pod = deployment["spec"]["template"]["spec"]
    assert deployment["spec"]["replicas"] == 3
    assert container(deployment)["resources"] == {"requests": {"cpu": "1", "memory": "1Gi"}}
    assert pod["nodeSelector"] == {"disk": "ssd"}
    assert pod["affinity"] == spec["affinity"]
    assert pod["tolerations"] == spec["tolerations"]
    assert pod["imagePullSecrets"] == [{"name": "regcred"}]
    pod["nodeSelector"]["disk"] = "hdd"
    assert spec["nodeSelector"] == {"disk": "ssd"}, "the desired object must not alias the spec"


def test_replicas_are_zero_while_paused() -> None:
    assert resources.desired_replicas(typed(replicas=4), paused=True) == 0
    assert resources.desired_replicas(typed(), paused=False) == 1


def test_without_checkpoint_persistence_the_pod_has_no_api_credentials() -> None:
    pod = build({**DATAFLOW["spec"], "checkpointPersistence": False})["spec"]["template"]["spec"]
    assert "serviceAccountName" not in pod
    assert pod["automountServiceAccountToken"] is False


def test_reset_token_is_passed_in_the_environment() -> None:
    env = container(build(reset_token="77"))["env"]
    assert env[-1] == {"name": "DATAFLOW_CHECKPOINT_RESET_TOKEN", "value": "77"}


@pytest.mark.parametrize(("spec", "default", "expected"), [
    ({}, "reg/df:1.0", "reg/df:1.0"),
    ({"processorImage": "mine/proc:7"}, "reg/df:1.0", "mine/proc:7"),
    ({"processorVersion": "2.0"}, "reg/df:1.0", "reg/df:2.0"),
    ({"processorVersion": "2.0"}, "reg:5000/df", "reg:5000/df:2.0"),
    ({"processorVersion": "2.0"}, "reg:5000/df:1@sha256:abc", "reg:5000/df:2.0"),
    ({"processorImage": "mine/proc", "processorVersion": "3"}, "", "mine/proc:3"),
])
def test_processor_image(spec: dict[str, Any], default: str, expected: str) -> None:
    assert resources.processor_image(typed(**spec), default) == expected


def test_no_processor_image_at_all_is_an_error() -> None:
    with pytest.raises(ValueError, match="PROCESSOR_IMAGE"):
        resources.processor_image(typed(), "")


def test_controller_owner() -> None:
    assert resources.controller_owner({"metadata": {"namespace": "shop", "ownerReferences": OWNER}}) == "shop/orders"
    not_controller = [{**OWNER[0], "controller": False}]
    assert resources.controller_owner({"metadata": {"namespace": "shop", "ownerReferences": not_controller}}) is None
    other_kind = [{**OWNER[0], "kind": "ReplicaSet", "apiVersion": "apps/v1"}]
    assert resources.controller_owner({"metadata": {"namespace": "shop", "ownerReferences": other_kind}}) is None
    assert resources.controller_owner({"metadata": {}}) is None
