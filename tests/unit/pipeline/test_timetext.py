"""The one RFC3339 writer and reader: Go's RFC3339 / RFC3339Nano text, whoever asks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from dataflow_operator.pipeline.timetext import format_rfc3339, parse_rfc3339, rfc3339_nano_utc, rfc3339_utc

PLUS_TWO = timezone(timedelta(hours=2))


@pytest.mark.parametrize(("moment", "nanos", "fraction", "expected"), [
    (datetime(2024, 1, 15, 15, 0, tzinfo=PLUS_TWO), 0, False, "2024-01-15T15:00:00+02:00"),
    (datetime(2024, 1, 15, 15, 0, tzinfo=UTC), 0, False, "2024-01-15T15:00:00Z"),
    (datetime(2024, 1, 15, 15, 0, tzinfo=UTC), 123_456_789, True, "2024-01-15T15:00:00.123456789Z"),
    (datetime(2024, 1, 15, 15, 0, tzinfo=UTC), 120_000_000, True, "2024-01-15T15:00:00.12Z"),
    (datetime(2024, 1, 15, 15, 0, tzinfo=UTC), 120_000_000, False, "2024-01-15T15:00:00Z"),
    (datetime(2024, 1, 15, 15, 0, tzinfo=timezone(timedelta(hours=-5, minutes=-30))), 0, False,
     "2024-01-15T15:00:00-05:30"),
])
def test_format_rfc3339_keeps_the_moments_own_offset(moment: datetime, nanos: int, fraction: bool,
                                                    expected: str) -> None:
    assert format_rfc3339(moment, nanos, fraction=fraction) == expected


def test_utc_forms_convert_and_take_naive_times_as_utc() -> None:
    moment = datetime(2026, 1, 2, 5, 4, 5, 600000, tzinfo=PLUS_TWO)
    assert rfc3339_utc(moment) == "2026-01-02T03:04:05Z"  # Kubernetes times: whole seconds
    assert rfc3339_nano_utc(moment) == "2026-01-02T03:04:05.6Z"
    assert rfc3339_nano_utc(datetime(2026, 1, 2, 3, 4, 5)) == "2026-01-02T03:04:05Z"
    assert rfc3339_nano_utc(datetime(2026, 1, 2, 3, 4, 5, 1)) == "2026-01-02T03:04:05.000001Z"


@pytest.mark.parametrize("text", ["2026-01-31T02:00:00Z", "2026-01-31t02:00:00z", "2026-01-31T04:00:00+02:00",
                                  "2026-01-31T02:00:00.25Z"])
def test_parse_reads_what_format_writes(text: str) -> None:
    moment = parse_rfc3339(text)
    assert rfc3339_utc(moment) == "2026-01-31T02:00:00Z"


@pytest.mark.parametrize("text", ["2026-01-31T02:00:00", "2026-01-31", "yesterday", "2026-01-31 02:00:00Z"])
def test_parse_refuses_times_without_a_zone_or_a_t_separator(text: str) -> None:
    with pytest.raises(ValueError, match=r"RFC3339|Invalid isoformat"):
        parse_rfc3339(text)
