"""Local JSON Lines connectors: a laptop pipeline with no cluster (``path: "-"`` = stdin/stdout).

The source's position is the byte offset just past the last acknowledged line, persisted in the
checkpoint store under the key ``file`` so a restart resumes there. The sink appends one line per
message and fsyncs each batch before it reports success.
"""

from __future__ import annotations

import logging
import os
import select
import sys
from collections.abc import Iterator, Mapping
from functools import partial
from io import BufferedReader
from pathlib import Path
from typing import IO, Any

from ..processor.checkpoint import Checkpointer
from ..processor.errors import InvalidDataError
from ..processor.message import Message
from ..processor.positions import ContiguousTracker
from .base import BatchLimits, ConnectorContext, Sink, Source, WriteFailure

log = logging.getLogger(__name__)

CHECKPOINT_KEY = "file"
READ_BLOCK = 1 << 20
STDIN_POLL_SECONDS = 0.2


class FileSource(Source):
    type_name = "file"

    def __init__(self, config: Mapping[str, Any], context: ConnectorContext) -> None:
        super().__init__(config, context)
        self.path = str(config["path"])
        self.follow = bool(config.get("follow", False))
        self.poll_interval = float(config.get("pollIntervalSeconds", 0.2))
        self.chunk_size = max(1, min(context.settings.channel_buffer_size, 1000))
        self._handle: BufferedReader | None = None
        self._tracker: ContiguousTracker[int] = ContiguousTracker()
        self._checkpointer: Checkpointer | None = None
        self._offset = 0

    def connect(self) -> None:
        if self.path == "-":
            self._handle = sys.stdin.buffer  # type: ignore[assignment]  # a BufferedReader at run time
            return
        self._handle = open(self.path, "rb")  # noqa: SIM115 - held open for the whole run
        settings = self.context.settings
        self._checkpointer = Checkpointer(self.context.checkpoints, CHECKPOINT_KEY,
                                          save_interval=settings.checkpoint_save_interval,
                                          sync_on_ack=settings.checkpoint_sync_on_ack)
        if settings.checkpoint_reset:
            log.info("checkpoint reset requested; reading from the start", extra={"path": self.path})
            self._checkpointer.reset()
        saved = self._checkpointer.load()
        if saved is not None:
            offset = int(saved)
            size = os.fstat(self._handle.fileno()).st_size
            if offset > size:
                log.warning("file is shorter than its checkpoint (truncated or replaced); reading from the start",
                            extra={"path": self.path, "checkpoint": offset, "size": size})
                offset = 0
            self._handle.seek(offset)
            self._offset = offset
            log.info("resuming from checkpoint", extra={"path": self.path, "offset": offset})

    def _read_block(self) -> bytes | None:
        """Bytes that are there now; ``b""`` at end of file; ``None`` when stdin has nothing yet."""
        assert self._handle is not None
        if self.path == "-":
            fd = self._handle.fileno()
            ready, _, _ = select.select([fd], [], [], STDIN_POLL_SECONDS)
            return os.read(fd, READ_BLOCK) if ready else None
        return self._handle.read1(READ_BLOCK)  # one raw read: pipes and growing files return what is there

    def read(self) -> Iterator[list[Message]]:
        stop = self.context.stop
        buffer = b""
        chunk: list[Message] = []
        while not stop.is_set():
            block = self._read_block()
            if block:
                buffer += block
                lines = buffer.split(b"\n")
                buffer = lines.pop()
                for line in lines:
                    chunk.extend(self._message(line, len(line) + 1))
                    if len(chunk) >= self.chunk_size:
                        yield chunk
                        chunk = []
                # Hand over what this block held before the next read, which may block (pipes).
                if chunk:
                    yield chunk
                    chunk = []
                continue
            if self._checkpointer is not None:
                self._checkpointer.flush_if_due()
            if block is None:
                continue
            if not self.follow:
                if buffer:  # a last line without a newline still counts at the end of the input
                    yield self._message(buffer, len(buffer))
                return
            if stop.wait(self.poll_interval):
                break

    def _message(self, line: bytes, length: int) -> list[Message]:
        start = self._offset
        self._offset += length
        if line.endswith(b"\r"):
            line = line[:-1]
        if not line.strip():
            return []
        message = Message(line, {"file": self.path, "offset": start})
        if self._checkpointer is not None:
            message.ack = partial(self._ack, self._tracker.issue(self._offset))
        return [message]

    def _ack(self, ticket: int) -> None:
        position = self._tracker.ack(ticket)
        if position is not None and self._checkpointer is not None:
            self._checkpointer.update(str(position))

    def flush_positions(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.flush()

    def close(self) -> None:
        if self._handle is not None and self.path != "-":
            self._handle.close()
        self._handle = None


class FileSink(Sink):
    type_name = "file"

    def __init__(self, config: Mapping[str, Any], context: ConnectorContext) -> None:
        super().__init__(config, context)
        self.path = str(config["path"])
        self._limits = BatchLimits(int(config.get("batchSize", 100)),
                                   float(config.get("batchFlushIntervalSeconds", 1.0)) or None)
        self._handle: IO[bytes] | None = None

    def connect(self) -> None:
        if self.path == "-":
            self._handle = sys.stdout.buffer
            return
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._handle = open(self.path, "ab")  # noqa: SIM115 - held open for the whole run

    def batch_limits(self) -> BatchLimits:
        return self._limits

    def write(self, batch: list[Message]) -> list[WriteFailure]:
        assert self._handle is not None, "write before connect"
        failures = []
        lines = []
        for message in batch:
            if b"\n" in message.data:
                failures.append(WriteFailure(message, InvalidDataError(
                    "payload contains a line break; JSON Lines needs one record per line")))
            else:
                lines.append(message.data)
        if lines:
            lines.append(b"")
            self._handle.write(b"\n".join(lines))
            self._handle.flush()
            if self.path != "-":
                os.fsync(self._handle.fileno())
        return failures

    def close(self) -> None:
        if self._handle is not None and self.path != "-":
            self._handle.close()
        self._handle = None
