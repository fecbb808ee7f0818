"""The connector contract: sources yield chunks of messages, sinks write batches durably.

Acknowledgement is the sources' business (each message carries its own ``ack``); sinks only report
which messages of a batch failed, so the engine can send exactly those to the error sink.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from .checkpoint import CheckpointStore
from .message import Message
from .metrics import ConnectorMetrics
from .progress import ProgressTracker


@dataclass(frozen=True, slots=True)
class PipelineSettings:
    """Spec-level settings that connectors need. Built from the spec by
    ``processor.assembly.settings_from_spec``, which fills in the defaults of ``spec.model``."""

    channel_buffer_size: int
    ack_granularity: str
    checkpoint_persistence: bool
    checkpoint_sync_on_ack: bool
    checkpoint_save_interval: float
    checkpoint_reset: bool


@dataclass(slots=True)
class ConnectorContext:
    """What a connector gets besides its config. ``connector_name`` is the metrics label:
    ``source``, ``sink``, ``error_sink`` or ``route_<i>``."""

    namespace: str
    name: str
    connector_name: str
    metrics: ConnectorMetrics
    checkpoints: CheckpointStore
    progress: ProgressTracker
    settings: PipelineSettings
    stop: threading.Event = field(default_factory=threading.Event)


class Source(ABC):
    type_name: ClassVar[str]

    def __init__(self, config: Mapping[str, Any], context: ConnectorContext) -> None:
        self.config = config
        self.context = context

    @abstractmethod
    def connect(self) -> None:
        """Open connections; raise if the source cannot be reached (the processor exits 1)."""

    @abstractmethod
    def read(self) -> Iterator[list[Message]]:
        """Yield chunks of messages, each with its ``ack`` set, until ``context.stop`` is set
        (return promptly) or the source is exhausted (return; the pipeline then drains and ends).
        Transient read errors are retried here and counted with ``operation="read"``."""

    def flush_positions(self) -> None:  # noqa: B027 - optional hook, no-op by default
        """Persist acknowledged positions now (graceful shutdown)."""

    @abstractmethod
    def close(self) -> None:
        """Release everything; idempotent."""


@dataclass(frozen=True, slots=True)
class BatchLimits:
    """How the writer gathers a batch: up to ``max_messages``; wait at most ``max_wait_seconds``
    for it to fill (``None``: write whatever is already queued, without waiting)."""

    max_messages: int
    max_wait_seconds: float | None


@dataclass(frozen=True, slots=True)
class WriteFailure:
    message: Message
    error: BaseException


class Sink(ABC):
    type_name: ClassVar[str]

    def __init__(self, config: Mapping[str, Any], context: ConnectorContext) -> None:
        self.config = config
        self.context = context

    @abstractmethod
    def connect(self) -> None:
        ...

    @abstractmethod
    def batch_limits(self) -> BatchLimits:
        ...

    @abstractmethod
    def write(self, batch: list[Message]) -> list[WriteFailure]:
        """Write ``batch`` durably. Return the messages that were *not* written, each with its
        reason; raise when the whole batch failed. Never acknowledge: the engine does."""

    @abstractmethod
    def close(self) -> None:
        ...
