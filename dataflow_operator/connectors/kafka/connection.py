"""Cluster connectivity of one librdkafka client, as the ``connection_status`` gauge and error counts.

librdkafka reports trouble through ``error_cb`` (``_TRANSPORT`` when a connection drops,
``_ALL_BROKERS_DOWN`` when none is left) but never says "connected again"; its periodic statistics
do, through each broker's ``state``. Both callbacks run in whichever thread serves the client's
queue (the reader or the writer), so the state here is guarded by a lock.
"""

from __future__ import annotations

import json
import logging
import threading

from confluent_kafka import KafkaError

from ...pipeline.metrics import ConnectorMetrics
from .errors import error_type_of

log = logging.getLogger(__name__)


class ConnectionMonitor:
    def __init__(self, metrics: ConnectorMetrics, operation: str, description: str) -> None:
        self._metrics = metrics
        self._operation = operation
        self._description = description
        self._lock = threading.Lock()
        self._connected = False
        self.fatal_error: KafkaError | None = None

    @property
    def connected(self) -> bool:
        return self._connected

    def set_connected(self, connected: bool) -> None:
        with self._lock:
            changed = connected != self._connected
            self._connected = connected
            self._metrics.set_connected(connected)
        if changed:
            log.info("%s %s", self._description, "connected to the cluster" if connected else "disconnected")

    def on_error(self, error: KafkaError) -> None:
        """``error_cb``: counted on this connector's operation; all brokers down means disconnected."""
        self._metrics.error(self._operation, error_type_of(error))
        if error.fatal():
            self.fatal_error = error
        log.warning("%s: %s (%s)", self._description, error.str(), error.name())
        if error.code() == KafkaError._ALL_BROKERS_DOWN:
            self.set_connected(False)

    def on_stats(self, stats_json: str) -> None:
        """``stats_cb``: connected when at least one real broker connection is up."""
        try:
            brokers = json.loads(stats_json).get("brokers", {})
        except ValueError:
            return
        up = any(broker.get("state") == "UP" and broker.get("nodeid", -1) >= 0
                 for broker in brokers.values())
        self.set_connected(up)
