"""Local JSON Lines connectors: a laptop pipeline with no cluster (``path: "-"`` = stdin/stdout).

The source's position is the byte offset just past the last acknowledged line, persisted in the
checkpoint store under the key ``file`` together with the identity of the file it is an offset in
(:mod:`.file_position`), so a restart resumes there and only there.

The sink appends whole lines and fsyncs each batch before it reports success. A failed write is the
disk's failure, never the messages': it raises (nothing is acknowledged or sent to the error sink)
after cutting the file back to where the batch began, so no torn line stays behind. A torn last line
found at connect (the cut failed too, or the process was killed mid-write) was never acknowledged and
will be written again: it is moved to ``<path>.torn`` and the file cut back to its last newline.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import select
import stat
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from io import BufferedReader
from pathlib import Path

from ..pipeline.checkpoint import Checkpointer, fsync_directory
from ..pipeline.connector import BatchLimits, ConnectorContext, Sink, Source, WriteFailure
from ..pipeline.errors import EnvironmentalError, InvalidDataError
from ..pipeline.message import Message
from ..pipeline.positions import ContiguousTracker
from .file_position import FINGERPRINT_BYTES, FileIdentity, mismatch, parse_position
from .file_settings import FileSinkConfig, FileSourceConfig

log = logging.getLogger(__name__)

CHECKPOINT_KEY = "file"
READ_BLOCK = 1 << 20
STDIN_POLL_SECONDS = 0.2
SCAN_BLOCK = 1 << 16
#: What the error record of an over-long line keeps of it.
EXCERPT_BYTES = 1024


class FileSource(Source):
    type_name = "file"

    def __init__(self, settings: FileSourceConfig, context: ConnectorContext) -> None:
        super().__init__(context)
        self.path = settings.path
        self.follow = settings.follow
        self.poll_interval = settings.poll_interval_seconds
        self.max_line_bytes = settings.max_line_bytes
        self.read_block = READ_BLOCK  # tests make it small, so that lines cross block boundaries
        self.chunk_size = max(1, min(context.settings.channel_buffer_size, 1000))
        self._handle: BufferedReader | None = None
        self._tracker: ContiguousTracker[int] = ContiguousTracker()
        self._checkpointer: Checkpointer | None = None
        self._identity: FileIdentity | None = None
        self._offset = 0

    def connect(self) -> None:
        if self.path == "-":
            self._handle = sys.stdin.buffer  # type: ignore[assignment]  # a BufferedReader at run time
            return
        self._handle = open(self.path, "rb")  # noqa: SIM115 - held open for the whole run
        fd = self._handle.fileno()
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            log.info("not a regular file (a pipe or a device): read without a checkpoint", extra={"path": self.path})
            return
        self._identity = FileIdentity.of(self.path, fd)
        settings = self.context.settings
        self._checkpointer = Checkpointer(self.context.checkpoints, CHECKPOINT_KEY,
                                          save_interval=settings.checkpoint_save_interval,
                                          sync_on_ack=settings.checkpoint_sync_on_ack)
        if settings.checkpoint_reset:
            log.info("checkpoint reset requested; reading from the start", extra={"path": self.path})
            self._checkpointer.reset()
        saved = self._checkpointer.load()
        if saved is not None:
            self._offset = self._resume_offset(saved, fd)
            self._handle.seek(self._offset)

    def _resume_offset(self, saved: str, fd: int) -> int:
        """Where to start reading given the stored checkpoint: its offset if it is a position in
        this file, else 0 (with a warning naming both files)."""
        assert self._identity is not None
        try:
            position = parse_position(saved)
        except ValueError as exc:
            raise self.context.checkpoints.corrupt(CHECKPOINT_KEY, f"does not hold a file position: {exc}") from None
        current = self._identity
        size = os.fstat(fd).st_size
        reason = mismatch(position, current, fd, size)
        saved_file = position.identity.describe() if position.identity is not None else "an unrecorded file"
        details = {"path": current.path, "device": current.device, "inode": current.inode, "size": size,
                   "checkpoint_offset": position.offset}
        if position.identity is not None:
            details.update(checkpoint_path=position.identity.path, checkpoint_device=position.identity.device,
                           checkpoint_inode=position.identity.inode)
        if reason is not None:
            log.warning(f"checkpoint at offset {position.offset} of {saved_file} does not apply to "
                        f"{current.describe()}: {reason}; reading from the start", extra=details)
            return 0
        if position.identity is None:
            log.info("legacy checkpoint (an offset without the file's identity) applied: the file is at "
                     "least that long and the offset starts a line", extra=details)
        else:
            log.info("resuming from checkpoint", extra=details)
        return position.offset

    def _read_block(self) -> bytes | None:
        """Bytes that are there now; ``b""`` at end of file; ``None`` when stdin has nothing yet."""
        assert self._handle is not None
        if self.path == "-":
            fd = self._handle.fileno()
            ready, _, _ = select.select([fd], [], [], STDIN_POLL_SECONDS)
            return os.read(fd, self.read_block) if ready else None
        return self._handle.read1(self.read_block)  # one raw read: pipes and growing files return what is there

    def read(self) -> Iterator[list[Message]]:
        stop = self.context.stop
        line = _PartialLine(self.max_line_bytes)  # the line begun in an earlier block
        chunk: list[Message] = []
        while not stop.is_set():
            block = self._read_block()
            if block:
                self._refingerprint_small_file()
                lines = block.split(b"\n")
                if len(lines) > 1:  # the partial line ends in this block; every later one is whole
                    line.add(lines[0])
                    chunk.extend(self._line_message(line))
                    line = _PartialLine(self.max_line_bytes)
                    for whole in lines[1:-1]:
                        chunk.extend(self._message(whole, len(whole) + 1) if len(whole) <= self.max_line_bytes
                                     else self._line_message(_PartialLine(self.max_line_bytes, whole)))
                        if len(chunk) >= self.chunk_size:
                            yield chunk
                            chunk = []
                line.add(lines[-1])
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
                if line.length:  # a last line without a newline still counts at the end of the input
                    yield self._line_message(line, newline=False)
                return
            if stop.wait(self.poll_interval):
                break

    def _line_message(self, line: _PartialLine, *, newline: bool = True) -> list[Message]:
        length = line.length + newline
        if line.kept is not None:
            return self._message(line.kept, length)
        start = self._offset
        self.context.metrics.error("read", "invalid_data")
        log.warning("a line longer than maxLineBytes goes to the error sink as its first KiB",
                    extra={"path": self.path, "offset": start, "line_bytes": line.length,
                           "max_line_bytes": self.max_line_bytes})
        [message] = self._message(line.excerpt, length, keep_blank=True)
        message.unreadable = (f"line of {line.length} bytes at offset {start} of {self.path} is longer than "
                              f"maxLineBytes ({self.max_line_bytes}); the record holds its first "
                              f"{len(line.excerpt)} bytes")
        return [message]

    def _refingerprint_small_file(self) -> None:
        """While the file is shorter than a full fingerprint, take it again as it grows, so the
        checkpoint of a file that started empty still tells it from another file."""
        identity = self._identity
        if identity is not None and identity.fingerprint_length < FINGERPRINT_BYTES:
            assert self._handle is not None
            self._identity = FileIdentity.of(self.path, self._handle.fileno())

    def _message(self, line: bytes, length: int, *, keep_blank: bool = False) -> list[Message]:
        start = self._offset
        self._offset += length
        if line.endswith(b"\r"):
            line = line[:-1]
        if not keep_blank and not line.strip():
            return []
        message = Message(line, {"file": self.path, "offset": start})
        if self._checkpointer is not None:
            message.ack = partial(self._ack, self._tracker.issue(self._offset))
        return [message]

    def _ack(self, ticket: int) -> None:
        position = self._tracker.ack(ticket)
        if position is not None and self._checkpointer is not None and self._identity is not None:
            self._checkpointer.update(self._identity.checkpoint(position))

    def flush_positions(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.flush()

    def close(self) -> None:
        if self._handle is not None and self.path != "-":
            self._handle.close()
        self._handle = None


class _PartialLine:
    """A line read block by block. Up to ``limit`` bytes it is kept whole; past that only its first
    :data:`EXCERPT_BYTES` and its length are, so a line of any length costs bounded memory (and
    joining the pieces once, at the end, keeps reading it linear)."""

    def __init__(self, limit: int, first: bytes = b"") -> None:
        self.limit = limit
        self.length = 0
        self._pieces: list[bytes] = []
        self.excerpt = b""
        self.add(first)

    def add(self, piece: bytes) -> None:
        if not piece:
            return
        self.length += len(piece)
        if self.excerpt:
            return
        self._pieces.append(piece)
        if self.length > self.limit:
            self.excerpt = b"".join(self._pieces)[:EXCERPT_BYTES]
            self._pieces = []

    @property
    def kept(self) -> bytes | None:
        """The whole line, or None when it is over the limit."""
        return None if self.excerpt else b"".join(self._pieces)


class FileSink(Sink):
    type_name = "file"

    def __init__(self, settings: FileSinkConfig, context: ConnectorContext) -> None:
        super().__init__(context)
        self.path = settings.path
        self._limits = BatchLimits(settings.batch_size, settings.batch_flush_interval_seconds or None)
        self._fd: int | None = None
        self._regular = False  # a regular file can be fsynced, locked and cut back; a pipe or device cannot
        self._cut_back_to: int | None = None  # set when cutting back a failed batch failed too

    def connect(self) -> None:
        if self.path == "-":
            return
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        self._regular = stat.S_ISREG(os.fstat(self._fd).st_mode)
        if self._regular:
            with _exclusive(self._fd):
                move_torn_tail_aside(self._fd, self.path)

    def batch_limits(self) -> BatchLimits:
        return self._limits

    def write(self, batch: list[Message]) -> list[WriteFailure]:
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
            data = b"\n".join(lines)
            try:
                if self.path == "-":
                    sys.stdout.buffer.write(data)
                    sys.stdout.buffer.flush()
                else:
                    self._append(data)
            except OSError as exc:
                raise EnvironmentalError(f"file sink {self.path}: cannot write: {exc}") from exc
        return failures

    def _append(self, data: bytes) -> None:
        fd = self._fd
        assert fd is not None, "write before connect"
        if not self._regular:
            _write_all(fd, data)
            return
        # Locked so that another sink on the same file (a route, another process) never writes
        # between our size and our cut, and a starting sink never takes our write for a torn tail.
        with _exclusive(fd):
            if self._cut_back_to is not None:
                self._cut_back(self._cut_back_to)
            size = os.fstat(fd).st_size
            try:
                _write_all(fd, data)
                os.fsync(fd)
            except OSError:
                self._try_cut_back(size)
                raise

    def _try_cut_back(self, size: int) -> None:
        try:
            self._cut_back(size)
        except OSError as exc:
            # Retried before the next write; if the process ends first, connect moves the torn tail aside.
            self._cut_back_to = size
            log.error("could not cut a partly written batch off the file; will retry before the next write",
                      extra={"path": self.path, "size": size, "error": str(exc)})

    def _cut_back(self, size: int) -> None:
        assert self._fd is not None
        os.ftruncate(self._fd, size)
        os.fsync(self._fd)
        self._cut_back_to = None

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
        self._fd = None


@contextmanager
def _exclusive(fd: int) -> Iterator[None]:
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)


def _write_all(fd: int, data: bytes) -> None:
    """``os.write`` until everything is written: a write may be cut short (a file size limit, a
    nearly full disk), and the next attempt then reports why."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written == 0:
            raise OSError(errno.EIO, "write made no progress")
        view = view[written:]


