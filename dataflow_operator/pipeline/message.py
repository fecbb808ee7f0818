"""The unit of data that flows through a pipeline, and the acknowledgement that follows it back.

A source gives every message an ``Ack``; the position the message came from may move only when
that ack fires. Messages derived from one input (flatten children, router copies) share one
``AckCountdown``: the parent position is acknowledged exactly when *all* of them are done.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

AckCallback = Callable[[], None]


class AckCountdown:
    """Fires ``parent`` once, after ``count`` children have each called :meth:`done`.

    Thread-safe: children of one parent may be written by different route writers.
    A countdown created with ``count == 0`` fires at once (a message filtered to nothing).
    """

    __slots__ = ("_lock", "_parent", "_remaining")

    def __init__(self, parent: AckCallback | None, count: int) -> None:
        self._parent = parent
        self._remaining = count
        self._lock = threading.Lock()
        if count == 0:
            self._fire()

    def done(self) -> None:
        with self._lock:
            self._remaining -= 1
            if self._remaining != 0:
                if self._remaining < 0:
                    raise RuntimeError("acknowledged more children than were derived")
                return
        self._fire()

    def _fire(self) -> None:
        parent, self._parent = self._parent, None
        if parent is not None:
            parent()


@dataclass(slots=True)
class Message:
    """A payload (usually UTF-8 JSON) plus metadata.

    ``received_at`` is a ``time.monotonic()`` reading taken when the source produced the message;
    end-to-end latency is measured from it. ``ack`` is ``None`` for messages whose position needs
    no acknowledgement.
    """

    data: bytes
    metadata: dict[str, Any] = field(default_factory=dict)
    timestamp: datetime = field(default_factory=lambda: datetime.now(UTC))
    ack: AckCallback | None = None
    received_at: float = field(default_factory=time.monotonic)
    #: ``data`` already decoded, when a transformation had it in hand: a JSON object equal to
    #: ``decode(data)`` that nothing else references, so the next step can take it instead of parsing
    #: the bytes again (transformers.jsonvalues.take_doc). ``data`` stays the truth; this is a cache.
    doc: dict[str, Any] | None = None
    #: The route a router step chose: its label (the route's condition text), which the engine's
    #: route table maps to a sink. ``None``: the main sink. Not metadata, so it never reaches a sink
    #: or an error record as data.
    route: str | None = None
    #: Why the source could not read this message whole (a line over the file source's limit);
    #: ``data`` then holds the part it kept. The engine sends such a message straight to the error
    #: sink, at stage ``source``, instead of through the transformations.
    unreadable: str | None = None

    def derive(self, data: bytes, metadata: dict[str, Any] | None = None,
               doc: dict[str, Any] | None = None) -> Message:
        """A new message from this one: new data, a shallow copy of the metadata unless given,
        the same timestamp, ack, receipt time and route (the engine rebinds the ack for fan-out).
        ``doc``, when given, must be ``data`` decoded and referenced by nothing else."""
        return Message(
            data=data,
            metadata=dict(self.metadata) if metadata is None else metadata,
            timestamp=self.timestamp,
            ack=self.ack,
            received_at=self.received_at,
            doc=doc,
            route=self.route,
        )

    def acknowledge(self) -> None:
        ack, self.ack = self.ack, None
        if ack is not None:
            ack()

    def describe(self) -> str:
        """A short identifier for logs: never the payload, which may hold personal data."""
        meta = self.metadata
        for key in ("message_id", "id"):
            if key in meta:
                return f"{key}={meta[key]}"
        if "partition" in meta and "offset" in meta:
            return f"{meta.get('topic', '')}/{meta['partition']}@{meta['offset']}"
        if "offset" in meta:
            return f"offset={meta['offset']}"
        return "message"
