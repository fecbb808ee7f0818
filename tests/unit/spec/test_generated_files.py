"""The CRD and docs/reference.md are generated from the typed API objects; a hand edit or a type
change without regenerating fails here, naming the command that fixes it."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from dataflow_operator.pipeline.api_fields import api_field
from dataflow_operator.spec import generate
from dataflow_operator.spec.crd_schema import object_schema

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("path", sorted(generate.generated()))
def test_the_checked_in_file_is_what_the_types_generate(path: str) -> None:
    expected = generate.generated()[path]
    actual = (ROOT / path).read_text(encoding="utf-8")
    assert actual == expected, f"{path} differs from the typed API objects; run {generate.COMMAND}"


def test_check_mode_names_a_stale_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for path, text in generate.generated().items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text, encoding="utf-8")
    assert generate.main(["--check", str(tmp_path)]) == 0
    (tmp_path / generate.REFERENCE_PATH).write_text("edited by hand\n", encoding="utf-8")
    assert generate.main(["--check", str(tmp_path)]) == 1
    assert f"{generate.REFERENCE_PATH} is out of date; run {generate.COMMAND}" in capsys.readouterr().out


def test_field_metadata_becomes_schema() -> None:
    @dataclasses.dataclass(frozen=True)
    class Example:
        """An example."""

        size: int = api_field("How many.", minimum=1, format="int32")
        mode: str = api_field("Which.", default="fast", enum=("fast", "slow"))
        tags: tuple[str, ...] = api_field(default=())
        extra: dict[str, Any] = api_field("Free.", default_factory=dict, free_form=True)

    assert object_schema(Example) == {
        "type": "object", "description": "An example.", "required": ["size"],
        "properties": {
            "size": {"type": "integer", "description": "How many.", "format": "int32", "minimum": 1},
            "mode": {"type": "string", "description": "Which. Default: fast.", "enum": ["fast", "slow"]},
            "tags": {"type": "array", "items": {"type": "string"}},
            "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True, "description": "Free."},
        },
    }

