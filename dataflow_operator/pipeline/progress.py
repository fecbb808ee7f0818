"""Readiness and liveness state for the processor's probes.

``/readyz`` is 200 once the source is connected and reading; ``/livez`` is 200 while ready and
progress (a successful sink batch commit, or an active Kafka group session) was seen within the
progress timeout (0 disables the staleness check).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class ProgressTracker:
    def __init__(self, timeout_seconds: float, clock: Callable[[], float] = time.monotonic, *,
                 timeout_setting: str = "progress timeout") -> None:
        self.timeout_seconds = timeout_seconds
        self._timeout_setting = timeout_setting  # named in the stale message: where to change it
        self._clock = clock
        self._lock = threading.Lock()
        self._ready = False
        self._last_progress = clock()
        self._failure: str | None = None

    def mark_ready(self) -> None:
        with self._lock:
            self._ready = True
            self._last_progress = self._clock()

    def mark_not_ready(self, reason: str) -> None:
        with self._lock:
            self._ready = False
            self._failure = reason

    def bump(self) -> None:
        """Record progress (called after each successful sink batch commit)."""
        self._last_progress = self._clock()

    def readiness(self) -> tuple[bool, str]:
        with self._lock:
            if self._ready:
                return True, "ready"
            return False, self._failure or "source not connected yet"

    def liveness(self) -> tuple[bool, str]:
        ready, reason = self.readiness()
        if not ready:
            return False, f"not ready: {reason}"
        if self.timeout_seconds <= 0:
            return True, "alive (staleness check disabled)"
        idle = self._clock() - self._last_progress
        if idle > self.timeout_seconds:
            return False, (f"stale: no pipeline progress for {idle:.0f}s "
                           f"({self._timeout_setting}={self.timeout_seconds:g})")
        return True, "alive"
