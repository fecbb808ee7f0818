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
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from prometheus_client.parser import text_string_to_metric_families

from dataflow_operator import contract
from dataflow_operator.operator import resources
from tests.cluster.journey import (
    CHART,
    DATA_DEADLINE_S,
    GROUP,
    OPERATOR_NAMESPACE,
    PLURAL,
    RELEASE,
    VERSION,
    Helm,
    as_json,
    consume_all,
    dashboard_queries,
    dataflow_manifest,
    empty_queries,
    lease_holder,
    pod_log,
    produce,
    ready_pods,
    rows,
    wait_for,
)
from tests.cluster.monitoring import MONITORING_CRDS, ServiceMonitorPrometheus
from tests.deploy.monitoring_helpers import load_dashboard, write_rule_groups
from tests.peers import paths
from tests.peers.apiserver import ADMIN_USER
from tests.peers.cluster import LocalCluster
from tests.peers.kafka import KafkaBroker
from tests.peers.node_images import ProjectImage
from tests.peers.postgres import PostgresServer

pytestmark = pytest.mark.slow

NAMESPACE = "data"
FILE = {"type": "file", "config": {"path": "-"}}
DATAFLOW = "orders"
OPERATOR_SELECTOR = f"app.kubernetes.io/name={RELEASE},app.kubernetes.io/instance={RELEASE}"
PROCESSOR_SELECTOR = f"{contract.NAME_LABEL}={DATAFLOW}"


@dataclass
class Journey:
    stack: ExitStack
    workdir: Path
    cluster: LocalCluster
    api: k8s.ApiClient
    helm: Helm
    image: ProjectImage
    kafka: KafkaBroker
    dsn: str
    topic: str
    error_topic: str
    prometheus: ServiceMonitorPrometheus | None = None

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
def journey(  # noqa: PLR0917 - fixtures, injected by name
        cluster: LocalCluster, node_kafka: KafkaBroker, node_postgres: PostgresServer,
        project_image: ProjectImage, helm: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Journey]:
    assert cluster.apiserver is not None
    # What a cluster with prometheus-operator has: the chart then creates its ServiceMonitor and rule.
    cluster.apiserver.install_crds(MONITORING_CRDS)
    with ExitStack() as stack, cluster.apiserver.api_client() as api:
        yield Journey(stack, tmp_path_factory.mktemp("journey"), cluster, api, Helm(helm, cluster.apiserver.admin_kubeconfig), project_image, node_kafka,
                      node_postgres.new_database(), node_kafka.new_topic(partitions=2), node_kafka.new_topic())


# --------------------------------------------------------------------------------------------------
# 1. helm install


def test_1_helm_install_brings_up_the_operator_which_takes_the_lease(journey: Journey) -> None:
    journey.helm("install", RELEASE, str(CHART), "--namespace", OPERATOR_NAMESPACE, "--create-namespace",
                 "--set", f"image.repository={journey.image.repository}", "--set", f"image.tag={journey.image.tag}",
                 # Imported, never pulled: there is no registry.
                 "--set", "image.pullPolicy=Never", "--set", "replicaCount=2",
                 "--set", "serviceMonitor.enabled=true", "--set", "monitoring.prometheusRule.enabled=true",
                 "--set", "monitoring.dashboard.enabled=true",
                 # Scraped every 2 s rather than 30 s; the aggregation deadline stays below the timeout.
                 "--set", "serviceMonitor.interval=2s", "--set", "serviceMonitor.scrapeTimeout=2s",
                 # --set would pass 1.5 as a string, which the values schema rightly refuses.
                 "--set-json", "aggregation.timeoutSeconds=1.5")

    def both_ready() -> list[k8s.V1Pod] | None:
        pods = ready_pods(journey.core, OPERATOR_NAMESPACE, OPERATOR_SELECTOR)
        return pods if len(pods) == 2 else None

    def webhook_answers() -> bool | None:
        """A server-side dry run in a namespace the webhook reviews: what docs/webhook.md tells a user
        to wait for after install, as the Service's endpoints reach the node's proxy a little after
        the pods are Ready (until then the API server's call is refused)."""
        probe = dataflow_manifest("webhook-probe", "default", {"source": FILE, "sink": FILE})
        try:
            journey.custom.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, probe, dry_run="All")
        except ApiException as exc:
            if "failed calling webhook" in str(exc.body):
                return None
            raise
        return True

    try:
        pods = wait_for(both_ready, "both operator pods are Ready")
        holder = wait_for(lambda: lease_holder(k8s.CoordinationV1Api(journey.api)), "an operator holds the Lease")
        wait_for(webhook_answers, "the API server reaches the admission webhook")
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


