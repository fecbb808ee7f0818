"""The operator's ``/metrics`` view of every processor pod: a ``prometheus_client`` Collector that, on
each collect, scrapes the pods concurrently within one deadline and re-emits their ``dataflow_*``
families merged, each series labelled with its pod (``DESIGN.md`` decision 2).

Wiring, in the operator::

    aggregator = ProcessorMetricsAggregator(
        pods=lambda: select_targets(pod_cache.list(), dataflow_cache.keys()),
        is_leader=elector.is_leader, timeout=args.aggregation_timeout)
    server = HttpServer(address, metrics_app=operator_metrics_app(registry, aggregator), probes={})
    ...
    aggregator.close()

Two ways out of one scrape: :meth:`collect` (the Collector protocol: ``Metric`` objects for any
prometheus_client exposition) and :meth:`expose` (the same families as bytes, kept per pod as served
and written out family by family, which the operator's ``/metrics`` uses: at 1 000 pods, building a
million ``Sample`` objects per request costs seconds and hundreds of megabytes).

Its own health series come out of the same scrape, leader or not:
``dataflow_aggregator_scrape_duration_seconds``, ``dataflow_aggregator_pods_scraped`` and
``dataflow_aggregator_pod_scrape_errors_total{namespace,name,pod,reason}``.

Memory is bounded by design: a scrape holds at most ``budget_bytes`` of pod bodies (pods past it are
left out as ``too_large``), and scrapes run one at a time, the next waiting within its own deadline.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import TypeVar

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.core import Metric

from .aggregator_exposition import processor_exposition
from .aggregator_fetch import SCRAPE_ERROR_REASONS, Body, MetricsFetcher, ScrapeBudget, ScrapeError
from .aggregator_index import IndexedFamily, RawFamily, index_pod
from .aggregator_merge import FamilyGroup, group_families, merge_families
from .aggregator_parse import ExpositionError, ParsedFamily, parse_exposition
from .aggregator_targets import PodTarget, select_targets
from .status_counts import Counts, counts_in_exposition

__all__ = ["SCRAPE_ERROR_REASONS", "PodTarget", "ProcessorExposition", "ProcessorMetricsAggregator",
           "select_targets"]

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
#: Bytes of pod bodies one scrape may hold: about 1 500 pods of 1 000 samples (``docs/monitoring.md``).
DEFAULT_BUDGET_BYTES = 192 * 1024 * 1024

PodResult = TypeVar("PodResult")
# Told after every scrape which pods answered with which status counts, and which pods were asked
# (operator/status_count_publisher.py).
ScrapeObserver = Callable[[list[tuple[PodTarget, Counts]], list[PodTarget]], None]


class ProcessorExposition:
    """One scrape's result for the operator's ``/metrics``: the aggregator's own families (already
    counting this scrape) and the processors' families as bytes. Holds the aggregator's scrape slot
    until :meth:`close`, so that scrapes never hold more than one budget between them."""

    def __init__(self, health: list[Metric], groups: list[FamilyGroup[IndexedFamily]],
                 release: Callable[[], None]) -> None:
        self.health = health
        self._groups = groups
        self._release: Callable[[], None] | None = release

    def pieces(self, *, openmetrics: bool) -> Iterator[bytes]:
        """The processors' families in the chosen format; once only, since the bytes are released as
        they are written."""
        return processor_exposition(self._groups, openmetrics=openmetrics)

    def close(self) -> None:
        self._groups = []
        release, self._release = self._release, None
        if release is not None:
            release()


class ProcessorMetricsAggregator:
    """Collector of the processor pods' ``dataflow_*`` metrics.

    ``pods`` returns the pods to scrape now (see :func:`select_targets`); it is called once per
    scrape, from the watch cache, never the API. Only while ``is_leader()`` are pods scraped, so
    that several operator replicas do not export every series several times.
    """

    def __init__(self, pods: Callable[[], Iterable[PodTarget]], is_leader: Callable[[], bool], *,
                 timeout: float = 5.0, max_bytes: int = DEFAULT_MAX_BYTES,
                 budget_bytes: int = DEFAULT_BUDGET_BYTES, workers: int = 32,
                 on_scraped: ScrapeObserver | None = None) -> None:
        self.timeout = timeout
        self.budget_bytes = budget_bytes
        self._on_scraped = on_scraped
        self._pods = pods
        self._is_leader = is_leader
        self._fetcher = MetricsFetcher(max_bytes=max_bytes)
        # Created once and reused: a pool per scrape would start threads on every /metrics request.
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="metrics-aggregator")
        self._slot = threading.Lock()  # one scrape at a time: each may hold a whole budget
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
        deadline = time.monotonic() + self.timeout
        taken = self._slot.acquire(timeout=self.timeout)
        try:
            scraped = self._scrape(deadline, _parse)
            families, left_out = merge_families(families for _, families in scraped)
        finally:
            if taken:
                self._slot.release()
        _log_left_out(left_out)
        yield from self._health()
        for family in families:  # lazily: the exposition writes one family before the next is built
            yield family.to_metric()

    def expose(self) -> ProcessorExposition:
        """Scrape now for a byte-level exposition; the caller must close the result."""
        deadline = time.monotonic() + self.timeout
        # A scrape still being written out holds the slot; waiting for it spends this scrape's own
        # deadline, so a request never takes longer than its timeout because another one was slow.
        taken = self._slot.acquire(timeout=self.timeout)
        try:
            scraped = self._scrape(deadline, _index)
            groups, left_out = group_families((target.name, families) for target, families in scraped)
        except BaseException:
            if taken:
                self._slot.release()
            raise
        _log_left_out(left_out)
        return ProcessorExposition(list(self._health()), groups, self._slot.release if taken else _nothing)

    def refresh(self) -> None:
        """Scrape for the observer alone, when nothing else scrapes (no Prometheus): the bodies are
        only counted, and the request metrics are left as the last /metrics request set them."""
        deadline = time.monotonic() + self.timeout
        taken = self._slot.acquire(timeout=self.timeout)
        try:
            self._scrape(deadline, _count_only, request=False)
        finally:
            if taken:
                self._slot.release()

    def close(self) -> None:
        """Stop the workers (a fetch in progress ends by its own deadline) and close connections."""
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._fetcher.close()

    def _health(self) -> Iterator[Metric]:
        for metric in (self._duration, self._pods_scraped, self._errors):
            yield from metric.collect()

    def _scrape(self, deadline: float, read: Callable[[PodTarget, Body, ScrapeBudget], PodResult], *,
                request: bool = True) -> list[tuple[PodTarget, PodResult]]:
        """``read`` applied to the body of every pod that answered in time, in target order.
        ``request``: for a /metrics request, whose duration and pod count the health series show."""
        if not self._is_leader():
            if request:
                self._pods_scraped.set(0)
            return []
        started = time.monotonic()
        try:
            targets = list(self._pods())
        except Exception:
            # The operator's own series must survive a broken pod listing; this one scrape has no pods.
            log.exception("listing processor pods to scrape failed")
            targets = []
        budget = ScrapeBudget(self.budget_bytes)
        futures = [self._executor.submit(self._scrape_pod, target, deadline, budget, read) for target in targets]
        if futures:
            wait(futures, timeout=max(0.0, deadline - time.monotonic()))
        scraped = []
        counts = []
        for target, future in zip(targets, futures, strict=True):
            reason = _failure_reason(target, future)
            if reason is None:
                result, pod_counts = future.result()
                scraped.append((target, result))
                counts.append((target, pod_counts))
            else:
                self._count_error(target, reason)
        self._forget_errors_of_gone_pods(targets)
        self._fetcher.retain(targets)
        if self._on_scraped is not None:
            self._on_scraped(counts, targets)
        if request:
            self._pods_scraped.set(len(scraped))
            self._duration.observe(time.monotonic() - started)
        return scraped

    def _scrape_pod(self, target: PodTarget, deadline: float, budget: ScrapeBudget,
                    read: Callable[[PodTarget, Body, ScrapeBudget], PodResult]) -> tuple[PodResult, Counts]:
        body = self._fetcher.fetch(target, deadline, budget)
        try:
            # Counted before ``read``, which may hand the body's bytes back to the budget.
            counts = counts_in_exposition(body.data)
            return read(target, body, budget), counts
        except ExpositionError as error:
            budget.give_back(len(body.data))
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


def _parse(target: PodTarget, body: Body, budget: ScrapeBudget) -> dict[str, ParsedFamily]:
    return parse_exposition(body.text, target.name, openmetrics=body.openmetrics)


def _index(target: PodTarget, body: Body, budget: ScrapeBudget) -> dict[str, IndexedFamily]:
    families = index_pod(body.data, target.name, openmetrics=body.openmetrics)
    # The budget keeps what the families hold: the lines kept as bytes, or the whole body's worth
    # for families the full parser read (its rows take more room than the text, never less).
    if all(isinstance(family, RawFamily) for family in families.values()):
        budget.give_back(len(body.data) - sum(len(family.lines) for family in families.values()
                                              if isinstance(family, RawFamily)))
    return families


def _count_only(target: PodTarget, body: Body, budget: ScrapeBudget) -> None:
    budget.give_back(len(body.data))


def _log_left_out(left_out: list[str]) -> None:
    if left_out:
        log.warning("left out processor metric families that clash with the operator's own or with "
                    "another pod's type: %s", sorted(set(left_out)))


def _nothing() -> None:
    pass


def _failure_reason(target: PodTarget, future: Future[tuple[PodResult, Counts]]) -> str | None:
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
