"""The images the test node runs, made on this machine: no registry is reachable.

- the pause (sandbox) image: hack/pause, a static Go program, in an image of its own;
- the base image under the Dockerfile's `FROM` name (python:3.11-slim): Debian bookworm from
  debootstrap with Debian's CPython 3.11 and pip, laid out like the official image where the
  Dockerfile depends on it (python3 and pip in /usr/local/bin);
- the project's image, built from the repository's own Dockerfile by buildah (daemonless), cached
  under a hash of everything the Dockerfile copies, so it is rebuilt only when those files change.

Each is kept as an OCI archive that `ctr images import` takes. buildah keeps its own storage under
the cache (vfs driver: it works wherever the cache is, with no overlay-on-overlay question).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.peers import paths

PAUSE_IMAGE = "localhost/dataflow-test/pause:1"
BASE_IMAGE = "docker.io/library/python:3.11-slim"
# What the chart's default repository (`dataflow-operator`) and a tag resolve to in containerd.
PROJECT_REPOSITORY = "docker.io/library/dataflow-operator"
DEBIAN_SUITE = "bookworm"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
# Everything the Dockerfile COPYs: a change to any of them is a new image.
DOCKERFILE_INPUTS = ("Dockerfile", "setup.py", "setup.cfg", "README.md", "dataflow_operator")


class ImageBuildError(RuntimeError):
    pass


@dataclass(frozen=True)
class ProjectImage:
    repository: str
    tag: str
    archive: Path

    @property
    def ref(self) -> str:
        return f"{self.repository}:{self.tag}"


def images_dir() -> Path:
    return paths.cache_dir() / "node-images"


def pause_archive() -> Path:
    return images_dir() / "pause.tar"


def base_archive() -> Path:
    return images_dir() / "python-3.11-slim.tar"


def _buildah(*args: str | Path) -> list[str]:
    storage = images_dir() / "buildah"
    return ["buildah", "--root", str(storage / "root"), "--runroot", str(storage / "run"),
            "--storage-driver", "vfs", *(str(arg) for arg in args)]


def _run(argv: Sequence[str], log: Path, *, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    with log.open("a") as handle:
        handle.write(f"\n$ {' '.join(argv)}\n")
        handle.flush()
        result = subprocess.run(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=handle, text=True, check=False)
        handle.write(result.stdout)
    if result.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
        raise ImageBuildError(f"`{' '.join(argv)}` exited with {result.returncode}; log {log}:\n{tail}")
    return result.stdout.strip()


def _commit_archive(container: str, image: str, archive: Path, log: Path) -> None:
    _run(_buildah("commit", "--quiet", container, image), log)
    _run(_buildah("rm", container), log)
    staged = archive.with_suffix(".tar.partial")
    staged.unlink(missing_ok=True)
    _run(_buildah("push", "--quiet", image, f"oci-archive:{staged}:{image}"), log)
    os.replace(staged, archive)


def build_pause(pause_binary: Path, log: Path) -> None:
    container = _run(_buildah("from", "scratch"), log)
    _run(_buildah("copy", container, pause_binary, "/pause"), log)
    _run(_buildah("config", "--entrypoint", '["/pause"]', "--user", "65535:65535", container), log)
    _commit_archive(container, PAUSE_IMAGE, pause_archive(), log)


def build_base(work_dir: Path, log: Path) -> None:
    """debootstrap bookworm with python3 + pip, trimmed, as an image named like the official one."""
    rootfs = work_dir / "rootfs"
    _run(["debootstrap", "--variant=minbase", "--include=python3,python3-pip,ca-certificates",
          DEBIAN_SUITE, str(rootfs), DEBIAN_MIRROR], log)
    for cache in ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc", "usr/share/man"):
        for entry in (rootfs / cache).glob("*"):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    # The official image's interpreter and pip live in /usr/local/bin; the Dockerfile's `pip install .`
    # puts the console script there too.
    for name, target in (("python3", "python3"), ("python", "python3"), ("pip", "pip3"), ("pip3", "pip3")):
        link = rootfs / "usr/local/bin" / name
        link.unlink(missing_ok=True)
        link.symlink_to(f"/usr/bin/{target}")
    # The machine reaches PyPI through the trust store it has (it may hold a CA of the site's own);
    # a build on this machine trusts what the machine trusts.
    shutil.copyfile("/etc/ssl/certs/ca-certificates.crt", rootfs / "etc/ssl/certs/ca-certificates.crt")
    layer = work_dir / "rootfs.tar"
    _run(["tar", "-C", str(rootfs), "-cf", str(layer), "."], log)
    container = _run(_buildah("from", "scratch"), log)
    _run(_buildah("add", container, layer, "/"), log)
    # Debian marks its Python externally managed (PEP 668); the official image's is not.
    _run(_buildah("config", "--env", "PIP_BREAK_SYSTEM_PACKAGES=1", "--env", "LANG=C.UTF-8",
                  "--env", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                  "--cmd", '["python3"]', container), log)
    _commit_archive(container, BASE_IMAGE, base_archive(), log)


def _source_files() -> list[Path]:
    found: list[Path] = []
    for name in DOCKERFILE_INPUTS:
        path = paths.REPO_ROOT / name
        if path.is_dir():
            found += sorted(p for p in path.rglob("*")
                            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc")
        else:
            found.append(path)
    return found


def project_image_tag() -> str:
    digest = hashlib.sha256()
    for path in _source_files():
        digest.update(str(path.relative_to(paths.REPO_ROOT)).encode() + b"\0")
        digest.update(path.read_bytes())
    return f"test-{digest.hexdigest()[:12]}"


def build_project_image(log: Path) -> ProjectImage:
    """The repository's Dockerfile, built by buildah on the local base. An archive for the current
    sources is reused."""
    tag = project_image_tag()
    image = ProjectImage(PROJECT_REPOSITORY, tag, images_dir() / f"dataflow-operator-{tag}.tar")
    if image.archive.exists():
        return image
    images = _run(_buildah("images", "--noheading", "--format", "{{.Name}}:{{.Tag}}"), log).split()
    if BASE_IMAGE not in images:
        # The buildah storage was wiped (or is new) but the provisioned archive is there.
        image_id = _run(_buildah("pull", "--quiet", f"oci-archive:{base_archive()}"), log).split()[-1]
        _run(_buildah("tag", image_id, BASE_IMAGE), log)
    for stale in images_dir().glob("dataflow-operator-*.tar"):
        stale.unlink()
    # --pull=never: `FROM python:3.11-slim` must resolve to the local base; there is no registry.
    _run(_buildah("bud", "--isolation", "chroot", "--pull=never", "--layers=false", "--tag", image.ref,
                  "--file", paths.REPO_ROOT / "Dockerfile", paths.REPO_ROOT), log)
    staged = image.archive.with_suffix(".tar.partial")
    _run(_buildah("push", "--quiet", image.ref, f"oci-archive:{staged}:{image.ref}"), log)
    _run(_buildah("rmi", image.ref), log)
    os.replace(staged, image.archive)
    return image
