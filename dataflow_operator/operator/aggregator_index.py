"""One processor pod's ``dataflow_*`` families kept as the bytes it served, indexed by family, for the
operator's byte-level exposition (:mod:`.aggregator_exposition`).

At 1 000 pods x 1 000 samples, anything done per sample in Python costs seconds, so a body in the
layout prometheus_client writes (each family's ``# HELP``, ``# TYPE`` and samples together, every
sample with labels, no escapes, no timestamps) is cut into one ``bytes`` per family and checked with
one regular expression per family, which runs in C. The expression admits exactly the sample shapes
(name and label names, in order) and bucket bounds that the full parser already accepted for that
family, every label value free of ``"``, ``\\``, ``{`` and newlines, and values that both output
formats read as they are. So a checked family's lines are valid in both formats once the ``pod`` label
is put after each line's only ``{`` (:data:`POD_LABEL` first: Prometheus does not care where), and
bucket bounds and quantiles are in the canonical form OpenMetrics requires (a bound written otherwise,
like ``le="1048576.0"``, is one more C-level ``replace`` with its canonical form, ``1.048576e+06``).

Shapes are learnt the first time a family fails the check, by parsing its lines with the full parser's
rules; a family the full parser would rewrite otherwise (escapes, timestamps, an existing ``pod``
label, a sample without labels) is never learnt. Whenever any part of a body is
not in that layout, the whole pod goes through :func:`.aggregator_parse.parse_exposition` instead, so
the result is always what the full parser makes of the body.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

from .aggregator_parse import (
    KEEP_PREFIX,
    POD_LABEL,
    SAMPLE_SUFFIXES,
    ExpositionError,
    ParsedFamily,
    canonical_bound,
    drop_created,
    parse_exposition,
    shape_of,
    unescape_help,
)


@dataclass(frozen=True, slots=True)
class RawFamily:
    """One pod's family as served: sample lines checked by the family's expression, without the pod
    label (which the exposition splices in, so the bytes are copied once, on the way out)."""

    name: str  # as prometheus_client names it: a counter without ``_total``
    type: str
    documentation: str
    lines: bytes


IndexedFamily = RawFamily | ParsedFamily

_KEEP = KEEP_PREFIX.encode()
_HELP = b"# HELP "
_AT_LINE_START = (b"\n" + _KEEP, b"\n# TYPE " + _KEEP)  # where a kept line hides in a foreign family
_METRIC_NAME = re.compile(rb"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
_TEXT_TYPES = {b"counter": "counter", b"gauge": "gauge", b"histogram": "histogram", b"summary": "summary",
               b"untyped": "unknown"}
# A label value the lines can keep as they are: no quote (it would end the value), no backslash (an
# escape the full parser would have to check), no newline, and no ``{`` (the pod label's splice point).
_VALUE = rb'[^"\\\n{]*+'
# The numbers both formats read as written (Go's and OpenMetrics' grammars agree on these).
_NUMBER = rb"(?:[-+]?(?:[0-9]++(?:\.[0-9]*+)?+|\.[0-9]++)(?:[eE][-+]?[0-9]++)?+|[-+]Inf|NaN)"
_NUMBER_TEXT = re.compile(_NUMBER.decode() + r"\Z")
# Bounds on what is learnt, so a pod inventing label sets or bucket bounds cannot grow them for ever.
_MAX_SHAPES = 64
_MAX_BOUNDS = 256
_MAX_FAMILIES = 10_000


def index_pod(body: bytes, pod: str, *, openmetrics: bool) -> dict[str, IndexedFamily]:
    """The ``dataflow_*`` families of one pod's body (UTF-8), by name, ``_created`` families dropped.

    Raises :class:`.aggregator_parse.ExpositionError` when the body is malformed.
    """
    if not openmetrics:
        families = _raw_families(body)
        if families is not None:
            return families
    return dict(parse_exposition(body.decode("utf-8"), pod, openmetrics=openmetrics))


def _raw_families(body: bytes) -> dict[str, IndexedFamily] | None:
    """None unless the whole body is in the layout the fast path reads."""
    if not body.endswith(b"\n"):
        body += b"\n"
    start = 0 if body.startswith(_HELP) else _next_help(body, 0)
    if _hides_kept_lines(body, 0, start):
        return None
    families: dict[str, IndexedFamily] = {}
    while start < len(body):
        stop = _next_help(body, start)
        if body.startswith(_KEEP, start + len(_HELP)):
            family = _raw_family(body, start, stop)
            if family is None or family.name in families:
                return None
            families[family.name] = family
        elif _hides_kept_lines(body, start, stop):
            return None
        start = stop
    drop_created(families)
    return families


def _next_help(body: bytes, start: int) -> int:
    """Where the first ``# HELP`` line after ``start`` starts (the end if none): a family's block ends
    there."""
    found = body.find(b"\n" + _HELP, start)
    return len(body) if found < 0 else found + 1


def _hides_kept_lines(body: bytes, start: int, stop: int) -> bool:
    if body.startswith(_KEEP, start) or body.startswith(b"# TYPE " + _KEEP, start):
        return True
    return any(body.find(marker, start, stop) >= 0 for marker in _AT_LINE_START)


def _raw_family(body: bytes, start: int, stop: int) -> RawFamily | None:
    """The family whose ``# HELP`` line starts at ``start`` and whose block ends at ``stop``, if its
    block is exactly HELP, TYPE and lines the family's expression admits."""
    help_end = body.find(b"\n", start)
    exposed, _, help_text = body[start + len(_HELP):help_end].partition(b" ")
    type_prefix = b"# TYPE " + exposed + b" "
    type_start = help_end + 1
    type_end = body.find(b"\n", type_start, stop)
    if type_end < 0 or not body.startswith(type_prefix, type_start) or not _METRIC_NAME.match(exposed):
        return None
    declared = _TEXT_TYPES.get(body[type_start + len(type_prefix):type_end])
    if declared is None:
        return None
    name, kind = _family_of(exposed.decode(), declared)
    lines = body[type_end + 1:stop]
    if lines:
        check = _check(exposed, name, kind, lines)
        if check is None:
            return None
        lines = check.canonical(lines)
    try:
        documentation = unescape_help(help_text.decode("utf-8"), openmetrics=False)
    except UnicodeDecodeError:
        return None
    return RawFamily(name, kind, documentation, lines)


