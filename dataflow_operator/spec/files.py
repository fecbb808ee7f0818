"""``dataflow-operator validate``: DataFlow manifests from files (multi-document YAML, ``-`` = stdin)."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TextIO

import yaml

from .fields import FieldError
from .model import API_VERSION, KIND
from .validation import validate_spec


def validate_document(document: Any) -> list[FieldError]:
    """Errors of one YAML document, which must be a DataFlow manifest."""
    if document is None:
        return []
    if not isinstance(document, Mapping):
        return [FieldError("<document>", "must be a DataFlow manifest (an object)")]
    errors = []
    if document.get("apiVersion") != API_VERSION:
        errors.append(FieldError("apiVersion", f"must be {API_VERSION}; got {document.get('apiVersion')!r}"))
    if document.get("kind") != KIND:
        errors.append(FieldError("kind", f"must be {KIND}; got {document.get('kind')!r}"))
    metadata = document.get("metadata")
    if not isinstance(metadata, Mapping) or not metadata.get("name"):
        errors.append(FieldError("metadata.name", "required"))
    errors.extend(validate_spec(document.get("spec")) if "spec" in document
                  else [FieldError("spec", "required")])
    return errors


def validate_files(paths: Iterable[str], out: TextIO) -> int:
    """Prints ``FILE[#DOC]: PATH: MESSAGE`` per error; 0 when every document is valid, else 1."""
    failed = False
    documents_seen = 0
    for path in paths:
        try:
            text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
            documents = list(yaml.safe_load_all(text))
        except OSError as exc:
            print(f"{path}: cannot read: {exc.strerror or exc}", file=out)
            failed = True
            continue
        except yaml.YAMLError as exc:
            print(f"{path}: not valid YAML: {exc}", file=out)
            failed = True
            continue
        for index, document in enumerate(documents):
            if document is None:
                continue
            documents_seen += 1
            name = document.get("metadata", {}).get("name") if isinstance(document, Mapping) else None
            where = f"{path}#{index}" + (f" ({name})" if isinstance(name, str) else "")
            for error in validate_document(document):
                print(f"{where}: {error}", file=out)
                failed = True
    if documents_seen == 0 and not failed:
        print("no DataFlow documents found", file=out)
        return 1
    if not failed:
        print(f"{documents_seen} DataFlow document(s) valid", file=out)
    return 1 if failed else 0
