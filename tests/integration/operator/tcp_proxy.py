"""A loopback TCP proxy that can turn the connections open at a given moment silent - the server's
bytes stop arriving while the sockets stay open, as with a stuck load balancer or a half-dead peer."""

from __future__ import annotations

import contextlib
import socket
import threading
from dataclasses import dataclass, field


@dataclass
class _Pair:
    client: socket.socket
    upstream: socket.socket
    silenced: threading.Event = field(default_factory=threading.Event)


class SilencingProxy:
    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self._upstream = (upstream_host, upstream_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._pairs: list[_Pair] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def silence_open_connections(self) -> int:
        """From now on nothing the server sends on the connections open now reaches the client."""
        with self._lock:
            for pair in self._pairs:
                pair.silenced.set()
            return len(self._pairs)

    def close(self) -> None:
        self._closed.set()
        self._listener.close()
        with self._lock:
            for pair in self._pairs:
                for sock in (pair.client, pair.upstream):
                    with contextlib.suppress(OSError):
                        sock.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
                upstream = socket.create_connection(self._upstream)
            except OSError:
                return
            pair = _Pair(client, upstream)
            with self._lock:
                self._pairs.append(pair)
            threading.Thread(target=self._pump, args=(client, upstream, None), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, pair.silenced), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, silenced: threading.Event | None) -> None:
        with contextlib.suppress(OSError):
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if silenced is not None and silenced.is_set():
                    continue  # swallowed: the client sees an open, silent connection
                target.sendall(data)
        for sock in (source, target):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