def _family_of(exposed: str, declared: str) -> tuple[str, str]:
    """Name and type as the full parser sees them (see ``_PodParser.declare``)."""
    if declared != "counter":
        return exposed, declared
    if exposed.endswith("_total"):
        return exposed[:-len("_total")], "counter"
    return exposed, "unknown"


# --- the expressions, learnt per family ------------------------------------------------------------------

# A sample shape: its name, its label names in order, and the index of its bucket bound or quantile
# label (-1: none); with the bounds seen for that label.
_ShapeKey = tuple[str, tuple[str, ...], int]


@dataclass(frozen=True, slots=True)
class _FamilyCheck:
    shapes: dict[_ShapeKey, frozenset[str]]
    expression: re.Pattern[bytes]
    # (as written, canonical) for each bound not written canonically, with the ``{`` or ``,`` and
    # label name before it: the grammar the expression checked puts those only where a label starts.
    rewrites: tuple[tuple[bytes, bytes], ...]

    def canonical(self, lines: bytes) -> bytes:
        for written, canonical in self.rewrites:
            lines = lines.replace(written, canonical)
        return lines


_checks: dict[tuple[bytes, str], _FamilyCheck] = {}
_learning = threading.Lock()


def _check(exposed: bytes, name: str, kind: str, lines: bytes) -> _FamilyCheck | None:
    """The family's check if it admits ``lines``."""
    check = _checks.get((exposed, kind))
    if check is not None and check.expression.fullmatch(lines):
        return check
    # New shapes or bounds (or lines the fast path cannot take): learn once, then check again.
    check = _learn(exposed, name, kind, lines, check)
    return check if check is not None and check.expression.fullmatch(lines) else None


