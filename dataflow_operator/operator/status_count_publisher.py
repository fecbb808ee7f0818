"""Writes the DataFlows' tallied counts (:mod:`.status_counts`) into their ``status``: at most once per
DataFlow per interval, only when a count changed, and only from the leader.

The counts come from the aggregator's scrapes, which Prometheus drives. Without a Prometheus (or
while it is down) nothing would scrape, so when no scrape happened for an interval the publisher
asks for one itself: the columns stay current either way.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..pipeline.timetext import rfc3339_utc
from .aggregator_targets import PodTarget
from .kube import is_status
from .status_counts import Counts, DataFlowTally

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = 15.0

Key = tuple[str, str]  # (namespace, DataFlow name)


@dataclass(slots=True)
class _Entry:
    tally: DataFlowTally
    published: Counts | None = None
    last_processed: datetime | None = None
    last_attempt: float = float("-inf")


def counts_in_status(dataflow: Mapping[str, Any] | None) -> Counts:
    """What a DataFlow's status already says, so that the tally starts from it."""
    status = (dataflow or {}).get("status") or {}

    def count(field: str) -> int:
        value = status.get(field)
        return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0

    return Counts(count("processedCount"), count("errorCount"))


class StatusCountPublisher:
    """``observe`` is called by the aggregator after every scrape; ``run`` writes what is due."""

    def __init__(self, *, patch_status: Callable[[str, str, dict[str, Any]], object],
                 dataflow: Callable[[Key], Mapping[str, Any] | None],
                 dataflow_keys: Callable[[], Collection[Key]], is_leader: Callable[[], bool],
                 refresh: Callable[[], None], interval: float = DEFAULT_INTERVAL,
                 clock: Callable[[], float] = time.monotonic,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.interval = interval
        self._patch_status = patch_status
        self._dataflow = dataflow
        self._dataflow_keys = dataflow_keys
        self._is_leader = is_leader
        self._refresh = refresh
        self._clock = clock
        self._now = now
        self._entries: dict[Key, _Entry] = {}
        self._last_observed = float("-inf")
        self._lock = threading.Lock()

    def observe(self, scraped: Iterable[tuple[PodTarget, Counts]], targets: Iterable[PodTarget]) -> None:
        """One scrape's counts: ``scraped`` are the pods that answered, ``targets`` all pods asked."""
        pods: dict[Key, dict[str, Counts]] = {}
        live: dict[Key, list[str]] = {}
        for target in targets:
            live.setdefault((target.namespace, target.dataflow), []).append(target.name)
        for target, counts in scraped:
            pods.setdefault((target.namespace, target.dataflow), {})[target.name] = counts
        now = self._now()
        with self._lock:
            self._last_observed = self._clock()
            for key, counts_by_pod in pods.items():
                entry = self._entries.get(key)
                if entry is None:
                    entry = self._entries[key] = _Entry(DataFlowTally(counts_in_status(self._dataflow(key))))
                if entry.tally.observe(counts_by_pod, live.get(key, ())):
                    entry.last_processed = now

    def publish_due(self) -> None:
        """Write every DataFlow whose counts changed and whose last write is an interval old."""
        if not self._is_leader():
            return
        if self._clock() - self._last_observed >= self.interval:
            self._refresh()  # no scrape for an interval: nothing would ever change otherwise
        existing = set(self._dataflow_keys())
        with self._lock:
            for key in [key for key in self._entries if key not in existing]:
                del self._entries[key]  # a deleted DataFlow
            due = [(key, entry) for key, entry in self._entries.items()
                   if entry.tally.total != entry.published
                   and self._clock() - entry.last_attempt >= self.interval]
            for _, entry in due:
                entry.last_attempt = self._clock()
        for key, entry in due:
            self._publish(key, entry)

    def _publish(self, key: Key, entry: _Entry) -> None:
        total = entry.tally.total
        status: dict[str, Any] = {"processedCount": total.processed, "errorCount": total.errors}
        if entry.last_processed is not None:
            status["lastProcessedTime"] = rfc3339_utc(entry.last_processed)
        namespace, name = key
        try:
            # A merge patch without resourceVersion: these three fields are written by no one else, so
            # there is nothing to conflict with (the reconciler's patches leave them alone).
            self._patch_status(namespace, name, {"status": status})
        except Exception as exc:
            if is_status(exc, 404):
                return  # deleted meanwhile; the entry goes with the next publish
            log.warning("writing the processed/error counts of DataFlow %s/%s failed; retrying in %.0fs",
                        namespace, name, self.interval, extra={"error": str(exc)})
            return
        entry.published = total

    def run(self, stop: threading.Event) -> None:
        """The publisher thread: checks once a second (the interval bounds the writes, not this)."""
        while not stop.wait(min(1.0, self.interval)):
            try:
                self.publish_due()
            except Exception:
                log.exception("publishing DataFlow status counts failed")
