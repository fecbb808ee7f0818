"""What a test node leaves on the host, removed: processes in the pods' cgroups, mounts under the
node's directory (overlay snapshots, secret tmpfs, network namespaces), its iptables rules (by
`kube-proxy --cleanup`, elsewhere) and its bridge. Safe to run again, and on what a crashed run left."""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
# The kubelet's pod cgroups with the cgroupfs driver and cgroupsPerQOS (one per controller on v1).
POD_CGROUP = "kubepods"


def pod_cgroups() -> list[Path]:
    """Every pod cgroup directory, deepest first."""
    found: list[Path] = []
    for controller in CGROUP_ROOT.iterdir() if CGROUP_ROOT.is_dir() else []:
        top = controller / POD_CGROUP
        if top.is_dir():
            found += [Path(path) for path, _, _ in os.walk(top)]
    return sorted(found, key=lambda path: len(path.parts), reverse=True)


def kill_pod_processes() -> int:
    """SIGKILL every process in the pods' cgroups; returns how many were signalled."""
    killed = 0
    for cgroup in pod_cgroups():
        with contextlib.suppress(OSError):
            for pid in (cgroup / "cgroup.procs").read_text().split():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)
                    killed += 1
    return killed


def remove_pod_cgroups() -> None:
    for cgroup in pod_cgroups():
        with contextlib.suppress(OSError):
            cgroup.rmdir()


def mounts_under(directory: Path) -> list[Path]:
    """Mount points at or below `directory`, deepest first (so each unmount leaves its parent free)."""
    prefix = str(directory.resolve())
    found = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            mount_point = line.split()[4].encode().decode("unicode_escape")
            if mount_point == prefix or mount_point.startswith(prefix + "/"):
                found.append(Path(mount_point))
    return sorted(set(found), key=lambda path: len(path.parts), reverse=True)


def unmount_all(directory: Path) -> list[str]:
    """Unmount everything under `directory`; returns the errors of mounts that stayed."""
    errors = []
    for mount_point in mounts_under(directory):
        result = subprocess.run(["umount", str(mount_point)], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            # Busy (a process we could not kill yet holds it): detach it so the directory can go.
            lazy = subprocess.run(["umount", "--lazy", str(mount_point)], capture_output=True, text=True,
                                  check=False)
            if lazy.returncode != 0:
                errors.append(f"{mount_point}: {lazy.stderr.strip() or result.stderr.strip()}")
    return errors


def remove_kube_chains() -> list[str]:
    """Delete every iptables/ip6tables chain named KUBE-* and each rule that jumps to one: the
    kubelet's own (KUBE-FIREWALL, KUBE-KUBELET-CANARY, KUBE-IPTABLES-HINT), which `kube-proxy --cleanup`
    leaves, and any of kube-proxy's that survived. Returns the commands that failed."""
    failed = []
    for save, command in (("iptables-save", "iptables"), ("ip6tables-save", "ip6tables")):
        dump = subprocess.run([save], capture_output=True, text=True, check=False).stdout
        table = ""
        jumps: list[tuple[str, list[str]]] = []
        chains: list[tuple[str, str]] = []
        for line in dump.splitlines():
            if line.startswith("*"):
                table = line[1:]
            elif line.startswith(":KUBE-"):
                chains.append((table, line[1:].split()[0]))
            elif line.startswith("-A ") and not line.split()[1].startswith("KUBE-") and " -j KUBE-" in line:
                jumps.append((table, shlex.split(line)[1:]))
        steps = [[command, "-t", t, "-D", *rule] for t, rule in jumps]
        steps += [[command, "-t", t, "-F", chain] for t, chain in chains]
        steps += [[command, "-t", t, "-X", chain] for t, chain in chains]
        for argv in steps:
            result = subprocess.run(argv, capture_output=True, text=True, check=False)
            if result.returncode != 0:
                failed.append(f"{' '.join(argv)}: {result.stderr.strip()}")
    return failed
