"""Kubernetes Events for DataFlows, aggregated like client-go's event correlator.

The same (involved object, type, reason, message) seen again patches the existing Event's ``count``
and ``lastTimestamp`` instead of creating another, so a DataFlow stuck in an error that is retried
with backoff does not flood the namespace. Recording never fails a reconcile: an Event is
best-effort, and a failure to write one is logged.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from ..observability.redaction import scrub
from ..pipeline.timetext import rfc3339_utc

log = logging.getLogger(__name__)

NORMAL, WARNING = "Normal", "Warning"
COMPONENT = "dataflow-operator"
MAX_MESSAGE = 1024
CACHE_SIZE = 4096


class EventSink(Protocol):
    def create_event(self, namespace: str, body: dict[str, Any]) -> None: ...

    def patch_event(self, namespace: str, name: str, body: dict[str, Any]) -> bool:
        """True when patched; False when the Event no longer exists."""


@dataclass(frozen=True, slots=True)
class EventKey:
    namespace: str
    kind: str
    name: str
    uid: str
    type: str
    reason: str
    message: str


@dataclass(slots=True)
class _Seen:
    event_name: str
    count: int


def involved_object(obj: Mapping[str, Any]) -> dict[str, str]:
    metadata = obj.get("metadata") or {}
    return {"apiVersion": str(obj.get("apiVersion", "")), "kind": str(obj.get("kind", "")),
            "name": str(metadata.get("name", "")), "namespace": str(metadata.get("namespace", "")),
            "uid": str(metadata.get("uid", ""))}


def event_key(obj: Mapping[str, Any], type_: str, reason: str, message: str) -> EventKey:
    """What makes two events "the same" for aggregation. The message is scrubbed of secret values
    here, the one point every Event's text passes (before truncation, which could cut a secret
    into a piece no longer recognised)."""
    involved = involved_object(obj)
    return EventKey(involved["namespace"], involved["kind"], involved["name"], involved["uid"], type_, reason,
                    truncate(scrub(message)))


def truncate(message: str) -> str:
    return message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 3] + "..."


class EventRecorder:
    def __init__(self, sink: EventSink, *, instance: str | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._sink = sink
        self._instance = instance or socket.gethostname()
        self._clock = clock
        self._seen: OrderedDict[EventKey, _Seen] = OrderedDict()
        self._lock = threading.Lock()

    def normal(self, obj: Mapping[str, Any], reason: str, message: str) -> None:
        self.record(obj, NORMAL, reason, message)

    def warning(self, obj: Mapping[str, Any], reason: str, message: str) -> None:
        self.record(obj, WARNING, reason, message)

    def record(self, obj: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
        key = event_key(obj, type_, reason, message)
        instant = self._clock()
        now = rfc3339_utc(instant)
        with self._lock:
            seen = self._seen.get(key)
            if seen is not None:
                self._seen.move_to_end(key)
        try:
            if seen is not None and self._sink.patch_event(
                    key.namespace, seen.event_name, {"count": seen.count + 1, "lastTimestamp": now}):
                seen.count += 1
                return
            name = f"{key.name}.{int(instant.timestamp() * 1e9):x}"  # client-go's naming
            self._sink.create_event(key.namespace, {
                "apiVersion": "v1", "kind": "Event",
                "metadata": {"name": name, "namespace": key.namespace},
                "involvedObject": involved_object(obj),
                "type": type_, "reason": reason, "message": key.message, "count": 1,
                "firstTimestamp": now, "lastTimestamp": now,
                "source": {"component": COMPONENT},
                "reportingComponent": COMPONENT, "reportingInstance": self._instance,
            })
        except Exception as exc:  # an Event is best-effort and must not fail a reconcile
            log.warning("could not record event", extra={"reason": reason, "error": str(exc),
                                                          "object": f"{key.namespace}/{key.name}"})
            return
        with self._lock:
            self._seen[key] = _Seen(name, 1)
            while len(self._seen) > CACHE_SIZE:
                self._seen.popitem(last=False)

    def forget(self, namespace: str, name: str) -> None:
        """Drop what is remembered about a deleted object (its Events go with it)."""
        with self._lock:
            for key in [k for k in self._seen if k.namespace == namespace and k.name == name]:
                del self._seen[key]
