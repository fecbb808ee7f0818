"""Runs test files and reports: one line per case, a unified diff under each failing one."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TextIO

from ..pipeline.config_fields import FieldError, SpecError
from ..processor.runtime import load_spec_file
from ..spec.validation import parse_spec
from .cases import load_test_file
from .runner import Outcome, run_case


def run_test_files(paths: Iterable[str], out: TextIO) -> bool:
    """Every case of every file; True when all passed. A file that cannot be read or a DataFlow that
    is invalid fails with its field-path errors, as ``validate`` prints them."""
    passed = failed = 0
    for path in paths:
        try:
            outcomes = _run_file(Path(path))
        except SpecError as exc:
            out.write(f"{path}: invalid\n")
            out.writelines(f"  {error if error.path else error.message}\n" for error in exc.errors)
            failed += 1
            continue
        out.write(f"{path}\n")
        for outcome in outcomes:
            if outcome.passed:
                passed += 1
                out.write(f"  PASS {outcome.name}\n")
            else:
                failed += 1
                out.write(f"  FAIL {outcome.name}\n")
                out.writelines(f"    {line}\n" for line in describe_failure(outcome))
    out.write(f"{passed} passed, {failed} failed\n")
    return failed == 0


def _run_file(path: Path) -> list[Outcome]:
    test_file = load_test_file(path)
    try:
        spec, metadata = load_spec_file(str(test_file.dataflow))
    except OSError as exc:
        raise SpecError([FieldError("dataflow", f"cannot read {test_file.dataflow}: {exc.strerror}")]) from None
    except SpecError as exc:
        raise SpecError([type(error)(f"{test_file.dataflow}#{error.path}", error.message)
                         for error in exc.errors]) from None
    parsed, errors = parse_spec(spec)
    if parsed is None:
        raise SpecError([type(error)(f"{test_file.dataflow}#{error.path}", error.message) for error in errors])
    namespace = str(metadata.get("namespace") or "default")
    name = str(metadata.get("name") or test_file.dataflow.stem)
    return [run_case(case, parsed, namespace=namespace, name=name, now=test_file.now) for case in test_file.cases]


def describe_failure(outcome: Outcome) -> list[str]:
    lines = list(outcome.problems)
    for destination in _destinations(outcome.expected, outcome.actual):
        expected = outcome.expected.get(destination, [])
        actual = outcome.actual.get(destination, [])
        if expected == actual:
            continue
        lines.append(f"{destination}: expected {len(expected)} message(s), got {len(actual)}")
        lines.extend(difflib.unified_diff(expected, actual, fromfile="expected", tofile="actual", lineterm="", n=2))
    return lines


def _destinations(*sides: Mapping[str, list[str]]) -> list[str]:
    return list(dict.fromkeys(key for side in sides for key in side))
