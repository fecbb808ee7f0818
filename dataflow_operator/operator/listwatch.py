"""List and watch of one kind (client-go's ``cache.ListWatch``): a paginated list and a watch stream
read as raw lines.

The stream is read as raw lines (``_preload_content=False``) rather than through
``kubernetes.watch.Watch``: ``Watch`` deserialises every event into a model (slow, and the operator
works on dicts), retries a 410 once on its own with a stale resourceVersion, and exposes no way to
cut a silent connection from another thread - which the informer's watchdog needs.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from kubernetes.watch.watch import iter_resp_lines
from urllib3 import BaseHTTPResponse

from .kube import decode
from .store import Obj

# The official client's line splitter (it buffers partial chunks correctly); untyped, this is its contract.
_lines: Callable[[BaseHTTPResponse], Iterator[str]] = iter_resp_lines

PAGE_SIZE = 500


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
