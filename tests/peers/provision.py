"""Obtain and cache every test peer at its pinned version (`python -m tests.peers provision`).

Each peer is rebuilt only when its outputs are missing or its stamp (pinned version + hash of the
repository files it is built from) no longer matches, so a second run takes seconds. Every external
command runs with its output in `<cache>/logs/<peer>.log`; a failure names the peer, the command and
the tail of that log, and is also written to `<cache>/stamps/<peer>.error` so that a fixture which
skips can say exactly why.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.peers import node_images, paths, versions

GO_PROXY_HINT = "is the Go module proxy reachable (GOPROXY={})?"
LOG_TAIL_LINES = 40


class ProvisionError(RuntimeError):
    """A peer could not be obtained; the message names the peer and the failing command."""

    def __init__(self, peer: str, message: str) -> None:
        super().__init__(f"{peer}: {message}")
        self.peer = peer


@dataclass(frozen=True)
class Peer:
    name: str
    version: str
    # Repository files the peer is built from; editing one invalidates the stamp.
    inputs: tuple[Path, ...]
    outputs: Callable[[], list[Path]]
    build: Callable[[], dict[str, str]]  # returns extra stamp fields (e.g. where binaries are)


# --------------------------------------------------------------------------------------------------
# stamps


def _inputs_digest(inputs: Sequence[Path]) -> str:
    digest = hashlib.sha256()
    for path in inputs:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def read_stamp(peer: str) -> dict[str, str] | None:
    try:
        data = json.loads(paths.stamp_file(peer).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _write_stamp(peer: Peer, extra: dict[str, str]) -> None:
    paths.stamp_dir().mkdir(parents=True, exist_ok=True)
    stamp = {"version": peer.version, "inputs": _inputs_digest(peer.inputs), **extra}
    paths.stamp_file(peer.name).write_text(json.dumps(stamp, indent=2) + "\n")
    paths.error_file(peer.name).unlink(missing_ok=True)


def is_current(peer: Peer) -> bool:
    stamp = read_stamp(peer.name)
    if stamp is None or stamp.get("version") != peer.version:
        return False
    if stamp.get("inputs") != _inputs_digest(peer.inputs):
        return False
    return all(path.exists() for path in peer.outputs())


def last_error(peer: str) -> str | None:
    try:
        return paths.error_file(peer).read_text().strip() or None
    except OSError:
        return None


# --------------------------------------------------------------------------------------------------
# running commands


def _log_path(peer: str) -> Path:
    log_dir = paths.cache_dir() / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    return log_dir / f"{peer}.log"


def _tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def run(peer: str, argv: Sequence[str], *, cwd: Path | None = None, env: dict[str, str] | None = None,
        hint: str = "", stdout_only: bool = False) -> str:
    """Run one provisioning command with its output appended to the peer's log. Returns the output
    (only stdout with `stdout_only`, for commands whose stdout is data, e.g. JSON)."""
    log = _log_path(peer)
    with log.open("a") as handle:
        handle.write(f"\n$ (cd {cwd or os.getcwd()}) {shlex.join(argv)}\n")
        handle.flush()
        start = handle.tell()
        try:
            result = subprocess.run(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, check=False,
                                    stdout=subprocess.PIPE if stdout_only else handle,
                                    stderr=handle if stdout_only else subprocess.STDOUT)
        except OSError as exc:
            raise ProvisionError(peer, f"cannot run `{shlex.join(argv)}`: {exc}") from exc
    if stdout_only:  # into the log too, before the tail is taken: `go mod download -json` errors are there
        with log.open("ab") as binary_log:
            binary_log.write(result.stdout)
    with log.open() as handle:
        handle.seek(start)
        output = handle.read()
    if result.returncode != 0:
        tail = "\n".join(output.splitlines()[-LOG_TAIL_LINES:])
        raise ProvisionError(
            peer,
            f"`{shlex.join(argv)}` exited with {result.returncode}"
            + (f" ({hint})" if hint else "")
            + f"; full log: {log}\n{tail}",
        )
    return result.stdout.decode() if stdout_only else output


@contextlib.contextmanager
def _staging(peer: str) -> Iterator[Path]:
    """A scratch directory next to the cache, so finished outputs can be moved in atomically."""
    paths.cache_dir().mkdir(parents=True, exist_ok=True)
    directory = Path(tempfile.mkdtemp(prefix=f".staging-{peer}-", dir=paths.cache_dir()))
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _install(staged: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_dir() and not target.is_symlink():
        shutil.rmtree(target)
    os.replace(staged, target)


# --------------------------------------------------------------------------------------------------
# Go


def _go(peer: str) -> str:
    go = paths.go_binary()
    if go is None:
        raise ProvisionError(peer, "the `go` toolchain is not installed "
                                   "(needed to build from the Go module proxy)")
    return go


def _go_env() -> dict[str, str]:
    env = dict(os.environ)
    # -trimpath keeps build paths out of the binaries; -buildvcs=false because the wrapper modules sit
    # inside this repository and VCS stamping fails in dirty or shallow checkouts.
    flags = env.get("GOFLAGS", "").split()
    env["GOFLAGS"] = " ".join([*flags, "-trimpath", "-buildvcs=false"])
    # The machines have 2 cores shared with other work; do not let the k8s build take more.
    env.setdefault("GOMAXPROCS", "2")
    # Never fetch another Go toolchain behind our back: a too-old local Go must be a clear error.
    env["GOTOOLCHAIN"] = "local"
    # Static binaries like the upstream releases; also avoids needing a C compiler.
    env["CGO_ENABLED"] = "0"
    return env


def _go_proxy() -> str:
    return os.environ.get("GOPROXY", "https://proxy.golang.org,direct")


def _go_build_wrapper(peer: str, module_dir: Path, output: Path, ldflags: str = "-s -w") -> None:
    go = _go(peer)
    with _staging(peer) as staging:
        staged = staging / output.name
        run(peer, [go, "build", "-p", "2", "-ldflags", ldflags, "-o", str(staged), "."],
            cwd=module_dir, env=_go_env(), hint=GO_PROXY_HINT.format(_go_proxy()))
        _install(staged, output)


def _go_install_module(peer: str, module: str, version: str, *, packages: Sequence[str], ldflags: str,
                       outputs: Sequence[Path]) -> None:
    """`go install pkg@version`, or, for modules with replace/exclude directives (which `go install`
    refuses), download the module and build inside its own directory where those directives apply."""
    go = _go(peer)
    env = _go_env()
    hint = GO_PROXY_HINT.format(_go_proxy())
    with _staging(peer) as staging:
        install_env = {**env, "GOBIN": str(staging)}
        targets = [f"{module}/{pkg}@{version}" for pkg in packages]
        argv = [go, "install", "-p", "2", "-ldflags", ldflags, *targets]
        try:
            run(peer, argv, env=install_env, hint=hint)
        except ProvisionError as exc:
            if not re.search(r"contains one or more (replace|exclude) directives|must not contain directives",
                             str(exc)):
                raise
            print(f"[provision] {peer}: `go install` refused the module's directives; "
                  "building inside the downloaded module instead", flush=True)
            listing = run(peer, [go, "mod", "download", "-json", f"{module}@{version}"], env=env, hint=hint,
                          stdout_only=True)
            module_dir = Path(json.loads(listing)["Dir"])
            for pkg in packages:
                run(peer, [go, "build", "-p", "2", "-ldflags", ldflags, "-o", str(staging / Path(pkg).name),
                           f"./{pkg}"], cwd=module_dir, env=env, hint=hint)
        for output in outputs:
            _install(staging / output.name, output)


def _check_wrapper_pin(peer: str, go_mod: Path, module: str, version: str) -> None:
    """The stamp must not claim a version the wrapper module does not build."""
    text = go_mod.read_text()
    if not re.search(rf"^\s*(require\s+)?{re.escape(module)}\s+{re.escape(version)}\s*$", text, re.M):
        raise ProvisionError(peer, f"{go_mod} does not require {module} {version} (tests/peers/versions.py)")
    if module == "k8s.io/kubernetes":
        staging_version = "v0." + version.split(".", 1)[1]
        wrong = [line.strip() for line in text.splitlines()
                 if "=>" in line and not line.strip().endswith(staging_version)]
        if wrong:
            raise ProvisionError(peer, f"{go_mod}: staging replaces must all be {staging_version}: {wrong}")


# --------------------------------------------------------------------------------------------------
# the peers


def _postgres_bindir_candidates() -> list[Path]:
    found = [Path(f"/usr/lib/postgresql/{versions.POSTGRESQL_MAJOR}/bin")]
    for tool in ("postgres", "pg_ctl", "initdb"):
        located = shutil.which(tool)
        if located:
            found.append(Path(located).resolve().parent)
    found += [Path("/usr/local/bin"), Path("/usr/local/pgsql/bin")]
    return list(dict.fromkeys(found))


def find_postgres_bindir() -> Path | None:
    for candidate in _postgres_bindir_candidates():
        postgres, initdb = candidate / "postgres", candidate / "initdb"
        if not (postgres.exists() and initdb.exists()):
            continue
        try:
            out = subprocess.run([str(postgres), "--version"], capture_output=True, text=True,
                                 check=False).stdout
        except OSError:
            continue
        if re.search(rf"\b{versions.POSTGRESQL_MAJOR}\.\d+", out):
            return candidate
    return None


def _build_postgresql() -> dict[str, str]:
    bindir = find_postgres_bindir()
    if bindir is None:
        package = f"postgresql-{versions.POSTGRESQL_MAJOR}"
        if os.geteuid() != 0:
            raise ProvisionError("postgresql", f"PostgreSQL {versions.POSTGRESQL_MAJOR} binaries not found; "
                                               f"install them with `sudo apt-get install -y {package}`")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        hint = "is the Debian mirror reachable?"
        run("postgresql", ["apt-get", "update", "-q"], env=env, hint=hint)
        run("postgresql", ["apt-get", "install", "-y", "-q", "--no-install-recommends", package],
            env=env, hint=hint)
        bindir = find_postgres_bindir()
        if bindir is None:
            raise ProvisionError("postgresql", f"`apt-get install {package}` succeeded but no PostgreSQL "
                                               f"{versions.POSTGRESQL_MAJOR} binaries were found")
    return {"bindir": str(bindir)}


def postgres_bindir() -> Path | None:
    stamp = read_stamp("postgresql")
    return Path(stamp["bindir"]) if stamp and "bindir" in stamp else None


def _postgres_outputs() -> list[Path]:
    bindir = postgres_bindir()
    return [bindir / "postgres", bindir / "initdb"] if bindir else [Path("/nonexistent/postgres")]


def _kafka_main_jar() -> Path:
    return paths.kafka_libs_dir() / f"kafka_2.13-{versions.KAFKA}.jar"


def _build_kafka() -> dict[str, str]:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise ProvisionError("kafka", "Maven (`mvn`) is not installed "
                                      "(needed to fetch Kafka from Maven Central)")
    if paths.java_binary() is None:
        raise ProvisionError("kafka", "Java is not installed (Kafka 4.x needs Java 17+)")
    with _staging("kafka") as staging:
        libs = staging / "libs"
        run("kafka", [mvn, "-B", "-q", "-f", str(paths.HACK_DIR / "kafka" / "pom.xml"),
                      f"-Dkafka.version={versions.KAFKA}", "dependency:copy-dependencies",
                      "-DincludeScope=runtime", f"-DoutputDirectory={libs}"],
            hint="is Maven Central reachable?")
        _install(libs, paths.kafka_libs_dir())
    return {}


def _build_etcd() -> dict[str, str]:
    module_dir = paths.HACK_DIR / "etcd"
    _check_wrapper_pin("etcd", module_dir / "go.mod", "go.etcd.io/etcd/server/v3", versions.ETCD)
    _go_build_wrapper("etcd", module_dir, paths.binary("etcd"))
    return {}


def _build_kube_apiserver() -> dict[str, str]:
    module_dir = paths.HACK_DIR / "kube-apiserver"
    _check_wrapper_pin("kube-apiserver", module_dir / "go.mod", "k8s.io/kubernetes", versions.KUBERNETES)
    _go_build_wrapper("kube-apiserver", module_dir, paths.binary("kube-apiserver"), _kubernetes_version_ldflags())
    return {}


def _kubernetes_version_ldflags() -> str:
    """The version reported by /version and in the loopback client's User-Agent (seen in the audit log);
    upstream's hack/lib/version.sh stamps both packages the same way."""
    major, minor = versions.KUBERNETES.lstrip("v").split(".")[:2]
    ldflags = "-s -w"
    for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        ldflags += (f" -X {package}.gitVersion={versions.KUBERNETES}"
                    f" -X {package}.gitMajor={major} -X {package}.gitMinor={minor}")
    return ldflags


