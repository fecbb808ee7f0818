"""The reconcile loop's decisions against an in-memory API (conflicts, failures and one-shot resets are
hard to time against a real server; the real server is in tests/integration/operator)."""

from __future__ import annotations

import base64
import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException
from prometheus_client import CollectorRegistry

from dataflow_operator.operator.events import EventRecorder
from dataflow_operator.operator.kube import Kind
from dataflow_operator.operator.metrics import OperatorMetrics
from dataflow_operator.operator.reconciler import Caches, Reconciler
from dataflow_operator.operator.resources import ProcessorSettings
from dataflow_operator.operator.store import Store

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SPEC: dict[str, Any] = {
    "source": {"type": "kafka", "config": {"brokers": ["k:9092"], "topic": "t"}},
    "sink": {"type": "postgresql", "config": {"connectionStringSecretRef": {"name": "pg", "key": "dsn"},
                                              "table": "orders"}},
}


def status_error(code: int) -> ApiException:
    error = ApiException(status=code, reason={409: "Conflict", 404: "Not Found", 500: "Internal Error"}[code])
    error.body = json.dumps({"message": f"injected {code}"})
    return error


class FakeKube:
    """Objects by (kind, namespace, name) with resourceVersions; failures injected per call name."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.version = 100
        self.calls: list[str] = []
        self.fail: dict[str, list[ApiException]] = {}
        self.events: list[dict[str, Any]] = []

    def _next(self) -> str:
        self.version += 1
        return str(self.version)

    def _maybe_fail(self, call: str) -> None:
        self.calls.append(call)
        if self.fail.get(call):
            raise self.fail[call].pop(0)

    def create(self, kind: Kind, manifest: dict[str, Any]) -> dict[str, Any]:
        self._maybe_fail(f"create {kind.name}")
        metadata = manifest["metadata"]
        key = (kind.name, metadata["namespace"], metadata["name"])
        if key in self.objects:
            raise status_error(409)
        stored = copy.deepcopy(manifest)
        stored["metadata"]["resourceVersion"] = self._next()
        self.objects[key] = stored
        return copy.deepcopy(stored)

    def replace(self, kind: Kind, manifest: dict[str, Any]) -> dict[str, Any]:
        self._maybe_fail(f"replace {kind.name}")
        metadata = manifest["metadata"]
        key = (kind.name, metadata["namespace"], metadata["name"])
        if key not in self.objects:
            raise status_error(404)
        if self.objects[key]["metadata"]["resourceVersion"] != metadata.get("resourceVersion"):
            raise status_error(409)
        stored = copy.deepcopy(manifest)
        stored["metadata"]["resourceVersion"] = self._next()
        self.objects[key] = stored
        return copy.deepcopy(stored)

    def read(self, kind: Kind, namespace: str, name: str) -> dict[str, Any] | None:
        self._maybe_fail(f"read {kind.name}")
        found = self.objects.get((kind.name, namespace, name))
        return copy.deepcopy(found) if found else None

    def read_dataflow(self, namespace: str, name: str) -> dict[str, Any] | None:
        self._maybe_fail("read DataFlow")
        found = self.objects.get(("DataFlow", namespace, name))
        return copy.deepcopy(found) if found else None

    def patch_dataflow(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        self._maybe_fail("patch DataFlow")
        stored = self.objects[("DataFlow", namespace, name)]
        for section in ("spec", "metadata"):
            for field, value in (patch.get(section) or {}).items():
                if field == "annotations":
                    annotations = stored["metadata"].setdefault("annotations", {})
                    for annotation in [k for k, v in value.items() if v is None]:
                        annotations.pop(annotation, None)
                elif value is None:
                    stored[section].pop(field, None)
        stored["metadata"]["resourceVersion"] = self._next()
        return copy.deepcopy(stored)

    def patch_dataflow_status(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        self._maybe_fail("patch DataFlow status")
        stored = self.objects[("DataFlow", namespace, name)]
        if patch["metadata"]["resourceVersion"] != stored["metadata"]["resourceVersion"]:
            raise status_error(409)
        status = stored.setdefault("status", {})
        for field, value in patch["status"].items():
            if value is None:
                status.pop(field, None)
            elif isinstance(value, dict) and isinstance(status.get(field), dict):
                status[field] = {k: v for k, v in {**status[field], **value}.items() if v is not None}
            else:
                status[field] = value
        stored["metadata"]["resourceVersion"] = self._next()
        return copy.deepcopy(stored)

    def create_event(self, namespace: str, body: dict[str, Any]) -> None:
        self.events.append(body)

    def patch_event(self, namespace: str, name: str, body: dict[str, Any]) -> bool:
        return False


class World:
    def __init__(self, *, allow_cross_namespace_secrets: bool = False) -> None:
        self.kube = FakeKube()
        self.caches = Caches(*(Store() for _ in range(7)))
        self.metrics = OperatorMetrics(CollectorRegistry())
        self.reconcile = Reconciler(self.kube, self.caches, EventRecorder(self.kube, clock=lambda: NOW),  # type: ignore[arg-type]
                                    self.metrics, ProcessorSettings(image="reg/df:1"), clock=lambda: NOW,
                                    allow_cross_namespace_secrets=allow_cross_namespace_secrets)

    def dataflow(self, spec: dict[str, Any], name: str = "orders", annotations: dict[str, str] | None = None) \
            -> dict[str, Any]:
        obj = {"apiVersion": "dataflow.dataflow.io/v1", "kind": "DataFlow",
               "metadata": {"name": name, "namespace": "shop", "uid": "u-1", "generation": 1,
                            "resourceVersion": self.kube._next(), "annotations": annotations or {}},
               "spec": copy.deepcopy(spec)}
        self.kube.objects[("DataFlow", "shop", name)] = obj
        self.sync_dataflow(name)
        return obj

    def sync_dataflow(self, name: str = "orders") -> None:
        """What the watch would deliver."""
        self.caches.dataflows.put(copy.deepcopy(self.kube.objects[("DataFlow", "shop", name)]))

    def secret(self, name: str, data: dict[str, str], namespace: str = "shop") -> None:
        self.caches.secrets.put({
            "metadata": {"name": name, "namespace": namespace, "resourceVersion": self.kube._next()},
            "data": {key: base64.b64encode(value.encode()).decode() for key, value in data.items()}})

    def status(self, name: str = "orders") -> dict[str, Any]:
        return dict(self.kube.objects[("DataFlow", "shop", name)].get("status") or {})

    def writes(self) -> list[str]:
        return [call for call in self.kube.calls if not call.startswith("read")]


def test_first_reconcile_creates_everything_and_the_second_writes_nothing() -> None:
    world = World()
    world.secret("pg", {"dsn": "postgresql://u:p@db/x"})
    world.dataflow(SPEC)
    result = world.reconcile("shop/orders")
    assert not result.error and result.requeue_after is None
    assert world.writes() == ["create Secret", "create ConfigMap", "create ServiceAccount", "create Role",
                              "create RoleBinding", "create Deployment", "patch DataFlow status"]
    assert world.status()["phase"] == "Pending"
    assert world.metrics.phases() == {("shop", "orders"): "Pending"}
    assert [event["reason"] for event in world.kube.events] == ["SecretCreated", "DeploymentCreated"]

    world.kube.calls.clear()
    world.sync_dataflow()
    assert not world.reconcile("shop/orders").error
    assert world.kube.calls == [], "a converged DataFlow costs no request at all"


def test_status_conflict_is_reread_and_retried() -> None:
    world = World()
    world.secret("pg", {"dsn": "x"})
    world.dataflow(SPEC)
    # Someone else changed the object after the cache saw it.
    world.kube.objects[("DataFlow", "shop", "orders")]["metadata"]["resourceVersion"] = world.kube._next()
    assert not world.reconcile("shop/orders").error
    assert world.kube.calls[-3:] == ["patch DataFlow status", "read DataFlow", "patch DataFlow status"]
    assert world.status()["phase"] == "Pending"


def test_a_status_that_cannot_be_written_is_retried_even_for_an_invalid_spec() -> None:
    world = World()
    world.dataflow({"source": {"type": "kafka", "config": {}}, "sink": SPEC["sink"]})
    world.kube.fail["patch DataFlow status"] = [status_error(500)]
    result = world.reconcile("shop/orders")
    assert result.error and result.retry
    assert sample(world, "validate") == 1 and sample(world, "status") == 1
    assert [event["reason"] for event in world.kube.events] == ["InvalidSpec", "StatusUpdateFailed"]
    assert world.writes() == ["patch DataFlow status"], "an invalid spec touches nothing but status"

    world.kube.fail.clear()
    result = world.reconcile("shop/orders")
    assert result.error and not result.retry, "an invalid spec waits for an edit"
    assert "spec.source.config.brokers" in world.status()["message"]


def sample(world: World, stage: str) -> float:
    value = world.metrics.registry.get_sample_value("dataflow_controller_reconcile_errors_total", {"stage": stage})
    return value or 0.0


def test_a_stale_cached_deployment_is_reread_and_updated() -> None:
    world = World()
    world.secret("pg", {"dsn": "one"})
    world.dataflow(SPEC)
    world.reconcile("shop/orders")
    cached = world.caches.deployments.get("shop/df-orders")
    assert cached is not None
    # A manual edit the watch has not delivered yet: the cached copy is stale.
    live = world.kube.objects[("Deployment", "shop", "df-orders")]
    live["spec"]["replicas"] = 7
    live["metadata"]["resourceVersion"] = world.kube._next()
    world.secret("pg", {"dsn": "two"})
    world.kube.calls.clear()
    assert not world.reconcile("shop/orders").error
    assert world.kube.calls == ["replace Secret", "replace Deployment", "read Deployment", "replace Deployment"]
    assert world.kube.objects[("Deployment", "shop", "df-orders")]["spec"]["replicas"] == 1


def test_missing_key_is_named_without_the_value_and_retried() -> None:
    world = World()
    world.secret("pg", {"password": "hunter2"})
    world.dataflow(SPEC)
    result = world.reconcile("shop/orders")
    assert result.error and result.retry
    message = world.status()["message"]
    assert message == "Failed to resolve secrets: Secret shop/pg has no key 'dsn'"
    assert "hunter2" not in json.dumps(world.kube.events)
    assert world.writes() == ["patch DataFlow status"]


def test_a_secret_not_in_the_cache_is_not_found_without_asking_the_api() -> None:
    world = World()
    world.kube.objects[("Secret", "shop", "pg")] = {  # exists, but the Secret informer has not seen it yet
        "metadata": {"name": "pg", "namespace": "shop", "resourceVersion": "5"},
        "data": {"dsn": base64.b64encode(b"postgresql://db").decode()}}
    world.dataflow(SPEC)
    result = world.reconcile("shop/orders")
    assert result.error and result.retry
    assert world.status()["message"] == "Failed to resolve secrets: Secret shop/pg not found"
    assert not [call for call in world.kube.calls if call.startswith("read")], "the reconciler reads caches only"
    world.secret("pg", {"dsn": "postgresql://db"})  # the watch delivers it
    assert not world.reconcile("shop/orders").error


@pytest.mark.parametrize("allowed", [False, True])
def test_cross_namespace_secret_references_need_permission(allowed: bool) -> None:
    world = World(allow_cross_namespace_secrets=allowed)
    world.secret("pg", {"dsn": "x"}, namespace="shared")
    spec = copy.deepcopy(SPEC)
    spec["sink"]["config"]["connectionStringSecretRef"]["namespace"] = "shared"
    world.dataflow(spec)
    result = world.reconcile("shop/orders")
    assert result.error is not allowed
    if not allowed:
        assert "Secret shared/pg is in another namespace" in world.status()["message"]


def test_checkpoint_reset_is_handed_over_once_and_cleared() -> None:
    world = World()
    world.secret("pg", {"dsn": "x"})
    requested_at = world.dataflow({**SPEC, "checkpointReset": True})["metadata"]["resourceVersion"]
    world.reconcile("shop/orders")
    env = world.kube.objects[("Deployment", "shop", "df-orders")]["spec"]["template"]["spec"]["containers"][0]["env"]
    token = {variable["name"]: variable["value"] for variable in env}["DATAFLOW_CHECKPOINT_RESET_TOKEN"]
    assert token == requested_at
    assert "checkpointReset" not in world.kube.objects[("DataFlow", "shop", "orders")]["spec"]
    document = base64.b64decode(world.kube.objects[("Secret", "shop", "df-orders-spec")]["data"]["spec.json"])
    assert "checkpointReset" not in json.loads(document)

    world.sync_dataflow()
    world.kube.calls.clear()
    world.reconcile("shop/orders")
    assert "replace Deployment" not in world.kube.calls, "clearing the request must not roll the pods again"


def test_reset_annotation_is_removed() -> None:
    world = World()
    world.secret("pg", {"dsn": "x"})
    world.dataflow(SPEC, annotations={"dataflow.dataflow.io/reset-checkpoint": "true", "keep": "me"})
    world.reconcile("shop/orders")
    annotations = world.kube.objects[("DataFlow", "shop", "orders")]["metadata"]["annotations"]
    assert annotations == {"keep": "me"}


def test_a_missing_dataflow_drops_its_series() -> None:
    world = World()
    world.secret("pg", {"dsn": "x"})
    world.dataflow(SPEC)
    world.reconcile("shop/orders")
    world.caches.dataflows.delete(world.kube.objects[("DataFlow", "shop", "orders")])
    assert not world.reconcile("shop/orders").error
    assert world.metrics.phases() == {}


def test_a_maintenance_window_requeues_at_its_boundary() -> None:
    world = World()
    world.secret("pg", {"dsn": "x"})
    world.dataflow({**SPEC, "maintenance": {"startTime": "2026-03-01T12:30:00Z", "duration": "1h"}})
    result = world.reconcile("shop/orders")
    assert result.requeue_after == pytest.approx(30 * 60, abs=1)
    assert world.status()["maintenanceStatus"] == {"inMaintenance": False, "suspended": False,
                                                   "nextMaintenanceTime": "2026-03-01T12:30:00Z"}
