"""The time the delaying layer and the metrics read, injectable like client-go's ``k8s.io/utils/clock``."""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds on a monotonic scale."""

    def wait(self, condition: threading.Condition, timeout: float) -> None:
        """Wait on ``condition`` (held by the caller) until notified or ``timeout`` seconds of this clock
        have passed."""


class RealClock:
    def now(self) -> float:
        return time.monotonic()

    def wait(self, condition: threading.Condition, timeout: float) -> None:
        condition.wait(timeout)
