"""An informer (client-go's ``SharedIndexInformer``): one :class:`~.listwatch.ListWatch` fills one
:class:`~.store.Store` and tells event handlers what changed. The store holds exactly what the
list and watch returned - nothing else decides it - so informers are independent and start in any
order.

Each :class:`Informer` runs one thread that lists (paginated), replays the list to the handlers, then
watches from the list's resourceVersion with bookmarks, a server-side ``timeoutSeconds`` and a client
read timeout; a stream that ends is resumed from the last resourceVersion seen (an event's or a
bookmark's). "410 Gone" - as an ApiException when the watch starts or as an ERROR event in the
stream - means that resourceVersion is compacted away: it relists and replays, handlers seeing an
add, update or delete for every difference, so nothing is missed. A second thread is the inactivity
watchdog (no event and no bookmark for ``inactivity_timeout`` -> the stream is shut down and
restarted) and the periodic resync (``on_update(obj, obj)`` for every cached object).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from kubernetes.client.exceptions import ApiException

from .kube import KubeError
from .listwatch import ListWatch, WatchStream
from .store import IndexFunc, Obj, Store, object_key, resource_version

log = logging.getLogger(__name__)

Handler = Callable[[Obj], None]
UpdateHandler = Callable[[Obj, Obj], None]

MIN_WATCH_TIMEOUT = 300.0       # client-go: 5 min, randomised up to 10 so watches do not restart in step
INACTIVITY_TIMEOUT = 150.0      # API servers send a bookmark about once a minute to idle watches
BACKOFF_INITIAL, BACKOFF_MAX = 0.8, 30.0


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
                 read_timeout: float | None = None, indexers: Mapping[str, IndexFunc] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.store = Store(indexers)
        self._list_watch = list_watch
        self._resync_period = resync_period
        self._min_watch_timeout = min_watch_timeout
        self._inactivity_timeout = inactivity_timeout
        # A socket-level backstop behind the watchdog, for a peer that vanished without a FIN.
        self._read_timeout = read_timeout or max(2 * inactivity_timeout, 60.0)
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
        old = self.store.replace(items, version)
        self._version = version
        self.relists += 1
        listed: set[str] = set()
        for obj in items:
            key = object_key(obj)
            listed.add(key)
            previous = old.get(key)
            if previous is None:
                self._dispatch_add(obj)
            else:
                self._dispatch_update(previous, obj)
        for key, obj in old.items():
            if key not in listed:
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
        if kind in ("ADDED", "MODIFIED"):
            previous = self.store.put(obj)
            if previous is None:
                self._dispatch_add(obj)
            else:
                self._dispatch_update(previous, obj)
        elif kind == "DELETED" and self.store.delete(obj) is not None:
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
