"""The dashboard, the alert rules and the requirements document's PromQL examples, run for real.

A real Prometheus scrapes the operator's merged /metrics (honor_labels, as the chart's ServiceMonitor)
and evaluates alerts/prometheusrule.yaml, while real processors run DataFlows built to give every
panel something to show:

- ``orders``: a followed file the test keeps appending to -> ``cast`` (fails on every fifth message,
  whose total is not a number) -> ``router`` (high-priority orders to their own file) -> file sink,
  with a file error sink. Transformer, stage, queue, latency, size, operation and error series.
- ``events``: a Kafka source (the only way to get the ``connector_type="kafka"`` read-error series the
  Kafka panels and alert select), two replicas: ``events-0`` runs, ``events-1`` is a Pod that reports
  Ready where nothing listens (a crashed processor), so the aggregator counts scrape errors.
- ``inventory``: a PostgreSQL source whose database is dropped once it runs: a disconnected connector
  (``connection_status == 0``) that keeps retrying.
- ``broken``: a spec the CRD admits but the operator rejects (a file source without ``path``): phase
  Error, a ``validate`` reconcile error, and ``DataFlowInError`` pending.

The Deployments of the valid DataFlows are reported ready by the test, as a controller-manager would
(the test cluster has none), so they are Running. Two requirements examples cannot return data
whatever runs: they are asserted to return nothing, next to corrected forms that do.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests
import yaml
from kubernetes import client as k8s
from prometheus_client.parser import text_string_to_metric_families

from dataflow_operator.operator import resources
from tests.deploy.monitoring_helpers import (
    REPO,
    RULES_PATH,
    alert_rules,
    grouping_labels,
    load_dashboard,
    query_panels,
    selectors,
    substitute_variables,
    write_rule_groups,
)
from tests.e2e.harness import (
    CRD,
    Operator,
    create_dataflow,
    honor_labels_prometheus,
    operator_replicas,
    prometheus_config,
    register_pod,
    start_processor,
)
from tests.peers.kube import STRATEGIC_MERGE, create_namespace
from tests.peers.prometheus import PrometheusServer
from tests.processes import Processor, wait_for

pytestmark = pytest.mark.slow

# Pod IPs apart from the aggregation test's 127.0.86.x, so the two can never scrape each other's pods.
POD_NETWORK = "127.0.87."
# Prometheus needs two samples inside a range for rate(); at a 1 s scrape interval 1m is plenty.
RATE_WINDOW = "1m"
# How long a query may take to return data: rates need two scrapes, the success-rate gauge a
# 10 s window, the scenario's errors a moment to happen.
DATA_DEADLINE_S = 90.0
POLL_INTERVAL_S = 1.0
# The poisoned share of orders (a total that cast cannot read): 20 % is far above the 1 % error-rate
# and the 5 % success-rate thresholds, so those alerts are provoked and not borderline.
POISON_EVERY = 5
FEED_INTERVAL_S = 0.02


# ------------------------------------------------------------------------------------------------
# The requirements document's PromQL examples, verbatim (shared/spec/metrics-requirements.txt,
# "Labels", "Prometheus query examples" and "Additional queries"). The document is not in the
# repository, so they are copied here; test_the_examples_are_the_requirements_documents checks the
# copy when the document is at hand.

EXAMPLES: dict[str, str] = {
    "Filter by specific DataFlow": 'dataflow_messages_received_total{namespace="default", name="my-dataflow"}',
    "Aggregate by namespace": "sum(rate(dataflow_messages_received_total[5m])) by (namespace, name)",
    "Messages per second per manifest": "sum(rate(dataflow_messages_received_total[5m])) by (namespace, name)",
    "Transformer error rate": """
