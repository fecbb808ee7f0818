"""SecretRefs in a spec: finding them and substituting their values.

A field ``X`` may be given as ``XSecretRef: {name, key, namespace?}`` instead (connectors.md §2.0);
the ref wins over a literal. TLS refs fill the file fields (``caSecretRef`` → ``caFile``) with PEM
content, which the processor writes to files itself. ``brokers`` from a Secret is a comma-separated
list.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

SUFFIX = "SecretRef"
_TARGET_FIELD = {"ca": "caFile", "cert": "certFile", "key": "keyFile"}
_LIST_FIELDS = frozenset({"brokers"})


@dataclass(frozen=True, slots=True)
class SecretRef:
    path: str        # field path of the ref, e.g. spec.source.config.sasl.passwordSecretRef
    namespace: str   # resolved: the DataFlow's namespace when the ref gives none
    name: str
    key: str


class SecretResolutionError(Exception):
    """A referenced Secret or key is missing; the message names them, never a value."""


def _walk(node: Any, path: str) -> Iterator[tuple[dict[str, Any], str, str]]:
    if isinstance(node, dict):
        for key, value in list(node.items()):
            if key.endswith(SUFFIX) and isinstance(value, Mapping):
                yield node, key, f"{path}.{key}"
            else:
                yield from _walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _walk(item, f"{path}[{index}]")


def find_secret_refs(spec: Mapping[str, Any], namespace: str, path: str = "spec") -> list[SecretRef]:
    """Every SecretRef in ``spec`` (malformed refs are validation's business and skipped here)."""
    refs = []
    for parent, key, ref_path in _walk(dict(spec), path):
        ref = parent[key]
        if "name" in ref and "key" in ref:
            refs.append(SecretRef(ref_path, str(ref.get("namespace") or namespace), str(ref["name"]),
                                  str(ref["key"])))
    return refs


def resolve_secret_refs(spec: Mapping[str, Any], namespace: str,
                        read_secret: Callable[[str, str, str], str]) -> dict[str, Any]:
    """A copy of ``spec`` with every ``XSecretRef`` replaced by ``X`` = the secret's value.

    ``read_secret(namespace, name, key)`` returns the decoded value or raises
    :class:`SecretResolutionError`.
    """
    result = copy.deepcopy(dict(spec))
    for parent, key, _path in list(_walk(result, "spec")):
        ref = parent.pop(key)
        base = key[: -len(SUFFIX)]
        value = read_secret(str(ref.get("namespace") or namespace), str(ref["name"]), str(ref["key"]))
        target = _TARGET_FIELD.get(base, base)
        if base in _LIST_FIELDS:
            parent[target] = [item.strip() for item in value.split(",") if item.strip()]
        else:
            parent[target] = value
    return result
