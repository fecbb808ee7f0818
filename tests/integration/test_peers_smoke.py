"""Each test peer is the real thing: data goes through it and comes back, errors are its own."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import psycopg
import pytest
import yaml
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from kubernetes import client as k8s
from kubernetes import watch
from kubernetes.client.exceptions import ApiException
from prometheus_client import CollectorRegistry, Gauge, start_http_server

from tests.peers.apiserver import KubeAPIServer
from tests.peers.kafka import KafkaBroker
from tests.peers.kube import create_namespace, create_pod, set_pod_ready
from tests.peers.postgres import PostgresServer
from tests.peers.process import free_port, wait_until

GROUP, VERSION, PLURAL = "smoke.dataflow.test", "v1", "widgets"

CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": f"{PLURAL}.{GROUP}"},
    "spec": {
        "group": GROUP,
        "scope": "Namespaced",
        "names": {"plural": PLURAL, "singular": "widget", "kind": "Widget"},
        "versions": [{
            "name": VERSION, "served": True, "storage": True,
            "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                "spec": {"type": "object", "properties": {"size": {"type": "integer"}}}}}},
        }],
    },
}


# ------------------------------------------------------------------------------------------------
# Kafka


def _consume(consumer: Consumer, count: int, deadline_s: float) -> list[bytes]:
    values: list[bytes] = []
    deadline = time.monotonic() + deadline_s
    while len(values) < count and time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is None:
            continue
        error = message.error()
        if error is not None:
            assert error.code() == KafkaError._PARTITION_EOF, error
            continue
        value = message.value()
        assert value is not None
        values.append(value)
    return values


def test_kafka_round_trip_with_group_offsets(kafka: KafkaBroker) -> None:
    topic = kafka.new_topic(partitions=2)
    producer = Producer({"bootstrap.servers": kafka.bootstrap, "acks": "all"})
    delivered: list[Any] = []
    sent = [f"message-{i}".encode() for i in range(20)]
    for index, value in enumerate(sent):
        # Explicit partitions: the sticky partitioner may put all 20 in one, leaving the other
        # partition with no committed offset at all.
        producer.produce(topic, value, partition=index % 2,
                         on_delivery=lambda err, msg: delivered.append(err or msg))
    assert producer.flush(30) == 0
    assert all(not isinstance(item, KafkaError) for item in delivered) and len(delivered) == len(sent)

    group = f"smoke-{uuid.uuid4().hex[:8]}"
    config = {"bootstrap.servers": kafka.bootstrap, "group.id": group, "auto.offset.reset": "earliest",
              "enable.auto.commit": False}
    consumer = Consumer(config)
    try:
        consumer.subscribe([topic])
        received = _consume(consumer, len(sent), deadline_s=60)
        assert sorted(received) == sorted(sent)
        consumer.commit(asynchronous=False)
        committed = consumer.committed([TopicPartition(topic, 0), TopicPartition(topic, 1)], timeout=10)
        assert sum(tp.offset for tp in committed) == len(sent)
    finally:
        consumer.close()

    # A new member of the same group resumes from the committed offsets: nothing is delivered twice.
    producer.produce(topic, b"after-commit")
    assert producer.flush(30) == 0
    resumed = Consumer(config)
    try:
        resumed.subscribe([topic])
        assert _consume(resumed, 1, deadline_s=60) == [b"after-commit"]
        assert _consume(resumed, 1, deadline_s=2) == []
    finally:
        resumed.close()


def test_kafka_stop_and_start_keeps_data(kafka: KafkaBroker) -> None:
    topic = kafka.new_topic()
    producer = Producer({"bootstrap.servers": kafka.bootstrap})
    producer.produce(topic, b"durable")
    assert producer.flush(30) == 0
    kafka.stop()
    try:
        host, port = kafka.bootstrap.split(":")
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((host, int(port)), timeout=2).close()
    finally:
        kafka.start()
    consumer = Consumer({"bootstrap.servers": kafka.bootstrap, "group.id": f"g-{uuid.uuid4().hex[:8]}",
                         "auto.offset.reset": "earliest"})
    try:
        consumer.subscribe([topic])
        assert _consume(consumer, 1, deadline_s=60) == [b"durable"]
    finally:
        consumer.close()


# ------------------------------------------------------------------------------------------------
# PostgreSQL


def test_postgres_copy_round_trip(postgres: PostgresServer) -> None:
    dsn = postgres.new_database()
    assert dsn != postgres.dsn and str(postgres.port) in dsn
    rows = [(i, f"name-{i}", {"n": i}) for i in range(100)]
    with psycopg.connect(dsn) as conn:
        conn.execute("CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, doc jsonb)")
        with conn.cursor() as cur, cur.copy("COPY items (id, name, doc) FROM STDIN") as copy:
            for row_id, name, doc in rows:
                copy.write_row((row_id, name, json.dumps(doc)))
        back = conn.execute("SELECT id, name, doc FROM items ORDER BY id").fetchall()
    assert back == rows


def test_postgres_stop_and_start(postgres: PostgresServer) -> None:
    dsn = postgres.new_database()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (v int)")
        conn.execute("INSERT INTO t VALUES (7)")
    postgres.stop()
    try:
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(dsn, connect_timeout=2).close()
    finally:
        postgres.start()
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT v FROM t").fetchall() == [(7,)]


# ------------------------------------------------------------------------------------------------
# kube-apiserver


@pytest.fixture(scope="module")
def widgets(kube_apiserver: KubeAPIServer, tmp_path_factory: pytest.TempPathFactory) -> str:
    crd_file = tmp_path_factory.mktemp("crds") / "widgets.yaml"
    crd_file.write_text(yaml.safe_dump(CRD))
    assert kube_apiserver.install_crds(crd_file) == [f"{PLURAL}.{GROUP}"]
    return PLURAL


@pytest.fixture
def admin(kube_apiserver: KubeAPIServer) -> Iterator[k8s.ApiClient]:
    with kube_apiserver.api_client() as api_client:
        yield api_client


def _namespace(admin: k8s.ApiClient, prefix: str) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    create_namespace(admin, name)
    return name


def test_crd_object_watch_event_and_conflict(admin: k8s.ApiClient, widgets: str) -> None:
    custom = k8s.CustomObjectsApi(admin)
    namespace = _namespace(admin, "smoke")
    listing = cast(dict[str, Any], custom.list_namespaced_custom_object(GROUP, VERSION, namespace, widgets))
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Widget", "metadata": {"name": "w1"},
            "spec": {"size": 1}}
    created = cast(dict[str, Any],
                   custom.create_namespaced_custom_object(GROUP, VERSION, namespace, widgets, body))

    # Watch from the list's resourceVersion: the creation must arrive as an event, not be missed.
    events = watch.Watch().stream(  # type: ignore[no-untyped-call]
        custom.list_namespaced_custom_object, GROUP, VERSION, namespace, widgets,
        resource_version=listing["metadata"]["resourceVersion"], timeout_seconds=30)
    first = next(events)
    events.close()
    assert first["type"] == "ADDED"
    assert first["object"]["metadata"]["uid"] == created["metadata"]["uid"]

    custom.replace_namespaced_custom_object(GROUP, VERSION, namespace, widgets, "w1",
                                            {**created, "spec": {"size": 2}})
    with pytest.raises(ApiException) as conflict:  # still carries the first resourceVersion
        custom.replace_namespaced_custom_object(GROUP, VERSION, namespace, widgets, "w1",
                                                {**created, "spec": {"size": 3}})
    assert conflict.value.status == 409


def _audit_events(kube_apiserver: KubeAPIServer) -> list[dict[str, Any]]:
    return [json.loads(line) for line in kube_apiserver.audit_log.read_text().splitlines() if line]


def test_restricted_identity_is_forbidden_until_granted(kube_apiserver: KubeAPIServer,
                                                        admin: k8s.ApiClient) -> None:
    namespace = _namespace(admin, "rbac")
    # "viewer": the operator tests grant the chart's ClusterRole to "operator" in the same session.
    with kube_apiserver.api_client(kube_apiserver.kubeconfig_for("viewer")) as restricted:
        core = k8s.CoreV1Api(restricted)
        with pytest.raises(ApiException) as denied:
            core.list_namespaced_pod(namespace)
        assert denied.value.status == 403

        rbac = k8s.RbacAuthorizationV1Api(admin)
        rbac.create_namespaced_role(namespace, k8s.V1Role(
            metadata=k8s.V1ObjectMeta(name="pod-reader"),
            rules=[k8s.V1PolicyRule(api_groups=[""], resources=["pods"], verbs=["list"])]))
        rbac_group = "rbac.authorization.k8s.io"
        rbac.create_namespaced_role_binding(namespace, k8s.V1RoleBinding(
            metadata=k8s.V1ObjectMeta(name="viewer-pod-reader"),
            role_ref=k8s.V1RoleRef(api_group=rbac_group, kind="Role", name="pod-reader"),
            subjects=[k8s.RbacV1Subject(kind="User", name="viewer", api_group=rbac_group)]))
        # The authorizer sees new bindings through an informer: poll, do not sleep.
        assert wait_until(lambda: core.list_namespaced_pod(namespace).items == [], deadline_s=30,
                          what="the binding takes effect")
        # "nobody" got nothing (no test ever grants it anything).
        with (kube_apiserver.api_client(kube_apiserver.kubeconfig_for("nobody")) as other,
              pytest.raises(ApiException) as still_denied):
            k8s.CoreV1Api(other).list_namespaced_pod(namespace)
        assert still_denied.value.status == 403

    def denial_audited() -> bool:
        return any(event["user"]["username"] == "viewer" and event["verb"] == "list"
                   and event.get("objectRef", {}).get("namespace") == namespace
                   and event["responseStatus"]["code"] == 403 for event in _audit_events(kube_apiserver))

    assert wait_until(denial_audited, deadline_s=10, what="the 403 is in the audit log")
    creates = [e for e in _audit_events(kube_apiserver)
               if e["verb"] == "create" and e.get("objectRef", {}).get("namespace") == namespace]
    assert {e["objectRef"]["resource"] for e in creates} == {"roles", "rolebindings"}
    assert {e["user"]["username"] for e in creates} == {"admin"}


def _ready(pod: k8s.V1Pod) -> str | None:
    assert pod.status is not None
    return next(c.status for c in pod.status.conditions or [] if c.type == "Ready")


def test_pod_helpers_stand_in_for_a_kubelet(admin: k8s.ApiClient) -> None:
    namespace = _namespace(admin, "pods")
    core = k8s.CoreV1Api(admin)
    owner = core.create_namespaced_config_map(namespace,
                                              k8s.V1ConfigMap(metadata=k8s.V1ObjectMeta(name="owner")))
    pod = create_pod(admin, namespace, "p-0", {"app": "smoke"}, "127.0.0.2", owner=owner)
    assert pod.status is not None and pod.metadata is not None and owner.metadata is not None
    assert pod.status.phase == "Running" and pod.status.pod_ip == "127.0.0.2"
    assert [ref.uid for ref in pod.metadata.owner_references or []] == [owner.metadata.uid]
    assert _ready(pod) == "True"

    assert _ready(set_pod_ready(admin, namespace, "p-0", False)) == "False"
    reread = core.read_namespaced_pod("p-0", namespace)
    assert _ready(reread) == "False"
    assert reread.status is not None and reread.status.pod_ip == "127.0.0.2"


def test_apiserver_restart_keeps_state(kube_apiserver: KubeAPIServer, admin: k8s.ApiClient) -> None:
    name = _namespace(admin, "restart")
    kube_apiserver.restart()
    with kube_apiserver.api_client() as fresh:
        assert k8s.CoreV1Api(fresh).read_namespace(name).metadata is not None


# ------------------------------------------------------------------------------------------------
# Prometheus, promtool, helm


def test_prometheus_scrapes_a_target(prometheus: Callable[..., Any]) -> None:
    registry = CollectorRegistry()
    Gauge("smoke_answer", "A value only this target exposes.", registry=registry).set(42)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    try:
        prom = prometheus([f"127.0.0.1:{port}"])
        result = prom.wait_for('smoke_answer{job="test"}', deadline_s=30)
        assert result[0]["metric"]["instance"] == f"127.0.0.1:{port}"
        assert float(result[0]["value"][1]) == 42.0
        assert prom.query("up == 1")[0]["metric"]["instance"] == f"127.0.0.1:{port}"
    finally:
        server.shutdown()
        thread.join(10)


def test_promtool_checks_rules(promtool: Path, tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump({"groups": [{"name": "g", "rules": [
        {"alert": "DataflowError", "expr": 'dataflow_status{phase="Error"} == 1', "for": "5m"}]}]}))
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"groups": [{"name": "g", "rules": [
        {"alert": "Broken", "expr": "sum(rate(x[5m]) by"}]}]}))
    ok = subprocess.run([promtool, "check", "rules", good], capture_output=True, text=True, check=False)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    broken = subprocess.run([promtool, "check", "rules", bad], capture_output=True, text=True, check=False)
    assert broken.returncode != 0
    assert "parse error" in (broken.stdout + broken.stderr)


def test_helm_version(helm: Path) -> None:
    result = subprocess.run([helm, "version", "--short"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("v3.")