# --------------------------------------------------------------------------------------------------
# 3. Prometheus, configured from the chart's ServiceMonitor and PrometheusRule; the dashboard


def test_3_prometheus_scrapes_the_operator_service_and_every_dashboard_query_returns_data(journey: Journey) -> None:
    def monitoring_object(plural: str) -> dict[str, Any]:
        found: dict[str, Any] = journey.custom.get_namespaced_custom_object(
            "monitoring.coreos.com", "v1", OPERATOR_NAMESPACE, plural, RELEASE)
        return found

    (dashboard,) = journey.core.list_namespaced_config_map(OPERATOR_NAMESPACE, label_selector="grafana_dashboard=1").items
    assert [json.loads(text) for text in dashboard.data.values()] == [load_dashboard()]
    rules = write_rule_groups(monitoring_object("prometheusrules"), journey.workdir)
    assert journey.cluster.apiserver is not None
    server = ServiceMonitorPrometheus(paths.binary("prometheus"), journey.workdir / "prometheus",
                                      monitoring_object("servicemonitors"), journey.cluster.apiserver.admin_kubeconfig,
                                      rules)
    journey.stack.callback(server.stop)
    server.start()
    journey.prometheus = server
    running = server.wait_for(f'dataflow_status{{namespace="{NAMESPACE}",name="{DATAFLOW}",phase="Running"}} == 1',
                              deadline_s=DATA_DEADLINE_S)
    assert len(running) == 1
    # The processor's own series, re-emitted by the operator with the processor pod's labels.
    (received,) = server.wait_for(
        f'sum(dataflow_messages_received_total{{namespace="{NAMESPACE}",name="{DATAFLOW}"}})', deadline_s=DATA_DEADLINE_S)
    assert float(received["value"][1]) == ORDERS + 3
    queries = dashboard_queries(NAMESPACE, "1m")
    empty = empty_queries(server, queries)
    assert set(empty) <= ONLY_AFTER_A_FAILURE, "dashboard queries without data:\n" + "\n".join(
        f"{key}: {queries[key]}" for key in empty)


# A counter the aggregator creates at its first failed scrape of a processor: a journey where every
# scrape succeeds has no such series (tests/deploy/test_monitoring_e2e.py provokes one).
ONLY_AFTER_A_FAILURE = {"Aggregator scrape errors [A]"}


# --------------------------------------------------------------------------------------------------
# 4. day two: a spec change, a deleted pod, a maintenance window, `kubectl get df`

BATCH = 40


def more_orders(first_id: int) -> tuple[list[bytes], set[int], int]:
    """BATCH more orders from `first_id`, one in ten poison; returns (payloads, good ids, poison count)."""
    payloads = [as_json({"id": i, "status": "new", "total": "n/a" if i % 10 == 3 else f"{i}.5"})
                for i in range(first_id, first_id + BATCH)]
    good = {i for i in range(first_id, first_id + BATCH) if i % 10 != 3}
    return payloads, good, BATCH - len(good)


def processor_pod(journey: Journey, not_uid: str | None = None) -> k8s.V1Pod:
    """The one Ready processor pod (other than the pod `not_uid`, which must be gone too)."""
    def ready() -> k8s.V1Pod | None:
        pods = journey.core.list_namespaced_pod(NAMESPACE, label_selector=PROCESSOR_SELECTOR).items
        fresh = [pod for pod in pods if pod.metadata.uid != not_uid]
        if len(pods) == 1 and len(fresh) == 1 and fresh[0] in ready_pods(journey.core, NAMESPACE, PROCESSOR_SELECTOR):
            return fresh[0]
        return None
    try:
        return wait_for(ready, "exactly one processor pod, Ready" + (" and new" if not_uid else ""))
    except Exception:
        print(journey.pod_logs(NAMESPACE, PROCESSOR_SELECTOR))
        raise


