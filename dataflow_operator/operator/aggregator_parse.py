"""Turns one processor pod's ``/metrics`` body into its ``dataflow_*`` families, each sample labelled
with ``pod``.

The operator re-parses every pod's exposition on every scrape (200 pods x 1 000 samples is the design
load), so this is the hot path. Three things keep it cheap:

* lines are pre-filtered by prefix before any parsing, so ``go_*``/``process_*``/``python_*`` cost
  one ``startswith`` each;
* a text-format sample line without a backslash is split once on ``"``: the odd parts are the raw
  label values, the even parts its *shape* (name and label names), which repeats for every bucket
  and every series of a family and is validated once, then looked up in a cache;
* a sample becomes one flat tuple (``SampleRow``, which says why), turned into a
  ``prometheus_client`` ``Sample`` only when the exposition reads it.

Lines with escapes (and OpenMetrics bodies, which we do not ask for but accept) take a slower
regex tokenizer that unescapes label values, because prometheus_client escapes them again on output.

The ``pod`` label follows Prometheus' ``honor_labels: false``: the aggregator is the scraper, so its
``pod`` is the authoritative one; a ``pod`` label the processor already set is kept as
``exported_pod`` (``exported_exported_pod`` if that exists too, and so on), never overwritten and
never allowed to collide two pods' series.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from prometheus_client.utils import floatToGoString

KEEP_PREFIX = "dataflow_"
_KEEP_LINE_PREFIXES = (KEEP_PREFIX, "# HELP " + KEEP_PREFIX, "# TYPE " + KEEP_PREFIX)
POD_LABEL = "pod"

_TEXT_TYPES = frozenset({"counter", "gauge", "histogram", "summary", "untyped"})
_OPENMETRICS_TYPES = frozenset(
    {"counter", "gauge", "histogram", "gaugehistogram", "summary", "info", "stateset", "unknown"})
# Sample names owned by a family of each type, as suffixes of the family name. ``_created`` is left
# out on purpose: it is dropped (see ``drop_created``).
SAMPLE_SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_sum", "_count"),
    "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
    "summary": ("", "_sum", "_count"),
    "info": ("_info",),
}
_HAS_CREATED = frozenset({"counter", "histogram", "summary"})

_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
_SLOW_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_SLOW_LABEL = re.compile(r'[ \t]*([a-zA-Z_][a-zA-Z0-9_]*)[ \t]*=[ \t]*"((?:[^"\\\n]|\\.)*)"[ \t]*(,?)[ \t]*')
_CLOSE_BRACE = re.compile(r"[ \t]*}")
_LABEL_ESCAPE = re.compile(r"\\(.)")
_LABEL_UNESCAPES = {"\\": "\\", '"': '"', "n": "\n"}

_BLANKS = " \t"
_SHAPE_CACHE_LIMIT = 10_000


# A sample name and its label names (``pod`` last), shared by every sample of that shape.
SeriesShape = tuple[str, tuple[str, ...]]
# One sample: ``(*label_values, shape, value, timestamp)``, the values in the order of the shape's
# label names. Flat, and made of strings, floats and a long-lived shape tuple only, because CPython's
# collector stops tracking such a tuple the first time it sees it. A ``Sample`` (a tuple subclass), a
# tuple holding a dict, or one holding a tuple as young as itself (the collector reaches the row
# first) stays tracked, and every full collection walks it: with 200 000 per scrape at 200 pods,
# those collections were a third of the collect time (measured with gc.callbacks).
SampleRow = tuple[Any, ...]


class ExpositionError(ValueError):
    """The body is not valid Prometheus text (or OpenMetrics) exposition."""


@dataclass(slots=True)
class ParsedFamily:
    """One family of one pod, named as prometheus_client names it (a counter without ``_total``)."""

    name: str
    type: str
    exposed_name: str  # the name its HELP line uses in the body (``x_total`` for a text counter)
    samples: list[SampleRow] = field(default_factory=list)
    documentation: str = ""


@dataclass(frozen=True, slots=True)
class Shape:
    """What a sample line's structure fixes: its name and label names (a ``pod`` among them already
    renamed, our ``pod`` appended), and which label value, if any, is a bucket bound or quantile to
    canonicalise."""

    series: SeriesShape
    bound_index: int  # -1: none


# Shapes are pure functions of the line structure, so one cache serves every pod and thread; plain
# dict get/set are atomic under the GIL.
_shape_cache: dict[tuple[str, ...], Shape] = {}
_canonical_bounds: dict[str, str] = {}


def parse_exposition(text: str, pod: str, *, openmetrics: bool = False) -> dict[str, ParsedFamily]:
    """The ``dataflow_*`` families of one pod's body, each sample labelled ``pod=<pod>``.

    Raises :class:`ExpositionError` when any kept line is malformed: a pod is used whole or not at all.
    """
    parser = _PodParser(pod, openmetrics)
    try:
        parser.parse([line for line in text.split("\n") if line.startswith(_KEEP_LINE_PREFIXES)])
    except ExpositionError:
        raise
    except (ValueError, IndexError) as error:  # e.g. float("abc"), a line cut short
        raise ExpositionError(str(error)) from error
    return parser.finish()


class _PodParser:
    def __init__(self, pod: str, openmetrics: bool) -> None:
        self.pod = pod
        self.openmetrics = openmetrics
        self.families: dict[str, ParsedFamily] = {}
        self.owner: dict[str, ParsedFamily] = {}  # sample name -> its family
        self.helps: dict[str, str] = {}

    def parse(self, lines: list[str]) -> None:
        # Everything the loop touches is a local: it runs once per sample of every pod.
        shapes, canonical, owner, pod, openmetrics = (
            _shape_cache, _canonical_bounds, self.owner, self.pod, self.openmetrics)
        for line in lines:
            if line[0] == "#":
                self.metadata(line)
                continue
            if openmetrics or "\\" in line or '"' not in line:
                shape, values, value, timestamp = self._slow_sample(line)
            else:
                parts = line.split('"')
                if not len(parts) & 1:
                    raise ExpositionError(f"unbalanced quotes in {line!r}")
                structure = tuple(parts[:-1:2])
                shape = shapes.get(structure) or shape_of(structure)
                values = parts[1::2]
                tail = parts[-1]
                try:
                    if tail[:2] != "} ":
                        raise ValueError
                    value, timestamp = float(tail[2:]), None
                except ValueError:  # a timestamp, a trailing comma, blanks: the general path
                    value, timestamp = _text_value(_after_labels(tail))
            if shape.bound_index >= 0:
                raw = values[shape.bound_index]
                values[shape.bound_index] = canonical.get(raw) or canonical_bound(raw)
            values.append(pod)
            series = shape.series
            family = owner.get(series[0]) or self._untyped(series[0])
            family.samples.append((*values, series, value, timestamp))

    def metadata(self, line: str) -> None:
        fields = line.split(" ", 3)
        if len(fields) < 4 and fields[1] == "TYPE":
            raise ExpositionError(f"TYPE line without a type: {line!r}")
        name = fields[2]
        if not _METRIC_NAME.match(name):
            raise ExpositionError(f"invalid metric name in {line!r}")
        text = fields[3] if len(fields) == 4 else ""
        if fields[1] == "HELP":
            self.helps[name] = unescape_help(text, self.openmetrics)
        else:
            self.declare(name, text.strip(_BLANKS))

    def declare(self, exposed: str, kind: str) -> None:
        if kind not in (_OPENMETRICS_TYPES if self.openmetrics else _TEXT_TYPES):
            raise ExpositionError(f"unknown type {kind!r} for {exposed}")
        name = exposed
        if kind == "untyped":
            kind = "unknown"
        elif kind == "counter" and not self.openmetrics:
            # The text format names a counter family like its sample (``x_total``); prometheus_client
            # names it ``x`` and appends ``_total`` itself in both output formats. A text counter
            # without the suffix cannot be written back under its own name as a counter, so it
            # stays what Prometheus stores it as: an untyped series of that name.
            if exposed.endswith("_total"):
                name = exposed[:-6]
            else:
                kind = "unknown"
        existing = self.families.get(name)
        if existing is not None:
            if existing.type != kind:
                raise ExpositionError(f"{exposed} declared as {kind} after {existing.type}")
            return
        family = ParsedFamily(name, kind, exposed)
        for suffix in SAMPLE_SUFFIXES.get(kind, ("",)):
            owned = self.owner.setdefault(name + suffix, family)
            if owned is not family:
                raise ExpositionError(f"{name + suffix} belongs to {owned.name} and to {name}")
        self.families[name] = family

    def _untyped(self, name: str) -> ParsedFamily:
        """A sample no TYPE line claimed is an untyped family of its own name, as in Prometheus."""
        if name in self.families:
            raise ExpositionError(f"sample {name} does not fit its {self.families[name].type} family")
        family = self.families[name] = self.owner[name] = ParsedFamily(name, "unknown", name)
        return family

    def _slow_sample(self, line: str) -> tuple[Shape, list[str], float, float | None]:
        """Any sample line, escapes, blanks and OpenMetrics exemplars included."""
        match = _SLOW_NAME.match(line)
        if match is None:
            raise ExpositionError(f"no metric name in {line!r}")
        name, position = match.group(), match.end()
        keys: list[str] = []
        values: list[str] = []
        rest = line[position:]
        if rest.lstrip(_BLANKS)[:1] == "{":
            position = line.index("{", position) + 1
            while True:
                label = _SLOW_LABEL.match(line, position)
                if label is None:
                    break
                keys.append(label.group(1))
                values.append(_unescape_label(label.group(2)))
                position = label.end()
                if not label.group(3):
                    break
            close = _CLOSE_BRACE.match(line, position)
            if close is None:
                raise ExpositionError(f"malformed labels in {line!r}")
            rest = line[close.end():]
        shape = _make_shape(name, keys)
        value, timestamp = (_openmetrics_value if self.openmetrics else _text_value)(rest)
        return shape, values, value, timestamp

    def finish(self) -> dict[str, ParsedFamily]:
        drop_created(self.families)
        for family in self.families.values():
            family.documentation = self.helps.get(family.exposed_name, "")
        return self.families


class Typed(Protocol):
    @property
    def type(self) -> str: ...


TypedFamily = TypeVar("TypedFamily", bound=Typed)


def drop_created(families: dict[str, TypedFamily]) -> None:
    """Remove ``x_created`` series of counters, histograms and summaries ``x``: in the text format
    prometheus_client writes them as a separate gauge family after ``x``, in OpenMetrics as ``x``'s own
    samples (which no TYPE claims here, so they arrived as an untyped family). Either way the
    operator's output must not carry them: they multiply the series count for a value no dashboard
    uses. A ``_created`` gauge with no such ``x`` is an ordinary gauge and stays."""
    for name in [name for name in families if name.endswith("_created")]:
        base = families.get(name[:-8])
        if base is not None and base.type in _HAS_CREATED and families[name].type in ("gauge", "unknown"):
            del families[name]


def shape_of(structure: tuple[str, ...]) -> Shape:
    """Validate the even parts of a ``"``-split line (``name{k=``, ``,k=``, ...) once per shape."""
    head, brace, first = structure[0].partition("{")
    if not brace:
        raise ExpositionError(f"label values outside braces: {structure[0]!r}")
    keys = [_key_of(first, structure[0])]
    for part in structure[1:]:
        separated = part.strip(_BLANKS)
        if separated[:1] != ",":
            raise ExpositionError(f"expected ',' between labels, got {part!r}")
        keys.append(_key_of(separated[1:], part))
    shape = _make_shape(head.strip(_BLANKS), keys)
    if len(_shape_cache) >= _SHAPE_CACHE_LIMIT:  # bounded: a pod inventing label names cannot grow it
        _shape_cache.clear()
    _shape_cache[structure] = shape
    return shape