sum(rate(dataflow_transformer_errors_total[5m])) by (namespace, name, transformer_type)
/
sum(rate(dataflow_transformer_executions_total[5m])) by (namespace, name, transformer_type)
* 100""",
    "p95 message processing time":
        "histogram_quantile(0.95, sum(rate(dataflow_processing_duration_seconds_bucket[5m])) by (namespace, name, le))",
    "Active DataFlow manifests count": "sum(dataflow_status) by (namespace, name)",
    "Task throughput": "dataflow_task_throughput_messages_per_second",
    "Task success rate": "dataflow_task_success_rate * 100",
    "p95 read stage duration":
        'histogram_quantile(0.95, sum(rate(dataflow_task_stage_duration_seconds_bucket{stage="read"}[5m])) '
        "by (namespace, name, le))",
    "Average input message size": 'avg(dataflow_task_message_size_bytes{stage="input"}) by (namespace, name)',
    "p99 end-to-end latency":
        "histogram_quantile(0.99, sum(rate(dataflow_task_end_to_end_latency_seconds_bucket[5m])) "
        "by (namespace, name, le))",
    "Active messages in processing": "dataflow_task_active_messages",
    "Message queue size": "dataflow_task_queue_size",
    "Average queue wait time": """
avg(rate(dataflow_task_queue_wait_time_seconds_sum[5m])) by (namespace, name, queue_type)
/
avg(rate(dataflow_task_queue_wait_time_seconds_count[5m])) by (namespace, name, queue_type)""",
    "Error rate by stage": """
sum(rate(dataflow_task_stage_errors_total[5m])) by (namespace, name, stage)
/
sum(rate(dataflow_task_operations_total[5m])) by (namespace, name)
* 100""",
    "High error rate": """
