"""The byte-level path (index per pod, then exposition) against the full parser's path: for any body,
both formats must say exactly what prometheus_client writes from the full parser's Metric objects."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Summary, generate_latest
from prometheus_client.core import Metric
from prometheus_client.openmetrics import exposition as om_exposition
from prometheus_client.openmetrics import parser as om_parser
from prometheus_client.parser import text_string_to_metric_families

from dataflow_operator.operator.aggregator_exposition import OPENMETRICS_EOF, processor_exposition
from dataflow_operator.operator.aggregator_index import RawFamily, index_pod
from dataflow_operator.operator.aggregator_merge import group_families, merge_families
from dataflow_operator.operator.aggregator_parse import ExpositionError, parse_exposition


class _Families:
    def __init__(self, metrics: list[Metric]) -> None:
        self.metrics = metrics

    def collect(self) -> list[Metric]:
        return self.metrics


def byte_level(bodies: dict[str, str], *, openmetrics: bool, answered_openmetrics: bool = False) -> str:
    indexed = [(pod, index_pod(body.encode(), pod, openmetrics=answered_openmetrics)) for pod, body in bodies.items()]
    groups, _ = group_families(indexed)
    output = b"".join(processor_exposition(groups, openmetrics=openmetrics))
    return (output + OPENMETRICS_EOF if openmetrics else output).decode()


def through_metrics(bodies: dict[str, str], *, openmetrics: bool, answered_openmetrics: bool = False) -> str:
    merged, _ = merge_families(parse_exposition(body, pod, openmetrics=answered_openmetrics)
                               for pod, body in bodies.items())
    collector = _Families([family.to_metric() for family in merged])
    if openmetrics:
        output: bytes = om_exposition.generate_latest(collector)  # type: ignore[no-untyped-call]
        return output.decode()
    return generate_latest(collector).decode()


def families(text: str, *, openmetrics: bool) -> list[tuple[Any, ...]]:
    """What a scraper reads: families in order, each with its samples (labels as a dict: order free)."""
    parse = om_parser.text_string_to_metric_families if openmetrics else text_string_to_metric_families
    return [(family.name, family.type, family.documentation,
             [(sample.name, sample.labels, _value(sample.value), sample.timestamp) for sample in family.samples])
            for family in parse(text)]


def _value(value: float) -> Any:
    return "NaN" if math.isnan(value) else value


def assert_same(bodies: dict[str, str], answered_openmetrics: bool = False) -> None:
    for openmetrics in (False, True):
        ours = byte_level(bodies, openmetrics=openmetrics, answered_openmetrics=answered_openmetrics)
        theirs = through_metrics(bodies, openmetrics=openmetrics, answered_openmetrics=answered_openmetrics)
        assert families(ours, openmetrics=openmetrics) == families(theirs, openmetrics=openmetrics)
        # HELP, TYPE and EOF lines byte for byte; then one HELP and one TYPE per family.
        assert [line for line in ours.splitlines() if line.startswith("#")] == \
            [line for line in theirs.splitlines() if line.startswith("#")]
        for kind in ("# HELP ", "# TYPE "):
            names = [line.split(" ")[2] for line in ours.splitlines() if line.startswith(kind)]
            assert len(names) == len(set(names))


def processor_body(dataflow: str = "df") -> str:
    """A processor's body as prometheus_client writes it, with the families a processor has."""
    registry = CollectorRegistry()
    Counter("dataflow_messages_received", "Messages received", ["namespace", "name", "source_type"],
            registry=registry).labels("ns", dataflow, "kafka").inc(3)
    histogram = Histogram("dataflow_message_size_bytes", "Sizes", ["namespace", "name", "stage"],
                          buckets=(64, 1024, 1048576.0, 4e9), registry=registry)
    for stage in ("input", "output"):
        histogram.labels("ns", dataflow, stage).observe(900)
    Gauge("dataflow_task_queue_size", 'Queue "size"\\ with\nnewline', ["namespace", "name", "queue"],
          registry=registry).labels("ns", dataflow, "routing").set(float("nan"))
    Summary("dataflow_lag_seconds", "Lag", ["namespace", "name"], registry=registry).labels("ns", dataflow).observe(2)
    Gauge("process_open_fds", "noise", registry=registry).set(7)
    return generate_latest(registry).decode()


def test_processor_bodies_are_kept_as_bytes_and_written_as_prometheus_client_would() -> None:
    body = processor_body()
    indexed = index_pod(body.encode(), "df-a", openmetrics=False)
    assert all(isinstance(family, RawFamily) for family in indexed.values())
    assert set(indexed) == {"dataflow_messages_received", "dataflow_message_size_bytes", "dataflow_task_queue_size",
                            "dataflow_lag_seconds"}  # the _created gauges are dropped
    assert_same({"df-a": body, "df-b": processor_body("other")})


