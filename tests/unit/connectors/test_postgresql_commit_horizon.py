"""The PostgreSQL source's commit horizon (pure): which change values can no longer gain a row."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from dataflow_operator.connectors.postgresql.commit_horizon import SETTLE_MARGIN, CommitHorizon, Observation

T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_time_values_settle_below_the_earliest_running_start() -> None:
    horizon = CommitHorizon("time")
    assert not horizon.settled(at(-3600))  # nothing observed yet
    horizon.observe(Observation(at(100), {"v3/1": at(50), "v4/1": at(80)}), None)
    assert horizon.settled(at(50) - SETTLE_MARGIN - timedelta(microseconds=1))
    assert not horizon.settled(at(50) - SETTLE_MARGIN)
    # Naive timestamps are UTC (the session's zone); dates settle once the whole day is below.
    assert horizon.settled((at(40)).replace(tzinfo=None))
    assert horizon.settled(date(2024, 4, 30)) and not horizon.settled(date(2024, 5, 1))


def test_without_running_transactions_values_settle_up_to_the_observation() -> None:
    horizon = CommitHorizon("time")
    horizon.observe(Observation(at(100), {}), None)
    assert horizon.settled(at(98)) and not horizon.settled(at(99.5))


def test_margin_left_is_the_wait_that_settles_a_value_only_when_the_clock_alone_holds_it() -> None:
    horizon = CommitHorizon("time")
    assert horizon.margin_left(at(99.5)) is None  # nothing observed yet
    horizon.observe(Observation(at(100), {}), None)
    assert horizon.margin_left(at(99.5)) == 0.5
    assert horizon.margin_left(at(99.5).replace(tzinfo=None)) == 0.5  # naive: UTC
    assert horizon.margin_left(at(90)) == 0.0
    horizon.observe(Observation(at(101), {"v3/1": at(100.9)}), None)
    assert horizon.margin_left(at(100.95)) is None  # a transaction running since before the row
    unseen = CommitHorizon("time")
    unseen.observe(Observation(at(100), {"v3/1": None}), None)
    assert unseen.margin_left(at(99.5)) is None  # ... or one whose start is not known
    assert CommitHorizon("sequence").margin_left(5) is None and CommitHorizon("none").margin_left(at(0)) is None
    assert horizon.margin_left(date(2024, 5, 1)) is None


def test_a_start_the_role_cannot_see_holds_the_horizon_when_it_was_running_from_the_first_look() -> None:
    horizon = CommitHorizon("time")
    horizon.observe(Observation(at(100), {"v3/1": None}), None)
    assert not horizon.settled(at(-3600)) and horizon.unseen_starts == 1
    horizon.observe(Observation(at(200), {"v3/1": None}), None)
    assert not horizon.settled(at(-3600))  # still open: its start is anywhere before the first look
    horizon.observe(Observation(at(300), {}), None)
    assert horizon.settled(at(298))


def test_a_hidden_transaction_first_seen_later_started_after_the_previous_look() -> None:
    horizon = CommitHorizon("time")
    horizon.observe(Observation(at(100), {}), None)
    horizon.observe(Observation(at(200), {"v5/7": None}), None)
    assert horizon.settled(at(100) - SETTLE_MARGIN - timedelta(microseconds=1))
    assert not horizon.settled(at(100) - SETTLE_MARGIN)


def test_a_transaction_prepared_since_the_last_look_is_bounded_by_that_look() -> None:
    horizon = CommitHorizon("time")
    horizon.observe(Observation(at(100), {"v3/1": at(60)}), None)
    horizon.observe(Observation(at(200), {"pgid": None}), None)  # v3/1 prepared itself
    assert not horizon.settled(at(60) - SETTLE_MARGIN)


def test_the_horizon_never_moves_down() -> None:
    horizon = CommitHorizon("time")
    horizon.observe(Observation(at(100), {}), None)
    horizon.observe(Observation(at(200), {"v3/9": at(20)}), None)  # a clock step back, or a stale view
    assert horizon.settled(at(98))


def test_sequence_values_settle_up_to_the_largest_read_before_the_earliest_running_start() -> None:
    horizon = CommitHorizon("sequence")
    horizon.observe(Observation(at(100), {}), 10)
    assert horizon.settled(10) and not horizon.settled(11)  # nothing running: all read before is final
    horizon.observe(Observation(at(200), {"v3/1": at(150)}), 20)  # took its value after t=150
    assert horizon.settled(10) and not horizon.settled(11)
    horizon.observe(Observation(at(300), {"v3/1": at(150)}), 30)
    assert not horizon.settled(11)
    horizon.observe(Observation(at(400), {}), 40)
    assert horizon.settled(40) and not horizon.settled(41)


def test_columns_without_a_horizon_settle_everything() -> None:
    assert CommitHorizon("none").settled("any text")
