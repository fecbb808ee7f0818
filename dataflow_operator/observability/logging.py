"""Structured JSON logs on stderr, level from ``LOG_LEVEL`` (debug|info|warn|warning|error).

On a terminal outside a pod the lines are for a person instead (:class:`TextFormatter`), under a
status line the processor redraws in place; ``--log-format`` / ``LOG_FORMAT`` (json|text|auto)
chooses explicitly (:func:`.terminal.resolve_log_format`).

Fields passed with ``extra=`` become JSON keys. Every record is scrubbed of registered secret values
before any handler formats it (:class:`ScrubbingFilter`): the message, every extra field and the
exception text. That is the one guard for every logger, ours and the libraries' (librdkafka's log
and error callbacks arrive here too); callers still log identifiers and error texts, not specs.

Uncaught exceptions, in the main thread or any other, and Python warnings are routed through the
same handler, so nothing reaches stderr around the scrubber.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from ..pipeline.timetext import rfc3339_nano_utc
from .redaction import scrub, scrub_value
from .terminal import LogFormat, StatusLine, StatusLineHandler, is_terminal, resolve_log_format

_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING,
           "warning": logging.WARNING, "error": logging.ERROR}
_EXCEPTION_FORMATTER = logging.Formatter()
_LEVEL_COLOURS = {"DEBUG": "\x1b[2m", "INFO": "\x1b[36m", "WARNING": "\x1b[33m", "ERROR": "\x1b[31m",
                  "CRITICAL": "\x1b[1;31m"}
_DIM, _RESET = "\x1b[2m", "\x1b[0m"

log = logging.getLogger(__name__)


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The fields a caller passed with ``extra=``."""
    return {key: value for key, value in vars(record).items() if key not in _STANDARD and not key.startswith("_")}


class ScrubbingFilter(logging.Filter):
    """Rewrites a record in place with every registered secret removed: the formatted message
    (arguments merged first, so a secret split across format and arguments is still seen whole),
    each extra field (strings inside dicts and lists too), the exception and stack text."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = scrub(record.getMessage())
        record.args = None
        for key, value in extra_fields(record).items():
            setattr(record, key, scrub_value(value))
        if record.exc_info and not record.exc_text:
            record.exc_text = _EXCEPTION_FORMATTER.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = scrub(record.stack_info)
        return True


class JsonFormatter(logging.Formatter):
    def __init__(self, static: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.static = static or {}

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": rfc3339_nano_utc(datetime.fromtimestamp(record.created, UTC)),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            **self.static,
        }
        entry.update(extra_fields(record))
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """``12:04:05 INFO  message  key=value …`` for a person: the JSON format's extra fields, without
    the static ones (role, namespace, name) that are the same on every line; colours on a terminal."""

    def __init__(self, *, colour: bool) -> None:
        super().__init__()
        self.colour = colour

    def format(self, record: logging.LogRecord) -> str:
        clock = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        level = f"{record.levelname:<7}"
        if self.colour:
            clock = f"{_DIM}{clock}{_RESET}"
            level = f"{_LEVEL_COLOURS.get(record.levelname, '')}{level}{_RESET}"
        fields = "".join(f"  {key}={_field_text(value)}" for key, value in extra_fields(record).items())
        line = f"{clock} {level} {record.getMessage()}{fields}"
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line = f"{line}\n{record.exc_text}"
        if record.stack_info:
            line = f"{line}\n{record.stack_info}"
        return line


def _field_text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    return json.dumps(text, ensure_ascii=False) if not text or any(ch.isspace() for ch in text) else text


def level_from_env(default: str = "info") -> int:
    raw = os.environ.get("LOG_LEVEL", "").strip().lower()
    return _LEVELS.get(raw, _LEVELS[default])


def _log_uncaught(exc_type: type[BaseException], exc: BaseException, traceback: TracebackType | None) -> None:
    if issubclass(exc_type, KeyboardInterrupt):
        sys.__excepthook__(exc_type, exc, traceback)
        return
    log.critical("uncaught exception", exc_info=(exc_type, exc, traceback))


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    """The hook runs in the failed thread, so the record's threadName names it. SystemExit ends a
    thread quietly, as with the default hook."""
    if args.exc_value is not None and not issubclass(args.exc_type, SystemExit):
        _log_uncaught(args.exc_type, args.exc_value, args.exc_traceback)


def setup_logging(log_format: LogFormat = LogFormat.JSON, **static: Any) -> StatusLine | None:
    """Configure the root logger once; ``static`` fields (namespace, name, role) go on every JSON
    line. Returns the terminal's status line when the lines are text on a terminal, else None."""
    stream = sys.stderr
    status: StatusLine | None = None
    handler: logging.Handler
    if resolve_log_format(log_format, stream) is LogFormat.TEXT:
        terminal = is_terminal(stream)
        if terminal:
            status = StatusLine(stream)
            handler = StatusLineHandler(status)
        else:
            handler = logging.StreamHandler(stream)
        handler.setFormatter(TextFormatter(colour=terminal))
    else:
        handler = logging.StreamHandler(stream)
        handler.setFormatter(JsonFormatter(static))
    handler.addFilter(ScrubbingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level_from_env())
    # librdkafka and urllib3 are chatty at INFO; their warnings still come through.
    for noisy in ("urllib3", "kubernetes.client.rest"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    # Tracebacks and warnings would otherwise be written to stderr as they are, secrets and all.
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread
    return status
