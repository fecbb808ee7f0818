"""The operator's ``/metrics`` view of every processor pod: a ``prometheus_client`` Collector that, on
each collect, scrapes the pods concurrently within one deadline and re-emits their ``dataflow_*``
families merged, each series labelled with its pod (``DESIGN.md`` decision 2).

Wiring, in the operator::

    aggregator = ProcessorMetricsAggregator(
        pods=lambda: select_targets(pod_cache.list(), dataflow_cache.keys()),
        is_leader=elector.is_leader, timeout=args.aggregation_timeout)
    registry.register(aggregator)
    ...
    aggregator.close()

Its own health series come out of the same collect, leader or not:
``dataflow_aggregator_scrape_duration_seconds``, ``dataflow_aggregator_pods_scraped`` and
``dataflow_aggregator_pod_scrape_errors_total{namespace,name,pod,reason}``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.core import Metric

from .aggregator_fetch import SCRAPE_ERROR_REASONS, MetricsFetcher, ScrapeError
from .aggregator_merge import MergedFamily, merge_families
from .aggregator_parse import ExpositionError, ParsedFamily, parse_exposition
from .aggregator_targets import PodTarget, select_targets
from .status_counts import Counts, counts_in_exposition

__all__ = ["SCRAPE_ERROR_REASONS", "PodTarget", "ProcessorMetricsAggregator", "select_targets"]

log = logging.getLogger(__name__)

# Told after every scrape which pods answered with which status counts, and which pods were asked.
ScrapeObserver = Callable[[list[tuple[PodTarget, Counts]], list[PodTarget]], None]

DEFAULT_MAX_BYTES = 10 * 1024 * 1024


class ProcessorMetricsAggregator:
    """Collector of the processor pods' ``dataflow_*`` metrics.

    ``pods`` returns the pods to scrape now (see :func:`select_targets`); it is called once per
    collect, from the watch cache, never the API. Only while ``is_leader()`` are pods scraped, so
    that several operator replicas do not export every series several times.
    """

    def __init__(self, pods: Callable[[], Iterable[PodTarget]], is_leader: Callable[[], bool], *,
                 timeout: float = 5.0, max_bytes: int = DEFAULT_MAX_BYTES, workers: int = 32,
                 on_scraped: ScrapeObserver | None = None) -> None:
        self.timeout = timeout
        self._on_scraped = on_scraped
        self._pods = pods
        self._is_leader = is_leader
        self._fetcher = MetricsFetcher(workers=workers, max_bytes=max_bytes)
        # Created once and reused: a pool per scrape would start threads on every /metrics request.
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="metrics-aggregator")
        self._duration = Histogram(
            "dataflow_aggregator_scrape_duration_seconds",
            "Time to scrape and merge the processor pods' metrics for one /metrics request",
            registry=None)
        self._pods_scraped = Gauge(
            "dataflow_aggregator_pods_scraped",
            "Processor pods whose metrics the last /metrics request included", registry=None)
        self._errors = Counter(
            "dataflow_aggregator_pod_scrape_errors",
            "Processor pods left out of a /metrics request, by reason",
            ["namespace", "name", "pod", "reason"], registry=None)
        self._error_series: set[tuple[str, str, str, str]] = set()
        self._error_lock = threading.Lock()

    def describe(self) -> Iterator[Metric]:
        """The aggregator's own families, so a registry refuses a second aggregator. The processor
        families are not described: they are only known by scraping."""
        for metric in (self._duration, self._pods_scraped, self._errors):
            yield from metric.describe()

    def collect(self) -> Iterator[Metric]:
        families: list[MergedFamily] = []
        if self._is_leader():
            families = self._scrape()
        else:
            self._pods_scraped.set(0)
        for metric in (self._duration, self._pods_scraped, self._errors):
            yield from metric.collect()
        for family in families:  # lazily: the exposition writes one family before the next is built
            yield family.to_metric()

    def refresh(self) -> None:
        """Scrape without a /metrics request, for the observer alone (when nothing else scrapes)."""
        if self._is_leader():
            self._scrape()

    def close(self) -> None:
        """Stop the workers (a fetch in progress ends by its own deadline) and close connections."""
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._fetcher.close()

    def _scrape(self) -> list[MergedFamily]:
        started = time.monotonic()
        deadline = started + self.timeout
        try:
            targets = list(self._pods())
        except Exception:
            # The operator's own series must survive a broken pod listing; this one scrape has no pods.
            log.exception("listing processor pods to scrape failed")
            targets = []
        futures = [self._executor.submit(self._scrape_pod, target, deadline) for target in targets]
        if futures:
            wait(futures, timeout=max(0.0, deadline - time.monotonic()))
        scraped = []
        counts = []
        for target, future in zip(targets, futures, strict=True):
            reason = _failure_reason(target, future)
            if reason is None:
                pod_families, pod_counts = future.result()
                scraped.append(pod_families)
                counts.append((target, pod_counts))
            else:
                self._count_error(target, reason)
        self._forget_errors_of_gone_pods(targets)
        if self._on_scraped is not None:
            self._on_scraped(counts, targets)
        families, left_out = merge_families(scraped)
        if left_out:
            log.warning("left out processor metric families that clash with the operator's own or with "
                        "another pod's type: %s", sorted(set(left_out)))
        self._pods_scraped.set(len(scraped))
        self._duration.observe(time.monotonic() - started)
        return families

    def _scrape_pod(self, target: PodTarget, deadline: float) -> tuple[dict[str, ParsedFamily], Counts]:
        body = self._fetcher.fetch(target.url, deadline)
        try:
            return (parse_exposition(body.text, target.name, openmetrics=body.openmetrics),
                    counts_in_exposition(body.text))
        except ExpositionError as error:
            raise ScrapeError("parse_error", str(error)) from error

    def _count_error(self, target: PodTarget, reason: str) -> None:
        series = (target.namespace, target.dataflow, target.name, reason)
        with self._error_lock:
            self._error_series.add(series)
            self._errors.labels(*series).inc()

    def _forget_errors_of_gone_pods(self, targets: list[PodTarget]) -> None:
        """Drop the error series of pods no longer scraped: pods come and go with every rollout, and
        their series would otherwise accumulate for the operator's lifetime."""
        current = {(target.namespace, target.dataflow, target.name) for target in targets}
        with self._error_lock:
            gone = {series for series in self._error_series if series[:3] not in current}
            for series in gone:
                self._errors.remove(*series)
            self._error_series -= gone


def _failure_reason(target: PodTarget, future: Future[tuple[dict[str, ParsedFamily], Counts]]) -> str | None:
    """Why ``target`` is left out of this scrape, or None when its families are in."""
    if not future.done():
        # Late: not started yet (cancelled here) or still running (it stops by the same deadline).
        future.cancel()
        log.debug("processor pod %s/%s: no answer by the deadline", target.namespace, target.name)
        return "timeout"
    if future.cancelled():  # by close() during the scrape
        return "timeout"
    error = future.exception()
    if error is None:
        return None
    if isinstance(error, ScrapeError):
        log.debug("processor pod %s/%s left out: %s", target.namespace, target.name, error)
        return error.reason
    # A bug, not the pod's fault; still only this pod is lost, never the whole /metrics response.
    log.error("processor pod %s/%s: unexpected error", target.namespace, target.name, exc_info=error)
    return "parse_error"
