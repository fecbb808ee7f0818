"""List + watch of one kind, a thread-safe cache of it, and event handlers - client-go's informer.

Each :class:`Informer` runs one thread that lists (paginated), replays the list to the handlers, then
watches from the list's resourceVersion with bookmarks, a server-side ``timeoutSeconds`` and a client
read timeout; a stream that ends is resumed from the last resourceVersion seen (an event's or a
bookmark's). "410 Gone" - as an ApiException when the watch starts or as an ERROR event in the
stream - means that resourceVersion is compacted away: it relists and replays, handlers seeing an
add, update or delete for every difference, so nothing is missed. A second thread is the inactivity
watchdog (no event and no bookmark for ``inactivity_timeout`` -> the stream is shut down and
restarted) and the periodic resync (``on_update(obj, obj)`` for every cached object).

The stream is read as raw lines (``_preload_content=False``) rather than through
``kubernetes.watch.Watch``: ``Watch`` deserialises every event into a model (slow, and the operator
works on dicts), retries a 410 once on its own with a stale resourceVersion, and exposes no way to
cut a silent connection from another thread - which the watchdog needs.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from kubernetes.client.exceptions import ApiException
from kubernetes.watch.watch import iter_resp_lines
from urllib3 import BaseHTTPResponse

from .kube import KubeError, decode

log = logging.getLogger(__name__)

Obj = dict[str, Any]
Handler = Callable[[Obj], None]
UpdateHandler = Callable[[Obj, Obj], None]

# The official client's line splitter (it buffers partial chunks correctly); untyped, this is its contract.
_lines: Callable[[BaseHTTPResponse], Iterator[str]] = iter_resp_lines

PAGE_SIZE = 500
# Deletions remembered for the mutation cache; a write result is at most a few seconds late.
MAX_TOMBSTONES = 10_000
MIN_WATCH_TIMEOUT = 300.0       # client-go: 5 min, randomised up to 10 so watches do not restart in step
INACTIVITY_TIMEOUT = 150.0      # API servers send a bookmark about once a minute to idle watches
BACKOFF_INITIAL, BACKOFF_MAX = 0.8, 30.0


def object_key(obj: Obj) -> str:
    metadata = obj.get("metadata") or {}
    namespace = metadata.get("namespace")
    return f"{namespace}/{metadata.get('name')}" if namespace else str(metadata.get("name"))


def resource_version(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


def _rv_number(obj: Obj) -> int | None:
    # Resource versions are opaque, but every API server backed by etcd issues increasing integers;
    # client-go's mutation cache relies on the same.
    try:
        return int(resource_version(obj))
    except ValueError:
        return None


class Store:
    """The cache: key -> object, safe to read from any thread. Only its informer writes to it, except
    :meth:`mutated`."""

    def __init__(self) -> None:
        self._items: dict[str, Obj] = {}
        # key -> resourceVersion at which it was seen gone, so a late write result cannot resurrect it.
        self._deleted_at: OrderedDict[str, int] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> Obj | None:
        with self._lock:
            return self._items.get(key)

    def objects(self) -> list[Obj]:
        with self._lock:
            return list(self._items.values())

    def list_keys(self) -> list[str]:
        with self._lock:
            return list(self._items)

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def mutated(self, obj: Obj) -> None:
        """Record the object a write returned, so a reconcile that runs before the watch delivers it
        does not act on the older copy. Ignored unless newer than what the cache holds."""
        version = _rv_number(obj)
        if version is None:
            return
        key = object_key(obj)
        with self._lock:
            if version <= self._deleted_at.get(key, -1):
                return
            current = self._items.get(key)
            current_version = _rv_number(current) if current is not None else None
            if current is None or current_version is None or current_version < version:
                self._items[key] = obj

    def _put(self, key: str, obj: Obj) -> Obj | None:
        with self._lock:
            old = self._items.get(key)
            self._items[key] = obj
            self._deleted_at.pop(key, None)
            return old

    def _delete(self, key: str, version: int | None) -> Obj | None:
        with self._lock:
            if version is not None:
                self._deleted_at[key] = version
                self._deleted_at.move_to_end(key)
                while len(self._deleted_at) > MAX_TOMBSTONES:
                    self._deleted_at.popitem(last=False)
            return self._items.pop(key, None)

    def _replace(self, items: dict[str, Obj], version: int | None) -> dict[str, Obj]:
        with self._lock:
            old = self._items
            self._items = dict(items)
            self._deleted_at = OrderedDict() if version is None else \
                OrderedDict((k, version) for k in old if k not in items)
            return old


class WatchStream(Protocol):
    def __iter__(self) -> Iterator[Obj]: ...

    def abort(self) -> None:
        """Unblock a read in progress from another thread."""

    def close(self) -> None: ...


class ListWatch(Protocol):
    def list(self) -> tuple[list[Obj], str]:
        """Every object and the list's resourceVersion."""

    def watch(self, resource_version: str, timeout_seconds: int, read_timeout: float) -> WatchStream: ...