(
sum(rate(dataflow_connector_errors_total[5m])) by (namespace, name)
+ sum(rate(dataflow_transformer_errors_total[5m])) by (namespace, name)
)
/
sum(rate(dataflow_messages_received_total[5m])) by (namespace, name)
> 0.01""",
    "Disconnected connectors": "dataflow_connector_connection_status == 0",
    "DataFlow in Error or Stopped": 'dataflow_status{phase=~"Error|Stopped"} == 1',
}

# The examples that cannot return data whatever the processors do, why, and a corrected form
# that does. The test records these defects of the document instead of hiding them.
DEFECTIVE_EXAMPLES: dict[str, tuple[str, str]] = {
    # A histogram has no series under its bare name, only _bucket/_sum/_count: the selector matches
    # nothing. The average size is the rate of the sum over the rate of the count (as the dashboard's
    # "Message size (avg)" panel computes it).
    "Average input message size": (
        "a histogram's bare name selects no series",
        'sum(rate(dataflow_task_message_size_bytes_sum{stage="input"}[5m])) by (namespace, name)\n'
        "/\n"
        'sum(rate(dataflow_task_message_size_bytes_count{stage="input"}[5m])) by (namespace, name)'),
    # One-to-one matching needs identical label sets: the left side keeps `stage`, the right side has
    # only namespace and name, so no pair ever matches. Each stage's errors must be divided by its
    # DataFlow's operations: match on (namespace, name), many-to-one.
    "Error rate by stage": (
        "one-to-one vector matching between a `stage`-labelled and an unlabelled side matches nothing",
        "sum(rate(dataflow_task_stage_errors_total[5m])) by (namespace, name, stage)\n"
        "/ on (namespace, name) group_left\n"
        "sum(rate(dataflow_task_operations_total[5m])) by (namespace, name)\n"
        "* 100"),
}

# Alert -> the DataFlows (and, where it matters, the connector) it must be pending or firing for.
PROVOKED_ALERTS: dict[str, set[tuple[str, ...]]] = {
    "DataFlowInError": {("broken",)},
    "DataFlowConnectorDisconnected": {("inventory", "source")},
    # orders: a fifth of its messages fail; inventory: reconnect errors over nothing received (+Inf).
    "DataFlowHighErrorRate": {("orders",), ("inventory",)},
    "DataFlowLowTaskSuccessRate": {("orders",)},
    # Running and nothing received: inventory with read errors, events with a throughput of 0 (the
    # test writes nothing to its topic).
    "DataFlowPipelineStalled": {("inventory",), ("events",)},
    "DataFlowProcessorMetricsUnavailable": {("events",)},
}


# ------------------------------------------------------------------------------------------------
# The scenario


class OrderFeed(threading.Thread):
    """Appends orders to the followed source file until stopped, every POISON_EVERY-th unreadable by cast."""

    def __init__(self, path: Path) -> None:
        super().__init__(name="order-feed", daemon=True)
        self.path = path
        self.stopping = threading.Event()
        self.written = 0

    def run(self) -> None:
        with open(self.path, "a", encoding="utf-8") as out:
            while not self.stopping.wait(FEED_INTERVAL_S):
                self.written += 1
                n = self.written
                order = {"id": n, "total": "n/a" if n % POISON_EVERY == 0 else f"{n}.5",
                         "priority": "high" if n % 3 == 0 else "low"}
                out.write(json.dumps(order) + "\n")
                out.flush()

    def stop(self) -> None:
        self.stopping.set()
        self.join(10)


@dataclass
class Scenario:
    namespace: str
    operator: Operator
    prometheus: PrometheusServer


def file_sink(path: Path) -> dict[str, Any]:
    return {"type": "file", "config": {"path": str(path), "batchSize": 50, "batchFlushIntervalSeconds": 0.05}}


def specs(workdir: Path, kafka_bootstrap: str, topic: str, pg_dsn: str) -> dict[str, dict[str, Any]]:
    return {
        "orders": {
            "source": {"type": "file", "config": {"path": str(workdir / "orders.jsonl"), "follow": True,
                                                  "pollIntervalSeconds": 0.05}},
            "transformations": [
                {"type": "cast", "config": {"spec": {"total": "float64"}}},
                {"type": "router", "config": {"routes": [
                    {"condition": "$.priority == 'high'", "sink": file_sink(workdir / "priority.jsonl")}]}},
            ],
            "sink": file_sink(workdir / "orders-out.jsonl"),
            "errors": {"type": "file", "config": {"path": str(workdir / "orders-errors.jsonl")}},
        },
        "events": {
            "source": {"type": "kafka", "config": {"brokers": [kafka_bootstrap], "topic": topic,
                                                   "consumerGroup": f"monitoring-{topic}"}},
            "sink": file_sink(workdir / "events-out.jsonl"),
            "replicas": 2,
        },
        "inventory": {
            "source": {"type": "postgresql", "config": {"connectionString": pg_dsn, "table": "inventory",
                                                        "autoCreateTable": True, "pollInterval": 1}},
            "sink": file_sink(workdir / "inventory-out.jsonl"),
        },
        # The CRD keeps connector configs open (preserve-unknown-fields); the operator's validation
        # requires a file source's path.
        "broken": {"source": {"type": "file", "config": {}}, "sink": file_sink(workdir / "broken-out.jsonl")},
    }


def report_deployment_ready(apps: k8s.AppsV1Api, namespace: str, dataflow: str) -> bool:
    """What the controller-manager reports once the processor pods are up; the test cluster has none,
    so without this every Deployment stays unready and its DataFlow Pending. Reading the Deployment
    fails (404) until the operator has created it."""
    name = resources.Names.of(dataflow).deployment
    deployment = apps.read_namespaced_deployment(name, namespace)
    replicas = deployment.spec.replicas or 1
    apps.patch_namespaced_deployment_status(name, namespace, {"status": {
        "observedGeneration": deployment.metadata.generation, "replicas": replicas, "updatedReplicas": replicas,
        "readyReplicas": replicas, "availableReplicas": replicas}}, _content_type=STRATEGIC_MERGE)
    return True


def drop_database(admin_dsn: str, dsn: str) -> None:
    """The source's database goes away for good: its connection is cut and every reconnect fails."""
    database = dsn.rsplit("/", 1)[1]
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{database}" WITH (FORCE)')


