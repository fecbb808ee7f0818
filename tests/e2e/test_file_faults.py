"""The processor on a file → file pipeline under real disk faults and kill -9.

A full disk, a file size limit that cuts a write short mid-line, a small tmpfs: with an error sink
configured, nothing reaches it, the process exits non-zero, the main file holds only whole lines, the
checkpoint stays behind every unwritten line, and a restart with room writes every input line.
"""

from __future__ import annotations

import json
import os
import random
import resource
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dataflow_operator.connectors.file_position import parse_position
from tests.processes import Processor, wait_for

NAME = "faults"
PAD = "p" * 80


def write_input(path: Path, count: int) -> list[int]:
    path.write_text("".join(json.dumps({"id": i, "pad": PAD}) + "\n" for i in range(count)))
    return list(range(count))


def spec(workdir: Path, sink_path: Path | str, **extra: Any) -> dict[str, Any]:
    return {
        "source": {"type": "file", "config": {"path": str(workdir / "in.jsonl")}},
        "sink": {"type": "file", "config": {"path": str(sink_path), "batchSize": 100,
                                            "batchFlushIntervalSeconds": 0.01}},
        "errors": {"type": "file", "config": {"path": str(workdir / "errors.jsonl")}},
        "checkpointSyncOnAck": True,
        "checkpointSaveInterval": "1us",  # every written batch moves the checkpoint: its place is checkable
        **extra,
    }


def whole_lines(path: Path) -> list[int]:
    """The ids in a sink file, asserting it holds only complete, valid JSON lines."""
    if not path.exists():
        return []
    data = path.read_bytes()
    assert not data or data.endswith(b"\n"), f"{path} ends with a torn line: {data[-60:]!r}"
    return [json.loads(line)["id"] for line in data.splitlines()]


def checkpointed_ids(workdir: Path) -> list[int]:
    """The input ids before the saved checkpoint (all of them must have been written)."""
    store = workdir / "checkpoints" / f"test-ns.{NAME}.json"
    if not store.exists():
        return []
    position = parse_position(json.loads(store.read_text())["file"])
    data = (workdir / "in.jsonl").read_bytes()[:position.offset]
    return [json.loads(line)["id"] for line in data.splitlines()]


def limit_file_size(limit: int) -> Callable[[], None]:
    def apply() -> None:  # in the child, before exec: both survive it
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def assert_stopped_unacknowledged(proc: Processor, workdir: Path, main: Path | None) -> None:
    """``main``: the sink file, or None when the sink is a device that keeps nothing."""
    assert proc.wait(60) != 0, proc.logs()
    logs = proc.logs()
    assert "is unavailable" in logs, logs
    assert "Traceback" not in logs, "an expected stop is one log line, not a traceback"
    assert whole_lines(workdir / "errors.jsonl") == [], "an environmental failure went to the error sink"
    written = set(whole_lines(main)) if main is not None else set()
    unwritten = set(checkpointed_ids(workdir)) - written
    assert not unwritten, f"the checkpoint moved past {len(unwritten)} unwritten lines"


def assert_every_line_written(workdir: Path, main: Path, ids: list[int]) -> None:
    counts = Counter(whole_lines(main))
    assert set(counts) == set(ids), (f"missing {sorted(set(ids) - set(counts))[:10]}, "
                                     f"unknown {sorted(set(counts) - set(ids))[:10]}")
    assert whole_lines(workdir / "errors.jsonl") == []


@pytest.fixture
def processors() -> Iterator[list[Processor]]:
    started: list[Processor] = []
    yield started
    for proc in started:
        proc.kill()


def run(started: list[Processor], workdir: Path, document: dict[str, Any],
        preexec_fn: Callable[[], None] | None = None, env: dict[str, str] | None = None) -> Processor:
    proc = Processor(workdir, document, name=NAME, env=env)
    started.append(proc)
    return proc.start(preexec_fn)


def test_a_write_cut_short_by_a_file_size_limit(tmp_path: Path, processors: list[Processor]) -> None:
    ids = write_input(tmp_path / "in.jsonl", 6000)  # ~600 KB out
    main = tmp_path / "out.jsonl"
    limited = run(processors, tmp_path, spec(tmp_path, main), limit_file_size(250_007))  # mid-line
    assert_stopped_unacknowledged(limited, tmp_path, main)
    assert "File too large" in limited.logs()
    assert 0 < main.stat().st_size <= 250_007
    again = run(processors, tmp_path, spec(tmp_path, main))
    assert again.wait(120) == 0, again.logs()
    assert_every_line_written(tmp_path, main, ids)


def test_a_full_device(tmp_path: Path, processors: list[Processor]) -> None:
    ids = write_input(tmp_path / "in.jsonl", 500)
    full = run(processors, tmp_path, spec(tmp_path, "/dev/full"))
    assert_stopped_unacknowledged(full, tmp_path, None)
    assert "No space left on device" in full.logs()
    main = tmp_path / "out.jsonl"
    again = run(processors, tmp_path, spec(tmp_path, main))
    assert again.wait(120) == 0, again.logs()
    assert_every_line_written(tmp_path, main, ids)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mountpoint = tmp_path / "disk"
    mountpoint.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mountpoint)],
                             check=False, capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (the RLIMIT_FSIZE test covers short writes): {mounted.stderr}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", str(mountpoint)], check=True)


