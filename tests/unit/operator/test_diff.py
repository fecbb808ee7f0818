"""The semantic diff: only fields the operator sets count; server defaults and canonical forms do not."""

from __future__ import annotations

from typing import Any

from dataflow_operator.operator.diff import first_difference, update_body

DESIRED: dict[str, Any] = {
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "df-a", "namespace": "ns", "labels": {"app": "dataflow-processor"},
                 "ownerReferences": [{"kind": "DataFlow", "name": "a", "uid": "u", "controller": True}]},
    "spec": {"replicas": 1, "template": {"spec": {
        "nodeSelector": {}, "tolerations": [],
        "containers": [{"name": "processor", "image": "img", "resources": {"limits": {"cpu": "0.5", "memory": "1Gi"}},
                        "securityContext": {"allowPrivilegeEscalation": False}}]}}},
}


def live_version() -> dict[str, Any]:
    """What an API server returns for DESIRED: defaults added, quantities canonicalised, empties omitted."""
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "df-a", "namespace": "ns", "resourceVersion": "9", "uid": "x", "generation": 2,
                     "labels": {"app": "dataflow-processor", "added-by-someone": "yes"},
                     "ownerReferences": [{"kind": "DataFlow", "name": "a", "uid": "u", "controller": True}],
                     "managedFields": [{"manager": "kubectl"}]},
        "spec": {"replicas": 1, "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600, "template": {"spec": {
            "dnsPolicy": "ClusterFirst", "restartPolicy": "Always",
            "containers": [{"name": "processor", "image": "img", "imagePullPolicy": "IfNotPresent",
                            "terminationMessagePath": "/dev/termination-log",
                            "resources": {"limits": {"cpu": "500m", "memory": "1Gi"}},
                            "securityContext": {"allowPrivilegeEscalation": False}}]}}},
        "status": {"readyReplicas": 1},
    }


def test_server_defaults_and_canonical_quantities_are_not_differences() -> None:
    assert first_difference(DESIRED, live_version()) is None


def test_missing_live_object_differs() -> None:
    assert first_difference(DESIRED, None) == "."


def test_a_changed_field_is_named_by_path() -> None:
    live = live_version()
    live["spec"]["template"]["spec"]["containers"][0]["image"] = "old"
    assert first_difference(DESIRED, live) == ".spec.template.spec.containers[0].image"
    live = live_version()
    live["spec"]["replicas"] = 0
    assert first_difference(DESIRED, live) == ".spec.replicas"


def test_a_value_removed_from_the_spec_is_a_difference() -> None:
    live = live_version()
    live["spec"]["template"]["spec"]["nodeSelector"] = {"disk": "ssd"}
    assert first_difference(DESIRED, live) == ".spec.template.spec.nodeSelector"


def test_lists_compare_by_length_and_position() -> None:
    live = live_version()
    live["spec"]["template"]["spec"]["containers"].append({"name": "sidecar"})
    assert first_difference(DESIRED, live) == ".spec.template.spec.containers"


def test_booleans_are_not_numbers() -> None:
    assert first_difference({"a": False}, {"a": 0}) == ".a"
    assert first_difference({"a": True}, {"a": True}) is None
    assert first_difference({"a": False}, {}) == ".a", "an explicit false must be present"


def test_quantities_compare_by_value_only_under_resources() -> None:
    assert first_difference({"resources": {"cpu": 1}}, {"resources": {"cpu": "1000m"}}) is None
    assert first_difference({"resources": {"cpu": "2"}}, {"resources": {"cpu": "1"}}) == ".resources.cpu"
    assert first_difference({"value": "1000m"}, {"value": "1"}) == ".value"


def test_update_body_keeps_what_others_own_and_replaces_what_the_operator_owns() -> None:
    live = live_version()
    live["spec"]["template"]["spec"]["containers"][0]["image"] = "old"
    body = update_body(live, DESIRED)
    assert body["metadata"]["resourceVersion"] == "9", "optimistic concurrency"
    assert body["metadata"]["labels"] == {"app": "dataflow-processor", "added-by-someone": "yes"}
    assert body["spec"]["revisionHistoryLimit"] == 10
    assert body["spec"]["template"] == DESIRED["spec"]["template"]
    assert "status" not in body
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "old", "live is not modified"
    assert first_difference(DESIRED, body) is None


def test_update_body_keeps_configmap_data() -> None:
    live = {"metadata": {"name": "c", "resourceVersion": "3", "labels": {"x": "1"}}, "data": {"position": "42"}}
    desired = {"metadata": {"name": "c", "labels": {"app": "dataflow-processor"}, "ownerReferences": [{"uid": "u"}]}}
    body = update_body(live, desired)
    assert body["data"] == {"position": "42"}
    assert body["metadata"]["labels"] == {"x": "1", "app": "dataflow-processor"}
    assert body["metadata"]["ownerReferences"] == [{"uid": "u"}]


def test_update_body_replaces_secret_data_whole() -> None:
    live = {"metadata": {"name": "s", "resourceVersion": "3"}, "data": {"spec.json": "b2xk", "stray": "eA=="}}
    body = update_body(live, {"metadata": {"name": "s"}, "type": "Opaque", "data": {"spec.json": "bmV3"}})
    assert body["data"] == {"spec.json": "bmV3"}
