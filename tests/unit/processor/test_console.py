"""The progress line and summary read the processor's own counters."""

from __future__ import annotations

import io

from dataflow_operator.observability.redaction import register_secrets
from dataflow_operator.observability.terminal import StatusLine
from dataflow_operator.pipeline.metrics import ProcessorMetrics
from dataflow_operator.processor.console import LiveProgress, destinations, read_counts, summary_lines
from dataflow_operator.spec.validation import load_spec

SPEC = load_spec({
    "source": {"type": "file", "config": {"path": "in.jsonl"}},
    "transformations": [{"type": "router", "config": {"routes": [
        {"condition": "$.big == true", "sink": {"type": "kafka", "config": {"brokers": ["k:9092"], "topic": "big"}}},
        {"condition": "$.pg == true", "sink": {"type": "postgresql", "config": {"connectionString": "host=db",
                                                                              "table": "orders"}}},
    ]}}],
    "sink": {"type": "file", "config": {"path": "-"}},
    "errors": {"type": "file", "config": {"path": "out/errors.jsonl"}},
})


def counted_metrics() -> ProcessorMetrics:
    metrics = ProcessorMetrics("ns", "df")
    metrics.messages_received.labels("file").inc(10)
    metrics.connector("file", "sink").written("default").inc(5)
    metrics.connector("kafka", "route_0").written("$.big == true").inc(3)
    metrics.connector("postgresql", "route_1").written("$.pg == true").inc(0)
    metrics.connector("file", "error_sink").written("default").inc(2)
    return metrics


def test_counts_come_from_the_metrics() -> None:
    counts = read_counts(counted_metrics())
    assert (counts.read, counts.written, counts.diverted) == (10, 8, 2)


def test_the_summary_names_every_sink_and_route_and_the_error_sinks_path() -> None:
    counts = read_counts(counted_metrics())
    lines = summary_lines(counts, destinations(SPEC), elapsed=2.0)
    assert lines[0] == "read 10 messages in 2.0 s; wrote 8; 2 to the error sink"
    assert [line.split()[:3] for line in lines[1:]] == [
        ["main", "sink", "5"], ["route", "$.big", "=="], ["route", "$.pg", "=="], ["error", "sink", "2"]]
    assert lines[1].endswith("→ stdout") and lines[2].endswith("→ kafka topic big")
    assert lines[3].endswith("→ postgresql table orders") and lines[4].endswith("→ out/errors.jsonl")


def test_no_error_sink_line_when_nothing_went_there() -> None:
    metrics = ProcessorMetrics("ns", "df")
    metrics.connector("file", "sink").written("default").inc(1)
    metrics.connector("file", "error_sink").written("default").inc(0)
    lines = summary_lines(read_counts(metrics), destinations(SPEC), elapsed=1.0)
    assert not any("error sink " in line and "→" in line for line in lines)


def test_a_destination_from_a_secret_is_not_shown() -> None:
    register_secrets(["big"])
    assert destinations(SPEC)["route_0"] == "kafka topic [REDACTED]"


def test_finish_leaves_the_final_counts_and_prints_the_summary_below() -> None:
    stream = io.StringIO()
    progress = LiveProgress(counted_metrics(), StatusLine(stream), SPEC).start()
    progress.finish()
    text = stream.getvalue()
    final = text.rsplit("\r\x1b[Kread 10 · written 8 · to error sink 2", 1)[1]
    assert final.split("\n", 1)[1].startswith("\r\x1b[Kread 10 messages in ")
    assert "→ out/errors.jsonl" in final