def _build_kube_node() -> dict[str, str]:
    module_dir = paths.HACK_DIR / "kube-node"
    _check_wrapper_pin("kube-node", module_dir / "go.mod", "k8s.io/kubernetes", versions.KUBERNETES)
    _go_build_wrapper("kube-node", module_dir, paths.binary("kube-node"), _kubernetes_version_ldflags())
    return {}


NODE_RUNTIME_BINARIES = ("containerd", "containerd-shim-runc-v2", "ctr", "runc", "iptables", "buildah",
                         "debootstrap")
CNI_PLUGINS = ("bridge", "host-local")


def _node_runtime_outputs() -> list[Path]:
    found = [Path(shutil.which(name) or f"/nonexistent/{name}") for name in NODE_RUNTIME_BINARIES]
    return found + [Path("/usr/lib/cni") / plugin for plugin in CNI_PLUGINS]


def _build_node_runtime() -> dict[str, str]:
    if all(path.exists() for path in _node_runtime_outputs()):
        return {}
    if os.geteuid() != 0:
        raise ProvisionError("node-runtime", "the test node needs root; as root this installs "
                                             f"{' '.join(versions.NODE_RUNTIME_PACKAGES)} with apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    hint = "is the Debian mirror reachable?"
    run("node-runtime", ["apt-get", "update", "-q"], env=env, hint=hint)
    run("node-runtime", ["apt-get", "install", "-y", "-q", "--no-install-recommends",
                         *versions.NODE_RUNTIME_PACKAGES], env=env, hint=hint)
    missing = [str(path) for path in _node_runtime_outputs() if not path.exists()]
    if missing:
        raise ProvisionError("node-runtime", f"installed, yet still missing: {', '.join(missing)}")
    return {}


def _build_node_images() -> dict[str, str]:
    if os.geteuid() != 0:
        raise ProvisionError("node-images", "debootstrap and buildah need root")
    log = _log_path("node-images")
    node_images.images_dir().mkdir(parents=True, exist_ok=True)
    with _staging("node-images") as staging:
        pause = staging / "pause"
        run("node-images", [_go("node-images"), "build", "-ldflags", "-s -w", "-o", str(pause), "."],
            cwd=paths.HACK_DIR / "pause", env=_go_env(), hint=GO_PROXY_HINT.format(_go_proxy()))
        try:
            node_images.build_pause(pause, log)
            node_images.build_base(staging, log)
        except node_images.ImageBuildError as exc:
            raise ProvisionError("node-images", str(exc)) from exc
    return {}


def _build_prometheus() -> dict[str, str]:
    # No `builtinassets` tag: the web UI is not embedded, the HTTP API (all tests need) still is.
    # The version is what upstream's Makefile stamps, so `prometheus --version` and build_info are right.
    ldflags = f"-s -w -X github.com/prometheus/common/version.Version={versions.PROMETHEUS}"
    _go_install_module("prometheus", "github.com/prometheus/prometheus", versions.PROMETHEUS_MODULE,
                       packages=["cmd/prometheus", "cmd/promtool"], ldflags=ldflags,
                       outputs=[paths.binary("prometheus"), paths.binary("promtool")])
    return {}


def _build_helm() -> dict[str, str]:
    ldflags = f"-s -w -X helm.sh/helm/v3/internal/version.version={versions.HELM}"
    _go_install_module("helm", "helm.sh/helm/v3", versions.HELM, packages=["cmd/helm"], ldflags=ldflags,
                       outputs=[paths.binary("helm")])
    return {}


def _files(*relative: str) -> tuple[Path, ...]:
    return tuple(paths.HACK_DIR / item for item in relative)


PEERS: dict[str, Peer] = {
    peer.name: peer
    for peer in (
        Peer("postgresql", versions.POSTGRESQL_MAJOR, (), _postgres_outputs, _build_postgresql),
        Peer("kafka", versions.KAFKA, _files("kafka/pom.xml"), lambda: [_kafka_main_jar()], _build_kafka),
        Peer("etcd", versions.ETCD, _files("etcd/go.mod", "etcd/go.sum", "etcd/main.go"),
             lambda: [paths.binary("etcd")], _build_etcd),
        Peer("helm", versions.HELM, (), lambda: [paths.binary("helm")], _build_helm),
        Peer("prometheus", versions.PROMETHEUS_MODULE, (),
             lambda: [paths.binary("prometheus"), paths.binary("promtool")], _build_prometheus),
        # Last: by far the longest build (several minutes on 2 cores).
        Peer("kube-apiserver", versions.KUBERNETES,
             _files("kube-apiserver/go.mod", "kube-apiserver/go.sum", "kube-apiserver/main.go"),
             lambda: [paths.binary("kube-apiserver")], _build_kube_apiserver),
        # The single-node cluster (tests/cluster): root only. kube-node reuses most of kube-apiserver's
        # compiled packages from the Go build cache, so it comes after it.
        Peer("node-runtime", versions.NODE_RUNTIME, (), _node_runtime_outputs, _build_node_runtime),
        Peer("node-images", versions.NODE_IMAGES,
             (*_files("pause/go.mod", "pause/main.go"), Path(node_images.__file__)),
             lambda: [node_images.pause_archive(), node_images.base_archive()], _build_node_images),
        Peer("kube-node", versions.KUBERNETES,
             _files("kube-node/go.mod", "kube-node/go.sum", "kube-node/main.go"),
             lambda: [paths.binary("kube-node")], _build_kube_node),
    )
}


# Everything the single-node cluster (tests/peers/cluster.py) runs.
NODE_PEERS = ("etcd", "kube-apiserver", "node-runtime", "node-images", "kube-node")


def peer_ready(name: str) -> bool:
    return is_current(PEERS[name])


# --------------------------------------------------------------------------------------------------
# entry point


@contextlib.contextmanager
def _lock() -> Iterator[None]:
    """Parallel tox environments provision at the same time; one builds, the other waits."""
    paths.cache_dir().mkdir(parents=True, exist_ok=True)
    with (paths.cache_dir() / ".lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def provision(names: Sequence[str] = (), *, force: bool = False) -> int:
    """Provision the named peers (all by default); returns a process exit code."""
    unknown = [name for name in names if name not in PEERS]
    if unknown:
        print(f"unknown peer(s): {', '.join(unknown)}; known: {', '.join(PEERS)}", file=sys.stderr)
        return 2
    selected = [PEERS[name] for name in (names or PEERS)]
    failures: list[ProvisionError] = []
    total_start = time.monotonic()
    print(f"[provision] cache: {paths.cache_dir()}", flush=True)
    with _lock():
        for peer in selected:
            start = time.monotonic()
            if not force and is_current(peer):
                print(f"[provision] {peer.name} {peer.version}: cached ({time.monotonic() - start:.1f}s)",
                      flush=True)
                continue
            print(f"[provision] {peer.name} {peer.version}: obtaining...", flush=True)
            try:
                extra = peer.build()
                _write_stamp(peer, extra)
            except ProvisionError as exc:
                failures.append(exc)
                paths.stamp_dir().mkdir(parents=True, exist_ok=True)
                paths.error_file(peer.name).write_text(str(exc) + "\n")
                print(f"[provision] {peer.name}: FAILED after {time.monotonic() - start:.1f}s\n{exc}",
                      file=sys.stderr, flush=True)
                continue
            print(f"[provision] {peer.name} {peer.version}: done in {time.monotonic() - start:.1f}s",
                  flush=True)
    print(f"[provision] total {time.monotonic() - total_start:.1f}s", flush=True)
    if failures:
        print(f"[provision] failed: {', '.join(exc.peer for exc in failures)}", file=sys.stderr, flush=True)
        return 1
    return 0


def status() -> int:
    for peer in PEERS.values():
        state = "ok" if is_current(peer) else ("error" if last_error(peer.name) else "missing")
        print(f"{peer.name:16} {peer.version:10} {state}")
    return 0