def _end_of_last_line(fd: int, size: int) -> int:
    """The offset just past the last newline of the file open as ``fd`` (0 when it has none)."""
    end = size
    while end > 0:
        start = max(0, end - SCAN_BLOCK)
        index = os.pread(fd, end - start, start).rfind(b"\n")
        if index >= 0:
            return start + index + 1
        end = start
    return 0


def move_torn_tail_aside(fd: int, path: str) -> None:
    """Cut the file open as ``fd`` back to its last newline, keeping what follows in ``<path>.torn``.

    This sink writes whole lines and fsyncs before anything is acknowledged, so bytes after the last
    newline belong to a batch that failed or was interrupted: they are written again. They are kept
    aside rather than deleted in case the file was written by something else too.
    """
    size = os.fstat(fd).st_size
    end = _end_of_last_line(fd, size)
    if end == size:
        return
    torn = path + ".torn"
    with open(torn, "ab") as aside:
        offset = end
        while offset < size:
            chunk = os.pread(fd, min(SCAN_BLOCK, size - offset), offset)
            if not chunk:
                break
            aside.write(chunk)
            offset += len(chunk)
        aside.write(b"\n")  # one fragment per line in the .torn file
        aside.flush()
        os.fsync(aside.fileno())
    fsync_directory(Path(torn).parent)
    os.ftruncate(fd, end)
    os.fsync(fd)
    log.warning("the file sink's last line was torn (an interrupted write): moved it aside",
                extra={"path": path, "bytes": size - end, "moved_to": torn})
