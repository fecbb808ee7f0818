"""The operator's merged /metrics end to end (DESIGN.md decision 2).

A real API server holds three DataFlows and their processor Pods; the "pods" are real
``dataflow-operator processor`` processes on their own loopback addresses, port 9090, as in a cluster.
Two operator replicas (``dataflow-operator run``) elect a leader; only the leader's /metrics carries
the processors' series. promtool and a real Prometheus read what the leader serves.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s
from kubernetes.dynamic import DynamicClient
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.harness import CRD, Operator, create_dataflow, operator_replicas, register_pod, start_processor
from tests.peers.kube import create_namespace
from tests.processes import Processor, wait_for

pytestmark = pytest.mark.slow

# Pod IPs away from the low 127.0.0.x addresses other suites bind.
POD_NETWORK = "127.0.86."
# DataFlow -> its processor pods, each with how many input lines it reads (distinct per pod, so a
# value in the operator's output can only have come from the pod its label names).
PODS = {"orders": {"df-orders-0": 3}, "payments": {"df-payments-0": 5},
        "events": {"df-events-0": 7, "df-events-1": 11}}


@dataclass
class Pod:
    dataflow: str
    name: str
    lines: int
    processor: Processor


@dataclass
class Scenario:
    namespace: str
    pods: list[Pod] = field(default_factory=list)


@pytest.fixture(scope="module")
def cluster(kube_apiserver: Any) -> Any:
    kube_apiserver.install_crds(CRD)
    return kube_apiserver


@pytest.fixture
def admin(cluster: Any) -> Iterator[k8s.ApiClient]:
    with cluster.api_client() as api_client:
        yield api_client


@pytest.fixture
def scenario(admin: k8s.ApiClient, tmp_path: Path) -> Iterator[Scenario]:
    """Three DataFlows, four running processor processes, and a Running, Ready Pod object for each."""
    scenario = Scenario(f"agg-{uuid.uuid4().hex[:8]}")
    create_namespace(admin, scenario.namespace)
    address = 2
    try:
        for dataflow, pods in PODS.items():
            create_dataflow(admin, scenario.namespace, dataflow,
                            processor_spec(tmp_path / dataflow / "in.jsonl", tmp_path / dataflow / "out.jsonl"))
            for pod_name, lines in pods.items():
                workdir = tmp_path / pod_name
                workdir.mkdir()
                (workdir / "in.jsonl").write_text("".join(json.dumps({"n": i}) + "\n" for i in range(lines)))
                processor = start_processor(workdir, processor_spec(workdir / "in.jsonl", workdir / "out.jsonl"),
                                            dataflow=dataflow, namespace=scenario.namespace,
                                            host=f"{POD_NETWORK}{address}")
                scenario.pods.append(Pod(dataflow, pod_name, lines, processor))
                address += 1
        for pod in scenario.pods:
            pod.processor.wait_ready()
            register_pod(admin, scenario.namespace, pod.name, pod.dataflow, pod.processor.host)
        yield scenario
    finally:
        for pod in scenario.pods:
            pod.processor.kill()


def processor_spec(source: Path, sink: Path) -> dict[str, Any]:
    return {"source": {"type": "file", "config": {"path": str(source), "follow": True,
                                                  "pollIntervalSeconds": 0.05}},
            "sink": {"type": "file", "config": {"path": str(sink)}}}


@pytest.fixture
def operators(cluster: Any, scenario: Scenario, tmp_path: Path) -> Iterator[list[Operator]]:
    with operator_replicas(tmp_path, cluster.admin_kubeconfig, scenario.namespace, "ab") as replicas:
        yield replicas


def test_the_leader_serves_every_processor_pods_series_merged_and_the_follower_none(
        scenario: Scenario, operators: list[Operator], promtool: Path, prometheus: Any) -> None:
    every_pod = {pod.name for pod in scenario.pods}

    def serving() -> list[Operator]:
        replicas = [replica for replica in operators if replica.processor_pods() == every_pod]
        return replicas if len(replicas) == 1 else []

    [leading] = wait_for(serving, timeout=60, message="one replica serving all four pods' series")
    follower = next(replica for replica in operators if replica is not leading)
    wait_for(lambda: "dataflow_status{" in leading.scrape(), timeout=30, message="dataflow_status reconciled")
    text = leading.scrape()
    families = {family.name: family for family in text_string_to_metric_families(text)}

    # Every pod's series, labelled with its pod, valued as that pod counted.
    received = families["dataflow_messages_received"]
    assert received.type == "counter"
    assert {(s.labels["name"], s.labels["pod"], s.value) for s in received.samples} == {
        (pod.dataflow, pod.name, float(pod.lines)) for pod in scenario.pods}
    assert all(s.labels["namespace"] == scenario.namespace for s in received.samples)
    # One HELP and one TYPE per family, a histogram's samples together, nothing but dataflow_* and the
    # operator's own work-queue families (client-go's names).
    for kind in ("# HELP ", "# TYPE "):
        names = [line.split(" ")[2] for line in text.splitlines() if line.startswith(kind)]
        assert len(names) == len(set(names)), f"repeated {kind.strip()} lines"
    histogram = families["dataflow_processing_duration_seconds"]
    assert {s.labels["pod"] for s in histogram.samples} == every_pod
    assert all(s.name.startswith(("dataflow_", "workqueue_")) for family in families.values() for s in family.samples)
    assert not [s for s in received.samples if s.name.endswith("_created")]
    assert {s.labels["name"] for s in families["dataflow_status"].samples} == set(PODS)
    assert families["dataflow_aggregator_pods_scraped"].samples[0].value == len(every_pod)
    # The same output as OpenMetrics, for scrapers that negotiate it, parses too.
    openmetrics = leading.scrape("application/openmetrics-text; version=1.0.0")
    assert openmetrics.rstrip().endswith("# EOF")
    assert {f.name for f in openmetrics_families(openmetrics)} >= {"dataflow_messages_received",
                                                                  "dataflow_processing_duration_seconds"}
    # promtool lints what Prometheus would scrape.
    checked = subprocess.run([str(promtool), "check", "metrics"], input=text, capture_output=True, text=True,
                             timeout=60, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr

    # The follower re-emits nothing, so nothing is counted twice.
    assert follower.processor_pods() == set()
    assert "dataflow_aggregator_pods_scraped 0.0" in follower.scrape()

    # A real Prometheus scraping both replicas sees each pod's series once.
    server = prometheus([leading.address, follower.address])
    series = server.wait_for(f'count(dataflow_messages_received_total{{namespace="{scenario.namespace}"}}) == 4',
                             deadline_s=60)
    assert series
    by_pod = server.query(f'sum by (pod) (dataflow_messages_received_total{{namespace="{scenario.namespace}"}})')
    assert {(r["metric"]["pod"], float(r["value"][1])) for r in by_pod} == {
        (pod.name, float(pod.lines)) for pod in scenario.pods}
    quantile = server.wait_for('histogram_quantile(0.95, sum by (le, pod) '
                               f'(dataflow_processing_duration_seconds_bucket{{namespace="{scenario.namespace}"}}))',
                               deadline_s=30)
    assert {r["metric"]["pod"] for r in quantile} == every_pod

    # When the leader goes, the follower takes over the processors' series.
    leading.stop()
    wait_for(lambda: follower.processor_pods() == every_pod, timeout=60, message="the follower takes over")


def test_kubectl_get_df_shows_the_processors_counts(scenario: Scenario, operators: list[Operator],
                                                     admin: k8s.ApiClient) -> None:
    """The Processed/Errors/Last printer columns, filled from the series the leader scrapes, equal the
    sum of each DataFlow's pods' own counters, with nobody but the operator scraping."""
    custom = k8s.CustomObjectsApi(admin)
    expected = {dataflow: sum(pods.values()) for dataflow, pods in PODS.items()}

    def counts() -> dict[str, tuple[object, object]]:
        items = custom.list_namespaced_custom_object("dataflow.dataflow.io", "v1", scenario.namespace,
                                                     "dataflows")["items"]
        return {item["metadata"]["name"]: (item.get("status", {}).get("processedCount"),
                                           item.get("status", {}).get("errorCount")) for item in items}

    wait_for(lambda: counts() == {dataflow: (total, 0) for dataflow, total in expected.items()}, timeout=60,
             message=f"status counts {expected}")
    for pod in scenario.pods:  # the processors' own view of what they counted
        own = pod.processor.metrics()
        assert sum(s.value for s in own["dataflow_messages_received"].samples
                   if s.name.endswith("_total")) == pod.lines
    # What `kubectl get df` prints: the server's Table rendering of the list.
    table = DynamicClient(admin).request(
        "get", f"/apis/dataflow.dataflow.io/v1/namespaces/{scenario.namespace}/dataflows",
        header_params={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"}).to_dict()
    columns = [column["name"] for column in table["columnDefinitions"]]
    rows = {row["cells"][0]: dict(zip(columns, row["cells"], strict=True)) for row in table["rows"]}
    for dataflow, total in expected.items():
        assert rows[dataflow]["Processed"] == total and rows[dataflow]["Errors"] == 0
        assert rows[dataflow]["Last"]  # kubectl shows the age of lastProcessedTime
