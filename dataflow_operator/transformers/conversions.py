"""Value conversions (transformations.md §5.3, §5.4): cast (JSON types) and timezone (timestamps).

Both change values in place at configured paths and fail the whole message on the first value
they cannot convert (no partial output); the engine then counts the error and skips the message.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any, Final
from zoneinfo import ZoneInfo

from ..pipeline.api_fields import api_field, build
from ..pipeline.config_fields import FieldError, Fields, field_path, shown, type_name
from ..pipeline.errors import InvalidDataError
from ..pipeline.message import Message
from ..pipeline.timetext import format_rfc3339
from ..pipeline.transformer import Transformer
from . import validation
from .jsonvalues import MISSING, encode, format_float, take_doc, to_text
from .paths import Path, normalize
from .registry import register

_INT: Final = re.compile(r"[+-]?[0-9]+")
# Decimal numbers only: Python's float() would also take "nan", "inf" and "1_000".
_FLOAT: Final = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1


class _CastError(Exception):
    """A value that cannot be converted; the text is the reason."""


def _type_word(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    return type(value).__name__


def _whole_int(number: float, text: str) -> int:
    if not math.isfinite(number):
        raise _CastError(f"{text} is not a finite number")
    if not number.is_integer():
        raise _CastError(f"{text} is not an integer")
    if not -(2.0**63) <= number < 2.0**63:
        raise _CastError(f"{text} is out of int64 range")
    return int(number)


def _to_int64(value: Any) -> int:
    if isinstance(value, bool) or value is None or isinstance(value, (dict, list)):
        raise _CastError(f"cannot cast {_type_word(value)} to int64")
    if isinstance(value, int):
        result = value
    elif isinstance(value, float):
        result = _whole_int(value, format_float(value))
    else:
        text = str(value).strip()
        if _INT.fullmatch(text):
            result = int(text)
        elif _FLOAT.fullmatch(text):
            result = _whole_int(float(text), repr(text))
        else:
            raise _CastError(f"{text!r} is not a number")
    if not _INT64_MIN <= result <= _INT64_MAX:
        raise _CastError(f"{result} is out of int64 range")
    return result


def _shortest(number: float) -> float | int:
    """Go writes a whole float64 without ``.0`` (``10``, not ``10.0``); so do we, with the same
    digits Go prints (Python's ``int(1.2345678901234567e19)`` would invent trailing digits)."""
    if number.is_integer() and abs(number) < 1e21:
        return int(format_float(number))
    return number


def _to_float64(value: Any) -> float | int:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise _CastError(f"cannot cast {_type_word(value)} to float64")
    if isinstance(value, str):
        text = value.strip()
        if not _FLOAT.fullmatch(text):
            raise _CastError(f"{text!r} is not a number")
        number = float(text)
    else:
        number = float(value)
    if not math.isfinite(number):
        raise _CastError(f"{to_text(value)} is out of float64 range")
    return _shortest(number)


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("true", "false"):
            return text == "true"
    elif isinstance(value, (int, float)) and value in (0, 1):
        return value == 1
    raise _CastError(f"cannot cast {to_text(value) if value is not None else 'null'} to bool")


def _to_string(value: Any) -> str:
    if value is None:
        raise _CastError("cannot cast null to string")
    if isinstance(value, (dict, list)):
        raise _CastError("cannot cast object/array to string")
    return to_text(value)


def _to_null(value: Any) -> None:
    return None


CASTS: Final[dict[str, Callable[[Any], Any]]] = {
    "string": _to_string, "int64": _to_int64, "float64": _to_float64, "bool": _to_bool, "null": _to_null,
}


@dataclass(frozen=True, slots=True)
class CastConfig:
    spec: Mapping[str, str] = api_field("Path → type (" + ", ".join(f"`{name}`" for name in CASTS)
                                        + "), applied in the order written.")

    @classmethod
    def parse(cls, f: Fields) -> CastConfig:
        spec = f.config.get("spec")
        if not isinstance(spec, Mapping) or not spec:
            f.error("spec", "spec is required (a map of JSONPath to type)")
            return cls(spec={})
        for key, type_ in spec.items():
            entry = field_path(f.at("spec"), key)
            if not normalize(str(key).strip()):
                f.errors.append(FieldError(entry, "spec keys must be non-empty JSONPaths"))
            if not isinstance(type_, str):  # a mapping or list is not hashable, let alone a type name
                f.errors.append(FieldError(entry, f"must be a type name, got {type_name(type_)}"))
            elif type_ not in CASTS:
                f.errors.append(FieldError(entry, f"Unsupported value: {shown(type_)}: supported values: "
                                                  + ", ".join(f'"{name}"' for name in CASTS)))
        # Keys as written (a YAML key may be a number), trimmed into paths by the transformer:
        # trimming here could merge two entries, and each is applied in turn. A type validation
        # refuses is kept as text: the transformer fails each message that has the field.
        return cls(spec={str(key): str(type_) for key, type_ in spec.items()})


@register
class CastTransformer(Transformer):
    """Converts the value at each path to a JSON type; ``spec`` is applied in config order."""

    type_name = "cast"
    config_class = CastConfig

    def __init__(self, config: CastConfig) -> None:
        entries = [(Path(path.strip()), type_) for path, type_ in config.spec.items()]
        self.entries = [(path, type_) for path, type_ in entries if not path.empty]

    def transform(self, message: Message) -> list[Message]:
        doc = take_doc(message)
        if doc is MISSING:
            return [message]
        changed = False
        for path, type_ in self.entries:
            value = path.get(doc)
            if value is MISSING:
                continue
            cast = CASTS.get(type_)
            try:
                if cast is None:
                    raise _CastError("unsupported type")
                converted = cast(value)
            except _CastError as exc:
                raise InvalidDataError(f'cast "{path.text}" to {type_}: {exc}') from None
            changed = path.set(doc, converted) or changed
        return [message.derive(encode(doc), doc=doc)] if changed else [message]


# -- timezone ------------------------------------------------------------------------------------

TIMEZONE_FORMATS: Final = ("RFC3339Nano", "RFC3339", "UnixMilli")
_OFFSET: Final = re.compile(r"([+-])([0-9]{2}):([0-9]{2})")
_WITH_ZONE: Final = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:[.,]([0-9]+))?"
    r"(Z|[+-][0-9]{2}:[0-9]{2})")
