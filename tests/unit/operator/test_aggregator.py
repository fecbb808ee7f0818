"""The aggregator's parser, merge and pod selection: pure functions, no network."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kubernetes import client as k8s
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import Metric
from prometheus_client.openmetrics import exposition as om_exposition
from prometheus_client.openmetrics import parser as om_parser
from prometheus_client.parser import text_string_to_metric_families

from dataflow_operator.operator.aggregator import PodTarget, ProcessorMetricsAggregator, select_targets
from dataflow_operator.operator.aggregator_merge import MergedFamily, SampleView, merge_families
from dataflow_operator.operator.aggregator_parse import ExpositionError, ParsedFamily, parse_exposition


class _Families:
    """A collector yielding merged families, to run prometheus_client's exposition over them."""

    def __init__(self, families: list[MergedFamily]) -> None:
        self.families = families

    def collect(self) -> list[Metric]:
        return [family.to_metric() for family in self.families]


def text_of(families: list[MergedFamily]) -> str:
    return generate_latest(_Families(families)).decode()


def openmetrics_of(families: list[MergedFamily]) -> str:
    output: bytes = om_exposition.generate_latest(_Families(families))  # type: ignore[no-untyped-call]
    return output.decode()


def rows(family: ParsedFamily) -> list[tuple[str, dict[str, str], float, Any]]:
    """A parsed family's samples as (name, labels, value, timestamp)."""
    return [(sample.name, sample.labels, sample.value, sample.timestamp) for sample in SampleView(family.samples)]


def samples(families: dict[str, ParsedFamily]) -> list[tuple[str, dict[str, str], float]]:
    return [row[:3] for family in families.values() for row in rows(family)]


def processor_registry(dataflow: str = "df") -> CollectorRegistry:
    """What a processor built on prometheus_client serves: counters with ``_created``, a histogram,
    a gauge, and the default process/platform noise."""
    registry = CollectorRegistry()
    received = Counter("dataflow_messages_received", "Messages received", ["namespace", "name", "source_type"],
                       registry=registry)
    received.labels("ns", dataflow, "kafka").inc(3)
    duration = Histogram("dataflow_processing_duration_seconds", "Processing time", ["namespace", "name"],
                         buckets=(0.001, 0.01, 1.0), registry=registry)
    duration.labels("ns", dataflow).observe(0.005)
    Gauge("dataflow_task_active_messages", "Active", ["namespace", "name"], registry=registry).labels(
        "ns", dataflow).set(2)
    Gauge("process_open_fds", "noise", registry=registry).set(7)
    Gauge("go_goroutines", "noise", registry=registry).set(7)
    Gauge("python_info", "noise", registry=registry).set(1)
    return registry


# --- parsing -------------------------------------------------------------------------------------------


def test_prometheus_client_text_output_is_read_with_pod_label_and_normalised_counter_name() -> None:
    families = parse_exposition(generate_latest(processor_registry()).decode(), "df-abc")

    assert set(families) == {"dataflow_messages_received", "dataflow_processing_duration_seconds",
                             "dataflow_task_active_messages"}
    counter = families["dataflow_messages_received"]
    assert counter.type == "counter"
    assert counter.documentation == "Messages received"
    assert [row[:3] for row in rows(counter)] == [
        ("dataflow_messages_received_total",
         {"namespace": "ns", "name": "df", "source_type": "kafka", "pod": "df-abc"}, 3.0)]
    histogram = families["dataflow_processing_duration_seconds"]
    assert [row[0] for row in rows(histogram)] == ["dataflow_processing_duration_seconds_bucket"] * 4 + [
        "dataflow_processing_duration_seconds_count", "dataflow_processing_duration_seconds_sum"]
    assert [row[1]["le"] for row in rows(histogram)[:4]] == ["0.001", "0.01", "1.0", "+Inf"]


def test_created_series_are_dropped_in_both_formats() -> None:
    registry = processor_registry()
    text = generate_latest(registry).decode()
    openmetrics = om_exposition.generate_latest(registry).decode()  # type: ignore[no-untyped-call]
    assert "dataflow_messages_received_created" in text and "_created" in openmetrics

    for families in (parse_exposition(text, "p"), parse_exposition(openmetrics, "p", openmetrics=True)):
        assert not [s for s in samples(families) if s[0].endswith("_created")]
        assert "dataflow_messages_received" in families


