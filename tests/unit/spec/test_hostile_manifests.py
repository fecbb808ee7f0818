"""The hostile corpus through ``dataflow-operator validate`` and through the processor's loader.

Each file in ``hostile_manifests/`` reproduces one way a manifest was found to crash or slip
through. Its header names what must be reported: ``# expect: PATH`` (the field path, or a prefix
of it) and optionally ``# says: TEXT``. ``validate`` must exit 1 with one ``FILE#DOC: PATH: MESSAGE``
line per finding and never a traceback.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from dataflow_operator.cli import main
from dataflow_operator.pipeline.config_fields import SpecError
from dataflow_operator.processor.runtime import load_spec_file
from dataflow_operator.spec import validate_spec
from dataflow_operator.spec.files import INTERNAL_ERROR

HERE = Path(__file__).parent
CORPUS = sorted((HERE / "hostile_manifests").glob("*.yaml"))
SAMPLES = HERE / "reference_samples"
LINE = re.compile(r"^(?P<source>.+?)#(?P<document>\d+)(?: \((?P<name>[^)]+)\))?: (?P<path>\S[^:]*?): (?P<message>\S.*)$")


def header(manifest: Path, key: str) -> list[str]:
    prefix = f"# {key}: ".encode()
    return [line[len(prefix):].decode() for line in manifest.read_bytes().splitlines() if line.startswith(prefix)]


def reported_paths(output: str, source: str) -> list[str]:
    paths = []
    for line in output.splitlines():
        match = LINE.match(line)
        assert match is not None, f"not FILE#DOC: PATH: MESSAGE: {line!r}"
        assert match["source"] == source
        paths.append(match["path"])
    return paths


def test_the_corpus_has_a_file_for_every_finding() -> None:
    assert len(CORPUS) >= 40
    assert all(header(manifest, "expect") for manifest in CORPUS)


@pytest.mark.parametrize("manifest", CORPUS, ids=[p.stem for p in CORPUS])
def test_validate_rejects_it_at_the_field(manifest: Path) -> None:
    result = CliRunner().invoke(main, ["validate", str(manifest)])
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output and INTERNAL_ERROR not in result.output
    paths = reported_paths(result.output, str(manifest))
    for expected in header(manifest, "expect"):
        assert any(path == expected or path.startswith((f"{expected}.", f"{expected}[")) for path in paths), \
            result.output
    for text in header(manifest, "says"):
        assert text in result.output


@pytest.mark.parametrize("manifest", CORPUS, ids=[p.stem for p in CORPUS])
def test_the_processor_loader_answers_with_field_errors_only(manifest: Path) -> None:
    """The processor needs no apiVersion/kind/name, so not every file is invalid for it; but
    loading and validating end in a result or a SpecError naming fields, nothing else."""
    try:
        spec, _metadata = load_spec_file(str(manifest))
        errors = validate_spec(spec)
    except SpecError as exc:
        errors = exc.errors
    assert all(error.path for error in errors)


def test_reference_samples_with_secrets_pass_with_a_skip_note() -> None:
    sample = SAMPLES / "kafka-to-postgres-secrets.yaml"
    result = CliRunner().invoke(main, ["validate", str(sample)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines == [f"{sample}#0 (kafka-credentials): kind: skipped: v1/Secret is not a DataFlow",
                     f"{sample}#1 (postgres-credentials): kind: skipped: v1/Secret is not a DataFlow",
                     "1 DataFlow document(s) valid"]


def test_strict_turns_the_skips_into_errors() -> None:
    sample = SAMPLES / "kafka-to-postgres-secrets.yaml"
    result = CliRunner().invoke(main, ["validate", "--strict", str(sample)])
    assert result.exit_code == 1
    assert f"{sample}#1 (postgres-credentials): kind: v1/Secret is not a DataFlow (--strict)" in result.output


def test_only_secrets_is_not_a_valid_input(tmp_path: Path) -> None:
    only = tmp_path / "secret.yaml"
    only.write_text("apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {a: b}\n")
    result = CliRunner().invoke(main, ["validate", str(only)])
    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == "no DataFlow documents found"


def test_a_misspelt_dataflow_is_validated_not_skipped(tmp_path: Path) -> None:
    """Only other API groups are skipped: our group with another kind is a DataFlow gone wrong."""
    flow = tmp_path / "flow.yaml"
    flow.write_text("apiVersion: dataflow.dataflow.io/v1\nkind: Dataflow\nmetadata: {name: f}\nspec: {}\n")
    result = CliRunner().invoke(main, ["validate", str(flow)])
    assert result.exit_code == 1
    assert f"{flow}#0 (f): kind: must be DataFlow; got 'Dataflow'" in result.output.splitlines()
