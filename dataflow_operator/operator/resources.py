"""Pure builders of the objects the operator keeps for each DataFlow ``<name>`` (operator.md):

- Secret ``df-<name>-spec`` (``spec.json``: the normalised spec, SecretRefs resolved),
- ConfigMap ``df-<name>-checkpoint`` and ServiceAccount/Role/RoleBinding ``df-<name>-processor``
  (only with ``checkpointPersistence``),
- Deployment ``df-<name>``.

Objects are plain dicts in wire form (camelCase), so they compare directly with what the API server
returns. Everything here is a function of its arguments: no I/O, no clock, no environment.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..contract import (
    API_GROUP,
    API_VERSION,
    APP_LABEL,
    DEFAULT_PROGRESS_TIMEOUT_SECONDS,
    KIND,
    METRICS_PORT,
    NAME_LABEL,
    PROCESSOR_APP,
    PROGRESS_TIMEOUT_ENV,
    RESET_TOKEN_ENV,
    SPEC_DIR,
    SPEC_KEY,
    SPEC_PATH,
    checkpoint_configmap_name,
)
from ..spec.model import DEFAULT_RESOURCES

Manifest = dict[str, Any]

INSTANCE_LABEL = "app.kubernetes.io/instance"
MANAGED_BY_LABEL, MANAGER = "app.kubernetes.io/managed-by", "dataflow-operator"
SELECTOR = f"{APP_LABEL}={PROCESSOR_APP}"
SPEC_HASH_ANNOTATION = f"{API_GROUP}/spec-hash"
CONTAINER = "processor"
# The same unprivileged ids as the operator's own pod in the chart.
RUN_AS = 10001
TERMINATION_GRACE_SECONDS = 600
PRE_STOP_SLEEP_SECONDS = 5


@dataclass(frozen=True, slots=True)
class ProcessorSettings:
    """What the operator's environment contributes to every processor pod."""

    image: str = ""
    log_level: str = "info"
    progress_timeout_seconds: str = str(DEFAULT_PROGRESS_TIMEOUT_SECONDS)
    sentry_env: tuple[tuple[str, str], ...] = field(default=())

    @staticmethod
    def from_environ(environ: Mapping[str, str]) -> ProcessorSettings:
        return ProcessorSettings(
            image=environ.get("PROCESSOR_IMAGE", "").strip(),
            log_level=environ.get("PROCESSOR_LOG_LEVEL", "").strip() or "info",
            progress_timeout_seconds=(environ.get(PROGRESS_TIMEOUT_ENV, "").strip()
                                      or str(DEFAULT_PROGRESS_TIMEOUT_SECONDS)),
            sentry_env=tuple(sorted((key, value) for key, value in environ.items() if key.startswith("SENTRY_"))),
        )


@dataclass(frozen=True, slots=True)
class Names:
    spec_secret: str
    checkpoint: str
    processor: str
    deployment: str

    @staticmethod
    def of(name: str) -> Names:
        return Names(f"df-{name}-spec", checkpoint_configmap_name(name), f"df-{name}-processor", f"df-{name}")


def labels(name: str) -> dict[str, str]:
    return {APP_LABEL: PROCESSOR_APP, NAME_LABEL: name, INSTANCE_LABEL: name, MANAGED_BY_LABEL: MANAGER}


def selector_labels(name: str) -> dict[str, str]:
    """The Deployment's selector: immutable, so only labels that never change."""
    return {APP_LABEL: PROCESSOR_APP, NAME_LABEL: name}


def owner_reference(dataflow: Mapping[str, Any]) -> dict[str, Any]:
    metadata = dataflow["metadata"]
    return {"apiVersion": API_VERSION, "kind": KIND, "name": metadata["name"], "uid": metadata["uid"],
            "controller": True, "blockOwnerDeletion": True}


def _metadata(dataflow: Mapping[str, Any], name: str) -> dict[str, Any]:
    metadata = dataflow["metadata"]
    return {"name": name, "namespace": metadata["namespace"], "labels": labels(metadata["name"]),
            "ownerReferences": [owner_reference(dataflow)]}


def spec_json(resolved_spec: Mapping[str, Any]) -> bytes:
    """Canonical JSON (sorted keys, no whitespace) so that equal specs give equal bytes and hashes."""
    return json.dumps(resolved_spec, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def spec_hash(document: bytes) -> str:
    return hashlib.sha256(document).hexdigest()


def spec_secret(dataflow: Mapping[str, Any], document: bytes) -> Manifest:
    return {"apiVersion": "v1", "kind": "Secret",
            "metadata": _metadata(dataflow, Names.of(dataflow["metadata"]["name"]).spec_secret),
            "type": "Opaque", "data": {SPEC_KEY: base64.b64encode(document).decode("ascii")}}


def checkpoint_configmap(dataflow: Mapping[str, Any]) -> Manifest:
    """No ``data``: the processor owns the positions; the operator only makes sure the object exists."""
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": _metadata(dataflow, Names.of(dataflow["metadata"]["name"]).checkpoint)}


def service_account(dataflow: Mapping[str, Any]) -> Manifest:
    return {"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": _metadata(dataflow, Names.of(dataflow["metadata"]["name"]).processor)}


def role(dataflow: Mapping[str, Any]) -> Manifest:
    names = Names.of(dataflow["metadata"]["name"])
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": _metadata(dataflow, names.processor),
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "resourceNames": [names.checkpoint],
                       "verbs": ["get", "update", "patch"]}]}