def test_a_created_gauge_without_a_counter_of_that_name_is_kept() -> None:
    text = "# TYPE dataflow_thing_created gauge\ndataflow_thing_created 5\n"
    assert samples(parse_exposition(text, "p")) == [("dataflow_thing_created", {"pod": "p"}, 5.0)]


def test_only_dataflow_families_are_kept() -> None:
    text = (
        "# HELP go_goroutines g\n# TYPE go_goroutines gauge\ngo_goroutines 12\n"
        "# HELP process_cpu_seconds_total c\n# TYPE process_cpu_seconds_total counter\n"
        "process_cpu_seconds_total 1.5\n"
        '# TYPE python_gc_objects_collected_total counter\npython_gc_objects_collected_total{generation="0"} 3\n'
        "# TYPE dataflow_task_queue_size gauge\n"
        'dataflow_task_queue_size{namespace="a",name="b",queue_type="output"} 4\n'
        "notdataflow_x 1\n"
    )
    assert samples(parse_exposition(text, "p")) == [
        ("dataflow_task_queue_size", {"namespace": "a", "name": "b", "queue_type": "output", "pod": "p"}, 4.0)]


@pytest.mark.parametrize(("raw", "value"), [
    ('a\\"b', 'a"b'),
    ("back\\\\slash", "back\\slash"),
    ("line\\nbreak", "line\nbreak"),
    ('all\\\\\\"\\n', 'all\\"\n'),
    ("{curly}=,", "{curly}=,"),
    ("", ""),
    ("ünïcødé", "ünïcødé"),
])
def test_label_values_are_unescaped(raw: str, value: str) -> None:
    text = f'dataflow_x{{a="{raw}",b="plain"}} 1\n'
    assert samples(parse_exposition(text, "p")) == [("dataflow_x", {"a": value, "b": "plain", "pod": "p"}, 1.0)]


@given(st.dictionaries(st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True).filter(lambda k: k != "pod"),
                       st.text(), min_size=0, max_size=4))
def test_any_label_values_round_trip_through_prometheus_client(labels: dict[str, str]) -> None:
    registry = CollectorRegistry()
    gauge = Gauge("dataflow_prop", "p", list(labels), registry=registry)
    (gauge.labels(**labels) if labels else gauge).set(1.5)

    parsed = parse_exposition(generate_latest(registry).decode(), "pod-1")

    assert samples(parsed) == [("dataflow_prop", {**labels, "pod": "pod-1"}, 1.5)]


def test_special_values() -> None:
    text = ('dataflow_a{k="1"} NaN\ndataflow_b{k="1"} +Inf\ndataflow_c{k="1"} -Inf\n'
            'dataflow_d{k="1"} 1.5e-07\ndataflow_e 42\n')
    values = [s[2] for s in samples(parse_exposition(text, "p"))]
    assert math.isnan(values[0])
    assert values[1:] == [math.inf, -math.inf, 1.5e-07, 42.0]


def test_timestamps_are_kept_and_written_back_unchanged() -> None:
    text = 'dataflow_x{k="1"} 3 1700000000123\ndataflow_y 4 -5\n'
    families = parse_exposition(text, "p")
    assert [row[3] for f in families.values() for row in rows(f)] == [1700000000.123, -0.005]
    merged, _ = merge_families([families])
    assert 'dataflow_x{k="1",pod="p"} 3.0 1700000000123' in text_of(merged)


def test_blanks_and_trailing_comma_are_tolerated_like_the_go_parser() -> None:
    text = 'dataflow_x { a = "1" , b="2", } 3\ndataflow_y{a="1",}   4  \n'
    assert samples(parse_exposition(text, "p")) == [
        ("dataflow_x", {"a": "1", "b": "2", "pod": "p"}, 3.0), ("dataflow_y", {"a": "1", "pod": "p"}, 4.0)]


def test_missing_help_and_type() -> None:
    text = 'dataflow_untyped_total{a="1"} 2\n# TYPE dataflow_g gauge\ndataflow_g 1\n'
    families = parse_exposition(text, "p")
    assert [(f.name, f.type, f.documentation) for f in families.values()] == [
        ("dataflow_untyped_total", "unknown", ""), ("dataflow_g", "gauge", "")]
    merged, _ = merge_families([families])
    assert "# TYPE dataflow_untyped_total untyped" in text_of(merged)