def _key_of(part: str, context: str) -> str:
    part = part.strip(_BLANKS)
    if part[-1:] != "=":
        raise ExpositionError(f"expected '=' after a label name in {context!r}")
    return part[:-1].rstrip(_BLANKS)


def _make_shape(name: str, keys: list[str]) -> Shape:
    if not _METRIC_NAME.match(name):
        raise ExpositionError(f"invalid metric name {name!r}")
    for key in keys:
        if not _LABEL_NAME.match(key):
            raise ExpositionError(f"invalid label name {key!r} on {name}")
    if len(set(keys)) != len(keys):
        raise ExpositionError(f"duplicate label name on {name}: {keys}")
    bound = "le" if name.endswith("_bucket") and "le" in keys else "quantile"
    if POD_LABEL in keys:
        exported = "exported_" + POD_LABEL
        while exported in keys:
            exported = "exported_" + exported
        keys[keys.index(POD_LABEL)] = exported
    return Shape((name, (*keys, POD_LABEL)), keys.index(bound) if bound in keys else -1)


def canonical_bound(raw: str) -> str:
    """``le``/``quantile`` as prometheus_client writes them (``1.0``, ``+Inf``): OpenMetrics requires
    that form, and Prometheus 3 normalises to it anyway. Unparsable values are left alone."""
    try:
        canonical: str = floatToGoString(float(raw))  # type: ignore[no-untyped-call]
    except ValueError:
        canonical = raw
    if len(_canonical_bounds) < _SHAPE_CACHE_LIMIT:
        _canonical_bounds[raw] = canonical
    return canonical