class HttpWatchStream:
    def __init__(self, response: BaseHTTPResponse) -> None:
        self._response = response

    def __iter__(self) -> Iterator[Obj]:
        for line in _lines(self._response):
            if line.strip():
                event = json.loads(line)
                if isinstance(event, dict):
                    yield event

    def abort(self) -> None:
        # ValueError/RuntimeError: the response already finished or gave its connection back.
        with contextlib.suppress(ValueError, RuntimeError, OSError):
            self._response.shutdown()

    def close(self) -> None:
        self._response.close()
        self._response.release_conn()


class ApiListWatch:
    """List and watch through one official-client list function (see ``KubeClient.list_function``)."""

    def __init__(self, function: Any, args: tuple[Any, ...], *, label_selector: str | None = None,
                 request_timeout: tuple[float, float] = (5.0, 60.0)) -> None:
        self._function = function
        self._args = args
        self._selector = {"label_selector": label_selector} if label_selector else {}
        self._timeout = request_timeout

    def list(self) -> tuple[list[Obj], str]:
        items: list[Obj] = []
        token: str | None = None
        version = ""
        while True:
            page = decode(self._function(*self._args, limit=PAGE_SIZE, _continue=token,
                                         _preload_content=False, _request_timeout=self._timeout,
                                         **self._selector))
            items.extend(page.get("items") or [])
            metadata = page.get("metadata") or {}
            version = version or str(metadata.get("resourceVersion") or "")
            token = metadata.get("continue")
            if not token:
                return items, version

    def watch(self, resource_version: str, timeout_seconds: int, read_timeout: float) -> WatchStream:
        response = self._function(*self._args, watch=True, resource_version=resource_version,
                                  allow_watch_bookmarks=True, timeout_seconds=timeout_seconds,
                                  _preload_content=False, _request_timeout=(self._timeout[0], read_timeout),
                                  **self._selector)
        return HttpWatchStream(response)


class WatchExpiredError(Exception):
    """410 Gone: the watch's resourceVersion is too old."""


@dataclass(slots=True)
class _Handlers:
    on_add: Handler | None
    on_update: UpdateHandler | None
    on_delete: Handler | None