def test_a_full_tmpfs(tmp_path: Path, small_disk: Path, processors: list[Processor]) -> None:
    ids = write_input(tmp_path / "in.jsonl", 6000)
    main = small_disk / "out.jsonl"
    full = run(processors, tmp_path, spec(tmp_path, main))
    assert_stopped_unacknowledged(full, tmp_path, main)
    assert "No space left on device" in full.logs()
    subprocess.run(["mount", "-o", "remount,size=16m", str(small_disk)], check=True)
    again = run(processors, tmp_path, spec(tmp_path, main))
    assert again.wait(120) == 0, again.logs()
    assert_every_line_written(tmp_path, main, ids)


def _mid_write(path: Path, deadline: float) -> bool:
    """Polls (briefly) for a moment when the file ends inside a line, i.e. a write in progress."""
    with path.open("rb") as handle:
        while time.monotonic() < deadline:
            size = os.fstat(handle.fileno()).st_size
            if size and os.pread(handle.fileno(), 1, size - 1) != b"\n":
                return True
    return False


def test_kill_9_mid_write_again_and_again(tmp_path: Path, processors: list[Processor]) -> None:
    ids = write_input(tmp_path / "in.jsonl", 150_000)
    total = (tmp_path / "in.jsonl").stat().st_size
    main = tmp_path / "out.jsonl"
    document = spec(tmp_path, main)
    document["sink"]["config"]["batchSize"] = 2000  # long writes: a kill can land inside one
    chance = random.Random(8)
    for kill in range(5):
        proc = run(processors, tmp_path, document)
        before = main.stat().st_size if main.exists() else 0
        target = before + int(total * chance.uniform(0.04, 0.12))

        def grown(proc: Processor = proc, target: int = target) -> bool:
            assert proc.process is not None
            if proc.process.poll() is not None:
                raise RuntimeError(f"exited with {proc.process.returncode} before its kill:\n{proc.logs()}")
            return main.exists() and main.stat().st_size >= target

        wait_for(grown, timeout=120, message=f"output to grow before kill {kill + 1}")
        # Aim at a write in progress (the file then ends inside a line); if none shows, kill anyway.
        _mid_write(main, time.monotonic() + 2)
        proc.kill()
    final = run(processors, tmp_path, document)
    assert final.wait(300) == 0, final.logs()
    assert_every_line_written(tmp_path, main, ids)


def test_a_changed_source_path_reads_the_new_file_from_its_start(tmp_path: Path,
                                                                 processors: list[Processor]) -> None:
    write_input(tmp_path / "in.jsonl", 50)
    main = tmp_path / "out.jsonl"
    assert run(processors, tmp_path, spec(tmp_path, main)).wait(60) == 0
    other = tmp_path / "other.jsonl"
    other.write_text("".join(json.dumps({"id": 1000 + i, "pad": PAD}) + "\n" for i in range(80)))
    moved = spec(tmp_path, main)
    moved["source"]["config"]["path"] = str(other)
    proc = run(processors, tmp_path, moved)
    assert proc.wait(60) == 0, proc.logs()
    assert Counter(whole_lines(main)) == Counter([*range(50), *range(1000, 1080)])
    assert f"does not apply to {other}" in proc.logs() and str(tmp_path / "in.jsonl") in proc.logs()


@pytest.mark.parametrize(("content", "env"), [
    ("", None),
    ('{"file": "{\\"path\\": \\"/in.js', None),
    # The operator's reset token is looked up in the store before the source connects.
    ("{", {"DATAFLOW_CHECKPOINT_RESET_TOKEN": "41"}),
])
def test_an_unreadable_checkpoint_stops_with_the_file_and_the_reset(tmp_path: Path, processors: list[Processor],
                                                                     content: str, env: dict[str, str] | None) -> None:
    write_input(tmp_path / "in.jsonl", 5)
    store = tmp_path / "checkpoints" / f"test-ns.{NAME}.json"
    store.parent.mkdir()
    store.write_text(content)
    main = tmp_path / "out.jsonl"
    proc = run(processors, tmp_path, spec(tmp_path, main), env=env)
    assert proc.wait(60) == 1
    logs = proc.logs()
    assert "Traceback" not in logs
    (line,) = [json.loads(line) for line in logs.splitlines() if '"level": "error"' in line]
    assert str(store) in line["error"] and "checkpointReset: true" in line["error"]
    assert "dataflow.dataflow.io/reset-checkpoint" in line["error"]
    assert not main.exists()
    reset = run(processors, tmp_path, spec(tmp_path, main, checkpointReset=True))
    assert reset.wait(60) == 0, reset.logs()
    assert whole_lines(main) == list(range(5))
    assert os.path.exists(str(store) + ".corrupt")
