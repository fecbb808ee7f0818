"""What the CRD schema and the reference page say about a field of a typed API object.

A dataclass field declared with :func:`api_field` carries its JSON name, description and
constraints next to its Python type and default. ``dataflow_operator.spec.crd_schema`` turns such
classes into the CRD's OpenAPI v3 schema and ``dataflow_operator.spec.reference`` into the
reference page, so the Python types are the one source of both, as Go types with kubebuilder
markers are for controller-gen. Connector config classes use it too, which is why it lives in the
kernel (connectors may not import the spec package).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

_KEY = "api"
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class ApiField:
    description: str = ""
    #: The JSON name; by default the attribute name in camelCase.
    name: str | None = None
    enum: Sequence[str] | None = None
    #: The allowed values when they are only known at run time (the connector registry's types).
    choices: Callable[[], Sequence[str]] | None = None
    minimum: int | float | None = None
    #: OpenAPI ``format`` (``int32``, ``int64``, ``date-time``).
    format: str | None = None
    #: Config whose shape depends on a type: ``x-kubernetes-preserve-unknown-fields``.
    free_form: bool = False
    #: The whole schema, for Kubernetes' own types (quantities, affinity) that we pass through.
    schema: Mapping[str, Any] | None = None
    #: Further OpenAPI keywords (``maxLength``, ``x-kubernetes-list-type``, ...).
    extra: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    #: The value may come from a Secret instead: ``True`` for ``<name>SecretRef``, or that key's name.
    secret_ref: bool | str = False
    #: Whether the JSON object must have the key; by default, when the Python field has no default.
    #: False for a field that parsing always fills in from another form (``{type: kafka, kafka: {...}}``
    #: gives ``config``).
    required: bool | None = None
    #: False for what parsing derives from other fields: neither a key of the object nor in the schema.
    in_api: bool = True
    #: Whether the API server fills the default in. Off by default: the processor and the operator
    #: apply defaults, and a server-side default would change every stored object (and so the hash
    #: of every processor's spec Secret) on upgrade.
    server_default: bool = False


def api_field(description: str = "", *, default: Any = dataclasses.MISSING,
              default_factory: Callable[[], Any] | Any = dataclasses.MISSING, **options: Any) -> Any:
    """A dataclass field with :class:`ApiField` metadata; without a default the field is required."""
    metadata = {_KEY: ApiField(description=description, **options)}
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def api_meta(field: dataclasses.Field[Any]) -> ApiField:
    meta = field.metadata.get(_KEY)
    return meta if isinstance(meta, ApiField) else ApiField()


def is_required(field: dataclasses.Field[Any]) -> bool:
    required = api_meta(field).required
    return default_of(field) is dataclasses.MISSING if required is None else required


def api_fields(cls: type) -> list[dataclasses.Field[Any]]:
    """The fields of ``cls`` that are keys of its JSON form."""
    return [field for field in dataclasses.fields(cls) if api_meta(field).in_api]


def json_name(field: dataclasses.Field[Any]) -> str:
    meta = api_meta(field)
    if meta.name:
        return meta.name
    head, *rest = field.name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def secret_ref_key(field: dataclasses.Field[Any]) -> str | None:
    ref = api_meta(field).secret_ref
    if isinstance(ref, str):
        return ref
    return f"{json_name(field)}SecretRef" if ref else None


def allowed_keys(cls: type) -> tuple[str, ...]:
    """The JSON keys an object of ``cls`` may hold: its fields and their SecretRef variants."""
    keys: list[str] = []
    for field in api_fields(cls):
        keys.append(json_name(field))
        ref = secret_ref_key(field)
        if ref is not None:
            keys.append(ref)
    return tuple(keys)


def enum_of(meta: ApiField) -> list[str] | None:
    if meta.choices is not None:
        return list(meta.choices())
    return list(meta.enum) if meta.enum is not None else None


def default_of(field: dataclasses.Field[Any]) -> Any:
    """The field's default value, or ``dataclasses.MISSING`` when it is required."""
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return dataclasses.MISSING


def field_default(cls: type, attribute: str) -> Any:
    """The declared default of ``cls.attribute``: the one place a default is written."""
    for field in dataclasses.fields(cls):
        if field.name == attribute:
            value = default_of(field)
            if value is dataclasses.MISSING:
                raise LookupError(f"{cls.__name__}.{attribute} has no default")
            return value
    raise LookupError(f"{cls.__name__} has no field {attribute}")


def build(cls: type[_T], **values: Any) -> _T:
    """``cls(**values)``, where a value that is None (absent or rejected by validation) leaves the
    field's declared default in place."""
    return cls(**{key: value for key, value in values.items() if value is not None})
