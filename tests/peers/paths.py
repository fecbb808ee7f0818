"""Where provisioned peers live on disk; shared by the provisioner and the fixtures."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
HACK_DIR = REPO_ROOT / "hack"


def cache_dir() -> Path:
    """`${DATAFLOW_TEST_CACHE:-${XDG_CACHE_HOME:-~/.cache}/dataflow-operator-test}`."""
    explicit = os.environ.get("DATAFLOW_TEST_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg).expanduser() / "dataflow-operator-test"


def bin_dir() -> Path:
    return cache_dir() / "bin"


def binary(name: str) -> Path:
    """Path of a Go-built peer binary (kube-apiserver, etcd, prometheus, promtool, helm)."""
    return bin_dir() / name


def kafka_libs_dir() -> Path:
    return cache_dir() / "kafka" / "libs"


def stamp_dir() -> Path:
    return cache_dir() / "stamps"


def stamp_file(peer: str) -> Path:
    return stamp_dir() / f"{peer}.json"


def error_file(peer: str) -> Path:
    """Last provisioning error of a peer, so a skipped fixture can say exactly what failed."""
    return stamp_dir() / f"{peer}.error"


def go_binary() -> str | None:
    found = shutil.which("go")
    if found:
        return found
    fallback = Path("/usr/local/go/bin/go")
    return str(fallback) if fallback.exists() else None


def java_binary() -> str | None:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").exists():
        return str(Path(java_home) / "bin" / "java")
    return shutil.which("java")
