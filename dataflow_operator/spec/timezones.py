"""IANA time zone names, checked without letting the file system answer for a bad name.

``ZoneInfo`` looks a name up as a path under its search path, so a bad name fails in whatever way
the file system does: a directory ("America") raises IsADirectoryError, a 300-character name
"File name too long", a NUL byte ValueError, "../x" ValueError, and a file that is not a zone
("zone.tab") ValueError again. The name is checked for the shape of a zone name first and every
failure of the lookup is an answer, never an exception for the caller.
"""

from __future__ import annotations

import re
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..pipeline.config_fields import shown

#: The longest IANA name is 32 characters (America/Argentina/ComodRivadavia).
MAX_ZONE_NAME_CHARS: Final = 64
# Components of letters, digits, '_', '-' and '+' separated by '/', none starting with '.'.
_ZONE_NAME: Final = re.compile(r"[A-Za-z0-9_+-][A-Za-z0-9_+.-]*(?:/[A-Za-z0-9_+-][A-Za-z0-9_+.-]*)*")


def zone_problem(name: str) -> str | None:
    """Why ``name`` is not a usable IANA time zone; None when it is one."""
    if len(name) > MAX_ZONE_NAME_CHARS or not _ZONE_NAME.fullmatch(name):
        return f"unknown IANA time zone {shown(name)} (expected e.g. Europe/Moscow or UTC)"
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return f"unknown IANA time zone {shown(name)} (expected e.g. Europe/Moscow or UTC)"
    return None
