"""containerd (Debian's 1.6) as the test node's container runtime, with a root, state and socket of
its own, and the images the node runs imported from OCI archives (no registry is reachable)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path

from tests.peers.process import ManagedProcess, wait_until

START_DEADLINE_S = 60.0
STOP_TIMEOUT_S = 30.0
# The CRI plugin's namespace: images must be there for the kubelet to see them.
K8S_NAMESPACE = "k8s.io"


def config_toml(base_dir: Path, socket: Path, sandbox_image: str, cni_bin_dir: Path, cni_conf_dir: Path) -> str:
    return f"""version = 2
root = "{base_dir / 'root'}"
state = "{base_dir / 'state'}"
[grpc]
  address = "{socket}"
[ttrpc]
  address = "{socket}.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "{base_dir / 'opt'}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{sandbox_image}"
  # These machines may not lower OOM scores; without this runc fails with
  # "can't get final child's PID from pipe".
  restrict_oom_score_adj = true
  # Pod network namespaces under our state directory, not /var/run/netns: cleanup knows where they are.
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{cni_bin_dir}"
    conf_dir = "{cni_conf_dir}"
    max_conf_num = 1
"""


class Containerd:
    def __init__(self, base_dir: Path, *, sandbox_image: str, cni_bin_dir: Path, cni_conf_dir: Path) -> None:
        self.base_dir = base_dir
        self.socket = base_dir / "containerd.sock"
        base_dir.mkdir(parents=True, exist_ok=True)
        self.config_path = base_dir / "config.toml"
        self.config_path.write_text(config_toml(base_dir, self.socket, sandbox_image, cni_bin_dir, cni_conf_dir))
        self._process = ManagedProcess("containerd", ["containerd", "--config", self.config_path],
                                       base_dir / "containerd.log")

    @property
    def endpoint(self) -> str:
        return f"unix://{self.socket}"

    def ctr(self, *args: str) -> str:
        result = subprocess.run(["ctr", "--address", str(self.socket), "--namespace", K8S_NAMESPACE, *args],
                                capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"ctr {' '.join(args)} exited with {result.returncode}: {result.stderr.strip()}")
        return result.stdout

    def _serving(self) -> bool:
        self.ctr("version")
        return True

    def start(self) -> None:
        self._process.start()
        wait_until(self._serving, deadline_s=START_DEADLINE_S, what="containerd answers", process=self._process)

    def import_image(self, archive: Path) -> None:
        self.ctr("images", "import", "--no-unpack=false", str(archive))

    def stop(self) -> None:
        """Kill every task still running (the kubelet is gone by now), then containerd itself and the
        shims it started, which run in sessions of their own and so outlive its process group."""
        if self._process.alive():
            with contextlib.suppress(RuntimeError):
                for task in self.ctr("tasks", "list", "--quiet").split():
                    with contextlib.suppress(RuntimeError):
                        self.ctr("tasks", "kill", "--signal", "SIGKILL", task)
        self._process.stop(timeout_s=STOP_TIMEOUT_S)
        for pid in shim_pids(self.socket):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def tail(self) -> str:
        return self._process.tail()


def shim_pids(socket: Path) -> list[int]:
    """The containerd-shim processes serving the containerd at `socket` (their command line names it)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"containerd-shim-runc-v2") and str(socket).encode() in argv:
            found.append(int(entry.name))
    return found
