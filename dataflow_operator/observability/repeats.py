"""Holding back a library's identical log lines.

librdkafka logs every failed connection attempt, and while a broker is down those lines arrive by
the hundred (585 identical ``Connect to ... failed: Connection refused`` lines in the first 15 s
against a closed port), burying everything else in a pod's log. :class:`RepeatFilter` lets the first
of a kind through, holds back the ones identical to it for a window, and puts the number held back
on the next one it lets through (field ``repeats_held_back``), so the log still says how often it
happened.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

#: Parts of a line that differ between otherwise identical lines: librdkafka's "(after 12ms in state
#: CONNECT)" timings and its own "576 identical error(s) suppressed" counts.
_VARYING = re.compile(r"\b\d+(?=ms\b|\s+identical error)")
HELD_BACK_FIELD = "repeats_held_back"


@dataclass(slots=True)
class _Seen:
    since: float
    held_back: int = 0


class RepeatFilter(logging.Filter):
    """Per logger, level and text (timings ignored): the first record passes, identical ones within
    ``window`` seconds of it are dropped and counted, and the next one after the window passes
    carrying that count. At most ``kinds`` texts are remembered (the oldest are forgotten)."""

    def __init__(self, window: float = 60.0, *, kinds: int = 1000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.window = window
        self.kinds = kinds
        self.clock = clock
        self._lock = threading.Lock()
        self._seen: OrderedDict[tuple[str, int, str], _Seen] = OrderedDict()

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.levelno, _VARYING.sub("N", record.getMessage()))
        now = self.clock()
        with self._lock:
            seen = self._seen.get(key)
            if seen is not None and now - seen.since < self.window:
                seen.held_back += 1
                return False
            if seen is not None and seen.held_back:
                setattr(record, HELD_BACK_FIELD, seen.held_back)
            self._seen[key] = _Seen(since=now)
            self._seen.move_to_end(key)
            while len(self._seen) > self.kinds:
                self._seen.popitem(last=False)
        return True


def hold_back_repeats(*loggers: logging.Logger, window: float = 60.0) -> None:
    """A :class:`RepeatFilter` of its own on each logger (a filter sees only records logged to its
    own logger, not to its children)."""
    for logger in loggers:
        logger.addFilter(RepeatFilter(window))