def test_help_escapes_are_read() -> None:
    text = "# HELP dataflow_g a \\\\ b\\nc\n# TYPE dataflow_g gauge\ndataflow_g 1\n"
    assert parse_exposition(text, "p")["dataflow_g"].documentation == "a \\ b\nc"


def test_interleaved_families_end_up_in_one_family_each() -> None:
    text = (
        "# TYPE dataflow_a gauge\n# TYPE dataflow_b gauge\n"
        'dataflow_a{k="1"} 1\ndataflow_b{k="1"} 2\ndataflow_a{k="2"} 3\n'
    )
    families = parse_exposition(text, "p")
    assert [(row[1]["k"], row[2]) for row in rows(families["dataflow_a"])] == [("1", 1.0), ("2", 3.0)]
    assert len(families["dataflow_b"].samples) == 1


def test_text_counter_without_total_suffix_stays_an_untyped_series_of_its_name() -> None:
    text = "# TYPE dataflow_legacy counter\ndataflow_legacy 5\n"
    families = parse_exposition(text, "p")
    assert [(f.name, f.type) for f in families.values()] == [("dataflow_legacy", "unknown")]
    merged, _ = merge_families([families])
    assert [(f.name, f.type) for f in text_string_to_metric_families(text_of(merged))] == [
        ("dataflow_legacy", "unknown")]


def test_openmetrics_input_with_exemplars_units_and_float_timestamps() -> None:
    text = (
        "# TYPE dataflow_requests counter\n# UNIT dataflow_requests requests\n# HELP dataflow_requests Reqs\n"
        'dataflow_requests_total{a="x"} 5 # {trace_id="abc"} 1.0 1700000000.5\n'
        'dataflow_requests_created{a="x"} 1700000000.0\n'
        "# TYPE dataflow_lat histogram\n"
        'dataflow_lat_bucket{le="1"} 1 # {trace_id="t"} 0.5\n'
        'dataflow_lat_bucket{le="+Inf"} 2\ndataflow_lat_count 2\ndataflow_lat_sum 3.5\n'
        "# TYPE dataflow_build info\ndataflow_build_info{version=\"1\"} 1\n"
        "# TYPE dataflow_g gauge\ndataflow_g 1 1700000000.25\n"
        "# EOF\n"
    )
    families = parse_exposition(text, "p", openmetrics=True)
    assert [(f.name, f.type, f.documentation) for f in families.values()] == [
        ("dataflow_requests", "counter", "Reqs"), ("dataflow_lat", "histogram", ""),
        ("dataflow_build", "info", ""), ("dataflow_g", "gauge", "")]
    assert samples(families)[0] == ("dataflow_requests_total", {"a": "x", "pod": "p"}, 5.0)
    assert rows(families["dataflow_lat"])[1][1]["le"] == "+Inf"
    assert rows(families["dataflow_g"])[0][3] == 1700000000.25
    merged, _ = merge_families([families])
    assert len(list(om_parser.text_string_to_metric_families(openmetrics_of(merged)))) == 4


def test_bucket_bounds_are_written_canonically_as_openmetrics_requires() -> None:
    text = ('# TYPE dataflow_h histogram\ndataflow_h_bucket{le="1"} 1\ndataflow_h_bucket{le="2.50"} 1\n'
            'dataflow_h_bucket{le="+Inf"} 1\ndataflow_h_sum 1\ndataflow_h_count 1\n')
    families = parse_exposition(text, "p")
    assert [row[1]["le"] for row in rows(families["dataflow_h"])[:3]] == ["1.0", "2.5", "+Inf"]
    merged, _ = merge_families([families])
    assert len(list(om_parser.text_string_to_metric_families(openmetrics_of(merged)))) == 1


def test_an_existing_pod_label_becomes_exported_pod_like_prometheus_honor_labels_false() -> None:
    text = ('dataflow_x{pod="inner",a="1"} 1\n'
            'dataflow_y{pod="inner",exported_pod="older"} 2\n'
            'dataflow_z{pod="inner"} 3\n')
    assert samples(parse_exposition(text, "outer")) == [
        ("dataflow_x", {"exported_pod": "inner", "a": "1", "pod": "outer"}, 1.0),
        ("dataflow_y", {"exported_exported_pod": "inner", "exported_pod": "older", "pod": "outer"}, 2.0),
        ("dataflow_z", {"exported_pod": "inner", "pod": "outer"}, 3.0),
    ]
    escaped = 'dataflow_x{pod="in\\"ner"} 1\n'  # the tokenizer for lines with escapes does the same
    assert samples(parse_exposition(escaped, "outer")) == [
        ("dataflow_x", {"exported_pod": 'in"ner', "pod": "outer"}, 1.0)]