def role_binding(dataflow: Mapping[str, Any]) -> Manifest:
    names = Names.of(dataflow["metadata"]["name"])
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": _metadata(dataflow, names.processor),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": names.processor},
            "subjects": [{"kind": "ServiceAccount", "name": names.processor,
                          "namespace": dataflow["metadata"]["namespace"]}]}


def processor_image(spec: Mapping[str, Any], default_image: str) -> str:
    """``spec.processorImage`` (else the operator's PROCESSOR_IMAGE), tagged ``spec.processorVersion``
    when given. Raises ValueError when there is no image at all."""
    image = str(spec.get("processorImage") or default_image).strip()
    if not image:
        raise ValueError("no processor image: set spec.processorImage or the operator's PROCESSOR_IMAGE")
    version = spec.get("processorVersion")
    if version:
        repository = image.split("@", 1)[0]
        if ":" in repository.rsplit("/", 1)[-1]:
            repository = repository.rsplit(":", 1)[0]
        image = f"{repository}:{version}"
    return image


def processor_env(settings: ProcessorSettings, reset_token: str | None) -> list[dict[str, str]]:
    env = [{"name": "LOG_LEVEL", "value": settings.log_level},
           {"name": PROGRESS_TIMEOUT_ENV, "value": settings.progress_timeout_seconds}]
    env += [{"name": key, "value": value} for key, value in settings.sentry_env]
    if reset_token:
        env.append({"name": RESET_TOKEN_ENV, "value": reset_token})
    return env


def deployment(dataflow: Mapping[str, Any], spec: Mapping[str, Any], *, document_hash: str,
               settings: ProcessorSettings, replicas: int, reset_token: str | None = None) -> Manifest:
    """The processor Deployment. ``spec`` is the validated DataFlow spec (pod fields are read from it),
    ``replicas`` already accounts for maintenance (0 while paused)."""
    metadata = dataflow["metadata"]
    name, namespace = metadata["name"], metadata["namespace"]
    names = Names.of(name)
    persistence = spec.get("checkpointPersistence", True) is not False
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": processor_image(spec, settings.image),
        "command": ["dataflow-operator", "processor", f"--spec-path={SPEC_PATH}",
                    f"--namespace={namespace}", f"--name={name}"],
        "env": processor_env(settings, reset_token),
        "ports": [{"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"}],
        "startupProbe": {"httpGet": {"path": "/readyz", "port": "metrics"},
                         "periodSeconds": 5, "timeoutSeconds": 2, "failureThreshold": 60},
        "livenessProbe": {"httpGet": {"path": "/livez", "port": "metrics"},
                          "periodSeconds": 10, "timeoutSeconds": 2, "failureThreshold": 3},
        "resources": copy.deepcopy(spec.get("resources") or DEFAULT_RESOURCES),
        # An exec sleep rather than the newer `sleep` action: that one needs Kubernetes >= 1.30, and a
        # field an older API server drops would differ from the desired object on every reconcile.
        "lifecycle": {"preStop": {"exec": {"command": ["sleep", str(PRE_STOP_SLEEP_SECONDS)]}}},
        "securityContext": {"runAsNonRoot": True, "readOnlyRootFilesystem": True,
                            "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
        "volumeMounts": [{"name": "spec", "mountPath": SPEC_DIR, "readOnly": True},
                         # The root filesystem is read-only; TLS material from spec.json is written here.
                         {"name": "tmp", "mountPath": "/tmp"}],
    }
    pod_spec: dict[str, Any] = {
        "containers": [container],
        "terminationGracePeriodSeconds": TERMINATION_GRACE_SECONDS,
        "securityContext": {"runAsNonRoot": True, "runAsUser": RUN_AS, "runAsGroup": RUN_AS, "fsGroup": RUN_AS,
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "volumes": [{"name": "spec", "secret": {"secretName": names.spec_secret}},
                    {"name": "tmp", "emptyDir": {}}],
        # Always present (empty when unset) so that removing one from the spec removes it from the pod.
        "nodeSelector": copy.deepcopy(spec.get("nodeSelector") or {}),
        "affinity": copy.deepcopy(spec.get("affinity") or {}),
        "tolerations": copy.deepcopy(spec.get("tolerations") or []),
        "imagePullSecrets": copy.deepcopy(spec.get("imagePullSecrets") or []),
    }
    if persistence:
        pod_spec["serviceAccountName"] = names.processor
    else:
        # Without a checkpoint ConfigMap the processor never talks to the API server.
        pod_spec["automountServiceAccountToken"] = False
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": _metadata(dataflow, names.deployment),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": selector_labels(name)},
            "template": {"metadata": {"labels": labels(name),
                                      "annotations": {SPEC_HASH_ANNOTATION: document_hash}},
                         "spec": pod_spec},
        },
    }


def desired_replicas(spec: Mapping[str, Any], paused: bool) -> int:
    return 0 if paused else int(spec.get("replicas") or 1)


def controller_owner(obj: Mapping[str, Any]) -> str | None:
    """``namespace/name`` of the DataFlow that controls ``obj``, if any."""
    metadata = obj.get("metadata") or {}
    for reference in metadata.get("ownerReferences") or []:
        if (reference.get("controller") and reference.get("kind") == KIND
                and str(reference.get("apiVersion", "")).split("/")[0] == API_GROUP):
            return f"{metadata.get('namespace')}/{reference.get('name')}"
    return None