def _learn(exposed: bytes, name: str, kind: str, lines: bytes, known: _FamilyCheck | None) -> _FamilyCheck | None:
    seen = _shapes_of(name, kind, lines)
    if seen is None:
        return None
    with _learning:
        shapes = dict(known.shapes) if known is not None else {}
        for shape, bounds in seen.items():
            shapes[shape] = shapes.get(shape, frozenset()) | bounds
        if len(shapes) > _MAX_SHAPES or any(len(bounds) > _MAX_BOUNDS for bounds in shapes.values()):
            return None
        check = _FamilyCheck(shapes, _compile(shapes), _rewrites(shapes))
        if len(_checks) >= _MAX_FAMILIES:
            _checks.clear()
        _checks[(exposed, kind)] = check
        return check


def _shapes_of(name: str, kind: str, lines: bytes) -> dict[_ShapeKey, frozenset[str]] | None:
    """The shapes of ``lines``, or None when any line is one the fast path must not take as it is."""
    owned = {name + suffix for suffix in SAMPLE_SUFFIXES.get(kind, ("",))}
    shapes: dict[_ShapeKey, set[str]] = {}
    try:
        text = lines.decode("utf-8")
    except UnicodeDecodeError:
        return None
    for line in text.split("\n")[:-1]:
        parts = line.split('"')
        if "\\" in line or "{" in line[line.find("{") + 1:] or len(parts) < 3 or not len(parts) & 1:
            return None
        try:
            shape = shape_of(tuple(parts[:-1:2]))
        except ExpositionError:
            return None
        sample, keys = shape.series[0], shape.series[1][:-1]  # the last is the pod label it would add
        as_written = (f"{sample}{{{keys[0]}=", *(f",{key}=" for key in keys[1:]))
        tail = parts[-1]
        if sample not in owned or as_written != tuple(parts[:-1:2]) or tail[:2] != "} " or \
                not _NUMBER_TEXT.match(tail[2:]):
            return None  # not canonical, a pod label renamed, or a value or timestamp to rewrite
        bounds = shapes.setdefault((sample, keys, shape.bound_index), set())
        if shape.bound_index >= 0:
            bounds.add(parts[1::2][shape.bound_index])
    return {shape: frozenset(bounds) for shape, bounds in shapes.items()}


def _compile(shapes: dict[_ShapeKey, frozenset[str]]) -> re.Pattern[bytes]:
    alternatives = []
    for (sample, keys, bound_index), bounds in shapes.items():
        labels = []
        for index, key in enumerate(keys):
            value = _VALUE
            if index == bound_index:
                value = b"(?:" + b"|".join(re.escape(bound.encode()) for bound in sorted(bounds)) + b")"
            labels.append(key.encode() + b'="' + value + b'"')
        alternatives.append(re.escape(sample.encode()) + rb"\{" + b",".join(labels) + rb"\} " + _NUMBER + rb"\n")
    # Possessive: a line matched is never given back, so a long body costs no backtracking state.
    return re.compile(b"(?:" + b"|".join(alternatives) + b")*+")


def _rewrites(shapes: dict[_ShapeKey, frozenset[str]]) -> tuple[tuple[bytes, bytes], ...]:
    rewrites = set()
    for (_, keys, bound_index), bounds in shapes.items():
        for bound in bounds:
            canonical = canonical_bound(bound)
            if canonical != bound:
                for before in "{,":
                    label = f'{before}{keys[bound_index]}="'
                    rewrites.add((f'{label}{bound}"'.encode(), f'{label}{canonical}"'.encode()))
    return tuple(sorted(rewrites))


def pod_label_opening(pod: str) -> bytes:
    """What replaces each line's ``{``: the pod label first."""
    escaped = pod.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
    return f'{{{POD_LABEL}="{escaped}",'.encode()
