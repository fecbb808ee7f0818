"""Does the live object already say what the desired one says?

The API server defaults many fields (``imagePullPolicy``, probe thresholds, ``dnsPolicy`` ...) and
canonicalises quantities (``0.5`` CPU is stored as ``500m``), so comparing whole objects would find a
difference on every reconcile and write every time. :func:`first_difference` compares only the
fields the operator sets: every key of the desired object, recursively; lists element by element.
An empty desired value (``{}``, ``[]``, ``""``, None) matches an absent one, as the server omits them.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from kubernetes.utils.quantity import parse_quantity

# The client's helper is untyped; this is its contract.
_parse_quantity: Callable[[Any], Decimal] = parse_quantity


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, (dict, list, str)) and not value)


def _quantity(value: Any) -> Decimal | None:
    try:
        return _parse_quantity(value)
    except (ValueError, TypeError, InvalidOperation):
        return None


def _scalars_equal(desired: Any, live: Any, path: str) -> bool:
    if isinstance(desired, bool) or isinstance(live, bool):
        return desired is live  # True == 1 in Python, not in the API
    if desired == live:
        return True
    if ".resources." in path:
        desired_quantity, live_quantity = _quantity(desired), _quantity(live)
        return desired_quantity is not None and desired_quantity == live_quantity
    return False


def first_difference(desired: Any, live: Any, path: str = "") -> str | None:
    """The path of the first field set in ``desired`` that ``live`` does not match; None if none."""
    if _empty(desired):
        return None if _empty(live) else path or "."
    if isinstance(desired, Mapping):
        if not isinstance(live, Mapping):
            return path or "."
        for key, value in desired.items():
            difference = first_difference(value, live.get(key), f"{path}.{key}")
            if difference is not None:
                return difference
        return None
    if isinstance(desired, list):
        if not isinstance(live, list) or len(live) != len(desired):
            return path
        for index, (desired_item, live_item) in enumerate(zip(desired, live, strict=True)):
            difference = first_difference(desired_item, live_item, f"{path}[{index}]")
            if difference is not None:
                return difference
        return None
    return None if _scalars_equal(desired, live, path) else path


def update_body(live: Mapping[str, Any], desired: Mapping[str, Any]) -> dict[str, Any]:
    """The body of a PUT that makes ``live`` say what ``desired`` says.

    Keeps what others own (other labels and annotations, server-set fields, ``resourceVersion`` for
    optimistic concurrency, a ConfigMap's ``data``), replaces what the operator owns: its labels and
    annotations, the ownerReferences, and each top-level field of ``desired`` - for ``spec`` each of
    its keys, so server defaults elsewhere in the spec (``strategy``, ``progressDeadlineSeconds``)
    stay untouched while the pod template is replaced whole and defaulted again identically.
    """
    body = copy.deepcopy(dict(live))
    body.pop("status", None)
    metadata = body.setdefault("metadata", {})
    wanted = desired.get("metadata") or {}
    for key in ("labels", "annotations"):
        if wanted.get(key):
            metadata[key] = {**(metadata.get(key) or {}), **wanted[key]}
    if "ownerReferences" in wanted:
        metadata["ownerReferences"] = copy.deepcopy(wanted["ownerReferences"])
    for key, value in desired.items():
        if key == "metadata":
            continue
        if key == "spec" and isinstance(value, Mapping) and isinstance(body.get("spec"), Mapping):
            body["spec"] = {**body["spec"], **copy.deepcopy(dict(value))}
        else:
            body[key] = copy.deepcopy(value)
    return body
