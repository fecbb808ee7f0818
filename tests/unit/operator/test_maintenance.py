"""Maintenance windows with injected time: one-off, daily, weekly, monthly, time zones and DST."""

from __future__ import annotations

from datetime import datetime

import pytest

from dataflow_operator.operator.maintenance import evaluate


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_no_maintenance_is_none() -> None:
    assert evaluate(None, at("2026-01-01T00:00:00Z")) is None


def test_suspended_without_a_window() -> None:
    state = evaluate({"suspended": True}, at("2026-01-01T00:00:00Z"))
    assert state is not None
    assert state.paused and state.suspended and not state.in_window
    assert state.message == "Processor suspended manually"
    assert state.next_boundary is None
    assert state.status() == {"inMaintenance": False, "suspended": True}


def test_suspension_wins_over_the_window_message() -> None:
    spec = {"startTime": "2026-01-01T00:00:00Z", "duration": "1h", "suspended": True}
    state = evaluate(spec, at("2026-01-01T00:30:00Z"))
    assert state is not None and state.in_window and state.suspended
    assert state.message == "Processor suspended manually"


def test_one_off_window_before_during_after() -> None:
    spec = {"startTime": "2026-03-10T02:00:00Z", "duration": "2h30m"}
    before = evaluate(spec, at("2026-03-10T01:59:59Z"))
    assert before is not None
    assert not before.paused and before.message is None
    assert before.next_boundary == at("2026-03-10T02:00:00Z")
    assert before.status() == {"inMaintenance": False, "suspended": False,
                               "nextMaintenanceTime": "2026-03-10T02:00:00Z"}

    start = evaluate(spec, at("2026-03-10T02:00:00Z"))
    assert start is not None and start.in_window, "the window includes its start"
    assert start.message == "Processor paused for scheduled maintenance window"
    assert start.next_boundary == at("2026-03-10T04:30:00Z")
    assert start.status() == {"inMaintenance": True, "suspended": False,
                              "lastMaintenanceTime": "2026-03-10T02:00:00Z"}

    end = evaluate(spec, at("2026-03-10T04:30:00Z"))
    assert end is not None and not end.in_window, "the window excludes its end"
    assert end.next_boundary is None
    assert end.next_start is None
    assert end.last_start == at("2026-03-10T02:00:00Z")


def test_daily_window_repeats_and_boundaries_alternate() -> None:
    spec = {"startTime": "2026-01-01T02:00:00Z", "duration": "2h", "repeat": "daily"}
    inside = evaluate(spec, at("2026-03-10T03:00:00Z"))
    assert inside is not None and inside.in_window
    assert inside.next_boundary == at("2026-03-10T04:00:00Z")
    assert inside.last_start == at("2026-03-10T02:00:00Z")
    assert inside.next_start == at("2026-03-11T02:00:00Z")
    outside = evaluate(spec, at("2026-03-10T04:00:00Z"))
    assert outside is not None and not outside.in_window
    assert outside.next_boundary == at("2026-03-11T02:00:00Z")


def test_daily_window_before_the_first_start() -> None:
    spec = {"startTime": "2026-01-05T02:00:00Z", "duration": "1h", "repeat": "daily"}
    state = evaluate(spec, at("2026-01-04T02:30:00Z"))
    assert state is not None and not state.in_window, "no window before startTime, even at the same wall time"
    assert state.next_boundary == at("2026-01-05T02:00:00Z")
    assert state.last_start is None


def test_daily_window_keeps_wall_clock_time_across_dst() -> None:
    # 03:00 Europe/Berlin: 02:00Z in winter (CET), 01:00Z after 2026-03-29 (CEST).
    spec = {"startTime": "2026-03-01T03:00:00+01:00", "duration": "1h", "repeat": "daily",
            "timezone": "Europe/Berlin"}
    winter = evaluate(spec, at("2026-03-28T02:30:00Z"))
    assert winter is not None and winter.in_window
    summer_inside = evaluate(spec, at("2026-03-30T01:30:00Z"))
    assert summer_inside is not None and summer_inside.in_window
    assert summer_inside.next_boundary == at("2026-03-30T02:00:00Z")
    summer_outside = evaluate(spec, at("2026-03-30T02:30:00Z"))
    assert summer_outside is not None and not summer_outside.in_window
    assert summer_outside.next_boundary == at("2026-03-31T01:00:00Z")


def test_start_time_offset_and_timezone_agree_on_the_instant() -> None:
    spec = {"startTime": "2026-01-01T07:00:00Z", "duration": "30m", "repeat": "daily",
            "timezone": "America/New_York"}  # 02:00 in New York
    state = evaluate(spec, at("2026-07-01T06:15:00Z"))  # 02:15 EDT
    assert state is not None and state.in_window


def test_weekly_window() -> None:
    spec = {"startTime": "2026-01-05T22:00:00Z", "duration": "4h", "repeat": "weekly"}  # Mondays
    monday_night = evaluate(spec, at("2026-02-10T01:00:00Z"))  # Tuesday 01:00, inside Monday's window
    assert monday_night is not None and monday_night.in_window
    assert monday_night.next_boundary == at("2026-02-10T02:00:00Z")
    wednesday = evaluate(spec, at("2026-02-11T12:00:00Z"))
    assert wednesday is not None and not wednesday.in_window
    assert wednesday.next_boundary == at("2026-02-16T22:00:00Z")


def test_monthly_window_falls_on_the_last_day_of_a_short_month() -> None:
    spec = {"startTime": "2026-01-31T00:00:00Z", "duration": "1h", "repeat": "monthly"}
    february = evaluate(spec, at("2026-02-28T00:30:00Z"))
    assert february is not None and february.in_window
    march_first = evaluate(spec, at("2026-03-01T00:30:00Z"))
    assert march_first is not None and not march_first.in_window
    assert march_first.next_boundary == at("2026-03-31T00:00:00Z")
    leap = evaluate(spec, at("2028-02-29T00:10:00Z"))
    assert leap is not None and leap.in_window


def test_windows_longer_than_the_period_overlap_into_one() -> None:
    spec = {"startTime": "2026-01-01T00:00:00Z", "duration": "25h", "repeat": "daily"}
    state = evaluate(spec, at("2026-01-10T00:30:00Z"))
    assert state is not None and state.in_window
    assert state.next_boundary is None, "consecutive windows overlap: maintenance never ends"


def test_fractional_durations() -> None:
    spec = {"startTime": "2026-01-01T00:00:00Z", "duration": "1.5h"}
    state = evaluate(spec, at("2026-01-01T01:29:59Z"))
    assert state is not None and state.in_window
    assert state.next_boundary == at("2026-01-01T01:30:00Z")


@pytest.mark.parametrize("repeat", ["daily", "weekly", "monthly"])
def test_boundaries_walk_consistently_for_a_year(repeat: str) -> None:
    spec = {"startTime": "2026-01-31T23:30:00+01:00", "duration": "90m", "repeat": repeat,
            "timezone": "Europe/Berlin"}
    instant = at("2026-01-01T00:00:00Z")
    state = evaluate(spec, instant)
    assert state is not None
    flips = 0
    while instant < at("2027-01-01T00:00:00Z"):
        assert state.next_boundary is not None and state.next_boundary > instant
        instant = state.next_boundary
        following = evaluate(spec, instant)
        assert following is not None
        assert following.in_window != state.in_window, f"no change at boundary {instant}"
        state = following
        flips += 1
    expected_windows = {"daily": 335, "weekly": 48, "monthly": 11}[repeat]
    assert flips // 2 == pytest.approx(expected_windows, abs=1)
