"""Structured JSON logs on stderr, level from ``LOG_LEVEL`` (debug|info|warn|warning|error).

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

_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING,
           "warning": logging.WARNING, "error": logging.ERROR}
_EXCEPTION_FORMATTER = logging.Formatter()

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


def setup_logging(**static: Any) -> None:
    """Configure the root logger once; ``static`` fields (namespace, name, role) go on every line."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(ScrubbingFilter())
    handler.setFormatter(JsonFormatter(static))
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
