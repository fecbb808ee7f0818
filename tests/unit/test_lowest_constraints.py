"""hack/lowest_constraints.py: the pins ``tox -e lowest`` installs."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("lowest_constraints", ROOT / "hack" / "lowest_constraints.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


lowest = _load()


@pytest.mark.parametrize(("requirement", "pin"), [
    ("click>=8.1", "click==8.1"),
    ("psycopg[binary]>=3.2.1", "psycopg==3.2.1"),
    ("foo>=1.2,<3", "foo==1.2"),
    ("foo<3, >=1.2 ; python_version >= '3.12'", "foo==1.2"),
])
def test_a_lower_bound_becomes_an_exact_pin(requirement: str, pin: str) -> None:
    assert lowest.lower_bound(requirement).constraint() == pin


@pytest.mark.parametrize("requirement", ["types-PyYAML", "foo<3", "foo==1.0", "foo>1.0"])
def test_a_requirement_without_a_lower_bound_is_an_error(requirement: str) -> None:
    with pytest.raises(lowest.ConstraintError, match="no '>=' lower bound"):
        lowest.lower_bound(requirement)


def test_every_runtime_and_test_dependency_has_a_tested_lower_bound(tmp_path: Path) -> None:
    output = tmp_path / "constraints.txt"
    assert lowest.main([str(ROOT / "setup.cfg"), "--extra", "test", "--output", str(output)]) == 0
    pins = dict(line.split("==") for line in output.read_text().splitlines())
    assert {"kubernetes", "confluent-kafka", "psycopg", "pytest"} <= pins.keys()
    assert all(version[0].isdigit() for version in pins.values())