@pytest.mark.parametrize("text", [
    'dataflow_x{a="1} 1\n',  # unbalanced quote
    'dataflow_x{a="1"} abc\n',  # value
    'dataflow_x{a="1"}\n',  # no value
    'dataflow_x{a="1"} 1 2 3\n',  # too many fields
    'dataflow_x{a="1"} 1 1.5\n',  # text timestamps are integers
    'dataflow_x{a="1",a="2"} 1\n',  # duplicate label
    'dataflow_x{a="1" b="2"} 1\n',  # missing comma
    'dataflow_x{a="\\t"} 1\n',  # invalid escape
    'dataflow_x{1a="1"} 1\n',  # invalid label name
    'dataflow_x{a="1"\n',  # cut short
    'dataflow_x{a="1"}1\n',  # no blank before the value
    "dataflow_x\n",
    "# TYPE dataflow_x gauge\n# TYPE dataflow_x counter\n",  # conflicting types
    "# TYPE dataflow_x wibble\n",
    "# TYPE dataflow_h histogram\n# TYPE dataflow_h_sum gauge\n",  # a sample name owned twice
    "# TYPE dataflow_h histogram\ndataflow_h 1\n",  # a sample that fits no suffix of its family
])
def test_malformed_input_is_rejected(text: str) -> None:
    with pytest.raises(ExpositionError):
        parse_exposition(text, "p")


def test_garbage_is_rejected_and_empty_input_is_fine() -> None:
    with pytest.raises(ExpositionError):
        parse_exposition("dataflow_<html>nope</html>", "p")
    assert parse_exposition("", "p") == {}
    assert parse_exposition("<html>not metrics at all</html>", "p") == {}


# --- merging ---------------------------------------------------------------------------------------------


def test_two_pods_merge_into_one_family_each_with_a_pod_label_and_histograms_together() -> None:
    pods = [parse_exposition(generate_latest(processor_registry(df)).decode(), pod)
            for df, pod in (("one", "one-aaa"), ("one", "one-bbb"))]
    merged, left_out = merge_families(pods)
    text = text_of(merged)

    assert left_out == []
    assert text.count("# TYPE dataflow_processing_duration_seconds histogram") == 1
    assert text.count("# HELP dataflow_messages_received_total") == 1
    parsed = {f.name: f for f in text_string_to_metric_families(text)}
    assert {s.labels["pod"] for s in parsed["dataflow_messages_received"].samples} == {"one-aaa", "one-bbb"}
    histogram = [s.name.rsplit("_", 1)[1] + ":" + s.labels["pod"]
                 for s in parsed["dataflow_processing_duration_seconds"].samples]
    assert histogram == ["bucket:one-aaa"] * 4 + ["count:one-aaa", "sum:one-aaa"] + \
        ["bucket:one-bbb"] * 4 + ["count:one-bbb", "sum:one-bbb"]
    # The same families are valid OpenMetrics (grouping, bucket order, counter suffixes).
    om = {f.name: f for f in om_parser.text_string_to_metric_families(openmetrics_of(merged))}
    assert om["dataflow_messages_received"].type == "counter"
    assert len(om["dataflow_processing_duration_seconds"].samples) == 12


def test_a_family_whose_type_disagrees_with_the_first_pod_is_left_out() -> None:
    first = parse_exposition("# TYPE dataflow_x gauge\ndataflow_x 1\n", "a")
    second = parse_exposition("# TYPE dataflow_x summary\ndataflow_x_count 1\ndataflow_x_sum 1\n", "b")
    merged, left_out = merge_families([first, second])
    assert [(m.name, m.type, len(m.samples)) for m in merged] == [("dataflow_x", "gauge", 1)]
    assert left_out == ["dataflow_x"]