_ZONELESS: Final = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[T ]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:[.,]([0-9]+))?")
_EPOCH_NAIVE: Final = datetime(1970, 1, 1)
# |n| at or above this is epoch milliseconds, below it epoch seconds.
_MILLIS_THRESHOLD: Final = 10**12


def parse_zone(name: str) -> tzinfo | None:
    """An IANA zone or a fixed ``±HH:MM`` offset (hours ≤ 23, minutes ≤ 59); None if invalid."""
    match = _OFFSET.fullmatch(name)
    if match is not None:
        hours, minutes = int(match[2]), int(match[3])
        if hours > 23 or minutes > 59:
            return None
        offset = timedelta(hours=hours, minutes=minutes)
        return timezone(-offset if match[1] == "-" else offset)
    if not name or name != name.strip():
        return None
    try:
        return ZoneInfo(name)
    except (ValueError, OSError, KeyError):  # not found, or not a usable zone key
        return None


def _from_epoch_number(number: int | float) -> tuple[int, int]:
    """(epoch seconds, nanoseconds ≥ 0) from epoch seconds or, when huge, milliseconds."""
    if abs(number) >= _MILLIS_THRESHOLD:
        seconds, millis = divmod(int(number), 1000)  # a fractional millisecond is truncated
        return seconds, millis * 1_000_000
    if isinstance(number, int):
        return number, 0
    seconds = int(number)
    nanos = round((number - seconds) * 1e9)
    seconds, nanos = seconds + nanos // 1_000_000_000, nanos % 1_000_000_000
    return seconds, nanos


def _nanos(fraction: str | None) -> int:
    return int((fraction or "")[:9].ljust(9, "0"))


def _from_wall_clock(match: re.Match[str], zone: tzinfo) -> tuple[int, int]:
    wall = datetime(int(match[1]), int(match[2]), int(match[3]), int(match[4]), int(match[5]),
                    int(match[6]))
    offset = wall.replace(tzinfo=zone).utcoffset() or timedelta(0)
    seconds = (wall - _EPOCH_NAIVE - offset) // timedelta(seconds=1)
    return seconds, _nanos(match[7])


