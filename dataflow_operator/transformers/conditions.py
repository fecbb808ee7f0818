"""The condition language of filter, router and per-step ``when`` (transformations.md §2.1 + §2.2).

A condition is compiled once, when the transformer is built, into a tree of closures; evaluating
it per message is then a few dict lookups. Compilation never raises: text that cannot be read the
way the reference reads it evaluates to false, as in the reference. :func:`problems` reports such
text at validation time, so a manifest with a broken condition is rejected before it runs.

Grammar, loosest first: ``A || B`` (any), ``A && B`` (all), ``!A`` (not; a leading ``!=`` is not
negation), ``(A)``, and atoms: ``PATH`` (truthiness), ``PATH == LIT``, ``PATH != LIT``. ``&&``,
``||`` and parentheses inside quotes are text. ``PATH`` is a payload path (``$.`` optional) or
``metadata.KEY`` (the whole rest is one metadata key). Comparisons are textual
(:func:`~.jsonvalues.to_text`); a missing value makes both ``==`` and ``!=`` false.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from ..pipeline.message import Message
from .jsonvalues import MISSING, is_truthy, metadata_text, metadata_truthy, peek_doc, to_text
from .paths import Path

#: A compiled node: (decoded payload or MISSING, message metadata) -> bool.
Node = Callable[[Any, Mapping[str, Any]], bool]

_QUOTES: Final = ("'", '"')
_METADATA_PREFIX: Final = "metadata."
# Deeper nesting is surely a mistake; the limit also keeps evaluation far from Python's
# recursion limit, so evaluating can never raise RecursionError.
_MAX_DEPTH: Final = 64


def _false(payload: Any, metadata: Mapping[str, Any]) -> bool:
    return False


class Condition:
    """A compiled condition. ``needs_payload`` is False when only metadata is read, so callers
    can skip decoding the payload."""

    __slots__ = ("_node", "needs_payload", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        compiler = _Compiler(None)
        try:
            self._node = compiler.compile(text, 0)
        except RecursionError:  # pragma: no cover - prevented by _MAX_DEPTH
            self._node = _false
        self.needs_payload = compiler.reads_payload

    def __repr__(self) -> str:
        return f"Condition({self.text!r})"

    def evaluate(self, payload: Any, metadata: Mapping[str, Any]) -> bool:
        """``payload`` is the decoded payload, or MISSING when it is not JSON."""
        return self._node(payload, metadata)

    def matches(self, message: Message) -> bool:
        payload = peek_doc(message) if self.needs_payload else MISSING
        return self._node(payload, message.metadata)


def problems(text: str) -> list[str]:
    """Why ``text`` would not evaluate as written (empty list when it is well-formed)."""
    found: list[str] = []
    compiler = _Compiler(found)
    try:
        compiler.compile(text, 0)
    except RecursionError:  # pragma: no cover - prevented by _MAX_DEPTH
        found.append("nested too deeply")
    # One problem can be met on several branches; report it once.
    return list(dict.fromkeys(found))


class _Compiler:
    def __init__(self, problems: list[str] | None) -> None:
        self.problems = problems
        self.reads_payload = False

    def problem(self, text: str) -> None:
        if self.problems is not None:
            self.problems.append(text)

    def compile(self, text: str, depth: int) -> Node:
        text = text.strip()
        if not text:
            self.problem("empty condition" if depth == 0 else "empty operand")
            return _false
        if depth > _MAX_DEPTH:
            self.problem("nested too deeply")
            return _false
        alternatives = self.split(text, "||")
        if len(alternatives) > 1:
            nodes = [self.compile(part, depth + 1) for part in alternatives]
            return lambda payload, metadata: any(node(payload, metadata) for node in nodes)
        conjuncts = self.split(text, "&&")
        if len(conjuncts) > 1:
            nodes = [self.compile(part, depth + 1) for part in conjuncts]
            return lambda payload, metadata: all(node(payload, metadata) for node in nodes)
        return self.unary(text, depth)

    def unary(self, text: str, depth: int) -> Node:
        if text.startswith("!") and not text.startswith("!="):
            inner = self.compile(text[1:], depth + 1)
            return lambda payload, metadata: not inner(payload, metadata)
        if text.startswith("("):
            end = _closing_paren(text)
            if end is None:
                self.problem("unbalanced parentheses")
                return _false
            if end == len(text) - 1:
                return self.compile(text[1:-1], depth + 1)
            self.problem(f"unexpected text after ')': {text[end + 1:].strip()!r}")
        return self.atom(text)

    def split(self, text: str, operator: str) -> list[str]:
        """``text`` split at ``operator`` outside quotes and parentheses."""
        parts: list[str] = []
        depth = 0
        quote = ""
        start = 0
        position = 0
        length = len(text)
        while position < length:
            char = text[position]
            if quote:
                if char == "\\":
                    position += 1
                elif char == quote:
                    quote = ""
            elif char in _QUOTES:
                quote = char
            elif char == "(":
                depth += 1
            elif char == ")":
                depth -= 1
                if depth < 0:
                    self.problem("unbalanced parentheses")
            elif depth == 0 and text.startswith(operator, position):
                parts.append(text[start:position])
                position += len(operator)
                start = position
                continue
            position += 1
        if quote:
            self.problem("unterminated quote")
        if depth > 0:
            self.problem("unbalanced parentheses")
        parts.append(text[start:])
        return parts

    def atom(self, text: str) -> Node:
        position = _operator_position(text)
        if position is None:
            return self.truthiness(text)
        path = text[:position].strip()
        literal = _literal(text[position + 2:].lstrip())
        equal = text[position] == "="
        if not path:
            self.problem(f"missing path before {text[position:position + 2]}")
        if path.startswith(_METADATA_PREFIX):
            key = path[len(_METADATA_PREFIX):]

            def compare_metadata(payload: Any, metadata: Mapping[str, Any]) -> bool:
                value = metadata.get(key)
                if value is None:
                    return False
                return (metadata_text(value) == literal) is equal

            return compare_metadata
        compiled = Path(path)
        if compiled.empty:
            return _false
        self.reads_payload = True

        def compare_payload(payload: Any, metadata: Mapping[str, Any]) -> bool:
            value = compiled.get(payload)
            if value is MISSING:
                return False
            return (to_text(value) == literal) is equal

        return compare_payload

    def truthiness(self, path: str) -> Node:
        if path.startswith(_METADATA_PREFIX):
            key = path[len(_METADATA_PREFIX):]
            return lambda payload, metadata: metadata_truthy(metadata.get(key))
        compiled = Path(path)
        if compiled.empty:
            return _false
        self.reads_payload = True
        if len(compiled.segments) == 1 and "#" not in compiled.segments:
            key = compiled.segments[0]  # the common `$.flag` case, without the generic walk

            def top_level(payload: Any, metadata: Mapping[str, Any]) -> bool:
                if isinstance(payload, dict):
                    return is_truthy(payload.get(key))
                return is_truthy(compiled.get(payload))  # an array root: `$.0`

            return top_level
        return lambda payload, metadata: is_truthy(compiled.get(payload))


def unread_operators(text: str) -> list[str]:
    """Comparisons written in ``text`` that the language reads otherwise, for a warning: ``<``,
    ``>``, ``<=``, ``>=`` do not exist (``$.n > 10`` is the truthiness of a field named ``n > 10``,
    false, as in the reference), and ``==``/``!=`` followed by neither a space nor a quote is not a
    comparison (``$.n ==5``). Quoted text is skipped."""
    unquoted = _unquoted(text)
    found = [operator for operator in (">=", "<=") if operator in unquoted]
    rest = unquoted.replace(">=", "  ").replace("<=", "  ")
    found += [operator for operator in (">", "<") if operator in rest]
    for operator in ("==", "!="):
        position = unquoted.find(operator)
        while position >= 0:
            after = position + 2
            if after < len(text) and text[after] != " " and text[after] not in _QUOTES:
                found.append(f"{operator} without a space after it")
                break
            position = unquoted.find(operator, after)
    return found


def _unquoted(text: str) -> str:
    """``text`` with every quoted part (quotes included) blanked out, positions kept."""
    chars = list(text)
    quote = ""
    position = 0
    while position < len(chars):
        char = chars[position]
        if quote:
            chars[position] = " "
            if char == "\\" and position + 1 < len(chars):
                position += 1
                chars[position] = " "
            elif char == quote:
                quote = ""
        elif char in _QUOTES:
            quote = char
            chars[position] = " "
        position += 1
    return "".join(chars)


def _closing_paren(text: str) -> int | None:
    """Index of the ``)`` matching the ``(`` at index 0, skipping quoted text."""
    depth = 0
    quote = ""
    position = 0
    while position < len(text):
        char = text[position]
        if quote:
            if char == "\\":
                position += 1
            elif char == quote:
                quote = ""
        elif char in _QUOTES:
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return position
        position += 1
    return None


def _operator_position(text: str) -> int | None:
    """Where the first ``==``/``!=`` operator starts: one followed by a space, a quote or the end
    of the text (``a=='x'`` is a comparison, ``$.n ==5`` is not)."""
    position = 0
    while True:
        equal = text.find("==", position)
        unequal = text.find("!=", position)
        candidates = [found for found in (equal, unequal) if found >= 0]
        if not candidates:
            return None
        found = min(candidates)
        after = found + 2
        if after == len(text) or text[after] == " " or text[after] in _QUOTES:
            return found
        position = found + 1


def _literal(rhs: str) -> str:
    """The comparison literal: quoted text up to the first unescaped matching quote (escapes
    kept, "" when unterminated), else unquoted text up to whitespace or ``)``."""
    if not rhs:
        return ""
    quote = rhs[0]
    if quote in _QUOTES:
        position = 1
        while position < len(rhs):
            char = rhs[position]
            if char == "\\":
                position += 2
                continue
            if char == quote:
                return rhs[1:position]
            position += 1
        return ""
    end = len(rhs)
    for position, char in enumerate(rhs):
        if char.isspace() or char == ")":
            end = position
            break
    return rhs[:end]
