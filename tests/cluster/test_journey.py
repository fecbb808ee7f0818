"""The user's whole journey on a real single-node cluster (tests/peers/cluster.py), with the chart and
the image built from the Dockerfile: helm install, a Secret and a DataFlow, the processor pod made by
the real Deployment -> ReplicaSet -> Pod chain, data in PostgreSQL and the error topic, metrics in
Prometheus, a spec change, a pod deleted, a maintenance window, the operator pod killed, and
everything deleted again.

The steps run in order on one cluster and build on each other (as a user's would); a failed step
makes the later ones fail too, each with its own message.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from kubernetes import client as k8s

from dataflow_operator.operator import resources
from tests.cluster.journey import (
    CHART,
    GROUP,
    OPERATOR_NAMESPACE,
    PLURAL,
    RELEASE,
    VERSION,
    Helm,
    as_json,
    consume_all,
    dataflow_manifest,
    lease_holder,
    pod_log,
    produce,
    ready_pods,
    rows,
    wait_for,
)
from tests.peers.cluster import LocalCluster
from tests.peers.kafka import KafkaBroker
from tests.peers.node_images import ProjectImage
from tests.peers.postgres import PostgresServer

pytestmark = pytest.mark.slow

NAMESPACE = "data"
DATAFLOW = "orders"
OPERATOR_SELECTOR = f"app.kubernetes.io/name={RELEASE},app.kubernetes.io/instance={RELEASE}"
PROCESSOR_SELECTOR = f"{resources.NAME_LABEL}={DATAFLOW}"


@dataclass
class Journey:
    cluster: LocalCluster
    api: k8s.ApiClient
    helm: Helm
    image: ProjectImage
    kafka: KafkaBroker
    dsn: str
    topic: str
    error_topic: str

    @property
    def core(self) -> k8s.CoreV1Api:
        return k8s.CoreV1Api(self.api)

    @property
    def apps(self) -> k8s.AppsV1Api:
        return k8s.AppsV1Api(self.api)

    @property
    def custom(self) -> k8s.CustomObjectsApi:
        return k8s.CustomObjectsApi(self.api)

    def pod_logs(self, namespace: str, selector: str) -> str:
        pod_logs_dir = self.cluster.base_dir / "kubelet" / "pod-logs"
        return "\n".join(f"--- {pod.metadata.name}\n{pod_log(pod_logs_dir, namespace, pod.metadata.name)}"
                         for pod in self.core.list_namespaced_pod(namespace, label_selector=selector).items)


@pytest.fixture(scope="module")
def journey(cluster: LocalCluster, node_kafka: KafkaBroker, node_postgres: PostgresServer,
            project_image: ProjectImage, helm: Path) -> Iterator[Journey]:
    assert cluster.apiserver is not None
    with cluster.apiserver.api_client() as api:
        yield Journey(cluster, api, Helm(helm, cluster.apiserver.admin_kubeconfig), project_image, node_kafka,
                      node_postgres.new_database(), node_kafka.new_topic(partitions=2), node_kafka.new_topic())


# --------------------------------------------------------------------------------------------------
# 1. helm install


def test_1_helm_install_brings_up_the_operator_which_takes_the_lease(journey: Journey) -> None:
    journey.helm("install", RELEASE, str(CHART), "--namespace", OPERATOR_NAMESPACE, "--create-namespace",
                 "--set", f"image.repository={journey.image.repository}", "--set", f"image.tag={journey.image.tag}",
                 # Imported, never pulled: there is no registry.
                 "--set", "image.pullPolicy=Never", "--set", "replicaCount=2")

    def both_ready() -> list[k8s.V1Pod] | None:
        pods = ready_pods(journey.core, OPERATOR_NAMESPACE, OPERATOR_SELECTOR)
        return pods if len(pods) == 2 else None

    try:
        pods = wait_for(both_ready, "both operator pods are Ready")
        holder = wait_for(lambda: lease_holder(k8s.CoordinationV1Api(journey.api)), "an operator holds the Lease")
    except Exception:
        print(journey.pod_logs(OPERATOR_NAMESPACE, OPERATOR_SELECTOR))
        raise
    assert any(holder.startswith(f"{pod.metadata.name}_") for pod in pods), (holder, [p.metadata.name for p in pods])


# --------------------------------------------------------------------------------------------------
# 2. a Secret and a DataFlow: Kafka -> transformations -> PostgreSQL, poison to the error topic

ORDERS = 120


def orders() -> tuple[list[bytes], set[int], int]:
    """The payloads, the ids that must arrive in PostgreSQL, and how many must go to the error topic."""
    payloads, expected, poison = [], set(), 0
    for order_id in range(ORDERS):
        if order_id % 10 == 3:  # a total that is not a number: the cast fails
            payloads.append(as_json({"id": order_id, "status": "new", "total": "n/a"}))
            poison += 1
        else:
            payloads.append(as_json({"id": order_id, "status": "new", "total": f"{order_id}.25"}))
            expected.add(order_id)
    for garbage in (b"not json", b"[1, 2]", b"\xff\xfe"):  # not a JSON object: the sink refuses it
        payloads.append(garbage)
        poison += 1
    return payloads, expected, poison


def dataflow_spec(journey: Journey) -> dict[str, object]:
    brokers = [journey.kafka.bootstrap]
    return {
        "source": {"type": "kafka", "config": {"brokers": brokers, "topic": journey.topic,
                                               "consumerGroup": "journey-orders"}},
        # No filter: it would drop what is not a JSON object, which must reach the sink and be refused.
        "transformations": [
            {"type": "cast", "config": {"spec": {"total": "float64"}}},
            {"type": "timestamp", "config": {"fieldName": "ingested_at"}},
        ],
        "sink": {"type": "postgresql", "config": {
            "connectionStringSecretRef": {"name": "pg", "key": "dsn"}, "table": "public.orders",
            "autoCreateTable": True, "upsertMode": True, "conflictKey": "id",
            "batchSize": 50, "batchFlushIntervalSeconds": 1}},
        "errors": {"type": "kafka", "config": {"brokers": brokers, "topic": journey.error_topic}},
    }


def order_ids(dsn: str, at_least: int) -> set[int] | None:
    try:
        found = {int(row[0]) for row in rows(dsn, "SELECT id FROM public.orders")}
    except psycopg.errors.UndefinedTable:  # the sink creates it with its first batch
        return None
    return found if len(found) >= at_least else None


def test_2_a_dataflow_runs_a_processor_pod_that_delivers_every_message_exactly(journey: Journey) -> None:
    journey.core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=NAMESPACE)))
    journey.core.create_namespaced_secret(NAMESPACE, k8s.V1Secret(
        metadata=k8s.V1ObjectMeta(name="pg"), string_data={"dsn": journey.dsn}))
    journey.custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL,
                                                   dataflow_manifest(DATAFLOW, NAMESPACE, dataflow_spec(journey)))
    payloads, expected, poison = orders()
    produce(journey.kafka.bootstrap, journey.topic, payloads)
    try:
        (pod,) = wait_for(lambda: ready_pods(journey.core, NAMESPACE, PROCESSOR_SELECTOR) or None,
                          "the processor pod is Ready (its startup probe passed)")
        arrived = wait_for(lambda: order_ids(journey.dsn, at_least=len(expected)), "every order is in PostgreSQL")
    except Exception:
        print(journey.pod_logs(NAMESPACE, PROCESSOR_SELECTOR))
        print(journey.pod_logs(OPERATOR_NAMESPACE, OPERATOR_SELECTOR))
        raise
    errors = consume_all(journey.kafka.bootstrap, journey.error_topic, poison)
    assert arrived == expected
    assert rows(journey.dsn, "SELECT count(*) FROM public.orders") == [(len(expected),)]
    assert len(errors) == poison, [json.loads(e) for e in errors]
    # Owned by the chain a user's cluster builds: Pod <- ReplicaSet <- Deployment <- DataFlow.
    (replica_set_ref,) = pod.metadata.owner_references
    assert replica_set_ref.kind == "ReplicaSet"
    replica_set = journey.apps.read_namespaced_replica_set(replica_set_ref.name, NAMESPACE)
    assert replica_set.metadata.owner_references[0].name == resources.Names.of(DATAFLOW).deployment
    status = pod.status.container_statuses[0]
    assert status.restart_count == 0, journey.pod_logs(NAMESPACE, PROCESSOR_SELECTOR)