def _after_labels(tail: str) -> str:
    """What follows the last label value: optional ``,`` and blanks, ``}``, then the value."""
    tail = tail.lstrip(_BLANKS)
    if tail[:1] == ",":
        tail = tail[1:].lstrip(_BLANKS)
    if tail[:1] != "}":
        raise ExpositionError(f"expected '}}' after labels, got {tail!r}")
    return tail[1:]


def _text_value(rest: str) -> tuple[float, float | None]:
    """Value and optional timestamp (integer milliseconds) of the text format."""
    tokens = rest.split()
    if not rest[:1].isspace() or not 1 <= len(tokens) <= 2:
        raise ExpositionError(f"expected ' value [timestamp]', got {rest!r}")
    timestamp = int(tokens[1]) / 1000 if len(tokens) == 2 else None
    return float(tokens[0]), timestamp


def _openmetrics_value(rest: str) -> tuple[float, float | None]:
    """Value and optional timestamp (seconds) of OpenMetrics; an exemplar after `` # `` is dropped:
    the text format cannot carry it, and we asked the pod for the text format in the first place."""
    sample, _, _exemplar = rest.partition(" # ")
    tokens = sample.split(" ")
    if tokens[0] != "" or not 2 <= len(tokens) <= 3:
        raise ExpositionError(f"expected ' value [timestamp]', got {rest!r}")
    timestamp = float(tokens[2]) if len(tokens) == 3 else None
    return float(tokens[1]), timestamp


def _unescape_label(raw: str) -> str:
    if "\\" not in raw:
        return raw
    return _LABEL_ESCAPE.sub(_unescape_one, raw)


def _unescape_one(match: re.Match[str]) -> str:
    replacement = _LABEL_UNESCAPES.get(match.group(1))
    if replacement is None:
        raise ExpositionError(f"invalid escape sequence \\{match.group(1)} in a label value")
    return replacement


def unescape_help(text: str, openmetrics: bool) -> str:
    if "\\" not in text:
        return text
    # The text format escapes only backslash and newline in HELP; OpenMetrics also double quotes.
    escapes = {"\\": "\\", "n": "\n", '"': '"'} if openmetrics else {"\\": "\\", "n": "\n"}
    return _LABEL_ESCAPE.sub(lambda match: escapes.get(match.group(1), match.group(0)), text)
