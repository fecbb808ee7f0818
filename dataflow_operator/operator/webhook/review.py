"""AdmissionReview v1 → AdmissionReview v1, judged by exactly the code of ``dataflow-operator validate``.

A request the API server could send always gets an AdmissionReview back (HTTP 200): ``allowed``, or
refused with status 422/``Invalid`` whose message lists ``field.path: message`` as ``validate``
prints them and whose ``details.causes`` carry one cause per field. Valid but ineffective fields
come back as ``warnings``. Anything else (not JSON, not an AdmissionReview v1, no ``request.uid``)
is a :class:`BadReviewError`, which the server answers with 400: there is no uid to answer to.

Texts that leave here never quote a secret of the reviewed object: every message and warning is
scrubbed by value with the secrets found in that object (:func:`~dataflow_operator.spec.secrets.secret_values`),
in a registry of its own, so one user's password is not remembered for the process.

Updates ratchet, as Kubernetes does for its own fields: an update that leaves ``spec`` and the
checked metadata as they were is admitted even when the stored object predates a rule, so labels,
finalizers and deletion of an old object are never blocked.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from ...contract import API_GROUP, KIND
from ...observability.redaction import SecretRegistry
from ...pipeline.config_fields import FieldError
from ...spec.files import document_warnings, validate_document
from ...spec.manifest_loader import WHOLE_DOCUMENT, ManifestError, load_json_document
from ...spec.secrets import secret_values

REVIEW_API_VERSION: Final = "admission.k8s.io/v1"
REVIEW_KIND: Final = "AdmissionReview"
#: Causes listed in one refusal; a manifest with thousands of errors is refused with the first ones.
MAX_CAUSES: Final = 50
#: Characters of one warning: the API server passes warnings on as HTTP headers and truncates long ones.
MAX_WARNING_CHARS: Final = 256
OBJECT_PREFIX: Final = "request.object."


class BadReviewError(ValueError):
    """A body that is not an AdmissionReview v1 request; the message says what was wrong."""


@dataclass(frozen=True, slots=True)
class AdmissionRequest:
    uid: str
    operation: str
    kind: str
    group: str
    name: str
    namespace: str
    object: Any
    old_object: Any
    dry_run: bool


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the webhook answers: refused when ``errors`` is non-empty."""

    errors: tuple[FieldError, ...] = ()
    warnings: tuple[str, ...] = ()
    code: int = 422
    reason: str = "Invalid"

    @property
    def allowed(self) -> bool:
        return not self.errors


def parse_review(body: bytes) -> AdmissionRequest | tuple[str, FieldError]:
    """The request of an AdmissionReview; or ``(uid, error)`` for a request whose object the
    manifest loader refuses (nesting, NaN, an integer of 5000 digits, more nodes than a manifest
    may hold): that object is invalid, and the API server gets an answer it can show. Raises
    :class:`BadReviewError` otherwise."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadReviewError(f"body is not UTF-8 (byte {exc.start})") from None
    try:
        review = load_json_document(text)
    except json.JSONDecodeError as exc:
        raise BadReviewError(f"body is not JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None
    except ManifestError as exc:
        uid = _uid_before_parsing(text)
        if uid is None or not (exc.path == WHOLE_DOCUMENT or exc.path.startswith(OBJECT_PREFIX)):
            raise BadReviewError(f"{exc.path}: {exc.detail}") from None
        return uid, FieldError(exc.path.removeprefix(OBJECT_PREFIX), exc.detail)
    if not isinstance(review, Mapping):
        raise BadReviewError("body is not a JSON object")
    if review.get("apiVersion") != REVIEW_API_VERSION or review.get("kind") != REVIEW_KIND:
        raise BadReviewError(f"expected apiVersion {REVIEW_API_VERSION} and kind {REVIEW_KIND}")
    request = review.get("request")
    if not isinstance(request, Mapping):
        raise BadReviewError("request: missing")
    uid = request.get("uid")
    if not isinstance(uid, str) or not uid:
        raise BadReviewError("request.uid: missing")
    kind = request.get("kind")
    kind = kind if isinstance(kind, Mapping) else {}
    if request.get("operation") in ("CREATE", "UPDATE") and request.get("object") is None:
        raise BadReviewError("request.object: missing")
    return AdmissionRequest(
        uid=uid, operation=_text(request.get("operation")), kind=_text(kind.get("kind")),
        group=_text(kind.get("group")), name=_text(request.get("name")), namespace=_text(request.get("namespace")),
        object=request.get("object"), old_object=request.get("oldObject"), dry_run=request.get("dryRun") is True)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _uid_before_parsing(text: str) -> str | None:
    """``request.uid`` of a body whose object could not be loaded: read with the standard parser,
    which has no limits of its own beyond Python's recursion guard."""
    try:
        review = json.loads(text)
    except (ValueError, RecursionError):
        return None
    request = review.get("request") if isinstance(review, dict) else None
    uid = request.get("uid") if isinstance(request, dict) else None
    return uid if isinstance(uid, str) and uid else None


