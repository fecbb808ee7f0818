"""Processor throughput with all metrics on vs metric updates disabled, side by side in one run.

    python bench/bench_processor.py [--messages 200000] [--rounds 3]

Pipeline: file → filter → flatten → router → file (two outputs), in-process, the same engine the
CLI runs. Rounds alternate on/off so machine noise hits both alike; the best round of each counts.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from dataflow_operator.pipeline.checkpoint import MemoryCheckpointStore
from dataflow_operator.pipeline.metrics import ProcessorMetrics
from dataflow_operator.pipeline.progress import ProgressTracker
from dataflow_operator.processor.assembly import build_pipeline
from dataflow_operator.processor.engine import Services
from dataflow_operator.spec.validation import load_spec


def make_input(path: Path, count: int) -> None:
    with open(path, "w") as handle:
        for i in range(count):
            handle.write(json.dumps({"id": i, "status": "test" if i % 10 == 0 else "paid", "customer": f"c{i % 97}",
                                     "items": [{"sku": f"s{i}", "qty": 1 + i % 3}]}) + "\n")


def spec_for(workdir: Path, tag: str) -> dict[str, Any]:
    out = workdir / tag
    return {
        "source": {"type": "file", "config": {"path": str(workdir / "in.jsonl")}},
        "transformations": [
            {"type": "filter", "config": {"condition": "$.status != 'test'"}},
            {"type": "flatten", "config": {"field": "items"}},
            {"type": "router", "config": {"routes": [
                {"condition": "$.qty == 3", "sink": {"type": "file", "config": {"path": str(out / "bulk.jsonl"),
                                                                                  "batchSize": 1000}}}]}},
        ],
        "sink": {"type": "file", "config": {"path": str(out / "rest.jsonl"), "batchSize": 1000}},
        "channelBufferSize": 1000,
        "checkpointPersistence": False,
    }


def run_once(workdir: Path, tag: str, metrics_on: bool) -> float:
    spec = spec_for(workdir, tag)
    pipeline = build_pipeline(load_spec(spec), Services(
        namespace="bench", name=tag, metrics=ProcessorMetrics("bench", tag, enabled=metrics_on),
        checkpoints=MemoryCheckpointStore(), progress=ProgressTracker(0)))
    started = time.perf_counter()
    result = pipeline.run()
    elapsed = time.perf_counter() - started
    assert result.failure is None, result.failure
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        make_input(workdir / "in.jsonl", args.messages)
        times: dict[bool, list[float]] = {True: [], False: []}
        for round_ in range(args.rounds):
            for metrics_on in (True, False) if round_ % 2 == 0 else (False, True):
                tag = f"r{round_}-{'on' if metrics_on else 'off'}"
                times[metrics_on].append(run_once(workdir, tag, metrics_on))
        rate = {on: args.messages / min(values) for on, values in times.items()}
        median = {on: args.messages / statistics.median(values) for on, values in times.items()}
        print(f"messages per run: {args.messages}, rounds: {args.rounds} (best round counts)")
        print(f"metrics on : {rate[True]:>10,.0f} msg/s  (median {median[True]:,.0f})")
        print(f"metrics off: {rate[False]:>10,.0f} msg/s  (median {median[False]:,.0f})")
        ratio = rate[True] / rate[False]
        print(f"metrics cost: {1 - ratio:.1%} of throughput (on/off ratio {ratio:.2f}; target: cost <= 10%)")

if __name__ == "__main__":
    main()
