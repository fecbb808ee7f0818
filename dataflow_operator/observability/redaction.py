"""Secrets are removed from text by value, not by pattern.

A pattern ("password=…", "://user:…@") cannot be trusted: a password may hold ``?``, ``#``, ``@``,
``%``-escapes or spaces, a malformed connection string parses in ways nobody predicted, and a driver
quotes parts of it in its own error messages. So every secret value the process comes to know is
registered here once (with the forms in which it may be quoted: JSON- and ``repr``-escaped,
percent-encoded), and every text that leaves the process — log lines, events, status, metric
labels, error records, Sentry events — passes :func:`scrub` first.

One process-wide registry: a secret learnt anywhere (spec loading, SecretRef resolution) is scrubbed
everywhere, including from threads that never saw the spec.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

REDACTED = "[REDACTED]"


def _quoted_forms(value: str) -> set[str]:
    """``value`` and the forms in which code commonly quotes it."""
    forms = {value, json.dumps(value, ensure_ascii=False)[1:-1], json.dumps(value)[1:-1], repr(value)[1:-1],
             quote(value, safe=""), quote_plus(value, safe=""), quote(value)}
    return {form for form in forms if form.strip()}


class SecretRegistry:
    """Known secret values and one compiled alternation that removes them (longest first, so a
    secret that contains another is removed whole)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: frozenset[str] = frozenset()
        self._pattern: re.Pattern[str] | None = None

    def add(self, values: Iterable[str]) -> None:
        new = {form for value in values if isinstance(value, str) and value.strip()
               for form in _quoted_forms(value)}
        with self._lock:
            if new <= self._values:
                return
            self._values = self._values | new
            alternatives = sorted(self._values, key=len, reverse=True)
            self._pattern = re.compile("|".join(re.escape(v) for v in alternatives))

    def scrub(self, text: str) -> str:
        pattern = self._pattern
        if pattern is None or not text:
            return text
        return pattern.sub(REDACTED, text)

    def clear(self) -> None:
        """Forget every value (tests only: a process keeps what it learnt)."""
        with self._lock:
            self._values = frozenset()
            self._pattern = None


SECRETS = SecretRegistry()


def register_secrets(values: Iterable[str]) -> None:
    SECRETS.add(values)


def scrub(text: str) -> str:
    """``text`` with every registered secret value replaced by ``[REDACTED]``."""
    return SECRETS.scrub(text)