def parse_instant(value: Any, source: tzinfo) -> tuple[int, int]:
    """(epoch seconds, nanoseconds) for a timestamp value; ValueError with the reason if none."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"cannot parse {to_text(value)} as timestamp")
    if not isinstance(value, str):
        return _from_epoch_number(value)
    text = value.strip()
    try:
        match = _WITH_ZONE.fullmatch(text)
        if match is not None:
            zone_text = match[8]
            zone = UTC if zone_text == "Z" else parse_zone(zone_text)
            if zone is None:
                raise ValueError("offset out of range")
            return _from_wall_clock(match, zone)
        match = _ZONELESS.fullmatch(text)
        if match is not None:
            return _from_wall_clock(match, source)
        if _INT.fullmatch(text):
            return _from_epoch_number(int(text))
        if _FLOAT.fullmatch(text):
            return _from_epoch_number(float(text))
    except (ValueError, OverflowError):
        pass  # a date that does not exist (2024-02-30) or a number too large for a timestamp
    raise ValueError(f'cannot parse "{value}" as timestamp')


@dataclass(frozen=True, slots=True)
class TimezoneConfig:
    timezone: str = api_field("The zone to write timestamps in: an IANA name (`Europe/Moscow`) or `±HH:MM`.")
    fields: tuple[str, ...] = api_field("Paths of the timestamps; missing and null fields are skipped.")
    source_timezone: str = api_field("The zone of values written without an offset.", default="UTC")
    format: str = api_field("How the timestamps are written.", default="RFC3339Nano", enum=TIMEZONE_FORMATS)

    @classmethod
    def parse(cls, f: Fields) -> TimezoneConfig:
        names: list[str | None] = []
        for key, required in (("timezone", True), ("sourceTimezone", False)):
            name = f.string(key, required=required)
            if name is not None and name and parse_zone(name) is None:
                f.error(key, f"invalid timezone {shown(name)}: must be an IANA name (Europe/Moscow) "
                             "or an offset ±HH:MM")
            names.append(name)
        fields = validation.path_list(f, "fields")
        format_ = f.string("format", choices=TIMEZONE_FORMATS)
        # An empty source zone or format means the default, as the reference reads it. A zone or
        # format that validation refuses stays as written (a missing timezone is ""): the
        # transformer then fails every message, as the reference does.
        return build(cls, timezone=_as_written(f, "timezone", names[0]) or "",
                     fields=tuple(item.strip() for item in fields), source_timezone=names[1] or None,
                     format=_as_written(f, "format", format_) or None)


def _as_written(f: Fields, key: str, value: str | None) -> str | None:
    """``value``, or the string at ``key`` when the reader refused it (blank, or not a choice)."""
    written = f.config.get(key)
    return written if value is None and isinstance(written, str) else value


@register
class TimezoneTransformer(Transformer):
    """Rewrites timestamps at ``fields`` in the ``timezone`` zone."""

    type_name = "timezone"
    config_class = TimezoneConfig

    def __init__(self, config: TimezoneConfig) -> None:
        self.paths = [path for path in (Path(item) for item in config.fields) if not path.empty]
        name = config.timezone
        source_name = config.source_timezone
        self.format = config.format
        target, source = parse_zone(name), parse_zone(source_name)
        # A bad zone or format fails every message (validation rejects them before this).
        self.error: str | None = None
        if target is None:
            self.error = f"invalid timezone {name!r}"
        elif source is None:
            self.error = f"invalid sourceTimezone {source_name!r}"
        elif self.format not in TIMEZONE_FORMATS:
            self.error = f"unsupported format {self.format!r}"
        self.target: tzinfo = target or UTC
        self.source: tzinfo = source or UTC

    def transform(self, message: Message) -> list[Message]:
        doc = take_doc(message)
        if doc is MISSING:
            return [message]
        if self.error is not None:
            raise InvalidDataError(f"timezone: {self.error}")
        changed = False
        for path in self.paths:
            value = path.get(doc)
            if value is MISSING or value is None:
                continue
            try:
                seconds, nanos = parse_instant(value, self.source)
                converted = self._render(seconds, nanos)
            except (ValueError, OverflowError, OSError) as exc:
                raise InvalidDataError(f'timezone "{path.text}": {exc}') from None
            changed = path.set(doc, converted) or changed
        return [message.derive(encode(doc), doc=doc)] if changed else [message]

    def _render(self, seconds: int, nanos: int) -> str | int:
        if self.format == "UnixMilli":
            return seconds * 1000 + nanos // 1_000_000
        try:
            moment = datetime.fromtimestamp(seconds, tz=self.target)
        except (ValueError, OverflowError, OSError):
            raise ValueError(f"timestamp {seconds} is out of range") from None
        return format_rfc3339(moment, nanos, fraction=self.format == "RFC3339Nano")
