"""Starting, watching and stopping peer processes.

Every peer runs in its own session (process group) so that stopping it also stops anything it
spawned; every process started here is also registered for an `atexit` sweep and asked to die with
its parent (PR_SET_PDEATHSIG), so an interrupted pytest run leaves nothing behind.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

POLL_INTERVAL_S = 0.1
LOG_TAIL_LINES = 60
_PR_SET_PDEATHSIG = 1

_running: set[ManagedProcess] = set()
_ports_handed_out: set[int] = set()


class PeerStartError(RuntimeError):
    """A peer did not come up; the message carries the tail of its log."""


def free_port(host: str = "127.0.0.1") -> int:
    """A port the kernel just handed out; the peer binds it right after (a tiny race we accept).

    Ports are never handed out twice in one run: a peer that takes several ports (etcd, Kafka) picks
    them all before binding any, and the kernel may offer a just-released port again.
    """
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            port = int(sock.getsockname()[1])
        if port not in _ports_handed_out:
            _ports_handed_out.add(port)
            return port


def _die_with_parent() -> None:
    # Runs in the child between fork and exec (after any uid change, which would clear the setting).
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class ManagedProcess:
    """One peer process: started in a new session, output to a log file, stopped as a group."""

    def __init__(self, name: str, argv: Sequence[str | Path], log_path: Path, *,
                 env: Mapping[str, str] | None = None, cwd: Path | None = None,
                 user: int | None = None, group: int | None = None) -> None:
        self.name = name
        self.argv = [str(arg) for arg in argv]
        self.log_path = log_path
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.user = user
        self.group = group
        self._popen: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen else None

    def start(self) -> None:
        if self.alive():
            return
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            log.write(f"\n==== start {time.strftime('%H:%M:%S')}: {' '.join(self.argv)}\n".encode())
            log.flush()
            # The parent-death signal fires when the *thread* that forked exits, so it is only safe from
            # the main thread; a peer (re)started from a helper thread relies on the atexit sweep.
            on_main_thread = threading.current_thread() is threading.main_thread()
            self._popen = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=self.env,
                cwd=self.cwd, start_new_session=True, user=self.user, group=self.group,
                preexec_fn=_die_with_parent if on_main_thread else None,  # noqa: PLW1509 - prctl only
            )
        _running.add(self)

    def alive(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    def returncode(self) -> int | None:
        return self._popen.poll() if self._popen else None

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout_s: float = 30.0) -> None:
        """Signal the whole group, wait for the leader, then SIGKILL whatever is left of the group."""
        popen = self._popen
        if popen is None:
            return
        pgid = popen.pid  # start_new_session: the leader's pid is the group id
        if popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                popen.wait(timeout=timeout_s)
        # Children may outlive the leader (or the leader ignored the signal): make sure.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            popen.wait(timeout=10)
        _running.discard(self)

    def tail(self) -> str:
        return log_tail(self.log_path)

    def failure(self, what: str) -> PeerStartError:
        code = self.returncode()
        state = f"exited with {code}" if code is not None else "still running"
        return PeerStartError(f"{self.name} {what} ({state}); log {self.log_path}:\n{self.tail()}")


def wait_until(check: Callable[[], T | None], *, deadline_s: float, what: str,
               process: ManagedProcess | None = None,
               retry_on: tuple[type[BaseException], ...] = (Exception,)) -> T:
    """Poll `check` until it returns something other than None/False; fail early if the process dies.

    Exceptions of the `retry_on` types raised by `check` count as "not yet" (the peer is still coming
    up); the last one is reported if the deadline passes. Others propagate at once.
    """
    deadline = time.monotonic() + deadline_s
    last_error: BaseException | None = None
    while True:
        try:
            result = check()
        except retry_on as exc:
            last_error = exc
            result = None
        if result is not None and result is not False:
            return result
        if process is not None and not process.alive():
            raise process.failure(f"died while waiting until {what}")
        if time.monotonic() >= deadline:
            detail = f"; last error: {last_error!r}" if last_error else ""
            if process is not None:
                raise process.failure(f"not ready after {deadline_s:.0f}s waiting until {what}{detail}")
            raise TimeoutError(f"not ready after {deadline_s:.0f}s waiting until {what}{detail}")
        time.sleep(POLL_INTERVAL_S)


def _stop_all() -> None:
    for process in list(_running):
        process.stop(timeout_s=5)


atexit.register(_stop_all)