@pytest.fixture(scope="module")
def scenario(kube_apiserver: Any, kafka: Any, postgres: Any,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    kube_apiserver.install_crds(CRD)
    workdir = tmp_path_factory.mktemp("monitoring")
    namespace = f"mon-{uuid.uuid4().hex[:8]}"
    pg_dsn = postgres.new_database()
    dataflows = specs(workdir, kafka.bootstrap, kafka.new_topic(), pg_dsn)
    # DataFlow -> its pods: (pod name, address, whether a processor runs there).
    pods: dict[str, list[tuple[str, str, bool]]] = {
        "orders": [("orders-0", f"{POD_NETWORK}2", True)],
        "events": [("events-0", f"{POD_NETWORK}3", True), ("events-1", f"{POD_NETWORK}4", False)],
        "inventory": [("inventory-0", f"{POD_NETWORK}5", True)],
    }
    (workdir / "orders.jsonl").touch()  # the file source opens it at start-up
    with ExitStack() as stack, kube_apiserver.api_client() as admin:
        create_namespace(admin, namespace)
        for name, spec in dataflows.items():
            create_dataflow(admin, namespace, name, spec)
        processors: dict[str, Processor] = {}
        for dataflow, members in pods.items():
            for pod, host, running in members:
                if running:
                    processors[pod] = start_processor(workdir / pod, dataflows[dataflow], dataflow=dataflow,
                                                      namespace=namespace, host=host)
                    stack.callback(processors[pod].kill)
        for processor in processors.values():
            processor.wait_ready(timeout=60)
        for dataflow, members in pods.items():
            for pod, host, _running in members:
                register_pod(admin, namespace, pod, dataflow, host)
        feed = OrderFeed(workdir / "orders.jsonl")
        feed.start()
        stack.callback(feed.stop)
        drop_database(postgres.dsn, pg_dsn)

        (operator,) = stack.enter_context(
            operator_replicas(workdir, kube_apiserver.admin_kubeconfig, namespace, "a"))
        for dataflow in pods:
            wait_for(lambda dataflow=dataflow: report_deployment_ready(k8s.AppsV1Api(admin), namespace, dataflow),
                     timeout=60, message=f"the operator creates the Deployment of {dataflow}")

        rules = write_rule_groups(yaml.safe_load(RULES_PATH.read_text()), workdir)
        start_prometheus = stack.enter_context(
            honor_labels_prometheus(lambda: tmp_path_factory.mktemp("prometheus")))
        server = start_prometheus([operator.address], scrape_interval="1s", rule_files=[rules])
        yield Scenario(namespace, operator, server)


# ------------------------------------------------------------------------------------------------
# Polling Prometheus


def poll(read: Callable[[], Any], done: Callable[[Any], bool], deadline_s: float = DATA_DEADLINE_S) -> Any:
    """`read()` until `done(result)` or the deadline; the last result either way, for the assertion."""
    deadline = time.monotonic() + deadline_s
    while True:
        result = read()
        if done(result) or time.monotonic() >= deadline:
            return result
        time.sleep(POLL_INTERVAL_S)


def wait_for_data(server: PrometheusServer, queries: dict[str, str]) -> dict[str, list[dict[str, Any]]]:
    """Each query's result, polled until every one returns at least one series or the deadline passes
    (then the empty ones stay empty): one loop for all, so the slowest query sets the wait."""
    results: dict[str, list[dict[str, Any]]] = {key: [] for key in queries}

    def read() -> dict[str, list[dict[str, Any]]]:
        for key in [key for key, result in results.items() if not result]:
            results[key] = server.query(queries[key])
        return results

    return poll(read, lambda found: all(found.values()))


def without_data(results: dict[str, list[dict[str, Any]]], queries: dict[str, str]) -> str:
    return "\n".join(f"{key}:\n    {queries[key]}" for key, result in results.items() if not result)


def dashboard_queries(namespace: str) -> dict[str, str]:
    """Every panel target as Grafana sends it with this scenario's namespace selected and every
    DataFlow ("All", whose value is `.*`)."""
    variables = {"namespace": namespace, "dataflow": ".*", "interval": RATE_WINDOW}
    return {f"{panel['title']} [{target['refId']}]": substitute_variables(target["expr"], variables)
            for panel in query_panels(load_dashboard()) for target in panel["targets"]}


# ------------------------------------------------------------------------------------------------
# Tests


def test_prometheus_scrapes_the_operator_as_the_service_monitor_does(scenario: Scenario) -> None:
    (job,) = prometheus_config(scenario.prometheus)["scrape_configs"]
    assert job["honor_labels"] is True
    assert scenario.prometheus.wait_for("up == 1", deadline_s=DATA_DEADLINE_S)


def test_every_dashboard_query_returns_data(scenario: Scenario) -> None:
    queries = dashboard_queries(scenario.namespace)
    results = wait_for_data(scenario.prometheus, queries)
    assert all(results.values()), "dashboard queries without data:\n" + without_data(results, queries)


def test_the_dashboard_variables_list_the_scenarios_dataflows(scenario: Scenario) -> None:
    # label_values(metric{...}, label) is answered from Prometheus' label-values endpoint.
    variables = {v["name"]: v["query"] for v in load_dashboard()["templating"]["list"]}

    def label_values(query: str) -> set[str]:
        match = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", query)
        assert match, query
        selector = substitute_variables(match.group(1), {"namespace": scenario.namespace})
        response = requests.get(f"{scenario.prometheus.url}/api/v1/label/{match.group(2)}/values",
                                params={"match[]": selector}, timeout=10)
        response.raise_for_status()
        return set(response.json()["data"])

    namespaces = poll(lambda: label_values(variables["namespace"]), lambda found: scenario.namespace in found)
    assert scenario.namespace in namespaces
    expected = {"orders", "events", "inventory", "broken"}
    assert poll(lambda: label_values(variables["dataflow"]), lambda found: found == expected) == expected


def example_queries(namespace: str) -> dict[str, str]:
    # The "filter" example names a placeholder DataFlow; it filters this scenario's instead.
    queries = dict(EXAMPLES)
    queries["Filter by specific DataFlow"] = queries["Filter by specific DataFlow"].replace(
        'namespace="default", name="my-dataflow"', f'namespace="{namespace}", name="orders"')
    return queries


def test_every_requirements_example_returns_data(scenario: Scenario) -> None:
    queries = {title: expr for title, expr in example_queries(scenario.namespace).items()
               if title not in DEFECTIVE_EXAMPLES}
    results = wait_for_data(scenario.prometheus, queries)
    assert all(results.values()), "requirements examples without data:\n" + without_data(results, queries)


@pytest.mark.parametrize("title", list(DEFECTIVE_EXAMPLES))
def test_a_defective_requirements_example_returns_nothing_and_its_correction_does(
        scenario: Scenario, title: str) -> None:
    why, corrected = DEFECTIVE_EXAMPLES[title]
    # Once the corrected form has data, the series the example is about exist and have rates: an
    # empty answer from the original is its own doing, not the scenario's.
    assert scenario.prometheus.wait_for(corrected, deadline_s=DATA_DEADLINE_S)
    assert scenario.prometheus.query(EXAMPLES[title]) == [], (
        f"{title!r} returns data although {why}: the document or the metrics changed; update this test")


def test_the_alerts_the_scenario_provokes_go_pending(scenario: Scenario) -> None:
    def active() -> dict[str, set[tuple[str, ...]]]:
        found: dict[str, set[tuple[str, ...]]] = {}
        for series in scenario.prometheus.query(f'ALERTS{{namespace="{scenario.namespace}"}}'):
            labels = series["metric"]
            key = (labels["name"], labels["connector_name"]) if "connector_name" in labels else (labels["name"],)
            found.setdefault(labels["alertname"], set()).add(key)
        return found

    def missing(seen: dict[str, set[tuple[str, ...]]]) -> dict[str, set[tuple[str, ...]]]:
        return {alert: lacking for alert, keys in PROVOKED_ALERTS.items() if (lacking := keys - seen.get(alert, set()))}

    seen = poll(active, lambda found: not missing(found))
    assert not missing(seen), f"not pending or firing: {missing(seen)}; active: {seen}"
    # The alerts with a single culprit by construction name no other DataFlow.
    assert seen["DataFlowInError"] == {("broken",)}
    assert seen["DataFlowConnectorDisconnected"] == {("inventory", "source")}
    # DataFlowInError holds for 2 minutes: here it is pending, not yet firing.
    pending = scenario.prometheus.query(
        f'ALERTS{{alertname="DataFlowInError", alertstate="pending", namespace="{scenario.namespace}"}}')
    assert {series["metric"]["name"] for series in pending} == {"broken"}


def live_series(text: str) -> dict[str, list[dict[str, str]]]:
    """Sample name (with _total/_bucket/_sum/_count) -> the label sets it has in this exposition."""
    series: dict[str, list[dict[str, str]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            series.setdefault(sample.name, []).append(sample.labels)
    return series


LITERAL_ALTERNATIVES = re.compile(r"[\w|]+")


def unemitted(expr: str, live: dict[str, list[dict[str, str]]]) -> list[str]:
    """Every metric name, matcher label value and grouping label of `expr` that no live series has."""
    problems = []
    found = selectors(expr)
    labels_seen = {"le"} if any(s.series.endswith("_bucket") for s in found) else set()
    for selector in found:
        if selector.series not in live:
            problems.append(f"no series named {selector.series}")
            continue
        label_sets = live[selector.series]
        labels_seen.update(*label_sets)
        for label, op, value in selector.matchers:
            if "$" in value or op.startswith("!"):
                continue
            if op == "=~" and not LITERAL_ALTERNATIVES.fullmatch(value):
                continue  # a real regex (e.g. `.*`): no single value to look for
            for alternative in value.split("|") if op == "=~" else [value]:
                if not any(labels.get(label) == alternative for labels in label_sets):
                    problems.append(f"{selector.series}: no series with {label}={alternative!r}")
    problems += [f"grouping label {label!r} is on no series of the query"
                 for label in sorted(grouping_labels(expr) - labels_seen)]
    return problems


def test_the_live_check_catches_what_it_is_for() -> None:
    live = {"dataflow_status": [{"namespace": "a", "name": "b", "phase": "Running"}],
            "dataflow_task_stage_duration_seconds_bucket": [{"namespace": "a", "name": "b", "stage": "read", "le": "0.1"}]}
    assert unemitted("sum(dataflow_messages_recieved_total)", live)
    assert unemitted('sum(dataflow_status{phase="Failed"})', live)
    assert unemitted('dataflow_status{phase=~"Running|Stopped"} == 1', live)
    assert unemitted("sum by (pod) (dataflow_status)", live)
    assert unemitted('avg(dataflow_task_stage_duration_seconds{stage="read"})', live)
    assert not unemitted('dataflow_status{name=~".*", phase=~"Running"} == 1', live)
    assert not unemitted("histogram_quantile(0.9, sum by (name, le) (rate("
                         'dataflow_task_stage_duration_seconds_bucket{stage="read", name=~"$dataflow"}[1m])))', live)


def test_the_dashboard_the_rules_and_the_examples_name_only_what_the_operator_serves(scenario: Scenario) -> None:
    # The static test compares the artifacts with the contract; this compares them with what the
    # running code serves, polled until the scenario's slowest series (those only observed on errors,
    # the disconnected source's failed reconnects) are there. The bare histogram name of "Average
    # input message size" is left to its own test above.
    exprs = {f"dashboard: {key}": expr for key, expr in dashboard_queries(scenario.namespace).items()}
    exprs |= {f"alert {name}": rule["expr"] for name, rule in alert_rules().items()}
    exprs |= {f"example {title}": expr for title, expr in example_queries(scenario.namespace).items()
              if title != "Average input message size"}

    def problems() -> dict[str, list[str]]:
        live = live_series(scenario.operator.scrape())
        return {key: found for key, expr in exprs.items() if (found := unemitted(expr, live))}

    found = poll(problems, lambda result: not result)
    assert not found, "\n".join(f"{key}: {'; '.join(items)}" for key, items in found.items())


REQUIREMENTS_DOCUMENT = REPO.parent / "shared" / "spec" / "metrics-requirements.txt"


def test_the_examples_are_the_requirements_documents() -> None:
    if not REQUIREMENTS_DOCUMENT.exists():
        pytest.skip(f"the requirements document is not beside the repository ({REQUIREMENTS_DOCUMENT})")
    text = " ".join(REQUIREMENTS_DOCUMENT.read_text().split())
    for title, expr in EXAMPLES.items():
        assert " ".join(expr.split()) in text, title
