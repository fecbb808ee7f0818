"""The status counts: what one pod's body says, and the tally over scrapes, restarts and deletions."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from dataflow_operator.operator.status_counts import Counts, DataFlowTally, counts_in_exposition


def _processor_body(received: dict[str, int], stage_errors: dict[tuple[str, str], int], *,
                    openmetrics: bool = False) -> bytes:
    """A body as a processor's prometheus_client writes it."""
    registry = CollectorRegistry()
    received_total = Counter("dataflow_messages_received", "Messages received", ["namespace", "name", "source_type"],
                             registry=registry)
    for source, value in received.items():
        received_total.labels("team", "orders", source).inc(value)
    errors_total = Counter("dataflow_task_stage_errors", "Stage errors", ["namespace", "name", "stage", "error_type"],
                           registry=registry)
    for (stage, error_type), value in stage_errors.items():
        errors_total.labels("team", "orders", stage, error_type).inc(value)
    # Lookalikes that must not be counted: a longer name, and another family with a stage label.
    Counter("dataflow_messages_received_totally", "x", registry=registry).inc(1000)
    Counter("dataflow_transformer_errors", "x", ["stage"], registry=registry).labels("transformation").inc(1000)
    return (generate_openmetrics if openmetrics else generate_latest)(registry)


def test_counts_come_from_the_two_families_only() -> None:
    body = _processor_body({"kafka": 120, "file": 5},
                           {("transformation", "invalid_data"): 3, ("sink_write", "invalid_data"): 2,
                            ("read", "connection"): 7, ("error_sink_write", "connection"): 11})
    assert counts_in_exposition(body) == Counts(processed=125, errors=5)


def test_openmetrics_bodies_count_alike() -> None:
    body = _processor_body({"kafka": 9}, {("transformation", "invalid_data"): 4}, openmetrics=True)
    assert counts_in_exposition(body) == Counts(processed=9, errors=4)


def test_hostile_lines_are_skipped_not_fatal() -> None:
    body = "\n".join([
        "dataflow_messages_received_total{a=\"}\\\" x\"} 5",     # a brace and an escaped quote in a value
        "dataflow_messages_received_total{broken 7",             # no closing brace
        "dataflow_messages_received_total notanumber",
        "dataflow_messages_received_total NaN",
        "dataflow_messages_received_total -3",
        "dataflow_messages_received_total",
        "# HELP dataflow_messages_received_total 99",
        "dataflow_task_stage_errors_total{stage=\"sink_write\"} 2 1700000000000",  # with a timestamp
        "dataflow_task_stage_errors_total{xstage=\"read\",stage=\"transformation\"} 1",
        "dataflow_messages_received_total{a=\"b\"} +Inf",
    ]).encode()
    assert counts_in_exposition(body) == Counts(processed=5, errors=3)


@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_any_body_gives_counts(body: bytes) -> None:
    counts = counts_in_exposition(body)
    assert counts.processed >= 0 and counts.errors >= 0


def test_tally_adds_increases_and_counts_a_restarted_pod_from_zero() -> None:
    tally = DataFlowTally(Counts())
    assert tally.observe({"a": Counts(10, 1), "b": Counts(5, 0)}, ["a", "b"])
    assert tally.total == Counts(15, 1)
    assert not tally.observe({"a": Counts(10, 1), "b": Counts(5, 0)}, ["a", "b"])
    assert tally.observe({"a": Counts(12, 1), "b": Counts(2, 0)}, ["a", "b"])  # b restarted
    assert tally.total == Counts(19, 1)


def test_a_pod_that_misses_a_scrape_is_counted_when_it_answers_again() -> None:
    tally = DataFlowTally(Counts())
    tally.observe({"a": Counts(10, 0), "b": Counts(10, 0)}, ["a", "b"])
    tally.observe({"a": Counts(11, 0)}, ["a", "b"])            # b timed out
    tally.observe({"a": Counts(11, 0), "b": Counts(30, 2)}, ["a", "b"])
    assert tally.total == Counts(41, 2)


def test_a_deleted_pod_is_forgotten_and_its_counts_kept() -> None:
    tally = DataFlowTally(Counts())
    tally.observe({"a": Counts(10, 0)}, ["a"])
    tally.observe({"c": Counts(3, 0)}, ["c"])                  # a rolled out, c replaced it
    tally.observe({"a": Counts(4, 0), "c": Counts(3, 0)}, ["a", "c"])  # a new pod reusing the name
    assert tally.total == Counts(17, 0)


def test_operator_restart_neither_recounts_nor_goes_back() -> None:
    assert DataFlowTally(Counts(100, 4)).observe({"a": Counts(30, 1)}, ["a"]) is False
    behind = DataFlowTally(Counts(100, 4))
    behind.observe({"a": Counts(30, 1)}, ["a"])
    assert behind.total == Counts(100, 4)
    ahead = DataFlowTally(Counts(100, 4))
    assert ahead.observe({"a": Counts(130, 2)}, ["a"])
    assert ahead.total == Counts(130, 4)


@given(st.lists(st.dictionaries(st.sampled_from("abc"),
                                st.tuples(st.integers(0, 1000), st.integers(0, 1000)), max_size=3),
                max_size=12))
def test_the_tally_never_goes_down(scrapes: list[dict[str, tuple[int, int]]]) -> None:
    tally = DataFlowTally(Counts(7, 7))
    previous = tally.total
    for scrape in scrapes:
        tally.observe({pod: Counts(*values) for pod, values in scrape.items()}, scrape)
        assert tally.total.covers(previous)
        previous = tally.total
