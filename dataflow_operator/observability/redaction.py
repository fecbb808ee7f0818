"""Secrets are removed from text by value, not by pattern.

A pattern ("password=…", "://user:…@") cannot be trusted: a password may hold ``?``, ``#``, ``@``,
``%``-escapes or spaces, a malformed connection string parses in ways nobody predicted, and a driver
quotes parts of it in its own error messages. So every secret value the process comes to know is
registered here once (with the forms in which it may be quoted: JSON- and ``repr``-escaped,
percent-encoded), and every text that leaves the process — log lines, events, status, metric
labels, error records, Sentry events — passes :func:`scrub` first.

One process-wide registry: a secret learnt anywhere (spec loading, SecretRef resolution) is scrubbed
everywhere, including from threads that never saw the spec.

The values are matched by one regular expression shaped as a trie (values sharing a prefix share
one branch): a plain alternation of a few thousand values — a connection string yields dozens of
candidates, each in several quoted forms — costs milliseconds per line, the trie a fraction of one.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable, Mapping
from datetime import date, time, timedelta
from typing import Any
from urllib.parse import quote, quote_plus

REDACTED = "[REDACTED]"

_Trie = dict[str, "_Trie"]
_END = ""  # the key that marks "a value ends here" in a trie node (characters are never empty)


def _quoted_forms(value: str) -> set[str]:
    """``value`` and the forms in which code commonly quotes it. ``repr`` escapes a ``'`` only in a
    string that also holds a ``"``, so both of its forms are taken."""
    forms = {value, json.dumps(value, ensure_ascii=False)[1:-1], json.dumps(value)[1:-1], repr(value)[1:-1],
             repr(value + '"')[1:-2], quote(value, safe=""), quote_plus(value, safe=""), quote(value)}
    return {form for form in forms if form.strip()}


def _trie_pattern(values: Iterable[str]) -> str:
    """A regular expression matching any of ``values``, longest first where several match at one
    position (the optional continuation is greedy, so a longer value is tried before a shorter one)."""
    root: _Trie = {}
    for value in values:
        node = root
        for char in value:
            node = node.setdefault(char, {})
        node[_END] = {}

    def emit(node: _Trie) -> str:
        branches = []
        for char in sorted(key for key in node if key != _END):
            child, chain = node[char], [char]
            # A run of single-child nodes becomes one literal, so nesting grows with branch points
            # only (a PEM key is thousands of characters long but branches a few dozen times).
            while len(child) == 1 and _END not in child:
                ((char_, child),) = child.items()
                chain.append(char_)
            branches.append(re.escape("".join(chain)) + emit(child))
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        if _END not in node:
            return body
        return f"(?:{body})?" if len(branches) == 1 else f"{body}?"

    return emit(root)


class SecretRegistry:
    """Known secret values and one compiled pattern that removes them (longest first, so a secret
    that contains another is removed whole)."""

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
            # A lookahead, so that a match at every position is found, not only after the last one.
            self._pattern = re.compile(f"(?=({_trie_pattern(self._values)}))")

    def scrub(self, text: str) -> str:
        pattern = self._pattern
        if pattern is None or not text:
            return text
        # Every match at every position, overlaps included, and the union redacted: a plain ``sub``
        # takes the leftmost match and skips past it, so a value that starts a little earlier (a
        # piece " 0000" of the password "0000000%0000 0000") would hide the longer one that overlaps
        # it and leave the rest of the password ("000%") in the text (found by hypothesis).
        spans: list[list[int]] = []
        for match in pattern.finditer(text):
            start, end = match.start(), match.start() + len(match.group(1))
            if spans and start < spans[-1][1]:
                spans[-1][1] = max(spans[-1][1], end)
            else:
                spans.append([start, end])
        if not spans:
            return text
        pieces, last = [], 0
        for start, end in spans:
            pieces += [text[last:start], REDACTED]
            last = end
        pieces.append(text[last:])
        return "".join(pieces)

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


def scrub_value(value: Any) -> Any:
    """``value`` with :func:`scrub` applied to every string in it, keys included, through mappings,
    lists and tuples. Numbers, booleans, times and None stay as they are; any other object becomes
    its scrubbed ``str()``, which is what a JSON log line or an event would have shown of it."""
    if isinstance(value, str):
        return scrub(value)
    if value is None or isinstance(value, bool | int | float | date | time | timedelta):
        return value
    if isinstance(value, Mapping):
        return {scrub_value(key): scrub_value(item) for key, item in value.items()}
    if isinstance(value, list):
        return [scrub_value(item) for item in value]
    if isinstance(value, tuple):
        return tuple(scrub_value(item) for item in value)
    return scrub(str(value))
