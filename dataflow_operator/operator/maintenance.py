"""Maintenance windows and manual suspension: pure functions of ``spec.maintenance`` and a time.

A window starts at ``startTime`` and lasts ``duration`` (a Go duration, added as elapsed time like
Go's ``time.Add``). ``repeat`` daily/weekly/monthly repeats the *wall-clock* start in ``timezone``
(IANA, default UTC), so a 02:00 Europe/Berlin window stays at 02:00 across daylight-saving changes.
A monthly window on a day the month lacks (the 31st) falls on the month's last day - Go's
``AddDate`` would spill into the next month instead, which nobody scheduling maintenance means.
A start time that a DST gap skips resolves as Python's zoneinfo does (the pre-transition offset).
"""

from __future__ import annotations

import calendar
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from ..pipeline.timetext import parse_rfc3339, rfc3339_utc
from ..spec.durations import parse_duration

# Shortest possible length of one period (a DST change shortens a day by up to an hour); used to
# bound how many earlier windows can still overlap a given instant.
_MIN_PERIOD = {"daily": timedelta(hours=23), "weekly": timedelta(days=7, hours=-1),
               "monthly": timedelta(days=28, hours=-1)}
_NOMINAL_PERIOD = {"daily": timedelta(days=1), "weekly": timedelta(days=7)}


@dataclass(frozen=True, slots=True)
class Schedule:
    start: datetime          # aware, in ``zone``
    duration: timedelta
    repeat: str              # "" (one-off), daily, weekly, monthly
    zone: ZoneInfo

    @staticmethod
    def parse(maintenance: Mapping[str, Any]) -> Schedule | None:
        """The schedule in ``spec.maintenance``, or None when it has no window (only suspension)."""
        start_text, duration_text = maintenance.get("startTime"), maintenance.get("duration")
        if not start_text or not duration_text:
            return None
        zone = ZoneInfo(str(maintenance.get("timezone") or "UTC"))
        return Schedule(start=parse_rfc3339(str(start_text)).astimezone(zone),
                        duration=timedelta(seconds=parse_duration(str(duration_text))),
                        repeat=str(maintenance.get("repeat") or ""), zone=zone)

    def occurrence(self, index: int) -> datetime:
        """Start of window ``index`` (0 = startTime), in UTC."""
        if index == 0 or not self.repeat:
            return self.start.astimezone(UTC)
        wall_time = time(self.start.hour, self.start.minute, self.start.second, self.start.microsecond)
        if self.repeat == "monthly":
            day = _add_months(self.start.date(), index)
        else:
            day = self.start.date() + timedelta(days=index * (7 if self.repeat == "weekly" else 1))
        return datetime.combine(day, wall_time, tzinfo=self.zone).astimezone(UTC)

    def index_at(self, instant: datetime) -> int:
        """The last window that started at or before ``instant`` (-1: none yet)."""
        if instant < self.occurrence(0):
            return -1
        if not self.repeat:
            return 0
        if self.repeat == "monthly":
            local = instant.astimezone(self.zone)
            index = (local.year - self.start.year) * 12 + local.month - self.start.month
        else:
            index = int((instant - self.occurrence(0)) / _NOMINAL_PERIOD[self.repeat])
        # The estimate is off by at most one or two around DST changes and month ends.
        while self.occurrence(index + 1) <= instant:
            index += 1
        while index > 0 and self.occurrence(index) > instant:
            index -= 1
        return index

    def _overlap(self) -> int:
        """How many earlier windows may still be open at an instant (more than 0 when duration > period)."""
        if not self.repeat:
            return 0
        return math.ceil(self.duration / _MIN_PERIOD[self.repeat])

    def in_window(self, instant: datetime) -> bool:
        latest = self.index_at(instant)
        first = max(0, latest - self._overlap())
        return any(self.occurrence(index) <= instant < self.occurrence(index) + self.duration
                   for index in range(first, latest + 1))

    def next_boundary(self, instant: datetime) -> datetime | None:
        """The first instant after ``instant`` at which :meth:`in_window` changes; None: never."""
        current = self.in_window(instant)
        latest = self.index_at(instant)
        indexes = [0] if not self.repeat else range(max(0, latest - self._overlap()), latest + 3)
        candidates = sorted({edge for index in indexes
                             for edge in (self.occurrence(index), self.occurrence(index) + self.duration)
                             if edge > instant})
        return next((edge for edge in candidates if self.in_window(edge) != current), None)

    def next_start(self, instant: datetime) -> datetime | None:
        latest = self.index_at(instant)
        if not self.repeat:
            return self.occurrence(0) if latest < 0 else None
        return self.occurrence(latest + 1)

    def last_start(self, instant: datetime) -> datetime | None:
        latest = self.index_at(instant)
        return self.occurrence(latest) if latest >= 0 else None


def _add_months(day: date, months: int) -> date:
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


@dataclass(frozen=True, slots=True)
class MaintenanceState:
    in_window: bool
    suspended: bool
    next_boundary: datetime | None
    next_start: datetime | None
    last_start: datetime | None

    @property
    def paused(self) -> bool:
        """The processor must be scaled to 0."""
        return self.in_window or self.suspended

    @property
    def message(self) -> str | None:
        if self.suspended:
            return "Processor suspended manually"
        if self.in_window:
            return "Processor paused for scheduled maintenance window"
        return None

    def status(self) -> dict[str, Any]:
        """``status.maintenanceStatus``."""
        result: dict[str, Any] = {"inMaintenance": self.in_window, "suspended": self.suspended}
        if self.next_start is not None:
            result["nextMaintenanceTime"] = rfc3339_utc(self.next_start)
        if self.last_start is not None:
            result["lastMaintenanceTime"] = rfc3339_utc(self.last_start)
        return result


def evaluate(maintenance: Mapping[str, Any] | None, now: datetime) -> MaintenanceState | None:
    """The maintenance state at ``now`` (aware); None when the spec has no ``maintenance``."""
    if maintenance is None:
        return None
    suspended = bool(maintenance.get("suspended"))
    schedule = Schedule.parse(maintenance)
    if schedule is None:
        return MaintenanceState(False, suspended, None, None, None)
    return MaintenanceState(in_window=schedule.in_window(now), suspended=suspended,
                            next_boundary=schedule.next_boundary(now), next_start=schedule.next_start(now),
                            last_start=schedule.last_start(now))
