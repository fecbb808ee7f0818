"""Times as RFC3339 text, written and read one way for the whole project.

Output is Go's, because the reference implementation's outputs are pinned by tests: ``RFC3339``
writes a zero UTC offset as ``Z`` and has no fraction; ``RFC3339Nano`` trims the fraction's trailing
zeros, dropping the dot when nothing is left. Python datetimes carry microseconds, so callers that
have nanoseconds (the timezone transformation) pass them separately.
"""

from __future__ import annotations

from datetime import UTC, datetime

from .config_fields import shown


def offset_seconds(moment: datetime) -> int:
    offset = moment.utcoffset()
    return 0 if offset is None else int(offset.total_seconds())


def format_offset(seconds: int, *, zulu: bool, colon: bool = True, with_minutes: bool = True,
                  with_seconds: bool = False) -> str:
    """``+03:00`` style offset; ``Z`` for a zero offset when ``zulu``."""
    if zulu and seconds == 0:
        return "Z"
    sign = "-" if seconds < 0 else "+"
    seconds = abs(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    separator = ":" if colon else ""
    text = f"{sign}{hours:02d}"
    if with_minutes:
        text += f"{separator}{minutes:02d}"
    if with_seconds:
        text += f"{separator}{secs:02d}"
    return text


def format_rfc3339(moment: datetime, nanos: int = 0, *, fraction: bool = False) -> str:
    """``2024-01-15T15:00:00+03:00`` in ``moment``'s own offset; with ``fraction``, ``.123`` from
    ``nanos`` (zeros trimmed)."""
    text = (f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"
            f"T{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}")
    if fraction and nanos:
        text += "." + f"{nanos:09d}".rstrip("0")
    return text + format_offset(offset_seconds(moment), zulu=True)


def _in_utc(moment: datetime) -> datetime:
    """``moment`` in UTC; a naive datetime is taken as UTC already (the processor's clocks and a
    PostgreSQL session are UTC), never as the machine's local time."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def rfc3339_utc(moment: datetime) -> str:
    """Go's ``t.UTC().Format(time.RFC3339)``: whole seconds, e.g. ``2026-01-02T03:04:05Z``
    (Kubernetes status, condition and event times)."""
    return format_rfc3339(_in_utc(moment))


def rfc3339_nano_utc(moment: datetime) -> str:
    """Go's ``t.UTC().Format(time.RFC3339Nano)``, e.g. ``2024-01-15T08:00:07.486Z`` (metadata
    values as text, checkpoint positions, error records, log lines)."""
    moment = _in_utc(moment)
    return format_rfc3339(moment, moment.microsecond * 1000, fraction=True)


def parse_rfc3339(text: str) -> datetime:
    """An RFC3339 timestamp with an explicit zone (``Z`` or ``±hh:mm``); ``ValueError`` otherwise."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if value.tzinfo is None or "T" not in text.upper():
        raise ValueError(f"not RFC3339: {shown(text)}")
    return value
