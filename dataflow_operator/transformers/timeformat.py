"""Time formatting for timestamp, timezone and insertField: Go reference layouts
(``2006-01-02 15:04:05``) compiled once into a list of small formatters. RFC3339 itself is the
kernel's (:mod:`dataflow_operator.pipeline.timetext`), shared with everything else that writes times.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Final

from ..pipeline.timetext import format_offset, format_rfc3339, offset_seconds

Formatter = Callable[[datetime], str]

_MONTHS: Final = ("January", "February", "March", "April", "May", "June", "July", "August",
                  "September", "October", "November", "December")
_DAYS: Final = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

#: Go's named layouts (``time.RFC1123`` …) by name, so a config can say ``format: RFC1123``.
GO_LAYOUTS: Final = {
    "ANSIC": "Mon Jan _2 15:04:05 2006",
    "UnixDate": "Mon Jan _2 15:04:05 MST 2006",
    "RubyDate": "Mon Jan 02 15:04:05 -0700 2006",
    "RFC822": "02 Jan 06 15:04 MST",
    "RFC822Z": "02 Jan 06 15:04 -0700",
    "RFC850": "Monday, 02-Jan-06 15:04:05 MST",
    "RFC1123": "Mon, 02 Jan 2006 15:04:05 MST",
    "RFC1123Z": "Mon, 02 Jan 2006 15:04:05 -0700",
    "RFC3339": "2006-01-02T15:04:05Z07:00",
    "RFC3339Nano": "2006-01-02T15:04:05.999999999Z07:00",
    "Kitchen": "3:04PM",
    "Stamp": "Jan _2 15:04:05",
    "StampMilli": "Jan _2 15:04:05.000",
    "StampMicro": "Jan _2 15:04:05.000000",
    "StampNano": "Jan _2 15:04:05.000000000",
    "DateTime": "2006-01-02 15:04:05",
    "DateOnly": "2006-01-02",
    "TimeOnly": "15:04:05",
}


def _fixed(text: str) -> Formatter:
    return lambda moment: text


def _fraction(digits: int, trim: bool, separator: str) -> Formatter:
    def render(moment: datetime) -> str:
        value = f"{moment.microsecond * 1000:09d}"[:digits]
        if trim:
            value = value.rstrip("0")
            return separator + value if value else ""
        return separator + value

    return render


def _hour12(moment: datetime) -> int:
    return moment.hour % 12 or 12


def _zone_name(moment: datetime) -> str:
    name = moment.tzname()
    # Python names a bare offset zone "UTC+03:00"; Go prints such a zone as "+0300".
    if name and name[0].isalpha() and not (name.startswith("UTC") and len(name) > 3):
        return name
    return format_offset(offset_seconds(moment), zulu=False, colon=False)


# Tokens by first character, longest first, as Go's nextStdChunk tries them.
_TOKENS: Final[dict[str, list[tuple[str, Formatter]]]] = {
    "J": [("January", lambda m: _MONTHS[m.month - 1]), ("Jan", lambda m: _MONTHS[m.month - 1][:3])],
    "M": [("Monday", lambda m: _DAYS[m.weekday()]), ("Mon", lambda m: _DAYS[m.weekday()][:3]),
          ("MST", _zone_name)],
    "0": [("002", lambda m: f"{m.timetuple().tm_yday:03d}"), ("01", lambda m: f"{m.month:02d}"),
          ("02", lambda m: f"{m.day:02d}"), ("03", lambda m: f"{_hour12(m):02d}"),
          ("04", lambda m: f"{m.minute:02d}"), ("05", lambda m: f"{m.second:02d}"),
          ("06", lambda m: f"{m.year % 100:02d}")],
    "1": [("15", lambda m: f"{m.hour:02d}"), ("1", lambda m: str(m.month))],
    "2": [("2006", lambda m: f"{m.year:04d}"), ("2", lambda m: str(m.day))],
    "_": [("__2", lambda m: f"{m.timetuple().tm_yday:>3d}"), ("_2006", lambda m: f"_{m.year:04d}"),
          ("_2", lambda m: f"{m.day:>2d}")],
    "3": [("3", lambda m: str(_hour12(m)))],
    "4": [("4", lambda m: str(m.minute))],
    "5": [("5", lambda m: str(m.second))],
    "P": [("PM", lambda m: "PM" if m.hour >= 12 else "AM")],
    "p": [("pm", lambda m: "pm" if m.hour >= 12 else "am")],
    "-": [("-070000", lambda m: format_offset(offset_seconds(m), zulu=False, colon=False,
                                              with_seconds=True)),
          ("-07:00:00", lambda m: format_offset(offset_seconds(m), zulu=False, with_seconds=True)),
          ("-0700", lambda m: format_offset(offset_seconds(m), zulu=False, colon=False)),
          ("-07:00", lambda m: format_offset(offset_seconds(m), zulu=False)),
          ("-07", lambda m: format_offset(offset_seconds(m), zulu=False, with_minutes=False))],
    "Z": [("Z070000", lambda m: format_offset(offset_seconds(m), zulu=True, colon=False,
                                              with_seconds=True)),
          ("Z07:00:00", lambda m: format_offset(offset_seconds(m), zulu=True, with_seconds=True)),
          ("Z0700", lambda m: format_offset(offset_seconds(m), zulu=True, colon=False)),
          ("Z07:00", lambda m: format_offset(offset_seconds(m), zulu=True)),
          ("Z07", lambda m: format_offset(offset_seconds(m), zulu=True, with_minutes=False))],
}


def compile_layout(layout: str) -> Formatter:
    """A formatter for a Go reference layout; text that is no token is copied literally."""
    parts: list[Formatter] = []
    literal: list[str] = []
    position = 0
    while position < len(layout):
        char = layout[position]
        matched: tuple[str, Formatter] | None = None
        if char in (".", ",") and position + 1 < len(layout) and layout[position + 1] in "09":
            digit = layout[position + 1]
            end = position + 1
            while end < len(layout) and layout[end] == digit:
                end += 1
            if end == len(layout) or not layout[end].isdigit():
                matched = (layout[position:end], _fraction(end - position - 1, digit == "9", char))
        else:
            for token, formatter in _TOKENS.get(char, ()):
                if layout.startswith(token, position):
                    matched = (token, formatter)
                    break
        if matched is None:
            literal.append(char)
            position += 1
            continue
        if literal:
            parts.append(_fixed("".join(literal)))
            literal = []
        parts.append(matched[1])
        position += len(matched[0])
    if literal:
        parts.append(_fixed("".join(literal)))
    if len(parts) == 1:
        return parts[0]
    return lambda moment: "".join(part(moment) for part in parts)


def _unix_seconds(moment: datetime) -> str:
    return str(int(moment.timestamp() // 1))


def _unix_millis(moment: datetime) -> str:
    return str((moment - _EPOCH) // timedelta(milliseconds=1))


_EPOCH: Final = datetime.fromisoformat("1970-01-01T00:00:00+00:00")


# What compile_layout takes for a fraction of a second: a run of 0s or 9s after "." or ",".
_FRACTION: Final = re.compile(r"[.,](?:0+|9+)(?![0-9])")


def whole_seconds(format_: str) -> bool:
    """True when :func:`formatter_for` ``(format_)`` writes nothing finer than a second, so one
    reading per second serves every message of that second."""
    if format_ in ("RFC3339", "Unix"):
        return True
    if format_ in ("RFC3339Nano", "UnixMilli"):
        return False
    return _FRACTION.search(GO_LAYOUTS.get(format_, format_)) is None


def formatter_for(format_: str) -> Formatter:
    """``RFC3339`` / ``RFC3339Nano`` / ``Unix`` / ``UnixMilli``, another Go layout name, or a
    Go layout string."""
    if format_ == "RFC3339":
        return format_rfc3339
    if format_ == "RFC3339Nano":
        return lambda moment: format_rfc3339(moment, moment.microsecond * 1000, fraction=True)
    if format_ == "Unix":
        return _unix_seconds
    if format_ == "UnixMilli":
        return _unix_millis
    return compile_layout(GO_LAYOUTS.get(format_, format_))