def deliver_and_check(journey: Journey, first_id: int, expected: set[int], poison: int) -> tuple[set[int], int]:
    """Produce a batch; every good order so far must be in PostgreSQL and exactly every poison one so
    far in the error topic (a message read twice would add an error record)."""
    payloads, good, bad = more_orders(first_id)
    produce(journey.kafka.bootstrap, journey.topic, payloads)
    expected, poison = expected | good, poison + bad
    try:
        arrived = wait_for(lambda: order_ids(journey.dsn, at_least=len(expected)), "the new orders are in PostgreSQL",
                           deadline_s=DATA_DEADLINE_S)
    except Exception:
        print(journey.pod_logs(NAMESPACE, PROCESSOR_SELECTOR))
        raise
    assert arrived == expected
    assert len(consume_all(journey.kafka.bootstrap, journey.error_topic, poison)) == poison
    return expected, poison


def delivered_so_far() -> tuple[set[int], int]:
    _, expected, poison = orders()
    return expected, poison


def test_4_the_pod_rolls_on_a_spec_change_resumes_after_deletion_and_stops_for_maintenance(journey: Journey) -> None:
    expected, poison = delivered_so_far()
    first = processor_pod(journey)
    # A spec change: the operator updates the Deployment's template, which rolls the pod.
    journey.custom.patch_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, DATAFLOW, {
        "spec": {"sink": {"config": {"batchSize": 20}}}})
    rolled = processor_pod(journey, not_uid=first.metadata.uid)
    expected, poison = deliver_and_check(journey, 1000, expected, poison)

    # A deleted pod: the ReplicaSet replaces it, and the replacement resumes from the committed offsets.
    journey.core.delete_namespaced_pod(rolled.metadata.name, NAMESPACE)
    replacement = processor_pod(journey, not_uid=rolled.metadata.uid)
    expected, poison = deliver_and_check(journey, 2000, expected, poison)

    # A maintenance window that is on now: scaled to 0, phase Stopped; removed: back to one pod.
    start = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    journey.custom.patch_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, DATAFLOW, {
        "spec": {"maintenance": {"startTime": start, "duration": "1h"}}})
    wait_for(lambda: not journey.core.list_namespaced_pod(NAMESPACE, label_selector=PROCESSOR_SELECTOR).items,
             "the processor pod is gone in the maintenance window")
    assert journey.apps.read_namespaced_deployment(resources.Names.of(DATAFLOW).deployment, NAMESPACE).spec.replicas == 0
    wait_for(lambda: dataflow_status(journey).get("phase") == "Stopped", "the DataFlow is Stopped")
    journey.custom.patch_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, DATAFLOW, {
        "spec": {"maintenance": None}})
    processor_pod(journey, not_uid=replacement.metadata.uid)
    expected, poison = deliver_and_check(journey, 3000, expected, poison)
    wait_for(lambda: dataflow_status(journey).get("phase") == "Running", "the DataFlow is Running again")

    # `kubectl get df`: the printer columns, as the API server serves them to kubectl. Processed and
    # Errors are the operator's tally of the processors' counters (the poison messages are errors).
    def columns() -> dict[str, Any] | None:
        table = printer_table(journey)
        (row,) = table["rows"]
        cells = dict(zip([column["name"] for column in table["columnDefinitions"]], row["cells"], strict=True))
        return cells if cells["Processed"] and cells["Errors"] and cells["Last"] else None

    cells = wait_for(columns, "Processed, Errors and Last filled in", deadline_s=60)
    assert cells["Name"] == DATAFLOW and cells["Phase"] == "Running" and cells["Age"], cells
    assert set(cells) == {"Name", "Phase", "Processed", "Errors", "Last", "Age"}
    assert cells["Processed"] > 0 and cells["Errors"] >= 1, cells


