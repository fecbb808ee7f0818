"""Seeded fuzz of manifest loading: ``python -m tests.fuzz.validate_manifests --count 5000 --seed 1``.

Each case is a mutated manifest (:mod:`tests.fuzz.manifest_mutations`) run in this process
through ``validate`` (stdin, strict or not) and through the processor's loader and validation,
with its wall-clock time measured. A case fails when an exception escapes (or the validate
command's last-resort guard answers, or the output cannot be written as UTF-8), when an output
line lacks a field path, or when it takes more than 10 s. The last line sums it up; the exit status is 1 when any count is not zero.
``--case N`` prints case N's manifest and output instead, to reproduce one.
"""

from __future__ import annotations

import argparse
import io
import random
import re
import sys
import time
import traceback
from dataclasses import dataclass, field

from dataflow_operator.pipeline.config_fields import SpecError
from dataflow_operator.spec import spec_from_document, validate_spec
from dataflow_operator.spec.files import INTERNAL_ERROR, validate_files
from dataflow_operator.spec.manifest_loader import ManifestError, load_single_document

from .manifest_mutations import mutated_manifest

SLOW_SECONDS = 10.0
SUMMARY_LINES = re.compile(r"^(?:\d+ DataFlow document\(s\) valid|no DataFlow documents found)$")
FINDING_LINE = re.compile(r"^-#\d+(?: \([^)]+\))?: (?P<path>[^:\s].*?): \S")


@dataclass
class CaseOutcome:
    seconds: float
    output: str
    exit_code: int | None = None
    crash: str | None = None  # a traceback, or the guard's line
    lines_without_path: list[str] = field(default_factory=list)


def case_rng(seed: int, index: int) -> random.Random:
    return random.Random(f"{seed}:{index}")


def run_case(data: bytes, *, strict: bool) -> CaseOutcome:
    """``data`` through validate and through the processor's loading, in this process."""
    out = io.StringIO()
    started = time.perf_counter()
    crash = None
    exit_code = None
    try:
        exit_code = validate_files(["-"], out, strict=strict, stdin=io.BytesIO(data))
        _processor_load(data)
    except Exception:  # the fuzz's purpose: any escaping exception is the finding
        crash = traceback.format_exc()
    seconds = time.perf_counter() - started
    output = out.getvalue()
    if crash is None and INTERNAL_ERROR in output:
        crash = output
    try:
        output.encode("utf-8")  # what the real stdout will be asked to do
    except UnicodeEncodeError:
        crash = crash or traceback.format_exc()
    lines = [line for line in output.splitlines() if not SUMMARY_LINES.match(line)]
    return CaseOutcome(seconds, output, exit_code, crash,
                       [line for line in lines if not FINDING_LINE.match(line)])


def _processor_load(data: bytes) -> None:
    """What ``load_spec_file`` and ``run_processor`` do with the bytes, minus the file."""
    try:
        spec, _metadata = spec_from_document(load_single_document(data))
        if spec is not None:
            validate_spec(spec)
    except (ManifestError, SpecError):
        pass  # a rejection with a path is the expected answer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--case", type=int, default=None, help="print this one case and its output")
    args = parser.parse_args(argv)
    if args.case is not None:
        rng = case_rng(args.seed, args.case)
        data = mutated_manifest(rng)
        outcome = run_case(data, strict=rng.random() < 0.2)
        sys.stdout.write(f"{data!r}\n---\n{outcome.output}{outcome.crash or ''}")
        return 0 if outcome.crash is None and not outcome.lines_without_path else 1
    tracebacks = slow = without_path = 0
    max_seconds = 0.0
    for index in range(args.count):
        rng = case_rng(args.seed, index)
        outcome = run_case(mutated_manifest(rng), strict=rng.random() < 0.2)
        max_seconds = max(max_seconds, outcome.seconds)
        if outcome.crash is not None:
            tracebacks += 1
            print(f"case {index}: {outcome.crash.strip().splitlines()[-1]}")
        if outcome.seconds > SLOW_SECONDS:
            slow += 1
            print(f"case {index}: {outcome.seconds:.1f}s")
        if outcome.lines_without_path:
            without_path += 1
            print(f"case {index}: no field path: {outcome.lines_without_path[0][:200]!r}")
    print(f"validate fuzz cases={args.count} tracebacks={tracebacks} over_10s={slow} "
          f"without_field_path={without_path} max_seconds={max_seconds:.3f}")
    return 1 if tracebacks or slow or without_path else 0


if __name__ == "__main__":
    sys.exit(main())