def judge(request: AdmissionRequest) -> Verdict:
    """The verdict on one request; pure."""
    if request.kind != KIND or request.group != API_GROUP:
        return Verdict(warnings=(f"{request.group}/{request.kind} is not reviewed by the DataFlow webhook",))
    if request.operation not in ("CREATE", "UPDATE"):
        return Verdict()
    document = request.object
    warnings = tuple(str(warning) for warning in document_warnings(document))
    if request.operation == "UPDATE" and _unchanged(request.old_object, document):
        return Verdict(warnings=warnings)
    return Verdict(errors=tuple(validate_document(document)), warnings=warnings)


_CHECKED_METADATA = ("name", "namespace", "labels", "annotations")


def _unchanged(old: Any, new: Any) -> bool:
    """Every field ``validate`` judges is as it was (status, finalizers and bookkeeping aside)."""
    if not (isinstance(old, Mapping) and isinstance(new, Mapping)):
        return False

    def judged(obj: Mapping[str, Any]) -> tuple[Any, ...]:
        metadata = obj.get("metadata")
        metadata = metadata if isinstance(metadata, Mapping) else {}
        return (obj.get("apiVersion"), obj.get("kind"), obj.get("spec"),
                *(metadata.get(key) for key in _CHECKED_METADATA))

    return judged(old) == judged(new)


def review_response(uid: str, verdict: Verdict, reviewed: Any) -> dict[str, Any]:
    """The AdmissionReview answer; ``reviewed`` is the object whose secrets must not be quoted."""
    secrets = SecretRegistry()
    secrets.add(secret_values(reviewed))
    response: dict[str, Any] = {"uid": uid, "allowed": verdict.allowed}
    if verdict.warnings:
        response["warnings"] = [_one_line(secrets.scrub(text))[:MAX_WARNING_CHARS] for text in verdict.warnings]
    if not verdict.allowed:
        shown = verdict.errors[:MAX_CAUSES]
        causes = [{"field": secrets.scrub(error.path), "message": secrets.scrub(error.message),
                   "reason": "FieldValueInvalid"} for error in shown]
        message = "; ".join(f"{cause['field']}: {cause['message']}" for cause in causes)
        if len(verdict.errors) > len(shown):
            message += f"; and {len(verdict.errors) - len(shown)} more"
        response["status"] = {"status": "Failure", "code": verdict.code, "reason": verdict.reason,
                              "message": message, "details": {"group": API_GROUP, "kind": KIND, "causes": causes}}
    return {"apiVersion": REVIEW_API_VERSION, "kind": REVIEW_KIND, "response": response}


def _one_line(text: str) -> str:
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


def answer(body: bytes) -> dict[str, Any]:
    """The AdmissionReview answer to a request body. Raises :class:`BadReviewError`."""
    parsed = parse_review(body)
    if isinstance(parsed, tuple):
        uid, error = parsed
        return review_response(uid, Verdict(errors=(error,)), None)
    return review_response(parsed.uid, judge(parsed), parsed.object)
