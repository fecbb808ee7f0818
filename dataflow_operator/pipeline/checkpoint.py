"""Where sources keep their read positions between runs.

A store maps one key per source type (``postgresql``, ``file``, ...) to a JSON string. Locally it is
a JSON file; in a cluster it is the ConfigMap ``df-<name>-checkpoint``
(:mod:`dataflow_operator.processor.configmap_checkpoint`). :class:`Checkpointer` debounces writes.

A checkpoint that cannot be read is never taken for "no checkpoint" (that would re-read everything,
or skip nothing the user expected): it is a :class:`CorruptCheckpointError` naming where it is and how
to start over, and the processor does not start.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Protocol

from .errors import ClassifiedError, EnvironmentalError

log = logging.getLogger(__name__)

#: How to ask for a reset, as docs/delivery.md documents it; stores add their own manual way.
RESET_REQUEST = ('set `checkpointReset: true` in the DataFlow spec or annotate the DataFlow with '
                 '`dataflow.dataflow.io/reset-checkpoint: "true"`')


class CorruptCheckpointError(ClassifiedError):
    """A checkpoint that is empty, truncated or not what its source writes."""

    def __init__(self, where: str, problem: str, reset: str) -> None:
        super().__init__(f"{where} {problem}; to read the source from the start instead, {reset}", "invalid_data")


def fsync_directory(path: Path) -> None:
    """Make a rename or a new name in ``path`` durable: until the directory is synced a crash may
    forget it, leaving the old file or none."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class CheckpointStore(ABC):
    @abstractmethod
    def load(self, key: str) -> str | None:
        ...

    @abstractmethod
    def save(self, key: str, value: str) -> None:
        ...

    @abstractmethod
    def delete(self, key: str) -> None:
        ...

    @abstractmethod
    def describe(self, key: str) -> str:
        """Where ``key`` is kept, for messages: a file path or a ConfigMap and key."""

    @abstractmethod
    def reset_instructions(self, key: str) -> str:
        """How a user starts ``key``'s source over: the documented reset, or removing it by hand."""

    def corrupt(self, key: str, problem: str) -> CorruptCheckpointError:
        """The error for a value under ``key`` that its source cannot read as a position."""
        return CorruptCheckpointError(self.describe(key), problem, self.reset_instructions(key))


class MemoryCheckpointStore(CheckpointStore):
    """Positions that live only as long as the process (``checkpointPersistence: false``)."""

    def __init__(self) -> None:
        self._data: dict[str, str] = {}

    def load(self, key: str) -> str | None:
        return self._data.get(key)

    def save(self, key: str, value: str) -> None:
        self._data[key] = value

    def delete(self, key: str) -> None:
        self._data.pop(key, None)

    def describe(self, key: str) -> str:
        return f"in-memory checkpoint {key!r}"

    def reset_instructions(self, key: str) -> str:
        return "restart the processor"


