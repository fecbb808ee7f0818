"""``metadata`` of a DataFlow manifest: the rules the API server applies to a namespaced object."""

from __future__ import annotations

import re
from typing import Any, Final

from ..pipeline.config_fields import FieldError, Fields, shown

_DNS1123_LABEL: Final = r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?"
DNS1123_SUBDOMAIN: Final = re.compile(rf"{_DNS1123_LABEL}(?:\.{_DNS1123_LABEL})*")
DNS1123_LABEL: Final = re.compile(_DNS1123_LABEL)
MAX_LABEL_CHARS: Final = 63
#: The API server would take a name of 253 characters, but the operator writes the DataFlow's name
#: into label values (``dataflow.dataflow.io/name``), which hold at most 63: a longer name would pass
#: validation and fail at every reconcile.
MAX_NAME_CHARS: Final = MAX_LABEL_CHARS


def is_object_name(value: Any) -> bool:
    """A valid DataFlow ``metadata.name``: a DNS-1123 subdomain short enough to be a label value."""
    return (isinstance(value, str) and len(value) <= MAX_NAME_CHARS
            and DNS1123_SUBDOMAIN.fullmatch(value) is not None)


def validate_metadata(metadata: Any, path: str = "metadata", *, name_required: bool = True) -> list[FieldError]:
    errors: list[FieldError] = []
    f = Fields(metadata, path, errors)
    name = f.string("name", required=name_required)
    if name is not None and not is_object_name(name):
        f.error("name", f"must be a DNS-1123 subdomain (lower-case letters, digits, '-' and '.', starting and "
                        f"ending alphanumeric) of at most {MAX_NAME_CHARS} characters, since it is used as a label "
                        f"value; got {shown(name)}")
    namespace = f.string("namespace")
    if namespace is not None and not (len(namespace) <= MAX_LABEL_CHARS and DNS1123_LABEL.fullmatch(namespace)):
        f.error("namespace", f"must be a DNS-1123 label (lower-case letters, digits and '-', at most "
                             f"{MAX_LABEL_CHARS} characters); got {shown(namespace)}")
    f.string_map("labels")
    f.string_map("annotations")
    return errors
