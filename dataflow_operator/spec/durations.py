"""Go-style durations (``30s``, ``2h30m``, ``1.5h``, ``300ms``) as used in DataFlow specs."""

from __future__ import annotations

import math
import re

from ..pipeline.config_fields import shown

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")


def parse_duration(text: str) -> float:
    """Seconds in ``text``; raises ValueError naming the text when it is not a Go duration."""
    raw = text.strip()
    sign = 1.0
    if raw[:1] in "+-" and raw:
        sign = -1.0 if raw[0] == "-" else 1.0
        raw = raw[1:]
    if raw == "0":
        return 0.0
    position, total = 0, 0.0
    while position < len(raw):
        match = _PART.match(raw, position)
        if match is None:
            raise ValueError(f"invalid duration {shown(text)} (expected e.g. 30s, 2h30m, 500ms)")
        total += float(match.group(1)) * _UNITS[match.group(2)]
        position = match.end()
    if position == 0:
        raise ValueError(f"invalid duration {shown(text)} (expected e.g. 30s, 2h30m, 500ms)")
    if not math.isfinite(total):  # hundreds of digits overflow the float
        raise ValueError(f"duration {shown(text)} is too long")
    return sign * total
