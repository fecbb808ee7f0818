"""``dataflow-operator validate``: DataFlow manifests from files (multi-document YAML, ``-`` = stdin).

Every problem is one line ``FILE#DOC[ (NAME)]: FIELD.PATH: MESSAGE``, whatever the input holds,
and the exit status is 1 unless every DataFlow document is valid. Documents of other kinds (the
Secrets a sample applies together with its DataFlow) are skipped with a note, as kubeconform
does; ``--strict`` makes them errors. Loading is bounded (see :mod:`.manifest_loader`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import IO, Any, TextIO

from ..contract import API_GROUP, API_VERSION, KIND
from ..pipeline.config_fields import FieldError, Fields, shown, type_name
from .manifest_loader import WHOLE_DOCUMENT, ManifestError, decode_manifest, load_yaml_documents, read_manifest
from .metadata import is_object_name, validate_metadata
from .validation import validate_spec

MANIFEST_KEYS = ("apiVersion", "kind", "metadata", "spec", "status")
INTERNAL_ERROR = "internal error"


@dataclass(frozen=True)
class Finding:
    """One line of output about one document: an error, or a note that it was skipped."""

    document: int
    path: str
    message: str
    name: str | None = None
    skipped: bool = False

    def line(self, source: str) -> str:
        where = f"{source}#{self.document}" + (f" ({self.name})" if self.name else "")
        text = f"{where}: {self.path}: {self.message}"
        return text.replace("\r", "\\r").replace("\n", "\\n")  # one finding, one line


@dataclass
class InputReport:
    findings: list[Finding] = field(default_factory=list)
    dataflows: int = 0

    @property
    def failed(self) -> bool:
        return any(not finding.skipped for finding in self.findings)


def validate_document(document: Any) -> list[FieldError]:
    """Errors of one YAML document, which must be a DataFlow manifest."""
    if document is None:
        return []
    if not isinstance(document, Mapping):
        return [FieldError(WHOLE_DOCUMENT, f"must be a DataFlow manifest (an object), got {type_name(document)}")]
    errors: list[FieldError] = []
    f = Fields(document, "", errors)
    for key, expected in (("apiVersion", API_VERSION), ("kind", KIND)):
        value = document.get(key)
        if value != expected:
            errors.append(FieldError(key, f"must be {expected}; got "
                                          f"{shown(value) if isinstance(value, str) else type_name(value)}"))
    for key in document:
        if key not in MANIFEST_KEYS:
            errors.append(FieldError(str(key), f"unknown field; allowed: {', '.join(MANIFEST_KEYS)}"))
    errors.extend(validate_metadata(document.get("metadata")))
    errors.extend(validate_spec(document.get("spec")) if f.has("spec") else [FieldError("spec", "required")])
    return errors


def foreign_kind(document: Any) -> str | None:
    """``apiVersion/kind`` of a Kubernetes object that is not meant to be a DataFlow (another API
    group, both fields set); None for anything validated as a DataFlow."""
    if not isinstance(document, Mapping):
        return None
    api_version, kind = document.get("apiVersion"), document.get("kind")
    if not (isinstance(api_version, str) and isinstance(kind, str) and api_version and kind):
        return None
    if kind == KIND or api_version.split("/", 1)[0] == API_GROUP:
        return None
    return f"{api_version}/{kind}"


def check_manifest(data: bytes, *, strict: bool = False) -> InputReport:
    """Every finding for one input's bytes."""
    report = InputReport()
    try:
        for index, document in load_yaml_documents(decode_manifest(data)):
            _check_document(index, document, strict, report)
    except ManifestError as exc:
        report.findings.append(Finding(exc.document, exc.path, exc.detail))
    return report


def _check_document(index: int, document: Any, strict: bool, report: InputReport) -> None:
    if document is None:
        return
    metadata = document.get("metadata") if isinstance(document, Mapping) else None
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    name = name if is_object_name(name) else None
    foreign = foreign_kind(document)
    if foreign is not None:
        if strict:
            report.findings.append(Finding(index, "kind", f"{foreign} is not a DataFlow (--strict)", name))
        else:
            report.findings.append(Finding(index, "kind", f"skipped: {foreign} is not a DataFlow", name,
                                           skipped=True))
        return
    report.dataflows += 1
    try:
        errors = validate_document(document)
    except Exception as exc:  # last resort, never expected: the fuzz test asserts it is not reached
        errors = [FieldError(WHOLE_DOCUMENT, f"{INTERNAL_ERROR}: {type(exc).__name__}: {exc}")]
    report.findings.extend(Finding(index, error.path or WHOLE_DOCUMENT, error.message, name) for error in errors)


def validate_files(paths: Iterable[str], out: TextIO, *, strict: bool = False,
                   stdin: IO[bytes] | None = None) -> int:
    """Prints a line per finding; 0 when every document is a valid DataFlow (or skipped) and
    there is at least one DataFlow, else 1."""
    failed = False
    dataflows = 0
    for path in paths:
        try:
            data = read_manifest(path, stdin)
        except OSError as exc:
            print(f"{path}: cannot read: {exc.strerror or exc}", file=out)
            failed = True
            continue
        except ManifestError as exc:
            report = InputReport([Finding(exc.document, exc.path, exc.detail)])
        else:
            report = check_manifest(data, strict=strict)
        for finding in report.findings:
            print(finding.line(path), file=out)
        failed = failed or report.failed
        dataflows += report.dataflows
    if dataflows == 0 and not failed:
        print("no DataFlow documents found", file=out)
        return 1
    if not failed:
        print(f"{dataflows} DataFlow document(s) valid", file=out)
    return 1 if failed else 0
