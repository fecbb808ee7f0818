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

from confluent_kafka import KafkaError, KafkaException

from ...observability.repeats import hold_back_repeats
from ...pipeline.metrics import ConnectorMetrics
from .errors import KafkaClientError, error_type_of, from_exception

#: While a broker is down librdkafka logs, and reports through ``error_cb``, the same failure
#: hundreds of times a minute: identical lines are held back (and counted) on both loggers.
log = logging.getLogger(__name__)
#: The clients' ``logger``: librdkafka's own lines.
client_log = logging.getLogger("dataflow_operator.connectors.kafka.librdkafka")
hold_back_repeats(log, client_log)


class ConnectionMonitor:
    def __init__(self, metrics: ConnectorMetrics, operation: str, description: str) -> None:
        self._metrics = metrics
        self._operation = operation
        self._description = description
        self._lock = threading.Lock()
        self._connected = False
        self.fatal_error: KafkaError | None = None
        # The first time the brokers turned the client away (credentials, TLS verification): the
        # real reason behind a metadata request that only reports a transport failure.
        self.refusal: KafkaError | None = None

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
        if self.refusal is None and (error_type_of(error) == "auth_error" or error.code() == KafkaError._SSL):
            self.refusal = error
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

    def connect_failure(self, exc: KafkaException, brokers: str) -> KafkaClientError:
        """What a failed connect raises: the brokers' refusal when error_cb reported one (call after
        serving the client's queue), else the failed request's own error."""
        if self.refusal is not None:
            return KafkaClientError(self.refusal, f"Kafka brokers {brokers} refused the connection")
        return from_exception(exc, f"cannot reach Kafka brokers {brokers}")
