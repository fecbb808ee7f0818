"""Log lines for a person on a terminal: chosen only there, scrubbed like JSON, drawn above the
status line."""

from __future__ import annotations

import io
import json
import logging
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from dataflow_operator.observability.logging import setup_logging
from dataflow_operator.observability.redaction import register_secrets
from dataflow_operator.observability.terminal import LogFormat, StatusLine, resolve_log_format

SECRET = "s3cr3t-Pa55word"


class TerminalBuffer(io.StringIO):
    def isatty(self) -> bool:
        return True


@contextmanager
def logging_to(stream: io.StringIO, log_format: LogFormat) -> Iterator[StatusLine | None]:
    """setup_logging writing to ``stream`` as stderr; everything it changed restored."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, sys.stderr, sys.excepthook, threading.excepthook)
    sys.stderr = stream
    try:
        yield setup_logging(log_format, role="processor")
    finally:
        root.handlers[:], level, sys.stderr, sys.excepthook, threading.excepthook = saved
        root.setLevel(level)
        logging.captureWarnings(False)


@pytest.mark.parametrize(("requested", "terminal", "in_pod", "expected"), [
    (LogFormat.AUTO, True, False, LogFormat.TEXT),
    (LogFormat.AUTO, False, False, LogFormat.JSON),
    (LogFormat.AUTO, True, True, LogFormat.JSON),     # kubectl run -it: a terminal, but in a pod
    (LogFormat.JSON, True, False, LogFormat.JSON),
    (LogFormat.TEXT, False, True, LogFormat.TEXT),
])
def test_the_format_follows_the_terminal_unless_forced(monkeypatch: pytest.MonkeyPatch, requested: LogFormat,
                                                       terminal: bool, in_pod: bool, expected: LogFormat) -> None:
    if in_pod:
        monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    else:
        monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    stream = TerminalBuffer() if terminal else io.StringIO()
    assert resolve_log_format(requested, stream) is expected


def test_text_lines_are_scrubbed_like_json_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    register_secrets([SECRET])
    stream = TerminalBuffer()
    with logging_to(stream, LogFormat.AUTO) as status:
        assert status is not None
        log = logging.getLogger("dataflow_operator.test")
        log.warning("login with %s refused", SECRET, extra={"dsn": f"postgres://u:{SECRET}@db/x",
                                                           "nested": {"tries": [SECRET]}})
        try:
            raise RuntimeError(f"cannot use {SECRET}")
        except RuntimeError:
            log.exception("failed")
    text = stream.getvalue()
    assert SECRET not in text
    assert "login with [REDACTED] refused" in text and "dsn=postgres://u:[REDACTED]@db/x" in text
    assert "RuntimeError: cannot use [REDACTED]" in text
    assert "\x1b[" in text  # coloured: it is a terminal


def test_forced_text_off_a_terminal_has_no_colours_and_no_status_line(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = io.StringIO()
    with logging_to(stream, LogFormat.TEXT) as status:
        assert status is None
        logging.getLogger("dataflow_operator.test").info("hello", extra={"path": "a b", "count": 3})
    line = stream.getvalue()
    assert "\x1b" not in line and "\r" not in line
    assert line.rstrip("\n").endswith('INFO    hello  path="a b"  count=3')


def test_json_stays_json_off_a_terminal() -> None:
    stream = io.StringIO()
    with logging_to(stream, LogFormat.AUTO) as status:
        assert status is None
        logging.getLogger("dataflow_operator.test").info("hello", extra={"count": 3})
    entry = json.loads(stream.getvalue())
    assert list(entry) == ["ts", "level", "logger", "msg", "role", "count"]


def test_a_log_line_goes_above_the_status_line_which_is_redrawn() -> None:
    stream = TerminalBuffer()
    status = StatusLine(stream)
    status.show("read 1")
    status.write_above("a log line")
    status.show("read 2")
    status.finish()
    status.write_above("after")
    assert stream.getvalue() == ("\r\x1b[Kread 1" "\r\x1b[Ka log line\nread 1" "\r\x1b[Kread 2" "\n"
                                 "\r\x1b[Kafter\n")
