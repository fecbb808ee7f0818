"""Where sources keep their read positions between runs.

A store maps one key per source type (``postgresql``, ``file``, ...) to a JSON string. Locally it is
a JSON file; in a cluster it is the ConfigMap ``df-<name>-checkpoint``
(:mod:`dataflow_operator.processor.configmap_checkpoint`). :class:`Checkpointer` debounces writes.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)


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


class FileCheckpointStore(CheckpointStore):
    """A JSON object in one file, replaced atomically (write, fsync, rename) on every save."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def _read(self) -> dict[str, str]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise RuntimeError(f"checkpoint file {self.path} is unreadable: {exc}") from exc
        if not isinstance(data, dict):
            raise RuntimeError(f"checkpoint file {self.path} does not hold a JSON object")
        return {str(k): str(v) for k, v in data.items()}

    def _write(self, data: dict[str, str]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(data, handle, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)

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
            data = self._read()
            if data.pop(key, None) is not None:
                self._write(data)


_scope = threading.local()


@contextmanager
def deferred_saves() -> Iterator[None]:
    """Acknowledgements made inside this block save their checkpoints once, when it ends.

    Writers acknowledge a whole written batch inside one block, so with ``checkpointSyncOnAck`` the
    position covering the batch is durable before the next batch is written: a crash then repeats
    at most the batch in flight.
    """
    if getattr(_scope, "pending", None) is not None:
        yield
        return
    pending: set[Checkpointer] = set()
    _scope.pending = pending
    try:
        yield
    finally:
        _scope.pending = None
        for checkpointer in pending:
            checkpointer.sync_if_due()


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
        if self.sync_on_ack:
            scope = getattr(_scope, "pending", None)
            if scope is not None:
                scope.add(self)
            else:
                self.sync_if_due()

    def sync_if_due(self) -> None:
        """``checkpointSyncOnAck``: save now, coalesced to at most once per ``save_interval``."""
        if time.monotonic() - self._last_saved_at >= self.save_interval:
            self.flush()

    def flush_if_due(self) -> None:
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
