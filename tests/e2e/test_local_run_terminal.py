"""The README's first command as a person runs it, on a terminal (a pseudo-terminal here): text
logs, a progress line redrawn in place and a summary per sink and route. Piped, or forced with
LOG_FORMAT=json, its stderr is the JSON log lines and nothing else."""

from __future__ import annotations

import json
import os
import pty
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]
COMMAND = [sys.executable, "-m", "dataflow_operator", "processor", "--spec-path", "examples/local-pipeline.yaml",
           "--metrics-bind-address", "127.0.0.1:0"]
JSON_KEYS = {"ts", "level", "logger", "msg", "role"}


def example_dir(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "examples", tmp_path / "examples", ignore=shutil.ignore_patterns("out"))
    return tmp_path


def environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("KUBERNETES_SERVICE_HOST", "LOG_FORMAT")}
    return {**env, **extra}


def run_on_terminal(workdir: Path, env: dict[str, str], *extra_args: str) -> tuple[int, str]:
    """Run with stdin, stdout and stderr on a pseudo-terminal; everything the terminal received."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen([*COMMAND, *extra_args], cwd=workdir, env=env, stdin=terminal, stdout=terminal, stderr=terminal)
    os.close(terminal)
    received = bytearray()
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # EIO: every writer has closed the terminal
            break
        if not chunk:
            break
        received += chunk
    os.close(controller)
    return process.wait(timeout=120), received.decode()


def line_count(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_on_a_terminal_progress_and_a_summary(tmp_path: Path) -> None:
    workdir = example_dir(tmp_path)
    code, screen = run_on_terminal(workdir, environment())
    assert code == 0, screen
    out = workdir / "examples" / "out"
    main, bulk, errors = (line_count(out / name) for name in ("order-items.jsonl", "bulk-items.jsonl",
                                                              "errors.jsonl"))
    assert errors > 0 and main > 0 and bulk > 0
    read = line_count(workdir / "examples" / "data" / "orders.jsonl")

    assert '{"ts"' not in screen  # text, not JSON
    assert "\x1b[36mINFO" in screen  # coloured levels
    plain = re.sub(r"\x1b\[[0-9;]*m", "", screen)
    assert re.search(r"\r\x1b\[K\d\d:\d\d:\d\d INFO +processor started  metrics_port=\d+  source=file", plain)
    # The progress line is redrawn in place (carriage return + erase line) and ends on the totals.
    progress = re.findall(r"\r\x1b\[Kread ([\d,]+) · written ([\d,]+) · to error sink ([\d,]+) · [\d,]+ msg/s", screen)
    assert len(progress) >= 2
    assert progress[-1] == (f"{read:,}", f"{main + bulk:,}", f"{errors:,}")
    summary = screen.split(f"read {read:,} messages in ", 1)[1]
    assert f"wrote {main + bulk:,}; {errors:,} to the error sink" in summary
    assert re.search(rf"main sink +{main:,}  → examples/out/order-items\.jsonl", summary)
    assert re.search(rf"route \$\.qty == 3 +{bulk:,}  → examples/out/bulk-items\.jsonl", summary)
    assert re.search(rf"error sink +{errors:,}  → examples/out/errors\.jsonl", summary)


def assert_only_json_lines(text: str) -> None:
    assert "\x1b" not in text and "\r" not in text and "msg/s" not in text
    entries = [json.loads(line) for line in text.splitlines()]
    assert entries and all(entry.keys() >= JSON_KEYS and entry["role"] == "processor" for entry in entries)
    assert entries[-1]["msg"] == "processor stopped cleanly"


def test_piped_the_output_is_the_json_log_lines_only(tmp_path: Path) -> None:
    workdir = example_dir(tmp_path)
    result = subprocess.run(COMMAND, cwd=workdir, env=environment(), capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert_only_json_lines(result.stderr)


def test_on_a_terminal_log_format_json_is_json(tmp_path: Path) -> None:
    code, screen = run_on_terminal(example_dir(tmp_path), environment(LOG_FORMAT="json"))
    assert code == 0, screen
    assert_only_json_lines(screen.replace("\r\n", "\n"))  # the terminal turns \n into \r\n


def test_in_a_pod_with_a_terminal_it_is_json(tmp_path: Path) -> None:
    # kubectl run -it: a terminal, but the lines are collected as logs. --checkpoint-dir keeps the
    # checkpoints in files rather than in a ConfigMap of an API server that is not there.
    env = environment(KUBERNETES_SERVICE_HOST="127.0.0.1")
    code, screen = run_on_terminal(example_dir(tmp_path), env, "--checkpoint-dir", str(tmp_path / "checkpoints"))
    assert code == 0, screen
    assert_only_json_lines(screen.replace("\r\n", "\n"))