def test_the_pod_label_comes_first_and_bounds_are_canonical() -> None:
    text = byte_level({"df-a": processor_body()}, openmetrics=False)
    assert 'dataflow_message_size_bytes_bucket{pod="df-a",le="1.048576e+06",name="df",namespace="ns",' in text
    assert 'le="4e+09"' in text and 'le="1048576.0"' not in text
    om = byte_level({"df-a": processor_body()}, openmetrics=True)
    assert om.count("# EOF") == 1  # one end marker, which the caller appends
    assert len(list(om_parser.text_string_to_metric_families(om))) == 4  # type: ignore[no-untyped-call]


@pytest.mark.parametrize("body", [
    'dataflow_x{pod="inner",a="1"} 1\n',  # an existing pod label is renamed
    'dataflow_x{a="1"} 3 1700000000123\n',  # a timestamp
    'dataflow_x{a="with \\"quote\\" and \\\\"} 1\n',  # escapes
    'dataflow_x{a="br{ace}"} 1\n',  # the splice point inside a value
    "dataflow_x 1\n",  # no labels
    "# HELP dataflow_x x\n# TYPE dataflow_x gauge\ndataflow_x{a=\"1\"} Inf\n",  # a value to rewrite
    "# TYPE dataflow_x gauge\ndataflow_x{a=\"1\"} 1\n",  # no HELP
    "# HELP dataflow_x x\n# TYPE dataflow_x gauge\ndataflow_x{a=\"1\"} 1\n# comment\n",
    "# HELP dataflow_x x\n# TYPE dataflow_x gauge\ndataflow_x { a = \"1\" } 1\n",  # blanks
    "# HELP go_x x\n# TYPE go_x gauge\ngo_x 1\ndataflow_hidden{a=\"1\"} 1\n",  # ours inside a foreign family
    "# HELP dataflow_x x\n# TYPE dataflow_x gauge\ndataflow_x{a=\"1\"} 1\n"
    "# HELP dataflow_x x\n# TYPE dataflow_x gauge\ndataflow_x{a=\"2\"} 2\n",  # one family twice
    "# HELP dataflow_h h\n# TYPE dataflow_h histogram\ndataflow_h_bucket{le=\"1\",a=\"1\"} 1\n"
    "dataflow_h_bucket{le=\"+Inf\",a=\"1\"} 1\ndataflow_h_count{a=\"1\"} 1\ndataflow_h_sum{a=\"1\"} 1\n",
    "# HELP dataflow_c c\n# TYPE dataflow_c counter\ndataflow_c{a=\"1\"} 1\n",  # a counter without _total
])
def test_bodies_off_the_fast_path_come_out_as_the_full_parser_reads_them(body: str) -> None:
    assert_same({"p": body, "q": processor_body()})


def test_openmetrics_answers_and_their_types_come_out_as_the_full_parser_reads_them() -> None:
    text = ("# TYPE dataflow_requests counter\n# HELP dataflow_requests Reqs\n"
            'dataflow_requests_total{a="x"} 5 # {trace_id="abc"} 1.0 1700000000.5\n'
            'dataflow_requests_created{a="x"} 1700000000.0\n'
            '# TYPE dataflow_build info\ndataflow_build_info{version="1"} 1\n'
            "# TYPE dataflow_g gauge\ndataflow_g 1 1700000000.25\n# EOF\n")
    assert_same({"p": text}, answered_openmetrics=True)


def test_malformed_bodies_are_rejected_as_the_full_parser_rejects_them() -> None:
    for body in ('dataflow_x{{{ this is not metrics\n',
                 "# HELP dataflow_x x\n# TYPE dataflow_x gauge\ndataflow_x{a=\"1\"} abc\n"):
        with pytest.raises(ExpositionError):
            index_pod(body.encode(), "p", openmetrics=False)


def test_a_family_whose_lines_turn_odd_leaves_the_fast_path_for_that_scrape_only() -> None:
    good = processor_body()
    odd = good.replace('source_type="kafka"', 'source_type="ka\\"fka"')
    assert isinstance(index_pod(good.encode(), "p", openmetrics=False)["dataflow_messages_received"], RawFamily)
    assert not isinstance(index_pod(odd.encode(), "p", openmetrics=False)["dataflow_messages_received"], RawFamily)
    assert isinstance(index_pod(good.encode(), "p", openmetrics=False)["dataflow_messages_received"], RawFamily)
    assert_same({"p": odd, "q": good})


label_values = st.text(alphabet=st.characters(codec="utf-8"), max_size=12)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(label_values, label_values), min_size=1, max_size=4),
       st.floats(allow_nan=False, allow_infinity=True))
def test_any_label_values_and_numbers_come_out_alike(series: list[tuple[str, str]], value: float) -> None:
    registry = CollectorRegistry()
    gauge = Gauge("dataflow_prop", "p", ["first", "second"], registry=registry)
    histogram = Histogram("dataflow_prop_seconds", "h", ["first"], buckets=(0.5, 2.0), registry=registry)
    for first, second in series:
        gauge.labels(first, second).set(value)
        histogram.labels(first).observe(1.0)
    assert_same({"pod-1": generate_latest(registry).decode(), "pod-2": processor_body()})