def dataflow_status(journey: Journey) -> dict[str, Any]:
    dataflow = journey.custom.get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, DATAFLOW)
    status: dict[str, Any] = dataflow.get("status") or {}
    return status


def printer_table(journey: Journey) -> dict[str, Any]:
    """`kubectl get df` asks for a Table and prints its cells."""
    server = journey.cluster.apiserver
    assert server is not None
    response = requests.get(f"{server.url}/apis/{GROUP}/{VERSION}/namespaces/{NAMESPACE}/{PLURAL}",
                            verify=str(server.ca_file), timeout=10, headers={
                                "Authorization": f"Bearer {server.token_for(ADMIN_USER)}",
                                "Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"})
    response.raise_for_status()
    table: dict[str, Any] = response.json()
    return table


# --------------------------------------------------------------------------------------------------
# 5. the leader's pod killed


OWNED_RESOURCES = {"deployments", "secrets", "configmaps", "serviceaccounts", "roles", "rolebindings"}


def writes_from(audit_log: Path, source_ip: str) -> list[str]:
    """Writes to the objects the operator owns per DataFlow, made from `source_ip`. (Every replica
    keeps the webhook's certificate Secret in the operator's namespace current, leader or not: that
    is not reconciling, so only the DataFlow's namespace counts.)"""
    found = []
    for line in audit_log.read_text().splitlines():
        event = json.loads(line)
        target = event.get("objectRef") or {}
        if (source_ip in event.get("sourceIPs", []) and event["verb"] in {"create", "update", "patch", "delete"}
                and target.get("resource") in OWNED_RESOURCES and not target.get("subresource")
                and target.get("namespace") == NAMESPACE):
            found.append(f"{event['verb']} {target.get('resource')}/{target.get('name')}")
    return found


def reconciles(pod_ip: str) -> float:
    """dataflow_controller_reconcile_total of one operator pod, read from the pod as Prometheus would."""
    text = requests.get(f"http://{pod_ip}:9090/metrics", timeout=5).text
    return sum(sample.value for family in text_string_to_metric_families(text)
               if family.name == "dataflow_controller_reconcile" for sample in family.samples
               if sample.name == "dataflow_controller_reconcile_total")


def test_5_a_killed_leader_is_replaced_by_the_other_replica_which_reconciles_nothing_twice(journey: Journey) -> None:
    coordination = k8s.CoordinationV1Api(journey.api)
    holder = lease_holder(coordination)
    assert holder is not None
    pods = ready_pods(journey.core, OPERATOR_NAMESPACE, OPERATOR_SELECTOR)
    (leader,) = [pod for pod in pods if holder.startswith(f"{pod.metadata.name}_")]
    (standby,) = [pod for pod in pods if pod is not leader]
    deployment = journey.apps.read_namespaced_deployment(resources.Names.of(DATAFLOW).deployment, NAMESPACE)
    processor = processor_pod(journey)

    journey.core.delete_namespaced_pod(leader.metadata.name, OPERATOR_NAMESPACE, grace_period_seconds=0)
    wait_for(lambda: (lease_holder(coordination) or "").startswith(f"{standby.metadata.name}_"),
             "the standby replica holds the Lease")
    # Its informers synced and the DataFlow went through its reconciler at least once.
    wait_for(lambda: reconciles(standby.status.pod_ip) >= 1, "the new leader has reconciled the DataFlow",
             deadline_s=DATA_DEADLINE_S)
    assert journey.cluster.apiserver is not None
    assert writes_from(journey.cluster.apiserver.audit_log, standby.status.pod_ip) == []
    after = journey.apps.read_namespaced_deployment(resources.Names.of(DATAFLOW).deployment, NAMESPACE)
    assert after.metadata.generation == deployment.metadata.generation
    assert processor_pod(journey).metadata.uid == processor.metadata.uid


# --------------------------------------------------------------------------------------------------
# 6. everything deleted


