"""The DataFlow CRD, generated from the typed API objects (:mod:`.api`, :mod:`.status`).

As controller-gen reads Go types and their kubebuilder markers, :func:`object_schema` reads
dataclass fields and their :class:`~dataflow_operator.pipeline.api_fields.ApiField` metadata: the
Python type gives the OpenAPI type, a field without a default is required, and the metadata adds
the description, enum, minimum, format and Kubernetes extensions. The CRD's identity (names,
version, printer columns) is declared here. ``python -m dataflow_operator.spec.generate`` writes
the result to the chart.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Mapping
from typing import Any

import yaml

from ..contract import API_GROUP, API_VERSION_NAME, KIND, PLURAL
from ..pipeline.api_fields import api_fields, api_meta, default_of, enum_of, is_required, json_name
from .api import DataFlowSpec
from .status import DataFlowStatus

CRD_PATH = "helm/dataflow-operator/files/crds/dataflow.dataflow.io_dataflows.yaml"
HEADER = """\
# The DataFlow CRD: the one copy in the repository. The chart renders it from here
# (templates/crds.yaml, guarded by crds.install, `helm.sh/resource-policy: keep` when crds.keep);
# `kubectl apply -f` works on it directly, and tests install it from this path.
# Generated from dataflow_operator/spec/api.py and status.py: edit those, then run
# `python -m dataflow_operator.spec.generate`.
"""
PRINTER_COLUMNS = [
    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
    {"name": "Processed", "type": "integer", "jsonPath": ".status.processedCount"},
    {"name": "Errors", "type": "integer", "jsonPath": ".status.errorCount"},
    {"name": "Last", "type": "date", "description": "When the processed count last grew (status.lastProcessedTime)",
     "jsonPath": ".status.lastProcessedTime"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]
_SCALARS: dict[Any, str] = {bool: "boolean", int: "integer", float: "number", str: "string"}


def crd() -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{API_GROUP}"},
        "spec": {
            "group": API_GROUP,
            "names": {"kind": KIND, "listKind": f"{KIND}List", "plural": PLURAL, "singular": KIND.lower(),
                      "shortNames": ["df"]},
            "scope": "Namespaced",
            "versions": [{
                "name": API_VERSION_NAME, "served": True, "storage": True,
                "subresources": {"status": {}},
                "additionalPrinterColumns": PRINTER_COLUMNS,
                "schema": {"openAPIV3Schema": root_schema()},
            }],
        },
    }


def root_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "A declarative data pipeline run by the dataflow-operator.",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": object_schema(DataFlowSpec),
            "status": object_schema(DataFlowStatus),
        },
        "required": ["spec"],
    }


def object_schema(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    schema: dict[str, Any] = {"type": "object"}
    if cls.__doc__ and not cls.__doc__.startswith(f"{cls.__name__}("):  # not dataclass's generated one
        schema["description"] = " ".join(cls.__doc__.split())
    fields = api_fields(cls)
    required = [json_name(field) for field in fields if is_required(field)]
    if required:
        schema["required"] = required
    schema.update(getattr(cls, "CRD_EXTENSIONS", {}))
    properties: dict[str, Any] = {}
    for field in fields:
        properties[json_name(field)] = field_schema(field, hints[field.name])
    if getattr(cls, "ENCODED_BY_TYPE", False):
        # The second encoding, {type: kafka, kafka: {...}}, normalised to config at the edge.
        type_field = next(field for field in fields if field.name == "type")
        for name in enum_of(api_meta(type_field)) or ():
            properties[name] = {"type": "object",
                                "description": "Alternative encoding of config, keyed by the type; used when "
                                               f"config is absent and type is {name}.",
                                "x-kubernetes-preserve-unknown-fields": True}
    schema["properties"] = properties
    return schema


def field_schema(field: dataclasses.Field[Any], hint: Any) -> dict[str, Any]:
    meta = api_meta(field)
    schema = dict(meta.schema) if meta.schema is not None else type_schema(hint, meta.free_form)
    description = meta.description
    default = default_of(field)
    if description and default is not dataclasses.MISSING and default not in (None, (), {}, ""):
        description = f"{description} Default: {default_text(default)}."
    if description:
        schema["description"] = description
    enum = enum_of(meta)
    if enum is not None:
        schema["enum"] = enum
    for key, value in (("format", meta.format), ("minimum", meta.minimum)):
        if value is not None:
            schema[key] = value
    if meta.server_default and default is not dataclasses.MISSING:
        schema["default"] = json.loads(default_json(default))
    schema.update(meta.extra)
    return schema


def type_schema(hint: Any, free_form: bool = False) -> dict[str, Any]:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        (inner,) = [arg for arg in args if arg is not type(None)]
        return type_schema(inner, free_form)
    if hint in _SCALARS:
        return {"type": _SCALARS[hint]}
    if origin is tuple:
        return {"type": "array", "items": type_schema(args[0], free_form)}
    if dataclasses.is_dataclass(hint):
        return object_schema(typing.cast(type, hint))
    if free_form:
        return {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    if origin is Mapping and args[1] in _SCALARS:
        return {"type": "object", "additionalProperties": {"type": _SCALARS[args[1]]}}
    raise TypeError(f"no schema for {hint!r}: give the field free_form or a schema")


def default_text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float, str)):
        return str(value)
    return default_json(value)


def default_json(value: Any) -> str:
    def plain(item: Any) -> Any:
        if dataclasses.is_dataclass(item) and not isinstance(item, type):
            return {json_name(field): plain(getattr(item, field.name)) for field in api_fields(type(item))
                    if getattr(item, field.name) not in (None, (), {})}
        if isinstance(item, Mapping):
            return {key: plain(value) for key, value in item.items()}
        if isinstance(item, tuple):
            return [plain(value) for value in item]
        return item
    return json.dumps(plain(value), separators=(", ", ": "))


def crd_yaml() -> str:
    return HEADER + "---\n" + yaml.safe_dump(crd(), sort_keys=False, width=120, allow_unicode=True)


