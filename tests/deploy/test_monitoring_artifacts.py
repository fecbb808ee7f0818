"""The dashboard, the alert rules, the CRD and the chart's values, checked without any peer.

Dashboards and alerts fail silently: a misspelt metric, label or label value is not an error in
PromQL, just a panel without data or an alert that never fires. So every selector, grouping label and
legend label in `grafana/grafana-dashboard.json` and `alerts/prometheusrule.yaml` is checked against
what the code emits (`tests/data/metrics-contract.json` for the processors, the operator's own metrics
below), and the chart's copies of both files are checked byte for byte against the canonical ones.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from prometheus_client import CollectorRegistry

from dataflow_operator.operator.metrics import OperatorMetrics
from tests.deploy.monitoring_helpers import (
    DASHBOARD_PATH,
    RULES_PATH,
    alert_rules,
    grouping_labels,
    query_panels,
    selectors,
)

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "dataflow-operator"
RULE_TESTS_DIR = REPO / "alerts" / "tests"
CRD_PATH = CHART / "files" / "crds" / "dataflow.dataflow.io_dataflows.yaml"
CONTRACT = json.loads((REPO / "tests" / "data" / "metrics-contract.json").read_text())

# The chart cannot read files outside its directory, so it carries copies; these are they.
CHART_COPIES = {
    DASHBOARD_PATH: CHART / "dashboards" / "grafana-dashboard.json",
    RULES_PATH: CHART / "files" / "prometheusrule.yaml",
}

ALERTS = (
    "DataFlowInError", "DataFlowConnectorDisconnected", "DataFlowHighErrorRate", "DataFlowSlowProcessing",
    "DataFlowLowTaskSuccessRate", "DataFlowHighQueueSize", "DataFlowHighE2ELatency",
    "DataFlowPipelineStalled", "DataFlowKafkaFetchTimeouts", "DataFlowProcessorMetricsUnavailable",
)
PHASES = ("Pending", "Running", "Error", "Stopped")
CONNECTOR_TYPES = ("kafka", "postgresql", "file")
TRANSFORMATION_TYPES = (
    "timestamp", "flatten", "filter", "mask", "router", "select", "remove", "snakeCase", "camelCase",
    "debeziumUnwrap", "replaceField", "headersToPayload", "structFlatten", "extractField", "hoistField",
    "cast", "timezone", "insertField",
)


# ------------------------------------------------------------------------------------------------
# What the code emits


@dataclass
class Metric:
    kind: str  # counter | gauge | histogram
    labels: set[str]
    # Closed sets of label values; a pattern is a regex the whole value must match.
    values: dict[str, set[str]] = field(default_factory=dict)
    patterns: dict[str, str] = field(default_factory=dict)


def _placeholder_pattern(values: list[str]) -> tuple[set[str], str | None]:
    """Split contract values into literals and one regex for the `<i>` placeholders
    (`transformer_<i>` is `transformer_0`, `transformer_1`, ...)."""
    literals = {value for value in values if "<" not in value}
    templated = [re.escape(value).replace(re.escape("<i>"), r"\d+") for value in values if "<i>" in value]
    return literals, ("|".join(templated) if templated else None)


def _metrics() -> dict[str, Metric]:
    error_types = set(CONTRACT["error_type_values"])
    metrics: dict[str, Metric] = {}
    for entry in CONTRACT["metrics"]:
        labels = set(entry["labels"])
        # The aggregator (and a PodMonitor alike) adds `pod` to every processor series.
        if entry["exported_by"] == "processor":
            labels.add("pod")
        metric = Metric(entry["type"], labels)
        if "error_type" in labels:
            metric.values["error_type"] = error_types
        for label, key in (("stage", "stage_values"), ("operation", "operation_values"),
                           ("status", "status_values")):
            if key in entry:
                literals, pattern = _placeholder_pattern(entry[key])
                metric.values[label] = literals
                if pattern:
                    metric.patterns[label] = pattern
        metrics[entry["name"]] = metric
    metrics["dataflow_status"].values["phase"] = set(PHASES)
    # Stage errors are counted in the same stages whose durations are measured.
    stage_duration = metrics["dataflow_task_stage_duration_seconds"]
    metrics["dataflow_task_stage_errors_total"].values["stage"] = stage_duration.values["stage"]
    metrics["dataflow_task_stage_errors_total"].patterns["stage"] = stage_duration.patterns["stage"]
    # Connectors: the types this project implements and the names the engine gives its connectors.
    for name, metric in metrics.items():
        if "connector_type" in metric.labels:
            metric.values["connector_type"] = set(CONNECTOR_TYPES)
            metric.values["connector_name"] = {"source", "sink", "error_sink"}
            metric.patterns["connector_name"] = r"route_\d+"
        if name == "dataflow_connector_errors_total":
            # The only connector operation the dashboard and alerts rely on: source reads (Kafka fetch
            # timeouts are operation="read", error_type="timeout").
            metric.values["operation"] = {"read"}
    # The operator's own metrics (shared/spec/operator.md).
    metrics.update({
        "dataflow_controller_reconcile_total": Metric(
            "counter", {"result"}, {"result": {"success", "error", "requeue"}}),
        "dataflow_controller_reconcile_duration_seconds": Metric(
            "histogram", {"result"}, {"result": {"success", "error", "requeue"}}),
        "dataflow_controller_reconcile_errors_total": Metric(
            "counter", {"stage"}, {"stage": {"validate", "secrets", "resources", "deployment", "status"}}),
        "dataflow_controller_reconcile_inflight": Metric("gauge", set()),
        "dataflow_controller_workqueue_depth": Metric("gauge", set()),
        # client-go's work-queue families (dataflow_operator/operator/workqueue/metrics.py), one queue.
        **{family: Metric(kind, {"name"}, {"name": {"dataflows"}}) for family, kind in (
            ("workqueue_depth", "gauge"), ("workqueue_adds_total", "counter"),
            ("workqueue_queue_duration_seconds", "histogram"), ("workqueue_work_duration_seconds", "histogram"),
            ("workqueue_retries_total", "counter"), ("workqueue_unfinished_work_seconds", "gauge"),
            ("workqueue_longest_running_processor_seconds", "gauge"))},
        "dataflow_aggregator_scrape_duration_seconds": Metric("histogram", set()),
        "dataflow_aggregator_pod_scrape_errors_total": Metric(
            "counter", {"namespace", "name", "pod", "reason"},
            {"reason": {"timeout", "connection_error", "http_status", "parse_error", "too_large"}}),
        "dataflow_aggregator_pods_scraped": Metric("gauge", set()),
    })
    return metrics


METRICS = _metrics()
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def resolve(series_name: str) -> tuple[Metric, set[str]]:
    """The metric behind a series name (histograms expose _bucket/_sum/_count) and its labels."""
    if series_name in METRICS:
        metric = METRICS[series_name]
        if metric.kind == "histogram":
            raise LookupError(f"{series_name} is a histogram: only its _bucket/_sum/_count series exist")
        return metric, metric.labels
    for suffix in HISTOGRAM_SUFFIXES:
        base = series_name.removesuffix(suffix)
        if base != series_name and base in METRICS and METRICS[base].kind == "histogram":
            labels = METRICS[base].labels | ({"le"} if suffix == "_bucket" else set())
            return METRICS[base], labels
    raise LookupError(f"{series_name} is not a metric the code emits")


# ------------------------------------------------------------------------------------------------
# What the code does not emit, found with the PromQL reader of tests/deploy/monitoring_helpers.py


RANGE_FUNCTION = re.compile(r"\b(rate|increase|irate|delta|deriv)\s*\(\s*(dataflow_[a-z0-9_]+)")
QUANTILE = re.compile(r"histogram_quantile\s*\(\s*[0-9.]+\s*,\s*sum\s+by\s*\(([^)]*)\)\s*\(\s*rate\s*\(\s*"
                      r"(dataflow_[a-z0-9_]+)")
LEGEND_LABEL = re.compile(r"\{\{\s*(\w+)\s*\}\}")
LABEL_VALUES = re.compile(r"label_values\(\s*(dataflow_[a-z0-9_]+)\s*(?:\{[^}]*\})?\s*,\s*(\w+)\s*\)")


def problems_in(expr: str) -> list[str]:
    """Every name, label and value in `expr` that the code does not emit, as readable messages."""
    problems: list[str] = []
    found = selectors(expr)
    if not found:
        return [f"no dataflow_* metric in {expr!r}"]
    all_labels: set[str] = set()
    for selector in found:
        try:
            metric, labels = resolve(selector.series)
        except LookupError as exc:
            problems.append(str(exc))
            continue
        all_labels |= labels
        for label, op, value in selector.matchers:
            if label not in labels:
                problems.append(f"{selector.series} has no label {label!r} (it has {sorted(labels)})")
                continue
            if "$" in value or op.startswith("!"):
                continue  # a Grafana variable, or an exclusion (cannot select a wrong series)
            alternatives = value.split("|") if op == "=~" else [value]
            for alternative in alternatives:
                allowed, pattern = metric.values.get(label), metric.patterns.get(label)
                if allowed is None:
                    continue  # an open set (namespace, name, route, queue_type, ...)
                if alternative not in allowed and not (pattern and re.fullmatch(pattern, alternative)):
                    problems.append(f"{selector.series}: {label}={alternative!r} is never emitted "
                                    f"(values: {sorted(allowed)}{' or ' + pattern if pattern else ''})")
    for label in grouping_labels(expr) - all_labels:
        problems.append(f"grouping label {label!r} is on none of {sorted({s.series for s in found})}")
    for function, series in RANGE_FUNCTION.findall(expr):
        if series in METRICS and METRICS[series].kind == "gauge":
            problems.append(f"{function}() over gauge {series}")
    for by_labels, series in QUANTILE.findall(expr):
        if not series.endswith("_bucket") or "le" not in {s.strip() for s in by_labels.split(",")}:
            problems.append(f"histogram_quantile over {series} must aggregate _bucket series by le")
    return problems


def test_the_operator_families_listed_here_are_what_the_operator_registers() -> None:
    registry = CollectorRegistry()
    OperatorMetrics(registry)
    registered = {family.name: family.type for family in registry.collect()}
    listed = {name.removesuffix("_total") if metric.kind == "counter" else name: metric.kind
              for name, metric in METRICS.items() if name == "dataflow_status"
              or name.startswith(("dataflow_controller_", "workqueue_"))}
    assert listed == registered


def test_the_promql_reader_catches_what_it_is_for() -> None:
    # Each of these is a mistake a dashboard can make silently; the reader must report all of them.
    assert problems_in('sum(dataflow_messages_recieved_total{namespace="a"})')
    assert problems_in('dataflow_status{phase="Failed"} == 1')
    assert problems_in('sum by (namespace, nmae) (dataflow_task_active_messages)')
    assert problems_in('rate(dataflow_task_queue_size[5m])')
    assert problems_in('dataflow_connector_errors_total{error_type="transformation_error"}')
    assert problems_in('dataflow_task_stage_errors_total{stage="transformer_x"}')
    assert problems_in('avg(dataflow_task_message_size_bytes{stage="input"})')
    assert problems_in('histogram_quantile(0.95, sum by (namespace) '
                       '(rate(dataflow_processing_duration_seconds_bucket[5m])))')
    assert problems_in('dataflow_connector_messages_read_total{connector_name="main"}')
    assert not problems_in('sum(rate(dataflow_task_stage_errors_total{stage="transformer_12"}[5m]))')
    assert not problems_in('dataflow_status{phase=~"Error|Stopped"} == 1')


# ------------------------------------------------------------------------------------------------
# Dashboard


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD_PATH.read_text())
    return data


def row_of(dashboard: dict[str, Any]) -> dict[int, str]:
    """Panel id -> title of the row above it (rows are laid out flat, not collapsed)."""
    current, rows = "", {}
    for panel in sorted(dashboard["panels"], key=lambda p: (p["gridPos"]["y"], p["gridPos"]["x"])):
        if panel["type"] == "row":
            current = panel["title"]
        else:
            rows[panel["id"]] = current
    return rows


def test_dashboard_has_the_shape_grafana_imports(dashboard: dict[str, Any]) -> None:
    for key in ("title", "uid", "schemaVersion", "panels", "templating", "time", "annotations"):
        assert key in dashboard, key
    assert isinstance(dashboard["schemaVersion"], int) and dashboard["schemaVersion"] >= 36
    # Provisioned dashboards (the chart's ConfigMap) get no import-time substitution, so the data
    # source must be a dashboard variable, not an __inputs placeholder.
    assert "__inputs" not in dashboard
    assert "DS_PROMETHEUS" not in DASHBOARD_PATH.read_text()
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    occupied: dict[tuple[int, int], int] = {}
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert all(isinstance(grid[k], int) for k in ("h", "w", "x", "y")), panel["title"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in occupied, f"{panel['title']} overlaps panel {occupied[(x, y)]}"
                occupied[(x, y)] = panel["id"]
    for panel in query_panels(dashboard):
        assert panel["title"] and panel["targets"], panel["id"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"] and target["expr"].strip()


def test_dashboard_variables(dashboard: dict[str, Any]) -> None:
    variables = {variable["name"]: variable for variable in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert variables["namespace"]["type"] == variables["dataflow"]["type"] == "query"
    assert variables["interval"]["type"] == "interval"
    for name in ("namespace", "dataflow"):
        query = variables[name]["query"]
        match = LABEL_VALUES.fullmatch(query)
        assert match, query
        metric, label = match.groups()
        assert label in resolve(metric)[1], query
        # "All" must become a regex that matches everything, not Grafana's default value list.
        assert variables[name]["includeAll"] and variables[name]["allValue"] == ".*"
    assert "$namespace" in variables["dataflow"]["query"]
    used = set()
    for panel in query_panels(dashboard):
        for target in panel["targets"]:
            used |= set(re.findall(r"\$(\w+)", target["expr"]))
    assert used <= set(variables), f"undefined variables {used - set(variables)}"


def test_every_dashboard_query_uses_only_what_the_code_emits(dashboard: dict[str, Any]) -> None:
    problems = []
    for panel in query_panels(dashboard):
        for target in panel["targets"]:
            expr = target["expr"]
            found = [f"{panel['title']}: {problem}" for problem in problems_in(expr)]
            problems += found
            if found:
                continue
            labels = set().union(*(resolve(s.series)[1] for s in selectors(expr)))
            for legend_label in LEGEND_LABEL.findall(target.get("legendFormat", "")):
                if legend_label not in labels:
                    problems.append(f"{panel['title']}: legend label {legend_label!r} is not in the query")
    assert not problems, "\n".join(problems)


def test_processor_panels_follow_the_dataflow_variables(dashboard: dict[str, Any]) -> None:
    # A processor panel that ignores $namespace/$dataflow shows every DataFlow whatever is selected.
    for panel in query_panels(dashboard):
        for target in panel["targets"]:
            for selector in selectors(target["expr"]):
                if {"namespace", "name"} <= resolve(selector.series)[1]:
                    matchers = {(label, value) for label, _op, value in selector.matchers}
                    assert ("namespace", "$namespace") in matchers, (panel["title"], selector.series)
                    assert ("name", "$dataflow") in matchers, (panel["title"], selector.series)


def test_dashboard_rows(dashboard: dict[str, Any]) -> None:
    rows = [panel["title"] for panel in dashboard["panels"] if panel["type"] == "row"]
    assert rows == ["Overview", "SLOs (alert thresholds)", "Messages", "Errors", "Pipeline health", "Latency",
                    "Stages", "Queues", "Operations", "Connectors and DataFlows", "Transformers", "Operator"]
    panel_types = {panel["type"] for panel in query_panels(dashboard)}
    assert {"stat", "timeseries", "heatmap", "table"} <= panel_types


def test_dataflows_are_counted_with_sum_of_the_one_hot_gauge(dashboard: dict[str, Any]) -> None:
    exprs = [target["expr"] for panel in query_panels(dashboard) for target in panel["targets"]]
    # count() would count the four phase series of every DataFlow, whatever their value.
    assert not [e for e in exprs if re.search(r"count\s*(by\s*\([^)]*\)\s*)?\(\s*dataflow_status", e)]
    for phase in PHASES:
        wanted = rf'sum\(dataflow_status\{{[^}}]*phase="{phase}"\}}\)'
        assert any(re.fullmatch(wanted, e) for e in exprs), phase


def threshold_of(expr: str) -> float:
    match = re.search(r"(?:>|<)\s*([0-9.]+)\s*$", expr.strip())
    assert match, f"no trailing threshold in {expr!r}"
    return float(match.group(1))


def test_slo_panels_draw_each_alert_threshold(dashboard: dict[str, Any]) -> None:
    rules = alert_rules()
    rows = row_of(dashboard)
    slo_panels = [p for p in query_panels(dashboard) if rows[p["id"]] == "SLOs (alert thresholds)"]
    covered = set()
    for panel in slo_panels:
        (alert,) = re.findall(r"\bDataFlow\w+", panel["description"])
        steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
        assert panel["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"]["mode"] == "line"
        assert steps[1]["value"] == threshold_of(rules[alert]["expr"]), panel["title"]
        covered.add(alert)
    assert covered == {"DataFlowHighErrorRate", "DataFlowSlowProcessing", "DataFlowHighE2ELatency",
                       "DataFlowLowTaskSuccessRate", "DataFlowHighQueueSize", "DataFlowKafkaFetchTimeouts"}


def test_stalled_pipelines_stat_is_the_alert_condition(dashboard: dict[str, Any]) -> None:
    # The same condition, restricted to the selected DataFlows: drop the variable matchers and compare.
    (panel,) = [p for p in query_panels(dashboard) if p["title"] == "Stalled pipelines"]
    expr = panel["targets"][0]["expr"]
    unfiltered = re.sub(r'\{namespace=~"\$namespace", name=~"\$dataflow"(, )?', "{", expr).replace("{}", "")
    # The rule is written over several lines: collapse its whitespace the way the panel has it.
    alert = " ".join(alert_rules()["DataFlowPipelineStalled"]["expr"].split())
    alert = re.sub(r"\(\s+", "(", re.sub(r"\s+\)", ")", alert))
    assert unfiltered == f"count({alert}) or vector(0)"


# ------------------------------------------------------------------------------------------------
# Alert rules


def test_prometheusrule_manifest() -> None:
    document = yaml.safe_load(RULES_PATH.read_text())
    assert document["apiVersion"] == "monitoring.coreos.com/v1"
    assert document["kind"] == "PrometheusRule"
    assert document["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    rules = alert_rules()
    assert tuple(rules) == ALERTS
    assert rules["DataFlowInError"]["labels"]["severity"] == "critical"
    assert rules["DataFlowInError"]["for"] == "2m"
    assert rules["DataFlowConnectorDisconnected"]["for"] == "5m"
    assert rules["DataFlowProcessorMetricsUnavailable"]["for"] == "10m"
    assert threshold_of(rules["DataFlowHighErrorRate"]["expr"]) == 0.01
    assert threshold_of(rules["DataFlowLowTaskSuccessRate"]["expr"]) == 0.95
    assert threshold_of(rules["DataFlowHighQueueSize"]["expr"]) == 1000
    assert threshold_of(rules["DataFlowKafkaFetchTimeouts"]["expr"]) == 0.1


@pytest.mark.parametrize("alert", ALERTS)
def test_alert_uses_only_what_the_code_emits(alert: str) -> None:
    rule = alert_rules()[alert]
    assert not problems_in(rule["expr"])
    assert rule["labels"]["severity"] in {"critical", "warning"}
    for key in ("summary", "description"):
        text = rule["annotations"][key]
        assert "{{ $labels.namespace }}/{{ $labels.name }}" in text, (alert, key)
    assert "$value" in rule["annotations"]["description"], alert


@pytest.mark.parametrize("alert", ALERTS)
def test_histogram_thresholds_are_within_the_buckets(alert: str) -> None:
    # histogram_quantile cannot return more than the largest finite bucket bound, so a threshold at
    # or above it is an alert that never fires.
    expr = alert_rules()[alert]["expr"]
    for _by, series in QUANTILE.findall(expr):
        buckets = CONTRACT["buckets"][next(m["buckets"] for m in CONTRACT["metrics"]
                                           if m["name"] == series.removesuffix("_bucket"))]
        largest = buckets["start"] * buckets["factor"] ** (buckets["count"] - 1)
        assert threshold_of(expr) < largest, (alert, largest)


def rule_tests() -> list[dict[str, Any]]:
    tests = []
    for path in sorted(RULE_TESTS_DIR.glob("*.yaml")):
        document = yaml.safe_load(path.read_text())
        assert document["rule_files"] == ["rules.yaml"], path
        tests += document["tests"]
    return tests


@pytest.mark.parametrize("alert", ALERTS)
def test_every_alert_has_a_firing_and_a_silent_promtool_case(alert: str) -> None:
    cases = [case for test in rule_tests() for case in test["alert_rule_test"] if case["alertname"] == alert]
    firing = [case for case in cases if case["exp_alerts"]]
    assert firing, f"{alert}: no firing case"
    assert [case for case in cases if not case["exp_alerts"]], f"{alert}: no silent case"
    # The labels an annotation names must be on the alert, or it renders them empty; promtool checks
    # that exp_labels are exactly the alert's labels.
    annotations = " ".join(alert_rules()[alert]["annotations"].values())
    for case in firing:
        for expected in case["exp_alerts"]:
            named = set(re.findall(r"\$labels\.(\w+)", annotations))
            assert named <= set(expected["exp_labels"]), (alert, named - set(expected["exp_labels"]))


# ------------------------------------------------------------------------------------------------
# One source of truth


@pytest.mark.parametrize(("canonical", "copy"), list(CHART_COPIES.items()), ids=lambda p: p.name)
def test_chart_copies_equal_the_canonical_files(canonical: Path, copy: Path) -> None:
    assert copy.read_bytes() == canonical.read_bytes(), (
        f"{copy.relative_to(REPO)} differs from {canonical.relative_to(REPO)}; edit the canonical file and "
        f"run: cp {canonical.relative_to(REPO)} {copy.relative_to(REPO)}")


def test_the_crd_has_one_manifest_in_the_repository() -> None:
    # Helm would install a chart's crds/ directory on its own, beside templates/crds.yaml.
    assert not (CHART / "crds").exists()
    defining = []
    for path in REPO.rglob("*.y*ml"):
        if any(part.startswith(".") for part in path.relative_to(REPO).parts):
            continue  # .git, .tox, caches
        text = path.read_text(errors="replace")
        if "CustomResourceDefinition" not in text or "dataflows.dataflow.dataflow.io" not in text:
            continue
        for document in yaml.safe_load_all(text):
            if (isinstance(document, dict) and document.get("kind") == "CustomResourceDefinition"
                    and document["metadata"]["name"] == "dataflows.dataflow.dataflow.io"):
                defining.append(path)
    assert defining == [CRD_PATH]


# ------------------------------------------------------------------------------------------------
# CRD


@pytest.fixture(scope="module")
def crd() -> dict[str, Any]:
    (document,) = [d for d in yaml.safe_load_all(CRD_PATH.read_text()) if d]
    assert isinstance(document, dict)
    return document


def walk_schema(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, node
    for name, child in node.get("properties", {}).items():
        yield from walk_schema(child, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        yield from walk_schema(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from walk_schema(node["additionalProperties"], f"{path}{{}}")


def test_crd_identity(crd: dict[str, Any]) -> None:
    spec = crd["spec"]
    assert crd["metadata"]["name"] == "dataflows.dataflow.dataflow.io"
    assert spec["group"] == "dataflow.dataflow.io" and spec["scope"] == "Namespaced"
    assert spec["names"] == {"kind": "DataFlow", "listKind": "DataFlowList", "plural": "dataflows",
                             "singular": "dataflow", "shortNames": ["df"]}
    (version,) = spec["versions"]
    assert version["name"] == "v1" and version["served"] and version["storage"]
    assert version["subresources"] == {"status": {}}
    columns = {c["name"]: c["jsonPath"] for c in version["additionalPrinterColumns"]}
    assert columns == {"Phase": ".status.phase", "Processed": ".status.processedCount",
                       "Errors": ".status.errorCount", "Last": ".status.lastProcessedTime",
                       "Age": ".metadata.creationTimestamp"}


def test_crd_schema_is_structural(crd: dict[str, Any]) -> None:
    # The API server rejects a non-structural schema; this names the offending path before it does.
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for path, node in walk_schema(schema):
        if node.get("x-kubernetes-int-or-string"):
            continue
        assert "type" in node, f"{path or '<root>'} has no type"
        if node["type"] == "object" and not node.get("x-kubernetes-preserve-unknown-fields"):
            assert "properties" in node or "additionalProperties" in node or path == ".metadata", path


def test_crd_spec_fields(crd: dict[str, Any]) -> None:
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    props = spec["properties"]
    # shared/spec/connectors.md section 1.
    assert set(props) == {
        "source", "sink", "transformations", "errors", "resources", "nodeSelector", "affinity", "tolerations",
        "imagePullSecrets", "processorImage", "processorVersion", "replicas", "channelBufferSize",
        "checkpointPersistence", "checkpointSyncOnAck", "checkpointSaveInterval", "checkpointReset",
        "ackGranularity", "strictIdempotency", "maintenance"}
    assert set(spec["required"]) == {"source", "sink"}
    for connector in ("source", "sink", "errors"):
        schema = props[connector]
        assert schema["properties"]["type"]["enum"] == list(CONNECTOR_TYPES)
        # Both encodings: {type, config} and {type, <type>: {...}}.
        for key in ("config", *CONNECTOR_TYPES):
            assert schema["properties"][key]["x-kubernetes-preserve-unknown-fields"], (connector, key)
    ack_policies = props["errors"]["properties"]["ackPolicy"]["enum"]
    assert ack_policies == ["afterWrite", "never", "afterMainSinkSuccess"]
    item = props["transformations"]["items"]["properties"]
    assert sorted(item["type"]["enum"]) == sorted(TRANSFORMATION_TYPES)  # the order means nothing to the API
    for key in ("config", *TRANSFORMATION_TYPES):
        assert item[key]["x-kubernetes-preserve-unknown-fields"], key
    assert item["when"]["type"] == "string"
    assert props["replicas"]["minimum"] == props["channelBufferSize"]["minimum"] == 1
    assert props["ackGranularity"]["enum"] == ["batch", "message"]
    maintenance = props["maintenance"]["properties"]
    assert set(maintenance) == {"startTime", "duration", "repeat", "timezone", "description", "suspended"}
    assert maintenance["repeat"]["enum"] == ["daily", "weekly", "monthly", ""]


def test_crd_status_fields(crd: dict[str, Any]) -> None:
    status = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]
    assert set(status) == {"phase", "message", "lastProcessedTime", "processedCount", "errorCount",
                           "maintenanceStatus", "observedGeneration", "conditions"}
    assert status["phase"]["enum"] == list(PHASES)
    assert set(status["maintenanceStatus"]["properties"]) == {
        "inMaintenance", "nextMaintenanceTime", "lastMaintenanceTime", "suspended"}
    assert status["conditions"]["x-kubernetes-list-map-keys"] == ["type"]


# ------------------------------------------------------------------------------------------------
# Chart values and image


def values() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text())
    return data


def test_values_are_the_documented_ones_and_satisfy_the_schema() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    jsonschema.validate(values(), schema)
    # shared/spec/monitoring.md, "Chart values".
    documented = [
        "crds.install", "crds.keep", "replicaCount", "image.repository", "image.tag", "image.pullPolicy",
        "processorImage", "imagePullSecrets", "nameOverride", "fullnameOverride", "serviceAccount.create",
        "serviceAccount.annotations", "serviceAccount.name", "podAnnotations", "podSecurityContext",
        "securityContext", "resources", "rbac.create", "metrics.enabled", "metrics.port", "health.probePort",
        "logLevel", "processorLogLevel", "processorProgressTimeoutSeconds", "leaderElection.enabled",
        "workers", "aggregation.timeoutSeconds", "sentry.enabled", "sentry.dsn", "sentry.environment",
        "sentry.tracesSampleRate", "sentry.debug", "sentry.release", "service.type", "service.port",
        "serviceMonitor.enabled", "serviceMonitor.interval", "serviceMonitor.scrapeTimeout",
        "serviceMonitor.additionalLabels", "serviceMonitor.honorLabels", "monitoring.dashboard.enabled",
        "monitoring.dashboard.folder", "monitoring.prometheusRule.enabled",
        "monitoring.prometheusRule.additionalLabels", "nodeSelector", "tolerations", "affinity",
        "podMonitor.enabled",
        "statusCounts.intervalSeconds",  # ours: the Processed/Errors/Last columns
        # ours: the validating admission webhook (docs/webhook.md)
        "webhook.enabled", "webhook.port", "webhook.failurePolicy", "webhook.timeoutSeconds",
        "webhook.namespaceSelector", "webhook.objectSelector", "webhook.certRefreshSeconds",
        "webhook.certManager.enabled", "webhook.certManager.issuerRef",
    ]

    # Objects such as `resources` are values in their own right; only documented parents are walked.
    parents = {path[:i] for path in documented for i, char in enumerate(path) if char == "."}

    def leaves(tree: dict[str, Any], prefix: str = "") -> set[str]:
        out = set()
        for key, value in tree.items():
            dotted = f"{prefix}{key}"
            if isinstance(value, dict) and dotted in parents:
                out |= leaves(value, f"{dotted}.")
            else:
                out.add(dotted)
        return out

    assert leaves(values()) == set(documented)


@pytest.mark.parametrize("typo", [{"replicaCont": 2}, {"sentry": {"dsnn": "x"}},
                                  {"serviceMonitor": {"scrapeTimeout": 10}}, {"logLevel": "verbose"}])
def test_values_schema_rejects_typos(typo: dict[str, Any]) -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    merged = values()
    for key, value in typo.items():
        merged[key] = {**merged[key], **value} if isinstance(value, dict) else value
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(merged, schema)


def test_defaults_match_the_spec() -> None:
    v = values()
    assert v["crds"] == {"install": True, "keep": True}
    assert v["resources"] == {"requests": {"cpu": "100m", "memory": "128Mi"},
                              "limits": {"cpu": "500m", "memory": "384Mi"}}  # docs/monitoring.md
    assert (v["metrics"]["port"], v["health"]["probePort"], v["workers"]) == (9090, 9091, 4)
    assert v["processorProgressTimeoutSeconds"] == 3600 and v["aggregation"]["timeoutSeconds"] == 5
    assert v["leaderElection"]["enabled"] is True
    assert (v["serviceMonitor"]["interval"], v["serviceMonitor"]["scrapeTimeout"]) == ("30s", "10s")
    assert v["serviceMonitor"]["honorLabels"] is True
    assert v["monitoring"]["prometheusRule"]["additionalLabels"] == {"release": "kube-prometheus-stack"}
    security = v["securityContext"]
    assert security["runAsNonRoot"] and security["readOnlyRootFilesystem"]
    assert security["allowPrivilegeEscalation"] is False and security["capabilities"]["drop"] == ["ALL"]


def test_image_user_is_the_chart_run_as_user() -> None:
    # runAsNonRoot only accepts an image whose USER is numeric; the chart pins the same uid.
    dockerfile = (REPO / "Dockerfile").read_text()
    users = re.findall(r"^USER\s+(\d+)(?::(\d+))?\s*$", dockerfile, re.MULTILINE)
    assert users, "the Dockerfile must end as a numeric non-root USER"
    uid, gid = users[-1]
    security = values()["podSecurityContext"]
    assert int(uid) == security["runAsUser"] != 0
    assert int(gid) == security["runAsGroup"]
    assert re.search(r"^FROM python:3\.11-slim\b", dockerfile, re.MULTILINE)
    assert 'ENTRYPOINT ["dataflow-operator"]' in dockerfile