class Informer:
    def __init__(self, name: str, list_watch: ListWatch, *, resync_period: float = 0.0,
                 min_watch_timeout: float = MIN_WATCH_TIMEOUT, inactivity_timeout: float = INACTIVITY_TIMEOUT,
                 read_timeout: float | None = None, admit: Callable[[Obj], bool] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.store = Store()
        self._list_watch = list_watch
        self._resync_period = resync_period
        self._min_watch_timeout = min_watch_timeout
        self._inactivity_timeout = inactivity_timeout
        # A socket-level backstop behind the watchdog, for a peer that vanished without a FIN.
        self._read_timeout = read_timeout or max(2 * inactivity_timeout, 60.0)
        self._admit = admit
        self._clock = clock
        self._handlers: list[_Handlers] = []
        self._version = ""
        self._synced = threading.Event()
        self._stopped = threading.Event()
        self._stream_lock = threading.Lock()
        self._stream: WatchStream | None = None
        self._last_activity = clock()
        self._threads: list[threading.Thread] = []
        # Counters for logs and tests: how often the informer had to recover.
        self.relists = 0
        self.watchdog_restarts = 0

    def add_handler(self, on_add: Handler | None = None, on_update: UpdateHandler | None = None,
                    on_delete: Handler | None = None) -> None:
        """Register before :meth:`start`; handlers run on the informer's threads and must be quick."""
        self._handlers.append(_Handlers(on_add, on_update, on_delete))

    def has_synced(self) -> bool:
        return self._synced.is_set()

    def alive(self) -> bool:
        """Both threads running (until :meth:`stop`)."""
        return bool(self._threads) and all(thread.is_alive() for thread in self._threads)

    def wait_for_sync(self, timeout: float | None = None) -> bool:
        return self._synced.wait(timeout)

    def start(self) -> None:
        self._threads = [threading.Thread(target=self._run, name=f"informer-{self.name}", daemon=True),
                         threading.Thread(target=self._housekeeping, name=f"informer-{self.name}-watchdog",
                                          daemon=True)]
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopped.set()
        self._abort_stream()
        for thread in self._threads:
            thread.join(timeout)

    # ---------------------------------------------------------------------------------------------
    # the list/watch thread

    def _run(self) -> None:
        backoff = BACKOFF_INITIAL
        need_list = True
        while not self._stopped.is_set():
            try:
                if need_list:
                    self._list_and_replay()
                    need_list = False
                self._watch()
                backoff = BACKOFF_INITIAL
            except WatchExpiredError:
                log.info("watch expired (410), relisting", extra={"informer": self.name})
                need_list = True
            except (*KubeError, ValueError) as exc:
                if self._stopped.is_set():
                    return
                log.warning("list/watch failed, retrying", extra={"informer": self.name, "error": str(exc),
                                                                  "retry_in_s": round(backoff, 2)})
                # Without a resourceVersion to resume from, only a fresh list can continue.
                need_list = need_list or not self._version
                self._stopped.wait(backoff * random.uniform(0.8, 1.2))
                backoff = min(backoff * 2, BACKOFF_MAX)
            except Exception:
                # A bug must not leave the cache silently stale for the life of the process.
                log.exception("informer failed unexpectedly; relisting", extra={"informer": self.name})
                need_list = True
                self._stopped.wait(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)

    def _list_and_replay(self) -> None:
        items, version = self._list_watch.list()
        admitted = {object_key(obj): obj for obj in items if self._admit is None or self._admit(obj)}
        try:
            version_number: int | None = int(version)
        except ValueError:
            version_number = None
        old = self.store._replace(admitted, version_number)
        self._version = version
        self.relists += 1
        for key, obj in admitted.items():
            previous = old.get(key)
            if previous is None:
                self._dispatch_add(obj)
            else:
                self._dispatch_update(previous, obj)
        for key, obj in old.items():
            if key not in admitted:
                self._dispatch_delete(obj)
        self._synced.set()

    def _watch(self) -> None:
        timeout = int(self._min_watch_timeout * (1 + random.random()))
        try:
            stream = self._list_watch.watch(self._version, timeout, self._read_timeout)
        except ApiException as exc:
            if exc.status == 410:
                raise WatchExpiredError() from exc
            raise
        with self._stream_lock:
            self._stream = stream
        self._touch()
        try:
            for event in stream:
                self._touch()
                if self._stopped.is_set():
                    return
                self._handle(event)
        finally:
            with self._stream_lock:
                self._stream = None
            stream.close()

    def _handle(self, event: Obj) -> None:
        kind = event.get("type")
        obj = event.get("object") or {}
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise WatchExpiredError()
            raise ValueError(f"watch error event: {obj.get('code')} {obj.get('reason')}: "
                             f"{obj.get('message')}")
        version = resource_version(obj)
        if kind == "BOOKMARK":
            self._version = version or self._version
            return
        key = object_key(obj)
        if kind in ("ADDED", "MODIFIED"):
            if self._admit is not None and not self._admit(obj):
                # No longer of interest (e.g. a Secret nobody references now): forget it.
                gone = self.store._delete(key, None)
                if gone is not None:
                    self._dispatch_delete(gone)
            else:
                previous = self.store._put(key, obj)
                if previous is None:
                    self._dispatch_add(obj)
                else:
                    self._dispatch_update(previous, obj)
        elif kind == "DELETED" and self.store._delete(key, _rv_number(obj)) is not None:
            self._dispatch_delete(obj)
        self._version = version or self._version

    # ---------------------------------------------------------------------------------------------
    # watchdog and resync

    def _touch(self) -> None:
        self._last_activity = self._clock()

    def _abort_stream(self) -> None:
        with self._stream_lock:
            stream = self._stream
        if stream is not None:
            stream.abort()

    def _housekeeping(self) -> None:
        tick = min(1.0, self._inactivity_timeout / 4, *([self._resync_period / 4] if self._resync_period > 0 else []))
        next_resync = self._clock() + self._resync_period
        while not self._stopped.wait(tick):
            now = self._clock()
            with self._stream_lock:
                streaming = self._stream is not None
            if streaming and now - self._last_activity > self._inactivity_timeout:
                log.warning("watch silent, restarting it", extra={
                    "informer": self.name, "silent_s": round(now - self._last_activity, 1)})
                self.watchdog_restarts += 1
                self._touch()
                self._abort_stream()
            if self._resync_period > 0 and now >= next_resync:
                next_resync = now + self._resync_period
                if self.has_synced():
                    self.resync()

    def resync(self) -> None:
        """Hand every cached object to the update handlers, as if it had changed."""
        for obj in self.store.objects():
            self._dispatch_update(obj, obj)

    # ---------------------------------------------------------------------------------------------
    # handlers: one failing handler must not stop the informer or the other handlers

    def _dispatch_add(self, obj: Obj) -> None:
        for handlers in self._handlers:
            if handlers.on_add is not None:
                self._safely(handlers.on_add, obj)

    def _dispatch_update(self, old: Obj, new: Obj) -> None:
        for handlers in self._handlers:
            if handlers.on_update is not None:
                self._safely(handlers.on_update, old, new)

    def _dispatch_delete(self, obj: Obj) -> None:
        for handlers in self._handlers:
            if handlers.on_delete is not None:
                self._safely(handlers.on_delete, obj)

    def _safely(self, handler: Callable[..., None], *args: Obj) -> None:
        try:
            handler(*args)
        except Exception:
            log.exception("informer event handler failed", extra={"informer": self.name})