def owned_objects(journey: Journey) -> list[str]:
    """What the DataFlow owned that still exists (the garbage collector removes it in the background)."""
    names = resources.Names.of(DATAFLOW)
    reads = {
        f"deployment/{names.deployment}": lambda: journey.apps.read_namespaced_deployment(names.deployment, NAMESPACE),
        f"secret/{names.spec_secret}": lambda: journey.core.read_namespaced_secret(names.spec_secret, NAMESPACE),
        f"configmap/{names.checkpoint}": lambda: journey.core.read_namespaced_config_map(names.checkpoint, NAMESPACE),
        f"serviceaccount/{names.processor}": lambda: journey.core.read_namespaced_service_account(
            names.processor, NAMESPACE),
        f"role/{names.processor}": lambda: k8s.RbacAuthorizationV1Api(journey.api).read_namespaced_role(
            names.processor, NAMESPACE),
        f"rolebinding/{names.processor}": lambda: k8s.RbacAuthorizationV1Api(journey.api).read_namespaced_role_binding(
            names.processor, NAMESPACE),
    }
    left = [name for name, read in reads.items() if exists(read)]
    left += [f"replicaset/{rs.metadata.name}" for rs in journey.apps.list_namespaced_replica_set(
        NAMESPACE, label_selector=PROCESSOR_SELECTOR).items]
    left += [f"pod/{pod.metadata.name}" for pod in journey.core.list_namespaced_pod(
        NAMESPACE, label_selector=PROCESSOR_SELECTOR).items]
    return left


def exists(read: Callable[[], object]) -> bool:
    try:
        read()
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


def chart_objects(journey: Journey) -> list[str]:
    """Every object of the release still there, found by the labels the chart gives each of them."""
    selector = f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/managed-by=Helm"
    rbac = k8s.RbacAuthorizationV1Api(journey.api)
    lists = {
        "deployment": journey.apps.list_namespaced_deployment(OPERATOR_NAMESPACE, label_selector=selector).items,
        "service": journey.core.list_namespaced_service(OPERATOR_NAMESPACE, label_selector=selector).items,
        "serviceaccount": journey.core.list_namespaced_service_account(OPERATOR_NAMESPACE, label_selector=selector).items,
        "configmap": journey.core.list_namespaced_config_map(OPERATOR_NAMESPACE, label_selector=selector).items,
        "role": rbac.list_namespaced_role(OPERATOR_NAMESPACE, label_selector=selector).items,
        "rolebinding": rbac.list_namespaced_role_binding(OPERATOR_NAMESPACE, label_selector=selector).items,
        "clusterrole": rbac.list_cluster_role(label_selector=selector).items,
        "clusterrolebinding": rbac.list_cluster_role_binding(label_selector=selector).items,
        "pod": journey.core.list_namespaced_pod(OPERATOR_NAMESPACE, label_selector=OPERATOR_SELECTOR).items,
    }
    left = [f"{kind}/{item.metadata.name}" for kind, items in lists.items() for item in items]
    for plural in ("servicemonitors", "prometheusrules"):
        listed = journey.custom.list_namespaced_custom_object("monitoring.coreos.com", "v1", OPERATOR_NAMESPACE, plural,
                                                              label_selector=selector)
        left += [f"{plural}/{item['metadata']['name']}" for item in listed["items"]]
    return left


def test_6_deleting_the_dataflow_and_uninstalling_the_chart_leave_nothing_behind(journey: Journey) -> None:
    journey.custom.delete_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, DATAFLOW)
    wait_for(lambda: not owned_objects(journey), "the garbage collector has removed every owned object")
    assert chart_objects(journey)  # the check below can see the chart's objects
    journey.helm("uninstall", RELEASE, "--namespace", OPERATOR_NAMESPACE, "--wait")
    wait_for(lambda: not chart_objects(journey), "nothing of the chart is left")
    # crds.keep (the default): the CRD stays, so that uninstalling never deletes users' DataFlows.
    crd = k8s.ApiextensionsV1Api(journey.api).read_custom_resource_definition(f"{PLURAL}.{GROUP}")
    assert crd.metadata.annotations.get("helm.sh/resource-policy") == "keep"
