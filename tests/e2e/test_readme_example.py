"""The README's first command: the local example pipeline produces the expected files, and a second
run resumes from its checkpoint without reading anything twice."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]


def run_example(workdir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dataflow_operator", "processor", "--spec-path",
                           "examples/local-pipeline.yaml", "--metrics-bind-address", "127.0.0.1:0"],
                          cwd=workdir, capture_output=True, text=True, timeout=120, check=False)


def lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_local_example_pipeline(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "examples", tmp_path / "examples", ignore=shutil.ignore_patterns("out"))
    orders = lines(tmp_path / "examples" / "data" / "orders.jsonl")
    kept = [o for o in orders if o["status"] != "test"]
    numeric = [o for o in kept if o["total"] != "n/a"]
    items = [dict(item) for o in numeric for item in o["items"]]  # type: ignore[attr-defined]

    first = run_example(tmp_path)
    assert first.returncode == 0, first.stderr
    out = tmp_path / "examples" / "out"
    bulk, rest, errors = lines(out / "bulk-items.jsonl"), lines(out / "order-items.jsonl"), lines(out / "errors.jsonl")
    assert len(bulk) == sum(1 for i in items if i["qty"] == 3)
    assert len(rest) == len(items) - len(bulk)
    assert all(isinstance(row["total"], float) and "processed_at" in row and "items" not in row for row in bulk + rest)
    assert sorted(e["original_message"]["id"] for e in errors) == sorted(  # type: ignore[index]
        o["id"] for o in kept if o["total"] == "n/a")

    second = run_example(tmp_path)
    assert second.returncode == 0, second.stderr
    assert "resuming from checkpoint" in second.stderr
    assert len(lines(out / "order-items.jsonl")) == len(rest)
    assert len(lines(out / "errors.jsonl")) == len(errors)
