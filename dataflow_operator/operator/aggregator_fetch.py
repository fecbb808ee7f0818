"""Fetching one processor pod's ``/metrics`` body within a shared deadline, a size limit per pod and
a memory budget per scrape.

Every way a pod can fail ends in :class:`ScrapeError` with one ``reason`` of :data:`SCRAPE_ERROR_REASONS`,
the values of the aggregator's ``dataflow_aggregator_pod_scrape_errors_total{reason}``.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter

SCRAPE_ERROR_REASONS = ("timeout", "connection_error", "http_status", "parse_error", "too_large")

# Ask for the classic text format: it is what the fast parser is built for, and what every
# prometheus_client and Go client serves when asked.
ACCEPT = "text/plain;version=0.0.4;q=1,*/*;q=0.1"
_OPENMETRICS_TYPE = "application/openmetrics-text"
_CHUNK = 256 * 1024
# urllib3 keeps one connection pool per host (pod), least recently used first out. Enough pools to
# keep a connection to every pod of a large cluster alive between scrapes, so a scrape costs no TCP
# handshakes; each pool keeps as many connections as a worker pool can use on one host at once.
_HOST_POOLS = 1024


class ScrapeError(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Body:
    data: bytes  # decoded (gunzipped) and known to be UTF-8
    openmetrics: bool

    @property
    def text(self) -> str:
        return self.data.decode("utf-8")


class ScrapeBudget:
    """The bytes of pod bodies one scrape may hold at once, shared by its worker threads.

    Every decoded chunk is taken from the budget as it is read, so the pods of a scrape together never
    hold more than ``limit`` bytes, whatever they serve: the pod whose chunk does not fit is left out
    (``too_large``), and only its own bytes are given back. Without it, the memory of a scrape grows
    with the number of pods times their body size, and a large cluster gets the operator OOM-killed.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._held = 0
        self._lock = threading.Lock()

    @property
    def held(self) -> int:
        return self._held

    def take(self, size: int) -> bool:
        with self._lock:
            if self._held + size > self.limit:
                return False
            self._held += size
            return True

    def give_back(self, size: int) -> None:
        with self._lock:
            self._held -= size


class MetricsFetcher:
    """One keep-alive ``requests.Session`` shared by all worker threads (urllib3's pools are
    thread-safe), used only for pod scrapes."""

    def __init__(self, *, workers: int, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._session = requests.Session()
        # No proxies, netrc or CA bundles from the environment: an HTTP_PROXY meant for the API server
        # must not route pod-IP scrapes, and reading the environment on every request costs time.
        self._session.trust_env = False
        self._session.headers.update({"Accept": ACCEPT, "Accept-Encoding": "gzip"})
        adapter = HTTPAdapter(pool_connections=_HOST_POOLS, pool_maxsize=workers, max_retries=0)
        self._session.mount("http://", adapter)

    def close(self) -> None:
        self._session.close()

    def fetch(self, url: str, deadline: float, budget: ScrapeBudget) -> Body:
        """The decoded body of ``url``, read before ``deadline`` (a ``time.monotonic()`` value) and
        taken from ``budget``, which keeps it (the caller gives back what it does not keep).

        Connect and read timeouts are the time left, so a pod that accepts and never answers holds
        its worker no longer than the deadline. A pod that trickles bytes is cut off at the first
        chunk that arrives late, which bounds it by the same read timeout past the deadline.
        """
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ScrapeError("timeout", "deadline passed before the request started")
        try:
            response = self._session.get(url, stream=True, timeout=(remaining, remaining))
        except requests.Timeout as error:
            raise ScrapeError("timeout", str(error)) from error
        except requests.RequestException as error:
            raise ScrapeError("connection_error", str(error)) from error
        with response:
            if response.status_code != 200:
                raise ScrapeError("http_status", f"HTTP {response.status_code}")
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and "Content-Encoding" not in response.headers and \
                    int(declared) > self.max_bytes:
                raise ScrapeError("too_large", f"Content-Length {declared} > {self.max_bytes}")
            body = self._read(response, deadline, budget)
            openmetrics = response.headers.get("Content-Type", "").startswith(_OPENMETRICS_TYPE)
        if not body.isascii():  # the common case costs one scan; anything else is checked by decoding
            try:
                body.decode("utf-8")
            except UnicodeDecodeError as error:
                budget.give_back(len(body))
                raise ScrapeError("parse_error", f"body is not UTF-8: {error}") from error
        return Body(body, openmetrics)

    def _read(self, response: requests.Response, deadline: float, budget: ScrapeBudget) -> bytes:
        # urllib3 directly rather than iter_content: requests turns a read timeout into a
        # ConnectionError there, and read1 returns after one socket read, so the deadline and the
        # size limit (on the *decoded* size: a gzip bomb is too large too) are checked per chunk.
        raw = response.raw
        chunks: list[bytes] = []
        size = 0
        try:
            while chunk := raw.read1(_CHUNK, decode_content=True):
                if size + len(chunk) > self.max_bytes:
                    raise ScrapeError("too_large", f"body exceeds {self.max_bytes} bytes")
                if not budget.take(len(chunk)):
                    raise ScrapeError("too_large", f"the scrape's memory budget of {budget.limit} bytes is "
                                                   f"spent ({size} bytes of this pod read)")
                size += len(chunk)
                chunks.append(chunk)
                if time.monotonic() > deadline:
                    raise ScrapeError("timeout", f"body still arriving at the deadline ({size} bytes)")
            return b"".join(chunks)
        except BaseException as error:
            budget.give_back(size)  # a pod left out holds nothing
            if isinstance(error, urllib3.exceptions.ReadTimeoutError):
                raise ScrapeError("timeout", str(error)) from error
            if isinstance(error, urllib3.exceptions.DecodeError):
                raise ScrapeError("parse_error", f"undecodable body: {error}") from error
            if isinstance(error, urllib3.exceptions.HTTPError | OSError):
                raise ScrapeError("connection_error", str(error)) from error
            raise
