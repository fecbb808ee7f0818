"""The data plane: read → transform → route → write, on threads joined by bounded chunk queues.
:mod:`.assembly` builds the parts; this module runs them.

::

    reader ──routing queue──▶ transformer ──▶ output|default queue ──▶ main sink writer
                                           └─▶ one queue per route ──▶ route sink writers
              failures (transform or write) ─────────────────────────▶ error sink (exact messages)

Routes are the engine's, as Benthos' ``switch`` output: a router entry in the chain only records
the route it chose on ``message.route`` (processor/routes.py); each route label has its own queue,
writer and sink, and a message without one goes to the main sink.

Every derived message shares its parent's :class:`AckCountdown`, so a source position moves only
when all of them are durably written (or handled by the error sink per ``ackPolicy``). A message
filtered to nothing is acknowledged at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..pipeline.checkpoint import CheckpointStore, deferred_saves
from ..pipeline.connector import Sink, Source
from ..pipeline.errors import InvalidDataError, classify
from ..pipeline.message import AckCountdown, Message
from ..pipeline.metrics import ProcessorMetrics
from ..pipeline.progress import ProgressTracker
from .chain import TransformChain, TransformFailure
from .error_sink import ErrorSinkWriter, Failure
from .queues import ChunkQueue
from .routes import DEFAULT_ROUTE
from .writer import SinkWriter

log = logging.getLogger(__name__)

TRANSFORM_CHUNK = 512
#: The error record's ``stage`` of a message the source could not read whole (``Message.unreadable``).
SOURCE_STAGE = "source"


@dataclass
class PipelineResult:
    """How a run ended: ``failure`` is None after a clean drain (stop or exhausted source)."""

    failure: BaseException | None = None
    exhausted: bool = False

    @property
    def exit_code(self) -> int:
        return 0 if self.failure is None else 1


@dataclass(frozen=True, slots=True)
class Services:
    """What the process gives a pipeline."""

    namespace: str
    name: str
    metrics: ProcessorMetrics
    checkpoints: CheckpointStore
    progress: ProgressTracker
    #: Called once the source has connected (it has applied any reset by then).
    on_source_connected: Callable[[], None] | None = None
    #: Set to stop reading; connectors watch it to return promptly.
    stop: threading.Event = field(default_factory=threading.Event)


@dataclass(frozen=True, slots=True)
class PipelineParts:
    """The made, not yet connected, parts of a pipeline (processor/assembly.py makes them)."""

    source: Source
    chain: TransformChain
    main_sink: Sink
    route_sinks: dict[str, Sink]          # route label (condition text) → its sink, in table order
    error_sink: ErrorSinkWriter | None


@dataclass
class _Route:
    label: str
    queue: ChunkQueue
    sink: Sink
    writer: SinkWriter | None = None
    pending: list[Message] = field(default_factory=list)


class Pipeline:
    """Runs built parts until the source is exhausted, :meth:`stop` is called, or something fails."""

    def __init__(self, parts: PipelineParts, *, services: Services, channel_buffer_size: int,
                 write_retry_delays: tuple[float, ...]) -> None:
        self.metrics = metrics = services.metrics
        self.progress = services.progress
        self.source = parts.source
        self.chain = parts.chain
        self.error_sink = parts.error_sink
        self.source_type = parts.source.type_name
        self.sink_type = parts.main_sink.type_name
        self._on_source_connected = services.on_source_connected
        self._capacity = channel_buffer_size
        self._write_retry_delays = write_retry_delays
        self.stopping = services.stop         # graceful: stop reading, drain, flush
        self.abort = threading.Event()        # failure: stop everything, acknowledge nothing more
        self._failure: BaseException | None = None
        self._failure_lock = threading.Lock()
        self._exhausted = False
        self.input_queue = ChunkQueue(channel_buffer_size, metrics.queue_size("routing"),
                                      metrics.queue_wait("routing"), metrics.stage_latency("read", "transformation"))
        routed = bool(parts.route_sinks)
        self.main_route = _Route(DEFAULT_ROUTE, self._queue(DEFAULT_ROUTE if routed else "output"), parts.main_sink)
        self.routes = {label: _Route(label, self._queue(label), sink) for label, sink in parts.route_sinks.items()}
        self._reader_stage = metrics.stage_duration("read")
        self._received = metrics.messages_received.labels(self.source_type)
        self._input_size = metrics.message_size("input")
        self._source_context_metrics = self.source.context.metrics

    def _queue(self, queue_type: str) -> ChunkQueue:
        return ChunkQueue(self._capacity, self.metrics.queue_size(queue_type),
                          self.metrics.queue_wait(queue_type), self.metrics.stage_latency("transformation", "write"))

    # -- control -------------------------------------------------------------------------------

    def stop(self) -> None:
        """Graceful: stop reading; everything read is transformed, written and acknowledged."""
        if not self.stopping.is_set():
            log.info("stopping: draining the pipeline")
        self.stopping.set()

    def fail(self, exc: BaseException) -> None:
        with self._failure_lock:
            if self._failure is None:
                self._failure = exc
                log.error("pipeline failed; stopping without acknowledging unwritten messages",
                          extra={"error": str(exc), "error_type": classify(exc)})
        self.abort.set()
        self.stopping.set()
        self.input_queue.close()
        for route in self._all_routes():
            route.queue.close()

    def _all_routes(self) -> list[_Route]:
        return [self.main_route, *self.routes.values()]

    # -- run -----------------------------------------------------------------------------------

    def run(self) -> PipelineResult:
        sinks = [route.sink for route in self._all_routes()]
        if self.error_sink is not None:
            sinks.append(self.error_sink.sink)
        try:
            self._connect(self.source, "source")
            if self._on_source_connected is not None:
                self._on_source_connected()
            for sink in sinks:
                self._connect(sink, "sink")
        except Exception as exc:
            self._failure = exc
            self._close_all(sinks)
            return PipelineResult(failure=exc)
        threads = self._start_threads()
        ticker = threading.Thread(target=self._tick_rates, name="metrics-rates", daemon=True)
        ticker.start()
        for thread in threads:
            thread.join()
        if self._failure is None:
            try:
                self.source.flush_positions()
            except Exception as exc:
                self._failure = exc
        self.abort.set()
        self._close_all(sinks)
        self.metrics.update_rates()
        return PipelineResult(failure=self._failure, exhausted=self._exhausted)

    def _connect(self, connector: Source | Sink, role: str) -> None:
        try:
            connector.connect()
        except Exception as exc:
            connector.context.metrics.set_connected(False)
            connector.context.metrics.error("connect", classify(exc))
            raise
        connector.context.metrics.set_connected(True)
        log.info("connected", extra={"connector": connector.context.connector_name,
                                     "connector_type": connector.type_name})

    def _start_threads(self) -> list[threading.Thread]:
        writers = []
        for route in self._all_routes():
            route.writer = SinkWriter(route=route.label, sink=route.sink, sink_type=route.sink.type_name,
                                      queue=route.queue, metrics=self.metrics,
                                      connector_metrics=route.sink.context.metrics, error_sink=self.error_sink,
                                      progress=self.progress, abort=self.abort, fail=self.fail,
                                      retry_delays=self._write_retry_delays)
            writers.append(route.writer)
        threads: list[threading.Thread] = [
            threading.Thread(target=self._read_loop, name="reader", daemon=True),
            threading.Thread(target=self._transform_loop, name="transformer", daemon=True),
            *writers,
        ]
        for thread in threads:
            thread.start()
        return threads

    def _close_all(self, sinks: list[Sink]) -> None:
        connectors_: list[Source | Sink] = [self.source, *sinks]
        for connector in connectors_:
            try:
                connector.close()
            except Exception:
                log.exception("closing a connector failed")
            connector.context.metrics.set_connected(False)

    def _tick_rates(self) -> None:
        window = self.metrics.window_seconds
        while not self.abort.wait(window):
            self.metrics.update_rates()

    # -- threads -------------------------------------------------------------------------------

    def _read_loop(self) -> None:
        source_metrics = self._source_context_metrics
        try:
            self.progress.mark_ready()
            started = time.monotonic()
            for chunk in self.source.read():
                if chunk:
                    count = len(chunk)
                    self._reader_stage.observe(time.monotonic() - started)
                    self._received.inc(count)
                    source_metrics.read.inc(count)
                    self.metrics.active_messages.inc(count)
                    self._input_size.observe_many([len(message.data) for message in chunk])
                    self.input_queue.put(chunk)
                if self.stopping.is_set():
                    break
                started = time.monotonic()
            else:
                if not self.stopping.is_set():
                    self._exhausted = True
                    log.info("source exhausted; draining")
        except RuntimeError as exc:
            if not self.abort.is_set():  # a put on a closed queue after a failure is expected
                self._read_failed(exc)
        except Exception as exc:
            self._read_failed(exc)
        finally:
            self.input_queue.close()

    def _read_failed(self, exc: BaseException) -> None:
        error_type = classify(exc)
        self._source_context_metrics.error("read", error_type)
        self.metrics.stage_error("read", error_type)
        self.fail(exc)

    def _transform_loop(self) -> None:
        try:
            while True:
                messages = self.input_queue.get(TRANSFORM_CHUNK, timeout=None)
                if messages is None or self.abort.is_set():
                    break
                self._transform(messages)
        except Exception as exc:
            self.fail(exc)
        finally:
            for route in self._all_routes():
                route.queue.close()

    def _transform(self, messages: list[Message]) -> None:
        chain, routes, main = self.chain, self.routes, self.main_route
        failures: list[TransformFailure] = []
        dropped: list[Message] = []
        delta_active = 0
        succeeded = 0
        for message in messages:
            if message.unreadable is not None:  # the source kept only part of it: nothing to transform
                failures.append(TransformFailure(message, SOURCE_STAGE, self.source.type_name,
                                                 InvalidDataError(message.unreadable)))
                continue
            outputs, failed = chain.run(message)
            derived = len(outputs) + len(failed)
            delta_active += derived - 1
            if derived == 0:
                succeeded += 1  # filtered out: handled, acknowledged with the chunk
                dropped.append(message)
                continue
            if derived == 1:
                (outputs[0] if outputs else failed[0].message).ack = message.ack
            else:
                countdown = AckCountdown(message.ack, derived)
                for item in outputs:
                    item.ack = countdown.done
                for failure in failed:
                    failure.message.ack = countdown.done
            for item in outputs:
                (main if item.route is None else routes[item.route]).pending.append(item)
            failures.extend(failed)
        chain.flush_metrics()
        if delta_active:
            self.metrics.active_messages.inc(delta_active)
        if succeeded:
            self.metrics.record_outcomes(succeeded, 0)
        for route in self._all_routes():
            if route.pending:
                batch, route.pending = route.pending, []
                route.queue.put(batch)
        if dropped:
            with deferred_saves():  # one checkpoint save, or one Kafka commit, for the chunk
                for message in dropped:
                    message.acknowledge()
        if failures:
            self._handle_transform_failures(failures)

    def _handle_transform_failures(self, failures: list[TransformFailure]) -> None:
        self.metrics.record_outcomes(0, len(failures))
        handled = [Failure(f.message, f.error, f.stage, f.message.route or DEFAULT_ROUTE) for f in failures]
        if self.error_sink is not None:
            self.error_sink.write(handled)
        else:
            # Documented choice (docs/delivery.md): a message no transformation (or the source) can
            # take would fail the same way after every restart, so without an error sink it is
            # logged and acknowledged rather than blocking the source position forever.
            with deferred_saves():
                for failure in handled:
                    log.error("message dropped: it failed at %s and no error sink is configured", failure.stage,
                              extra={"message_id": failure.message.describe(), "stage": failure.stage,
                                     "error": str(failure.error)})
                    failure.message.acknowledge()
        self.metrics.active_messages.dec(len(failures))
