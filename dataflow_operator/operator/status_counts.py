"""``status.processedCount``, ``errorCount`` and ``lastProcessedTime`` from the processor series the
aggregator already scrapes (issue 17: ``kubectl get df`` shows them).

What the columns count, summed over a DataFlow's pods:

* ``processedCount`` — ``dataflow_messages_received_total``: every message the source handed to the
  pipeline, whatever became of it (written, filtered, routed or diverted);
* ``errorCount`` — ``dataflow_task_stage_errors_total`` of the stages a *message* fails in (a
  transformation or a sink write): each such message goes to the error sink once. A ``read`` error is
  an environmental failure, not a message, and an ``error_sink_write`` error is the same message
  failing a second time, so neither is counted.

Processor counters start from zero with every container, so the status is a tally, not a sum: each
pod's increase since it was last seen is added, and a counter lower than before (the container
restarted) counts from zero. The tally therefore only grows. When the operator itself starts, it
takes the larger of the status already written and the pods' current sums, so a restart of the
operator neither recounts nor goes backwards; increases that happened between its last write and
a restart of both a pod and the operator are the only ones it cannot see.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

PROCESSED_FAMILY = b"dataflow_messages_received_total"
STAGE_ERRORS_FAMILY = b"dataflow_task_stage_errors_total"
# Stages whose errors are not a message failing for the first time (see the module docstring).
UNCOUNTED_ERROR_STAGES = frozenset({b"read", b"error_sink_write"})

_BACKSLASH, _QUOTE, _CLOSE = ord("\\"), ord('"'), ord("}")
_STAGE_LABEL = re.compile(rb'(?:^|[{,\s])stage\s*=\s*"((?:[^"\\]|\\.)*)"')


@dataclass(frozen=True, slots=True)
class Counts:
    processed: int = 0
    errors: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.processed + other.processed, self.errors + other.errors)

    def __sub__(self, other: Counts) -> Counts:
        return Counts(self.processed - other.processed, self.errors - other.errors)

    def covers(self, other: Counts) -> bool:
        """Whether no counter went down since ``other`` (else the process behind them restarted)."""
        return self.processed >= other.processed and self.errors >= other.errors


def counts_in_exposition(text: bytes) -> Counts:
    """The two totals of one pod's ``/metrics`` body (Prometheus text or OpenMetrics), as bytes.

    Only the lines of the two families are looked at, found with ``bytes.find``: this runs on the
    aggregator's scrape path for every pod, next to bodies of a thousand other samples.
    """
    processed = sum(value for _, value in _samples(text, PROCESSED_FAMILY))
    errors = sum(value for labels, value in _samples(text, STAGE_ERRORS_FAMILY)
                 if _stage(labels) not in UNCOUNTED_ERROR_STAGES)
    return Counts(int(processed), int(errors))


def _samples(text: bytes, name: bytes) -> Iterable[tuple[bytes, float]]:
    """``(label text, value)`` of each sample line named exactly ``name``."""
    position = 0
    while (index := text.find(name, position)) != -1:
        end = text.find(b"\n", index)
        position = end = len(text) if end == -1 else end
        if index == 0 or text[index - 1:index] == b"\n":  # a sample line, not its ``# HELP``/``# TYPE``
            sample = _parse_line(text[index:end], name)
            if sample is not None:
                yield sample


def _parse_line(line: bytes, name: bytes) -> tuple[bytes, float] | None:
    rest = line[len(name):]
    labels = b""
    if rest.startswith(b"{"):
        close = _closing_brace(rest)
        if close == -1:
            return None
        labels, rest = rest[1:close], rest[close + 1:]
    elif not rest[:1].isspace():
        return None  # a longer name that only starts like this one
    fields = rest.split()
    if not fields:
        return None
    try:
        value = float(fields[0])
    except ValueError:
        return None
    # NaN, infinity or a negative total is no count; skip rather than poison the tally.
    return (labels, value) if math.isfinite(value) and value >= 0 else None


def _closing_brace(rest: bytes) -> int:
    """Index of the ``}`` closing the label set, skipping quoted values (which may hold ``}``)."""
    quoted = escaped = False
    for index, char in enumerate(rest):
        if escaped:
            escaped = False
        elif char == _BACKSLASH:
            escaped = quoted
        elif char == _QUOTE:
            quoted = not quoted
        elif char == _CLOSE and not quoted:
            return index
    return -1


def _stage(labels: bytes) -> bytes | None:
    match = _STAGE_LABEL.search(labels)
    return match.group(1) if match else None


class DataFlowTally:
    """The running totals of one DataFlow, fed with its pods' counts scrape after scrape."""

    def __init__(self, written: Counts) -> None:
        self.total = written
        self._last: dict[str, Counts] = {}
        self._seen = False

    def observe(self, pods: Mapping[str, Counts], live_pods: Iterable[str]) -> bool:
        """Add what each scraped pod counted since last seen; True when ``processed`` grew.

        ``live_pods`` are the pods that still exist (scraped or not): the last counts of a pod that
        merely failed this scrape are kept, those of a deleted pod are forgotten.
        """
        before = self.total
        if not self._seen:
            # First sight since the operator started: the status may already hold these counts.
            current = sum(pods.values(), Counts())
            self.total = Counts(max(before.processed, current.processed), max(before.errors, current.errors))
            self._seen = True
        else:
            for pod, counts in pods.items():
                last = self._last.get(pod)
                self.total += counts - last if last is not None and counts.covers(last) else counts
        self._last.update(pods)
        live = set(live_pods)
        for pod in [pod for pod in self._last if pod not in live]:
            del self._last[pod]
        return self.total.processed > before.processed
