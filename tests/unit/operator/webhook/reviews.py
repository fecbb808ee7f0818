"""AdmissionReview requests as the API server sends them, shared by the webhook's tests."""

from __future__ import annotations

import copy
import json
import uuid
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[4]
HOSTILE = REPO / "tests" / "unit" / "spec" / "hostile_manifests"
EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))


def review(obj: Any, *, operation: str = "CREATE", old: Any = None, dry_run: bool = False,
           kind: str = "DataFlow", group: str = "dataflow.dataflow.io") -> dict[str, Any]:
    metadata = obj.get("metadata") if isinstance(obj, dict) else None
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": str(uuid.uuid4()), "kind": {"group": group, "version": "v1", "kind": kind},
        "resource": {"group": group, "version": "v1", "resource": "dataflows"},
        "name": metadata.get("name", "") if isinstance(metadata, dict) else "", "namespace": "team-a", "operation": operation,
        "userInfo": {"username": "alice"}, "object": obj, "oldObject": old, "dryRun": dry_run}}


def body(obj: Any, **kwargs: Any) -> bytes:
    return json.dumps(review(obj, **kwargs)).encode()


def example_dataflows() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in EXAMPLES:
        for document in yaml.safe_load_all(path.read_text()):
            if isinstance(document, dict) and document.get("kind") == "DataFlow":
                found.append((f"{path.name}:{document['metadata']['name']}", document))
    return found


def hostile_dataflows() -> list[tuple[str, Any, list[str]]]:
    """The hostile corpus documents that are JSON (the API server only ever sends JSON), with the
    field paths each must be refused at (``# expect:``)."""
    from dataflow_operator.spec.manifest_loader import ManifestError, load_yaml_documents

    found = []
    for path in sorted(HOSTILE.glob("*.yaml")):
        expect = [line[len("# expect: "):] for line in path.read_text(errors="replace").splitlines()
                  if line.startswith("# expect: ")]
        try:
            documents = [document for _index, document in load_yaml_documents(path.read_text())]
        except (ManifestError, UnicodeDecodeError):
            continue  # refused by the loader: YAML the API server would not take either
        if len(documents) != 1 or not isinstance(documents[0], dict):
            continue
        try:
            json.dumps(documents[0], allow_nan=False)
        except ValueError:
            continue
        found.append((path.stem, copy.deepcopy(documents[0]), expect))
    return found
