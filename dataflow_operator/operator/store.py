"""The informer's cache (client-go's ``cache.Store`` / ``Indexer``): key -> object, with named indices,
safe to read from any thread.

Its informer writes it through :meth:`Store.put`, :meth:`Store.delete` and :meth:`Store.replace`;
the reconciler records its own write results through :meth:`Store.mutated` (client-go's mutation
cache), which a stale result can never win.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import Any

Obj = dict[str, Any]
IndexFunc = Callable[[Obj], Iterable[str]]

# Deletions remembered for the mutation cache; a write result is at most a few seconds late.
MAX_TOMBSTONES = 10_000


def object_key(obj: Obj) -> str:
    metadata = obj.get("metadata") or {}
    namespace = metadata.get("namespace")
    return f"{namespace}/{metadata.get('name')}" if namespace else str(metadata.get("name"))


def resource_version(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


def version_number(version: str) -> int | None:
    # Resource versions are opaque, but every API server backed by etcd issues increasing integers;
    # client-go's mutation cache relies on the same.
    try:
        return int(version)
    except ValueError:
        return None


class Store:
    def __init__(self, indexers: Mapping[str, IndexFunc] | None = None) -> None:
        self._items: dict[str, Obj] = {}
        self._indexers = dict(indexers or {})
        # index name -> indexed value -> keys of the objects that yield it
        self._indices: dict[str, dict[str, set[str]]] = {name: {} for name in self._indexers}
        # key -> resourceVersion at which it was seen gone, so a late write result cannot resurrect it.
        self._deleted_at: OrderedDict[str, int] = OrderedDict()
        self._lock = threading.Lock()

    # ---------------------------------------------------------------------------------------------
    # reads

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

    def by_index(self, index: str, value: str) -> list[str]:
        """Keys of the objects whose ``index`` function yields ``value``."""
        with self._lock:
            return sorted(self._indices[index].get(value, ()))

    # ---------------------------------------------------------------------------------------------
    # writes by the informer

    def put(self, obj: Obj) -> Obj | None:
        """Add or replace ``obj``; returns what the store held before."""
        key = object_key(obj)
        with self._lock:
            old = self._set(key, obj)
            self._deleted_at.pop(key, None)
            return old

    def delete(self, obj: Obj) -> Obj | None:
        """Forget ``obj`` (a deletion seen at its resourceVersion); returns what the store held."""
        key = object_key(obj)
        version = version_number(resource_version(obj))
        with self._lock:
            if version is not None:
                self._deleted_at[key] = version
                self._deleted_at.move_to_end(key)
                while len(self._deleted_at) > MAX_TOMBSTONES:
                    self._deleted_at.popitem(last=False)
            old = self._items.pop(key, None)
            if old is not None:
                self._reindex(key, old, None)
            return old

    def replace(self, objects: Iterable[Obj], version: str) -> dict[str, Obj]:
        """Hold exactly ``objects``, a list taken at ``version``; returns the previous contents."""
        items = {object_key(obj): obj for obj in objects}
        number = version_number(version)
        with self._lock:
            old = self._items
            self._items = items
            self._indices = {name: {} for name in self._indexers}
            for key, obj in items.items():
                self._reindex(key, None, obj)
            self._deleted_at = OrderedDict() if number is None else \
                OrderedDict((key, number) for key in old if key not in items)
            return old

    # ---------------------------------------------------------------------------------------------
    # the mutation cache

    def mutated(self, obj: Obj) -> None:
        """Record the object a write returned, so a reconcile that runs before the watch delivers it
        does not act on the older copy. Ignored unless newer than what the cache holds."""
        version = version_number(resource_version(obj))
        if version is None:
            return
        key = object_key(obj)
        with self._lock:
            if version <= self._deleted_at.get(key, -1):
                return
            current = self._items.get(key)
            current_version = version_number(resource_version(current)) if current is not None else None
            if current is None or current_version is None or current_version < version:
                self._set(key, obj)

    # ---------------------------------------------------------------------------------------------

    def _set(self, key: str, obj: Obj) -> Obj | None:
        old = self._items.get(key)
        self._items[key] = obj
        self._reindex(key, old, obj)
        return old

    def _reindex(self, key: str, old: Obj | None, new: Obj | None) -> None:
        for name, function in self._indexers.items():
            index = self._indices[name]
            for value in set(function(old)) if old is not None else set():
                keys = index.get(value)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del index[value]
            for value in set(function(new)) if new is not None else set():
                index.setdefault(value, set()).add(key)
