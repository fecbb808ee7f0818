"""The informer's list/watch logic against a scripted ListWatch: replay, 410 both ways, bookmarks,
the inactivity watchdog, resync, indices; and the store's indices and mutation cache."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from dataflow_operator.operator.informer import Informer
from dataflow_operator.operator.store import Obj, Store
from tests.processes import wait_for

_END, _ABORT = object(), object()


def obj(name: str, rv: int, **extra: Any) -> Obj:
    return {"metadata": {"name": name, "namespace": "ns", "resourceVersion": str(rv), **extra}}


class Stream:
    def __init__(self) -> None:
        self._events: queue.Queue[Any] = queue.Queue()
        self.aborted = threading.Event()

    def push(self, kind: str, item: Obj) -> None:
        self._events.put({"type": kind, "object": item})

    def end(self) -> None:
        self._events.put(_END)

    def __iter__(self) -> Iterator[Obj]:
        while True:
            event = self._events.get()
            if event is _END:
                return
            if event is _ABORT:
                raise OSError("connection shut down")
            yield event

    def abort(self) -> None:
        self.aborted.set()
        self._events.put(_ABORT)

    def close(self) -> None:
        pass


class ScriptedListWatch:
    def __init__(self) -> None:
        self.lists: queue.Queue[tuple[list[Obj], str]] = queue.Queue()
        self.watches: queue.Queue[Stream | Exception] = queue.Queue()
        self.watched_from: list[str] = []
        self.list_calls = 0

    def list(self) -> tuple[list[Obj], str]:
        self.list_calls += 1
        return self.lists.get(timeout=10)

    def watch(self, resource_version: str, timeout_seconds: int, read_timeout: float) -> Stream:
        self.watched_from.append(resource_version)
        item = self.watches.get(timeout=10)
        if isinstance(item, Exception):
            raise item
        return item


class Recorder:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str]] = []
        self.lock = threading.Lock()

    def add(self, item: Obj) -> None:
        self._record("add", item)

    def update(self, old: Obj, new: Obj) -> None:
        self._record("update", new)

    def delete(self, item: Obj) -> None:
        self._record("delete", item)

    def _record(self, what: str, item: Obj) -> None:
        with self.lock:
            self.seen.append((what, item["metadata"]["name"], item["metadata"]["resourceVersion"]))

    def snapshot(self) -> list[tuple[str, str, str]]:
        with self.lock:
            return list(self.seen)


@pytest.fixture
def scripted() -> Iterator[tuple[ScriptedListWatch, Recorder, list[Informer]]]:
    informers: list[Informer] = []
    yield ScriptedListWatch(), Recorder(), informers
    for informer in informers:
        informer.stop(timeout=5)


def start(scripted: tuple[ScriptedListWatch, Recorder, list[Informer]], **options: Any) -> Informer:
    list_watch, recorder, informers = scripted
    informer = Informer("test", list_watch, **options)
    informer.add_handler(recorder.add, recorder.update, recorder.delete)
    informers.append(informer)
    informer.start()
    return informer


def test_list_then_watch_events(scripted: tuple[ScriptedListWatch, Recorder, list[Informer]]) -> None:
    list_watch, recorder, _ = scripted
    list_watch.lists.put(([obj("a", 1), obj("b", 2)], "10"))
    stream = Stream()
    list_watch.watches.put(stream)
    informer = start(scripted)
    assert informer.wait_for_sync(5)
    stream.push("MODIFIED", obj("a", 11))
    stream.push("ADDED", obj("c", 12))
    stream.push("DELETED", obj("b", 13))
    wait_for(lambda: len(recorder.snapshot()) == 5, timeout=5, message="5 events")
    assert recorder.snapshot() == [("add", "a", "1"), ("add", "b", "2"), ("update", "a", "11"), ("add", "c", "12"),
                                   ("delete", "b", "13")]
    assert sorted(informer.store.list_keys()) == ["ns/a", "ns/c"]
    assert informer.store.get("ns/a") == obj("a", 11)
    assert list_watch.watched_from == ["10"]


def test_stream_end_resumes_from_the_last_bookmark(scripted: tuple[ScriptedListWatch, Recorder, list[Informer]]) \
        -> None:
    list_watch, recorder, _ = scripted
    list_watch.lists.put(([], "10"))
    first, second = Stream(), Stream()
    list_watch.watches.put(first)
    list_watch.watches.put(second)
    start(scripted)
    first.push("ADDED", obj("a", 11))
    first.push("BOOKMARK", {"metadata": {"resourceVersion": "25"}})
    first.end()
    wait_for(lambda: len(list_watch.watched_from) == 2, timeout=5, message="re-watch")
    assert list_watch.watched_from == ["10", "25"]
    assert list_watch.list_calls == 1, "a normal end of the stream does not relist"
    assert recorder.snapshot() == [("add", "a", "11")]


@pytest.mark.parametrize("how", ["error event", "exception"])
def test_410_relists_and_replays_every_difference(scripted: tuple[ScriptedListWatch, Recorder, list[Informer]],
                                                  how: str) -> None:
    list_watch, recorder, _ = scripted
    list_watch.lists.put(([obj("a", 1), obj("b", 2)], "10"))
    stream = Stream()
    list_watch.watches.put(stream)
    informer = start(scripted)
    assert informer.wait_for_sync(5)
    # While the watch was away: a changed, b deleted, c created.
    list_watch.lists.put(([obj("a", 30), obj("c", 31)], "40"))
    if how == "error event":
        stream.push("ERROR", {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old"})
    else:
        stream.end()
        list_watch.watches.put(ApiException(status=410, reason="Gone"))
    list_watch.watches.put(Stream())
    wait_for(lambda: informer.relists == 2, timeout=5, message="relist")
    wait_for(lambda: len(recorder.snapshot()) == 5, timeout=5, message="replay")
    assert recorder.snapshot()[2:] == [("update", "a", "30"), ("add", "c", "31"), ("delete", "b", "2")]
    assert sorted(informer.store.list_keys()) == ["ns/a", "ns/c"]
    wait_for(lambda: list_watch.watched_from[-1] == "40", timeout=5, message="watch from the new list")


def test_other_errors_back_off_and_resume_without_relisting(
        scripted: tuple[ScriptedListWatch, Recorder, list[Informer]]) -> None:
    list_watch, _, _ = scripted
    list_watch.lists.put(([], "10"))
    list_watch.watches.put(ConnectionRefusedError("api server restarting"))
    list_watch.watches.put(Stream())
    informer = start(scripted)
    wait_for(lambda: len(list_watch.watched_from) == 2, timeout=10, message="retried watch")
    assert list_watch.watched_from == ["10", "10"]
    assert informer.relists == 1


def test_watchdog_restarts_a_silent_stream(scripted: tuple[ScriptedListWatch, Recorder, list[Informer]]) -> None:
    list_watch, recorder, _ = scripted
    list_watch.lists.put(([], "10"))
    silent, fresh = Stream(), Stream()
    list_watch.watches.put(silent)
    list_watch.watches.put(fresh)
    informer = start(scripted, inactivity_timeout=0.3)
    assert silent.aborted.wait(5), "the watchdog must cut a stream that sends nothing"
    assert informer.watchdog_restarts >= 1
    wait_for(lambda: len(list_watch.watched_from) == 2, timeout=5, message="re-watch")
    assert list_watch.watched_from == ["10", "10"]
    fresh.push("ADDED", obj("a", 11))
    wait_for(lambda: recorder.snapshot() == [("add", "a", "11")], timeout=5, message="event after restart")


def test_bookmarks_keep_a_quiet_stream_alive(scripted: tuple[ScriptedListWatch, Recorder, list[Informer]]) -> None:
    list_watch, _, _ = scripted
    list_watch.lists.put(([], "10"))
    stream = Stream()
    list_watch.watches.put(stream)
    informer = start(scripted, inactivity_timeout=0.5)
    for version in range(11, 19):
        stream.push("BOOKMARK", {"metadata": {"resourceVersion": str(version)}})
        assert not stream.aborted.wait(0.2)
    assert informer.watchdog_restarts == 0


def test_resync_hands_every_object_to_update(scripted: tuple[ScriptedListWatch, Recorder, list[Informer]]) -> None:
    list_watch, recorder, _ = scripted
    list_watch.lists.put(([obj("a", 1), obj("b", 2)], "10"))
    list_watch.watches.put(Stream())
    start(scripted, resync_period=0.2)
    wait_for(lambda: {("update", "a", "1"), ("update", "b", "2")} <= set(recorder.snapshot()), timeout=5,
             message="resync")


def refs(item: Obj) -> list[str]:
    return list(item["metadata"].get("refs", []))


def test_indices_follow_the_list_and_the_watch(scripted: tuple[ScriptedListWatch, Recorder, list[Informer]]) \
        -> None:
    list_watch, recorder, _ = scripted
    list_watch.lists.put(([obj("a", 1, refs=["pg"]), obj("b", 2, refs=["pg", "kafka"])], "10"))
    stream = Stream()
    list_watch.watches.put(stream)
    informer = start(scripted, indexers={"refs": refs})
    assert informer.wait_for_sync(5)
    assert informer.store.by_index("refs", "pg") == ["ns/a", "ns/b"]
    stream.push("MODIFIED", obj("a", 11, refs=["kafka"]))
    stream.push("DELETED", obj("b", 12, refs=["pg", "kafka"]))
    wait_for(lambda: len(recorder.snapshot()) == 4, timeout=5, message="events")
    assert informer.store.by_index("refs", "pg") == []
    assert informer.store.by_index("refs", "kafka") == ["ns/a"]
    assert informer.store.by_index("refs", "nothing") == []


def test_a_failing_handler_does_not_stop_the_informer(
        scripted: tuple[ScriptedListWatch, Recorder, list[Informer]]) -> None:
    list_watch, recorder, informers = scripted
    list_watch.lists.put(([obj("a", 1)], "10"))
    stream = Stream()
    list_watch.watches.put(stream)
    informer = Informer("test", list_watch)

    def broken(_item: Obj) -> None:
        raise RuntimeError("handler bug")

    informer.add_handler(on_add=broken)
    informer.add_handler(recorder.add)
    informers.append(informer)
    informer.start()
    stream.push("ADDED", obj("b", 11))
    wait_for(lambda: recorder.snapshot() == [("add", "a", "1"), ("add", "b", "11")], timeout=5, message="events")


def test_store_mutation_cache() -> None:
    store = Store()
    store.put(obj("a", 5))
    store.mutated(obj("a", 4))
    assert store.get("ns/a") == obj("a", 5), "an older write result never replaces a newer watch event"
    store.mutated(obj("a", 7))
    assert store.get("ns/a") == obj("a", 7)
    store.delete(obj("a", 9))
    store.mutated(obj("a", 8))
    assert store.get("ns/a") is None, "a write result older than the deletion does not resurrect the object"
    store.mutated(obj("a", 10))
    assert store.get("ns/a") == obj("a", 10)
    store.mutated({"metadata": {"name": "b", "namespace": "ns", "resourceVersion": "opaque"}})
    assert store.get("ns/b") is None


def test_a_relist_remembers_what_vanished_for_the_mutation_cache() -> None:
    store = Store({"refs": refs})
    store.put(obj("a", 5, refs=["pg"]))
    store.put(obj("b", 6, refs=["pg"]))
    old = store.replace([obj("b", 6, refs=["pg"])], "20")
    assert sorted(old) == ["ns/a", "ns/b"]
    store.mutated(obj("a", 15, refs=["pg"]))
    assert store.get("ns/a") is None, "gone at the list's version: an older write result stays out"
    store.mutated(obj("a", 21, refs=["pg"]))
    assert store.by_index("refs", "pg") == ["ns/a", "ns/b"], "a write result is indexed too"
    assert len(store) == 2

