"""The operator's /metrics through its real HTTP server: the answer prometheus_client's own app would
give over the operator's registry and the aggregator, whatever the request asks for."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
import requests
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import choose_encoder
from prometheus_client.openmetrics import parser as om_parser
from prometheus_client.parser import text_string_to_metric_families

from dataflow_operator.observability.http import HttpServer
from dataflow_operator.operator.aggregator import PodTarget, ProcessorMetricsAggregator
from dataflow_operator.operator.metrics import OperatorMetrics
from dataflow_operator.operator.metrics_endpoint import operator_metrics_app
from tests.unit.operator.test_aggregator_faults import TIMEOUT, Pods, pods, send  # noqa: F401

PROMETHEUS_3 = ("application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,"
                "application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;"
                "q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1")


class Operator:
    def __init__(self, targets: list[PodTarget], leader: bool = True) -> None:
        self.registry = CollectorRegistry()
        OperatorMetrics(self.registry).status.labels("ns", "df", "Running").set(1)
        self.aggregator = ProcessorMetricsAggregator(lambda: targets, lambda: leader, timeout=TIMEOUT)
        self.server = HttpServer("127.0.0.1:0", probes={},
                                 metrics_app=operator_metrics_app(self.registry, self.aggregator)).start()
        self.url = f"http://127.0.0.1:{self.server.port}/metrics"

    def get(self, accept: str | None = None, encoding: str = "identity", query: str = "") -> requests.Response:
        headers = {"Accept-Encoding": encoding} | ({"Accept": accept} if accept else {})
        response = requests.get(self.url + query, headers=headers, stream=True, timeout=10)
        response.raw.decode_content = False
        return response

    def reference(self, accept: str, names: set[str] | None = None) -> str:
        """What prometheus_client's exposition writes from the registry and the aggregator's Metrics."""
        encoder, _ = choose_encoder(accept)
        metrics = [*self.registry.collect(), *self.aggregator.collect()]
        if names is not None:
            metrics = [metric for metric in metrics if any(s.name in names for s in metric.samples)]
            for metric in metrics:
                metric.samples = [s for s in metric.samples if s.name in names]
        output: bytes = encoder(SimpleNamespace(collect=lambda: metrics))
        return output.decode()

    def close(self) -> None:
        self.server.stop()
        self.aggregator.close()


@pytest.fixture
def operator(pods: Pods) -> Iterator[Operator]:  # noqa: F811
    broken = pods.responding("broken", lambda h: send(h, 500, b""))
    served = Operator([pods.healthy("good-1"), broken, pods.healthy("good-2")])
    yield served
    served.close()


def families(text: str, *, openmetrics: bool) -> dict[str, Any]:
    """Families by name with their samples, leaving out the aggregator's own, which count each scrape."""
    parse = om_parser.text_string_to_metric_families if openmetrics else text_string_to_metric_families
    return {family.name: (family.type, family.documentation,
                          sorted((s.name, sorted(s.labels.items()), s.value) for s in family.samples))
            for family in parse(text) if not family.name.startswith("dataflow_aggregator_")}


def test_prometheus_3_gets_gzipped_openmetrics_with_every_family_once(operator: Operator) -> None:
    response = operator.get(PROMETHEUS_3, encoding="gzip")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == \
        "application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=allow-utf-8"
    assert response.headers["Content-Encoding"] == "gzip"
    text = gzip.decompress(response.raw.read()).decode()

    assert text.endswith("\n# EOF\n") and text.count("# EOF") == 1
    for kind in ("# HELP ", "# TYPE "):
        names = [line.split(" ")[2] for line in text.splitlines() if line.startswith(kind)]
        assert len(names) == len(set(names))
    parsed = families(text, openmetrics=True)
    assert parsed == families(operator.reference(PROMETHEUS_3), openmetrics=True)
    assert {dict(labels)["pod"] for _, labels, _ in parsed["dataflow_marker"][2]} == {"good-1", "good-2"}
    assert "dataflow_status" in parsed and "dataflow_messages_received" in parsed
    health = {f.name: f for f in om_parser.text_string_to_metric_families(text)}  # type: ignore[no-untyped-call]
    assert health["dataflow_aggregator_pods_scraped"].samples[0].value == 2.0
    assert [(s.labels["pod"], s.labels["reason"]) for s in health["dataflow_aggregator_pod_scrape_errors"].samples
            if s.name.endswith("_total")] == [("broken", "http_status")]


@pytest.mark.parametrize("accept", [None, "text/plain;version=0.0.4", "text/plain;version=1.0.0;escaping=underscores"])
def test_the_text_format_without_gzip_is_what_prometheus_client_writes(operator: Operator, accept: str | None) -> None:
    response = operator.get(accept)
    encoder_type = choose_encoder(accept or "")[1]
    assert response.headers["Content-Type"] == encoder_type
    assert "Content-Encoding" not in response.headers
    text = response.raw.read().decode()
    assert families(text, openmetrics=False) == families(operator.reference(accept or ""), openmetrics=False)
    assert "dataflow_messages_received_created" not in text


@pytest.mark.parametrize("accept", ["application/openmetrics-text;version=1.0.0;escaping=dots",
                                    "application/openmetrics-text;version=2.0.0"])
def test_requests_the_byte_level_path_does_not_speak_get_prometheus_clients_answer(
        operator: Operator, accept: str) -> None:
    response = operator.get(accept, encoding="gzip")
    assert response.headers["Content-Type"] == choose_encoder(accept)[1]
    text = gzip.decompress(response.raw.read()).decode()

    def lines(text: str) -> list[str]:  # escaped names need not parse back; the aggregator's own vary
        return sorted(line for line in text.splitlines() if "aggregator" not in line)

    assert lines(text) == lines(operator.reference(accept))


def test_a_name_filter_keeps_only_the_samples_named(operator: Operator) -> None:
    wanted = {"dataflow_status", "dataflow_messages_received_total"}
    response = operator.get(query="?name[]=dataflow_status&name[]=dataflow_messages_received_total")
    text = response.raw.read().decode()
    assert families(text, openmetrics=False) == families(operator.reference("", wanted), openmetrics=False)
    assert set(families(text, openmetrics=False)) == {"dataflow_status", "dataflow_messages_received"}


def test_methods_are_answered_as_prometheus_client_answers_them(operator: Operator) -> None:
    options = requests.options(operator.url, timeout=10)
    assert options.status_code == 200 and options.headers["Allow"] == "OPTIONS,GET"
    assert requests.post(operator.url, timeout=10).status_code == 405


def test_a_follower_serves_its_own_metrics_and_no_processor_series(pods: Pods) -> None:  # noqa: F811
    follower = Operator([pods.healthy("good")], leader=False)
    try:
        text = gzip.decompress(follower.get(PROMETHEUS_3, encoding="gzip").raw.read()).decode()
    finally:
        follower.close()
    assert "dataflow_status" in text and "dataflow_aggregator_pods_scraped 0.0" in text
    assert 'pod="good"' not in text and text.endswith("# EOF\n")


def test_the_processor_families_come_after_the_operators_own(operator: Operator) -> None:
    text = operator.get().raw.read().decode()
    order = [line.split(" ")[2] for line in text.splitlines() if line.startswith("# TYPE ")]
    assert order.index("dataflow_status") < order.index("dataflow_aggregator_pods_scraped") < \
        order.index("dataflow_messages_received_total")
    assert generate_latest(CollectorRegistry()) == b""  # the process-global registry is not involved
