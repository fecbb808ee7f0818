"""The DataFlow API: model, normalisation, defaults, validation with field paths, SecretRefs."""

from .model import normalize, spec_from_document, with_defaults
from .secrets import SecretRef, SecretResolutionError, find_secret_refs, resolve_secret_refs
from .validation import validate_spec

__all__ = [
    "SecretRef",
    "SecretResolutionError",
    "find_secret_refs",
    "normalize",
    "resolve_secret_refs",
    "spec_from_document",
    "validate_spec",
    "with_defaults",
]
