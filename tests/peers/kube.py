"""Objects a cluster would create on its own, made by hand for the kubelet-less test API server.

Without a scheduler and kubelet no Pod ever runs: tests create the Pod objects their scenario needs and
set `status` (phase, podIP, Ready) through the status subresource, as a kubelet would.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

STRATEGIC_MERGE = "application/strategic-merge-patch+json"
PROCESSOR_IMAGE = "dataflow-operator:test"


def create_namespace(api_client: k8s.ApiClient, name: str) -> k8s.V1Namespace:
    """Create a namespace (returning the existing one if it is already there)."""
    core = k8s.CoreV1Api(api_client)
    try:
        return core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=name)))
    except ApiException as exc:
        if exc.status != 409:
            raise
        return core.read_namespace(name)


def _owner_reference(api_client: k8s.ApiClient, owner: Any) -> k8s.V1OwnerReference:
    """Accept an ownerReference (dict or V1OwnerReference) or an object (dict or model) to own the pod;
    an object becomes a controller reference, as a ReplicaSet's is on its pods."""
    if isinstance(owner, k8s.V1OwnerReference):
        return owner
    data: Mapping[str, Any] = (owner if isinstance(owner, Mapping)
                               else api_client.sanitize_for_serialization(owner))  # type: ignore[no-untyped-call]
    if "uid" in data:  # already an owner reference
        reference = dict(data)
    else:
        metadata = data["metadata"]
        reference = {"apiVersion": data["apiVersion"], "kind": data["kind"], "name": metadata["name"],
                     "uid": metadata["uid"], "controller": True, "blockOwnerDeletion": True}
    model = k8s.V1OwnerReference.from_dict(reference)
    assert model is not None
    return model


def _conditions(ready: bool) -> list[dict[str, str]]:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    status = "True" if ready else "False"
    return [{"type": kind, "status": status, "lastTransitionTime": now}
            for kind in ("Ready", "ContainersReady")]


def create_pod(  # noqa: PLR0917 - positional signature shared with the other test suites
    api_client: k8s.ApiClient, namespace: str, name: str, labels: Mapping[str, str], pod_ip: str,
    ready: bool = True, owner: Any = None,
) -> k8s.V1Pod:
    """Create a Pod and report it Running at `pod_ip` (Ready or not) through the status subresource."""
    core = k8s.CoreV1Api(api_client)
    pod = k8s.V1Pod(
        api_version="v1", kind="Pod",
        metadata=k8s.V1ObjectMeta(
            name=name, namespace=namespace, labels=dict(labels),
            owner_references=[_owner_reference(api_client, owner)] if owner is not None else None),
        spec=k8s.V1PodSpec(containers=[k8s.V1Container(
            name="processor", image=PROCESSOR_IMAGE,
            ports=[k8s.V1ContainerPort(name="metrics", container_port=9090)])]),
    )
    core.create_namespaced_pod(namespace, pod)
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    status = {"status": {
        "phase": "Running", "podIP": pod_ip, "podIPs": [{"ip": pod_ip}], "hostIP": "127.0.0.1",
        "startTime": now, "conditions": _conditions(ready),
    }}
    return core.patch_namespaced_pod_status(name, namespace, status, _content_type=STRATEGIC_MERGE)


def set_pod_ready(api_client: k8s.ApiClient, namespace: str, name: str, ready: bool) -> k8s.V1Pod:
    """Flip the pod's Ready/ContainersReady conditions, as a kubelet does when a probe changes."""
    # Strategic merge patches merge `conditions` by `type`, leaving the other status fields alone.
    patch = {"status": {"conditions": _conditions(ready)}}
    return k8s.CoreV1Api(api_client).patch_namespaced_pod_status(name, namespace, patch,
                                                                 _content_type=STRATEGIC_MERGE)