class FileCheckpointStore(CheckpointStore):
    """A JSON object in one file, replaced atomically on every save: a temporary file is written and
    fsynced, renamed over the old one, and the directory fsynced, so a crash leaves the old content
    or the new, never a mix or nothing."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).absolute()  # messages name it; a relative name says little in a pod's log
        self._lock = threading.Lock()

    def describe(self, key: str) -> str:
        return f"checkpoint file {self.path} (key {key!r})"

    def reset_instructions(self, key: str) -> str:
        return f"{RESET_REQUEST}, or delete {self.path}"

    def _corrupt(self, problem: str) -> CorruptCheckpointError:
        return CorruptCheckpointError(f"checkpoint file {self.path}", problem, self.reset_instructions(""))

    def _read(self) -> dict[str, str]:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise EnvironmentalError(f"checkpoint file {self.path} cannot be read: {exc}") from exc
        if not raw.strip():
            raise self._corrupt("is empty (a write was lost)")
        try:
            data = json.loads(raw.decode("utf-8"))
        except RecursionError:
            raise self._corrupt("is nested too deeply to be a checkpoint") from None
        except ValueError as exc:  # JSON and UTF-8 errors alike
            raise self._corrupt(f"is not JSON (truncated or overwritten?): {exc}") from None
        if not isinstance(data, dict):
            raise self._corrupt(f"holds a JSON {type(data).__name__}, not an object of positions")
        positions = {}
        for key, value in data.items():
            # Ints were accepted before positions were strings everywhere; keep reading them.
            if isinstance(value, bool) or not isinstance(value, (str, int)):
                raise self._corrupt(f"holds {type(value).__name__} under {key!r}, not a position text")
            positions[key] = str(value)
        return positions

    def _read_for_reset(self) -> dict[str, str]:
        """The positions, or none when the file is corrupt: a reset is the documented way out of a
        corrupt file, so it sets the file aside (kept for inspection) instead of failing on it."""
        try:
            return self._read()
        except CorruptCheckpointError as exc:
            aside = self.path.with_name(self.path.name + ".corrupt")
            os.replace(self.path, aside)
            log.warning("checkpoint reset: the corrupt checkpoint file was moved aside",
                        extra={"path": str(self.path), "moved_to": str(aside), "error": str(exc)})
            return {}

    def _write(self, data: dict[str, str]) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "w", encoding="utf-8") as handle:
                json.dump(data, handle, sort_keys=True)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
            fsync_directory(self.path.parent)
        except OSError as exc:
            # A full or failing disk is the machine's state, not the data's: the pipeline stops
            # (nothing further acknowledged) instead of counting messages as failed.
            with suppress(OSError):
                tmp.unlink(missing_ok=True)
            raise EnvironmentalError(f"checkpoint file {self.path} cannot be written: {exc}") from exc

    def load(self, key: str) -> str | None:
        with self._lock:
            return self._read().get(key)

    def save(self, key: str, value: str) -> None:
        with self._lock:
            data = self._read()
            data[key] = value
            self._write(data)

    def delete(self, key: str) -> None:
        with self._lock:
            data = self._read_for_reset()
            if data.pop(key, None) is not None:
                self._write(data)


_scope = threading.local()


class BlockSync(Protocol):
    """Durable work an acknowledgement defers to the end of the :func:`deferred_saves` block."""

    def flush_if_due(self) -> None:
        ...


@contextmanager
def deferred_saves() -> Iterator[None]:
    """Acknowledgements made inside this block save their positions once, when it ends.

    Writers acknowledge a whole written batch inside one block, so with ``checkpointSyncOnAck`` the
    position covering the batch is durable before the next batch is written: a crash then repeats
    at most the batch in flight. A Kafka source with ``ackGranularity: message`` commits once for
    the block in the same way, and the block returns only after that commit.
    """
    if getattr(_scope, "pending", None) is not None:
        yield
        return
    pending: set[BlockSync] = set()
    _scope.pending = pending
    try:
        yield
    finally:
        _scope.pending = None
        for sync in pending:
            sync.flush_if_due()


def defer_to_block_end(sync: BlockSync) -> bool:
    """Run ``sync.flush_if_due()`` when the enclosing :func:`deferred_saves` block ends (once, however
    often it is asked); False outside such a block, where the caller syncs at once."""
    pending: set[BlockSync] | None = getattr(_scope, "pending", None)
    if pending is None:
        return False
    pending.add(sync)
    return True


class Checkpointer:
    """Holds the latest acknowledged position of one source and persists it debounced.

    ``update`` is cheap and called on every ack; the value reaches the store at most once per
    ``save_interval`` (or right away with ``sync_on_ack``, still coalesced to that interval), and
    always on :meth:`flush` (graceful shutdown).
    """

    def __init__(self, store: CheckpointStore, key: str, *, save_interval: float,
                 sync_on_ack: bool = False) -> None:
        self.store = store
        self.key = key
        self.save_interval = save_interval
        self.sync_on_ack = sync_on_ack
        self._lock = threading.Lock()
        self._pending: str | None = None
        self._last_saved_at = float("-inf")

    def load(self) -> str | None:
        return self.store.load(self.key)

    def reset(self) -> None:
        self.store.delete(self.key)

    def update(self, value: str) -> None:
        with self._lock:
            self._pending = value
        if self.sync_on_ack and not defer_to_block_end(self):
            self.flush_if_due()

    def flush_if_due(self) -> None:
        """Save now if ``save_interval`` has passed since the last save (``checkpointSyncOnAck``
        saves this way on every ack, so still at most once per interval)."""
        if time.monotonic() - self._last_saved_at >= self.save_interval:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            value, self._pending = self._pending, None
            if value is None:
                return
            try:
                self.store.save(self.key, value)
            except Exception:
                self._pending = value if self._pending is None else self._pending
                raise
            self._last_saved_at = time.monotonic()