def test_families_the_operator_exports_itself_are_never_taken_from_a_pod() -> None:
    text = ("# TYPE dataflow_status gauge\ndataflow_status 1\n"
            "# TYPE dataflow_aggregator_pods_scraped gauge\ndataflow_aggregator_pods_scraped 1\n"
            "# TYPE dataflow_ok gauge\ndataflow_ok 1\n")
    merged, left_out = merge_families([parse_exposition(text, "p")])
    assert [m.name for m in merged] == ["dataflow_ok"]
    assert left_out == ["dataflow_status", "dataflow_aggregator_pods_scraped"]


# --- choosing pods ----------------------------------------------------------------------------------------


def pod_dict(name: str, *, namespace: str = "ns", dataflow: str | None = "df", app: str = "dataflow-processor",
             phase: str = "Running", ip: str | None = "10.0.0.1", ready: str = "True") -> dict[str, Any]:
    labels = {"app": app}
    if dataflow is not None:
        labels["dataflow.dataflow.io/name"] = dataflow
    return {"metadata": {"name": name, "namespace": namespace, "labels": labels},
            "status": {"phase": phase, "podIP": ip,
                       "conditions": [{"type": "PodScheduled", "status": "True"},
                                      {"type": "Ready", "status": ready}]}}


def test_select_targets_keeps_running_ready_processor_pods_of_known_dataflows() -> None:
    pods = [
        pod_dict("df-b"),
        pod_dict("df-a", ip="10.0.0.2"),
        pod_dict("other-ns", namespace="elsewhere"),  # DataFlow elsewhere/df does not exist
        pod_dict("unknown-df", dataflow="gone"),
        pod_dict("no-df-label", dataflow=None),
        pod_dict("not-processor", app="something"),
        pod_dict("pending", phase="Pending"),
        pod_dict("no-ip", ip=None),
        pod_dict("not-ready", ready="False"),
        {"metadata": {"name": "no-status", "namespace": "ns", "labels": {}}},
    ]
    assert select_targets(pods, {("ns", "df"), ("ns", "gone-too")}) == [
        PodTarget("ns", "df-a", "df", "10.0.0.2"), PodTarget("ns", "df-b", "df", "10.0.0.1")]


def test_select_targets_reads_the_official_clients_models_too() -> None:
    def pod(name: str, ready: str) -> k8s.V1Pod:
        return k8s.V1Pod(
            metadata=k8s.V1ObjectMeta(name=name, namespace="ns", labels={
                "app": "dataflow-processor", "dataflow.dataflow.io/name": "df"}),
            status=k8s.V1PodStatus(phase="Running", pod_ip="fd00::1", conditions=[
                k8s.V1PodCondition(type="Ready", status=ready)]))

    targets = select_targets([pod("ready", "True"), pod("unready", "False")], {("ns", "df")}, port=9191)
    assert targets == [PodTarget("ns", "ready", "df", "fd00::1", 9191)]
    assert targets[0].url == "http://[fd00::1]:9191/metrics"


def test_a_follower_emits_only_its_own_metrics_and_lists_no_pods() -> None:
    def no_pods() -> list[PodTarget]:
        raise AssertionError("a follower must not scrape")

    aggregator = ProcessorMetricsAggregator(no_pods, lambda: False)
    try:
        names = {metric.name for metric in aggregator.collect()}
    finally:
        aggregator.close()
    assert names == {"dataflow_aggregator_scrape_duration_seconds", "dataflow_aggregator_pods_scraped",
                     "dataflow_aggregator_pod_scrape_errors"}


def test_a_failing_pod_listing_costs_the_scrape_its_pods_not_the_operators_own_series() -> None:
    def broken() -> list[PodTarget]:
        raise RuntimeError("cache gone")

    aggregator = ProcessorMetricsAggregator(broken, lambda: True)
    try:
        families = {metric.name: metric for metric in aggregator.collect()}
    finally:
        aggregator.close()
    assert families["dataflow_aggregator_pods_scraped"].samples[0].value == 0.0


def test_the_aggregator_describes_its_own_families_so_a_registry_takes_it_once() -> None:
    registry = CollectorRegistry()
    first = ProcessorMetricsAggregator(list, lambda: False)
    second = ProcessorMetricsAggregator(list, lambda: False)
    try:
        registry.register(first)
        with pytest.raises(ValueError, match="dataflow_aggregator_pods_scraped"):
            registry.register(second)
    finally:
        first.close()
        second.close()
