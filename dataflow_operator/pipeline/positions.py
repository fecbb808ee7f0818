"""Contiguous acknowledgement of ordered positions.

Messages of one source (or one Kafka partition) are acknowledged out of order when routes write at
different speeds. A position may be committed only when it and everything read before it are
acknowledged; :class:`ContiguousTracker` gives the highest such position.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Generic, TypeVar

P = TypeVar("P")


class ContiguousTracker(Generic[P]):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._order: deque[int] = deque()
        self._positions: dict[int, P] = {}
        self._acked: set[int] = set()
        self._next_ticket = 0

    def issue(self, position: P) -> int:
        """Register a position in read order; the ticket is what :meth:`ack` takes back."""
        with self._lock:
            ticket = self._next_ticket
            self._next_ticket += 1
            self._order.append(ticket)
            self._positions[ticket] = position
            return ticket

    def ack(self, ticket: int) -> P | None:
        """Acknowledge one ticket; returns the new committable position if it advanced."""
        with self._lock:
            if ticket not in self._positions:
                return None
            self._acked.add(ticket)
            advanced: P | None = None
            while self._order and self._order[0] in self._acked:
                head = self._order.popleft()
                self._acked.discard(head)
                advanced = self._positions.pop(head)
            return advanced

    def pending(self) -> int:
        with self._lock:
            return len(self._order)
