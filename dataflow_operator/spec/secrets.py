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

from ..observability.connection_strings import connection_string_secrets, userinfo
from ..pipeline.config_fields import field_path

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
                yield node, key, field_path(path, key)
            else:
                yield from _walk(value, field_path(path, key))
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


# Field names that hold a credential wherever they appear (``password``, ``sslPassword``,
# ``clientSecret``, ``secretAccessKey``, ``bearerToken``, ``credentials``, …), compared lower-cased.
_SECRET_NAME_PARTS = ("password", "passwd", "secret", "token", "credential", "apikey", "accesskey",
                      "privatekey")
_CONNECTION_STRING_FIELDS = frozenset({"connectionstring", "dsn"})
_PEM_FIELDS = frozenset({"keyfile"})
# keyFile holds a path or, resolved from keySecretRef or given inline, the key itself.
_PEM_MARKER = "-----BEGIN"


def _is_secret_name(key: str) -> bool:
    lowered = key.lower()
    return not key.endswith(SUFFIX) and any(part in lowered for part in _SECRET_NAME_PARTS)


def _scalars(node: Any) -> Iterator[str]:
    """Every text or number under ``node`` (a YAML ``password: 1234`` is an int)."""
    if isinstance(node, Mapping):
        for value in node.values():
            yield from _scalars(value)
    elif isinstance(node, list):
        for item in node:
            yield from _scalars(item)
    elif isinstance(node, str | int | float) and not isinstance(node, bool):
        yield str(node)


def secret_values(spec: Any) -> set[str]:
    """Every value in ``spec`` that must never leave the process: whatever sits under a field named
    like a credential; each candidate secret of a connection string (:func:`connection_string_secrets`)
    and of any URL that carries a user info with a password; inline PEM key material. SecretRefs
    themselves (a Secret's name and key) are not secret; what they resolve to lands in one of these
    fields. Works on a raw or resolved spec, in either connector encoding."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, Mapping):
            for key, value in node.items():
                name = str(key).lower()
                if _is_secret_name(str(key)):
                    found.update(_scalars(value))
                elif name in _CONNECTION_STRING_FIELDS and isinstance(value, str):
                    found.update(connection_string_secrets(value))
                elif name in _PEM_FIELDS and isinstance(value, str) and value.lstrip().startswith(_PEM_MARKER):
                    found.add(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, str) and userinfo(node) is not None:
            # A URL with credentials (a schema registry, an S3 endpoint) is a connection string too.
            found.update(connection_string_secrets(node))

    walk(spec)
    return {value for value in found if value.strip()}
