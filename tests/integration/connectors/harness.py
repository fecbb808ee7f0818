"""Connector contexts for tests that drive a connector directly (no engine), and reading its metrics."""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry

from dataflow_operator.pipeline.checkpoint import CheckpointStore, MemoryCheckpointStore
from dataflow_operator.pipeline.connector import ConnectorContext, PipelineSettings, Source
from dataflow_operator.pipeline.message import Message
from dataflow_operator.pipeline.metrics import ProcessorMetrics
from dataflow_operator.pipeline.progress import ProgressTracker
from dataflow_operator.processor.assembly import settings_from_spec


def pipeline_settings(**overrides: Any) -> PipelineSettings:
    """The settings of a spec that leaves every setting to its default, with ``overrides``."""
    return dataclasses.replace(settings_from_spec({}), **overrides)


@dataclass
class Harness:
    connector_type: str
    connector_name: str
    settings: PipelineSettings = field(default_factory=pipeline_settings)
    checkpoints: CheckpointStore = field(default_factory=MemoryCheckpointStore)
    progress: ProgressTracker = field(default_factory=lambda: ProgressTracker(3600))

    def __post_init__(self) -> None:
        self.registry = CollectorRegistry()
        self.metrics = ProcessorMetrics("test-ns", "test-flow", registry=self.registry)
        self.context = ConnectorContext(
            namespace="test-ns", name="test-flow", connector_name=self.connector_name,
            metrics=self.metrics.connector(self.connector_type, self.connector_name),
            checkpoints=self.checkpoints, progress=self.progress, settings=self.settings)

    def errors(self, operation: str, error_type: str) -> float:
        return self._value("dataflow_connector_errors_total", operation=operation, error_type=error_type)

    def connection_status(self) -> float:
        return self._value("dataflow_connector_connection_status")

    def _value(self, name: str, **labels: str) -> float:
        value = self.registry.get_sample_value(name, {
            "namespace": "test-ns", "name": "test-flow", "connector_type": self.connector_type,
            "connector_name": self.connector_name, **labels})
        return value or 0.0


class SourceRunner:
    """Runs ``source.read()`` on a thread (as the engine's reader does) and collects the messages."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self.messages: list[Message] = []
        self.error: BaseException | None = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> SourceRunner:
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            for chunk in self.source.read():
                with self._lock:
                    self.messages.extend(chunk)
        except BaseException as exc:  # reported by the test through .error
            self.error = exc

    def received(self) -> list[Message]:
        """Every message so far."""
        if self.error is not None:
            raise RuntimeError(f"source failed: {self.error!r}") from self.error
        with self._lock:
            return list(self.messages)

    def taken(self, count: int) -> list[Message] | None:
        """The first ``count`` messages once that many arrived (for ``wait_for``)."""
        messages = self.received()
        return messages[:count] if len(messages) >= count else None

    def stop(self) -> None:
        self.source.context.stop.set()
        self._thread.join(30)
        assert not self._thread.is_alive(), "read() did not return after stop"

