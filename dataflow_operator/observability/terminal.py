"""Which log format a stream gets, and one status line redrawn in place beneath the log lines.

JSON stays the format for machines (pods, pipes, files); :func:`resolve_log_format` decides. On a
terminal, :class:`StatusLine` owns the bottom line of stderr: a log record is written above it
(the line is erased first and redrawn after), so progress and log lines never interleave. Stdout is
never touched: it may carry data (a file sink with ``path: "-"``).
"""

from __future__ import annotations

import logging
import os
import threading
from enum import Enum
from typing import TextIO

_ERASE_LINE = "\r\x1b[K"


class LogFormat(Enum):
    JSON = "json"
    TEXT = "text"
    AUTO = "auto"


def is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or replaced stream
        return False


def in_kubernetes() -> bool:
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST"))


def resolve_log_format(requested: LogFormat, stream: TextIO) -> LogFormat:
    """``auto``: text for a person at a terminal, JSON in a pod (``kubectl run -it`` has a terminal
    too, but its logs are collected) or whenever the stream is not a terminal."""
    if requested is not LogFormat.AUTO:
        return requested
    return LogFormat.TEXT if is_terminal(stream) and not in_kubernetes() else LogFormat.JSON


class StatusLine:
    """The last line of a terminal stream, redrawn in place; other output goes above it."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._lock = threading.Lock()
        self._text = ""

    def show(self, text: str) -> None:
        with self._lock:
            self._text = text
            self.stream.write(f"{_ERASE_LINE}{text}")
            self.stream.flush()

    def write_above(self, text: str) -> None:
        with self._lock:
            self.stream.write(f"{_ERASE_LINE}{text}\n")
            if self._text:
                self.stream.write(self._text)
            self.stream.flush()

    def finish(self) -> None:
        """Keep the last status where it is and move below it; later output starts a fresh line."""
        with self._lock:
            if self._text:
                self.stream.write("\n")
                self.stream.flush()
            self._text = ""


class StatusLineHandler(logging.Handler):
    """Writes formatted records above the :class:`StatusLine`."""

    def __init__(self, status: StatusLine) -> None:
        super().__init__()
        self.status = status

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.status.write_above(self.format(record))
        except Exception:
            self.handleError(record)
