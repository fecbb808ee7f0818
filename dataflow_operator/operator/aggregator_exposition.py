"""The processors' merged families as exposition bytes, written the way prometheus_client writes them
(text format 0.0.4 or OpenMetrics 1.0), family after family, in pieces of about :data:`PIECE` bytes.

A family kept as bytes (:class:`.aggregator_index.RawFamily`) costs one C-level ``replace`` per pod: its
lines are already valid in both formats, and each gets the pod label after its only ``{``. Families
the full parser read (``ParsedFamily`` rows: a pod whose body was not in prometheus_client's layout, or
answered OpenMetrics) are written line by line as prometheus_client would, and the types only
OpenMetrics has (info, stateset, gaugehistogram) by prometheus_client itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prometheus_client import exposition as text_exposition
from prometheus_client.core import Metric
from prometheus_client.openmetrics import exposition as openmetrics_exposition
from prometheus_client.utils import floatToGoString

from .aggregator_index import IndexedFamily, RawFamily, pod_label_opening
from .aggregator_merge import FamilyGroup, MergedFamily
from .aggregator_parse import SampleRow

#: Bytes per piece handed to the response: large enough that per-piece costs (a gzip call, a socket
#: write) vanish, small enough that the whole response is never one object in memory.
PIECE = 1 << 20
OPENMETRICS_EOF = b"# EOF\n"

# Types whose text-format family is its OpenMetrics family with a different header (the others are
# reshaped by prometheus_client: an info becomes a ``_info`` gauge, and so on).
_PLAIN_TYPES = frozenset({"counter", "gauge", "histogram", "summary", "unknown"})


def processor_exposition(groups: list[FamilyGroup[IndexedFamily]], *, openmetrics: bool) -> Iterator[bytes]:
    """The groups' exposition, consuming them: each group's parts are released once written."""
    openings: dict[str, bytes] = {}
    pending: list[bytes] = []
    size = 0
    for group in groups:
        for part in _family(group, openmetrics, openings):
            pending.append(part)
            size += len(part)
            if size >= PIECE:
                yield b"".join(pending)
                pending.clear()
                size = 0
        group.parts.clear()
    if pending:
        yield b"".join(pending)


def _family(group: FamilyGroup[IndexedFamily], openmetrics: bool, openings: dict[str, bytes]) -> Iterator[bytes]:
    if group.type not in _PLAIN_TYPES:
        yield _by_prometheus_client(group, openmetrics)
        return
    yield _header(group, openmetrics)
    for pod, family in group.parts:
        if isinstance(family, RawFamily):
            opening = openings.get(pod)
            if opening is None:
                opening = openings[pod] = pod_label_opening(pod)
            yield family.lines.replace(b"{", opening)
        else:
            yield _sample_lines(family.samples, openmetrics)


def _header(group: FamilyGroup[IndexedFamily], openmetrics: bool) -> bytes:
    """HELP and TYPE exactly as prometheus_client's two expositions write them."""
    documentation = group.documentation.replace("\\", r"\\").replace("\n", r"\n")
    if openmetrics:
        documentation = documentation.replace('"', r"\"")
        return f"# HELP {group.name} {documentation}\n# TYPE {group.name} {group.type}\n".encode()
    name = group.name + "_total" if group.type == "counter" else group.name
    kind = "untyped" if group.type == "unknown" else group.type
    return f"# HELP {name} {documentation}\n# TYPE {name} {kind}\n".encode()


def _sample_lines(rows: Iterable[SampleRow], openmetrics: bool) -> bytes:
    lines = []
    for row in rows:
        name, keys = row[-3]
        labels = ",".join(f'{key}="{_escape(value)}"' for key, value in zip(keys, row, strict=False))
        timestamp = row[-1]
        if timestamp is None:
            stamp = ""
        elif openmetrics:
            stamp = f" {timestamp}"  # seconds, as prometheus_client writes them
        else:
            stamp = f" {int(float(timestamp) * 1000):d}"  # milliseconds
        lines.append(f"{name}{{{labels}}} {floatToGoString(row[-2])}{stamp}\n")  # type: ignore[no-untyped-call]
    return "".join(lines).encode()


def _escape(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _by_prometheus_client(group: FamilyGroup[IndexedFamily], openmetrics: bool) -> bytes:
    """A family of a type only OpenMetrics has: every part was read by the full parser, since the text
    format has no such type and a family's parts share its type."""
    rows = [row for _, family in group.parts if not isinstance(family, RawFamily) for row in family.samples]
    metric = MergedFamily(group.name, group.type, group.documentation, rows).to_metric()
    if openmetrics:
        output: bytes = openmetrics_exposition.generate_latest(_Single(metric))  # type: ignore[no-untyped-call]
        return output.removesuffix(OPENMETRICS_EOF)
    return text_exposition.generate_latest(_Single(metric))


class _Single:
    def __init__(self, metric: Metric) -> None:
        self._metric = metric

    def collect(self) -> list[Metric]:
        return [self._metric]
